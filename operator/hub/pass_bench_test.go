package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// BenchmarkPass is the hub's pass over one member after one route changed,
// at N HTTPRoutes on one shared Gateway, each route with a hostname of its
// own (the shape of gateway-api-bench): translate reusing the last pass,
// push to a real push server, and the statuses computed, of which only the
// changed route's is written (to a client that records it). Reading the
// member's cache is left out (a list of the cache's own objects). Each
// phase is reported in ms/op.
func BenchmarkPass(b *testing.B) {
	for _, routes := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) {
			m := &recordingMember{written: map[string]client.Object{}}
			push := xds.NewServer(b.Context(), nil, nil)
			h := New(push, Options{Namespace: "gatehouse-system"})
			w := newWorker(h, "member-1", m)
			in := benchCluster(routes)
			pass := func() {
				in.Compiled = w.compiled
				out := translate.Translate(in)
				w.compiled = out.Compiled
				d := &decided{out: out, hashes: w.push(in, out, time.Now())}
				if err := w.writeStatus(b.Context(), in, d); err != nil {
					b.Fatal(err)
				}
			}
			pass()
			m.store(in)
			pass() // statuses now stored, as in a member
			m.store(in)
			var translating, pushing, writing time.Duration
			for i := 0; b.Loop(); i++ {
				old := in.HTTPRoutes[i%routes]
				r := old.DeepCopy()
				r.Generation++
				r.ResourceVersion = fmt.Sprint(i + 10)
				r.Spec.Rules[0].Matches = []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To(fmt.Sprintf("/v%d", i))}}}
				in.HTTPRoutes[i%routes] = r
				start := time.Now()
				in.Compiled = w.compiled
				out := translate.Translate(in)
				w.compiled = out.Compiled
				t1 := time.Now()
				d := &decided{out: out, hashes: w.push(in, out, start)}
				t2 := time.Now()
				if err := w.writeStatus(b.Context(), in, d); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				translating, pushing, writing = translating+t1.Sub(start), pushing+t2.Sub(t1), writing+t3.Sub(t2)
				m.store(in)
			}
			n := float64(b.N)
			b.ReportMetric(float64(translating.Milliseconds())/n, "translate-ms/op")
			b.ReportMetric(float64(pushing.Milliseconds())/n, "push-ms/op")
			b.ReportMetric(float64(writing.Milliseconds())/n, "status-ms/op")
		})
	}
}

// benchCluster is a member with one shared Gateway and N tenant routes.
func benchCluster(routes int) translate.Input {
	in := translate.Input{
		GatewayClasses: []*gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse", Generation: 1, UID: "class", ResourceVersion: "1"},
			Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}},
		Gateways: []*gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "infra", Generation: 1, UID: "gw", ResourceVersion: "1"},
			Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType,
				AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: ptr.To(gwv1.NamespacesFromAll)}}}}}}},
		Namespaces: []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "infra", ResourceVersion: "1"}}, {ObjectMeta: metav1.ObjectMeta{Name: "shop", ResourceVersion: "1"}}},
		Services: []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "shop", ResourceVersion: "1"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}},
		EndpointSlices: []*discoveryv1.EndpointSlice{{ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: "shop", ResourceVersion: "1",
			Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}}, AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:     []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}}},
	}
	for i := range routes {
		in.HTTPRoutes = append(in.HTTPRoutes, &gwv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r-%d", i), Namespace: "shop", Generation: 1, UID: types.UID(fmt.Sprintf("r-%d", i)),
				ResourceVersion: "1", CreationTimestamp: metav1.Unix(int64(i), 0)},
			Spec: gwv1.HTTPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")}}},
				Hostnames:       []gwv1.Hostname{gwv1.Hostname(fmt.Sprintf("r-%d.apps.example.test", i))},
				Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
					BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptr.To[gwv1.PortNumber](80)}}}}}},
			},
		})
	}
	return in
}

// recordingMember is a member whose status writes are kept, to be stored
// back into the objects as an API server and a cache would.
type recordingMember struct {
	mu      sync.Mutex
	written map[string]client.Object
}

func (m *recordingMember) GetClient() client.Client { return statusRecorder{m: m} }
func (m *recordingMember) GetEventRecorderFor(string) record.EventRecorder {
	return &record.FakeRecorder{}
}

// store puts the statuses written since the last call into in's objects.
func (m *recordingMember) store(in translate.Input) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range in.HTTPRoutes {
		if w, ok := m.written["HTTPRoute/"+r.Namespace+"/"+r.Name]; ok {
			in.HTTPRoutes[i] = w.(*gwv1.HTTPRoute)
		}
	}
	for i, g := range in.Gateways {
		if w, ok := m.written["Gateway/"+g.Namespace+"/"+g.Name]; ok {
			in.Gateways[i] = w.(*gwv1.Gateway)
		}
	}
	for i, c := range in.GatewayClasses {
		if w, ok := m.written["GatewayClass//"+c.Name]; ok {
			in.GatewayClasses[i] = w.(*gwv1.GatewayClass)
		}
	}
	clear(m.written)
}

type statusRecorder struct {
	client.Client
	m *recordingMember
}

func (s statusRecorder) Status() client.SubResourceWriter { return recordedWrites{m: s.m} }

// recordedWrites records updates; a pass calls nothing else of it.
type recordedWrites struct {
	client.SubResourceWriter
	m *recordingMember
}

func (s recordedWrites) Update(_ context.Context, obj client.Object, _ ...client.SubResourceUpdateOption) error {
	kind := fmt.Sprintf("%T", obj)
	switch obj.(type) {
	case *gwv1.HTTPRoute:
		kind = "HTTPRoute"
	case *gwv1.Gateway:
		kind = "Gateway"
	case *gwv1.GatewayClass:
		kind = "GatewayClass"
	}
	s.m.mu.Lock()
	s.m.written[kind+"/"+obj.GetNamespace()+"/"+obj.GetName()] = obj
	s.m.mu.Unlock()
	return nil
}
