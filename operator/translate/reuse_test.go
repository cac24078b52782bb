package translate_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// TestReuseMatchesFullTranslation changes a random cluster one object at a
// time, as an API server would (new objects for changed ones, generations
// and resourceVersions moving on), and after every change asserts that a
// translation that reuses what the previous one compiled gives exactly what
// a translation from nothing gives.
func TestReuseMatchesFullTranslation(t *testing.T) {
	for seed := range uint64(60) {
		checkReuse(t, seed, 30)
	}
}

// FuzzReuse is TestReuseMatchesFullTranslation over any seed and length.
func FuzzReuse(f *testing.F) {
	f.Add(uint64(1), uint8(20))
	f.Add(uint64(7), uint8(60))
	f.Fuzz(func(t *testing.T, seed uint64, steps uint8) {
		checkReuse(t, seed, int(steps%80))
	})
}

func checkReuse(t *testing.T, seed uint64, steps int) {
	t.Helper()
	c := &churn{gen: gen{r: rand.New(rand.NewPCG(seed, 11))}}
	c.in = c.input(4, 2, 24)
	for _, r := range c.in.HTTPRoutes {
		c.stamp(r)
	}
	for _, list := range [][]metav1.Object{objects(c.in.Services), objects(c.in.EndpointSlices), objects(c.in.Gateways),
		objects(c.in.GatewayClasses), objects(c.in.Namespaces), objects(c.in.ReferenceGrants), objects(c.in.ReferenceGrantsV1B)} {
		for _, o := range list {
			c.stamp(o)
		}
	}
	prev := translate.Translate(c.in)
	reused := 0
	for step := range steps {
		what := c.change()
		in := c.in
		in.Compiled = prev.Compiled
		got := translate.Translate(in)
		want := translate.Translate(c.in)
		if sameOutput(got, want) {
			// equal without rendering, which is most of the test's time
		} else if g, w := render(t, got), render(t, want); !bytes.Equal(g, w) {
			t.Fatalf("seed %d, step %d (%s): a translation reusing the previous one differs from a full one:\n%s", seed, step, what, diffLines(string(w), string(g)))
		}
		reused += translate.ReusedRoutes(got.Compiled, prev.Compiled)
		prev = got
	}
	if steps >= 10 && reused == 0 {
		t.Fatalf("seed %d: in %d changes no route was reused: the test checks nothing", seed, steps)
	}
}

// sameOutput compares statuses and tables without rendering them; a
// false answer is checked again by rendering.
func sameOutput(a, b translate.Output) bool {
	if len(a.Tables) != len(b.Tables) {
		return false
	}
	for k, t := range a.Tables {
		if !proto.Equal(t, b.Tables[k]) {
			return false
		}
	}
	a.Tables, b.Tables, a.Compiled, b.Compiled = nil, nil, nil, nil
	a.Parameters, b.Parameters, a.ProxySettings, b.ProxySettings = nil, nil, nil, nil
	return equality.Semantic.DeepEqual(a, b)
}

// churn changes a cluster the way an API server would show it changing.
type churn struct {
	gen
	in   translate.Input
	next int
}

func (c *churn) stamp(o metav1.Object) {
	c.next++
	if o.GetUID() == "" {
		o.SetUID(types.UID(fmt.Sprintf("uid-%d", c.next)))
	}
	o.SetGeneration(o.GetGeneration() + 1)
	o.SetResourceVersion(strconv.Itoa(c.next))
}

// change makes one random change and says what it was.
func (c *churn) change() string {
	routes := c.in.HTTPRoutes
	switch op := c.r.IntN(13); {
	case op >= 10:
		return c.changeBackendWorld(op)
	case op < 3 && len(routes) > 0: // a route's spec changes
		i := c.r.IntN(len(routes))
		old := routes[i]
		r := c.route(old.Namespace, old.Name, len(c.in.Gateways), 4)
		r.UID, r.Generation, r.CreationTimestamp = old.UID, old.Generation, old.CreationTimestamp
		c.stamp(r)
		c.in.HTTPRoutes = replaced(routes, i, r)
		return "route " + r.Name + " changed"
	case op < 4 && len(routes) > 0: // only its labels: no new generation
		i := c.r.IntN(len(routes))
		r := routes[i].DeepCopy()
		r.Labels = map[string]string{"touched": strconv.Itoa(c.next)}
		r.ResourceVersion = strconv.Itoa(c.next + 1000000)
		c.in.HTTPRoutes = replaced(routes, i, r)
		return "route " + r.Name + " relabelled"
	case op < 5 && len(routes) > 0: // deleted
		i := c.r.IntN(len(routes))
		name := routes[i].Name
		c.in.HTTPRoutes = append(append([]*gwv1.HTTPRoute(nil), routes[:i]...), routes[i+1:]...)
		return "route " + name + " deleted"
	case op < 6 && len(routes) > 0: // deleted and created again under its name
		i := c.r.IntN(len(routes))
		old := routes[i]
		r := c.route(old.Namespace, old.Name, len(c.in.Gateways), 4)
		c.stamp(r)
		c.in.HTTPRoutes = replaced(routes, i, r)
		return "route " + r.Name + " created again"
	case op < 8: // a new route
		r := c.route(fmt.Sprintf("ns-%d", c.r.IntN(4)), fmt.Sprintf("new-%d", c.next), len(c.in.Gateways), 4)
		r.CreationTimestamp = metav1.Unix(int64(c.next), 0)
		c.stamp(r)
		c.in.HTTPRoutes = append(append([]*gwv1.HTTPRoute(nil), routes...), r)
		return "route " + r.Name + " created"
	case op < 9 && len(c.in.Services) > 0: // a backend changes
		i := c.r.IntN(len(c.in.Services))
		s := c.in.Services[i].DeepCopy()
		s.Spec.Ports = s.Spec.Ports[:c.r.IntN(len(s.Spec.Ports)+1)]
		c.stamp(s)
		c.in.Services = replaced(c.in.Services, i, s)
		return "Service " + s.Namespace + "/" + s.Name + " changed"
	default: // a Gateway changes
		if len(c.in.Gateways) == 0 {
			return "nothing"
		}
		i := c.r.IntN(len(c.in.Gateways))
		old := c.in.Gateways[i]
		g := c.gateway(old.Name)
		g.UID, g.Generation = old.UID, old.Generation
		c.stamp(g)
		c.in.Gateways = replaced(c.in.Gateways, i, g)
		return "Gateway " + g.Name + " changed"
	}
}

// changeBackendWorld changes what routes are compiled against, or
// something next to it that they do not read.
func (c *churn) changeBackendWorld(op int) string {
	switch {
	case op == 10 && len(c.in.EndpointSlices) > 0:
		i := c.r.IntN(len(c.in.EndpointSlices))
		old := c.in.EndpointSlices[i]
		s := c.slice(old.Namespace, old.Labels[discoveryv1.LabelServiceName], c.r.IntN(50))
		s.Name, s.UID, s.Generation = old.Name, old.UID, old.Generation
		c.stamp(s)
		c.in.EndpointSlices = replaced(c.in.EndpointSlices, i, s)
		return "EndpointSlice " + s.Namespace + "/" + s.Name + " changed"
	case op == 11 && len(c.in.ReferenceGrants) > 0:
		c.in.ReferenceGrants = nil
		return "ReferenceGrant deleted"
	case op == 11:
		g := &gwv1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "grant", Namespace: "ns-1"},
			Spec: gwv1.ReferenceGrantSpec{
				From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: gwv1.Namespace(fmt.Sprintf("ns-%d", c.r.IntN(4)))}},
				To:   []gwv1.ReferenceGrantTo{{Kind: "Service"}},
			}}
		c.stamp(g)
		c.in.ReferenceGrants = []*gwv1.ReferenceGrant{g}
		return "ReferenceGrant created"
	default: // something no route reads
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "leader", Namespace: fmt.Sprintf("ns-%d", c.r.IntN(4))}}
		c.stamp(cm)
		c.in.ConfigMaps = []*corev1.ConfigMap{cm}
		return "ConfigMap " + cm.Namespace + "/leader written"
	}
}

func replaced[T any](list []*T, i int, v *T) []*T {
	out := append([]*T(nil), list...)
	out[i] = v
	return out
}

func objects[T any, P interface {
	*T
	metav1.Object
}](list []P) []metav1.Object {
	var out []metav1.Object
	for _, o := range list {
		out = append(out, o)
	}
	return out
}
