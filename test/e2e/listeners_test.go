package e2e

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestABadListenerCostsOnlyThatListener: the shared Gateway gains a second
// listener on a port another process holds where the proxy runs. Before,
// the proxy rejected every table that had it, and every tenant's later
// change on the Gateway stayed Programmed=False. Now the proxy serves the
// rest: a tenant's new route on the first listener is served and
// Programmed; the route on the held listener is Programmed=False with the
// proxy's error, and so is the listener; the Gateway names it. Once the
// port is released the proxy binds it by itself and the route is served
// and Programmed.
func TestABadListenerCostsOnlyThatListener(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m := twoTenantsOnOneMember(t, ctx)

	// Another process holds a port where the proxy runs.
	held := holdPort(t, m, 0)
	port := held.Addr().(*net.TCPAddr).Port
	heldAddr := held.Addr().String()

	all := gwv1.NamespacesFromAll
	updateSharedGateway(t, ctx, m, func(gw *gwv1.Gateway) {
		gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{Name: "held", Port: gwv1.PortNumber(port), Protocol: gwv1.HTTPProtocolType,
			Hostname: ptr.To[gwv1.Hostname]("*.apps.example.test"), AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}}})
	})
	onHeld := env.TenantRoute("team-b", "on-held", "on-held.apps.example.test")
	onHeld.Spec.ParentRefs[0].SectionName = ptr.To[gwv1.SectionName]("held")
	if err := m.Client.Create(ctx, onHeld); err != nil {
		t.Fatal(err)
	}
	later := env.TenantRoute("team-b", "later", "later.apps.example.test")
	later.Spec.ParentRefs[0].SectionName = ptr.To[gwv1.SectionName]("http")
	if err := m.Client.Create(ctx, later); err != nil {
		t.Fatal(err)
	}

	// The other listener's routes, old and new, are served and Programmed.
	waitParentCondition(t, ctx, m.Client, "team-b", "later", "Programmed", metav1.ConditionTrue, "Programmed")
	waitAnswer(t, m.Address, "later.apps.example.test", "team-b-1")
	if got := get(m.Address, tenantHost); got != "shop-1" {
		t.Errorf("the first tenant's route answers %q", got)
	}
	// The held listener's route is not, with the proxy's error and the fix.
	waitParentCondition(t, ctx, m.Client, "team-b", "on-held", "Programmed", metav1.ConditionFalse, "Invalid")
	cond := parentCondition(t, ctx, m, "team-b", "on-held", "Programmed")
	for _, want := range []string{fmt.Sprintf("binding listener port %d", port), "address already in use", "free it, or move the listener to another port", `listener "held"`} {
		if !strings.Contains(cond.Message, want) {
			t.Errorf("the route on the held listener says %q; want it to name %q", cond.Message, want)
		}
	}
	// So do the listener's status and the Gateway's.
	gw := sharedGateway(t, ctx, m)
	if c := meta.FindStatusCondition(gw.Status.Conditions, "Programmed"); c == nil || c.Status != metav1.ConditionTrue ||
		!strings.Contains(c.Message, `not served: listener "held": binding listener port `+strconv.Itoa(port)) {
		t.Errorf("the Gateway's Programmed: %+v; want True, naming listener held and why", c)
	}
	if c := listenerCondition(gw, "held", "Programmed"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "Invalid" ||
		!strings.Contains(c.Message, "address already in use") {
		t.Errorf("listener held's Programmed: %+v; want False, Invalid, with the proxy's error", c)
	}
	if c := listenerCondition(gw, "http", "Programmed"); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("listener http's Programmed: %+v; want True", c)
	}

	// The port is released: the proxy binds it by itself, and the route is
	// served and Programmed.
	held.Close()
	released := time.Now()
	waitParentCondition(t, ctx, m.Client, "team-b", "on-held", "Programmed", metav1.ConditionTrue, "Programmed")
	waitAnswer(t, heldAddr, "on-held.apps.example.test", "team-b-1")
	t.Logf("the released port was served and its route Programmed %v after the release", time.Since(released).Round(100*time.Millisecond))
	waitFor(t, 30*time.Second, "the Gateway and its listener to say all is served", func() bool {
		gw := sharedGateway(t, ctx, m)
		c := meta.FindStatusCondition(gw.Status.Conditions, "Programmed")
		l := listenerCondition(gw, "held", "Programmed")
		return c != nil && !strings.Contains(c.Message, "not served") && l != nil && l.Status == metav1.ConditionTrue
	})
}

// twoTenantsOnOneMember starts a hub and one member whose shared Gateway
// has a proxy and routes of tenants shop and team-b, and waits until shop's
// route is served.
func twoTenantsOnOneMember(t *testing.T, ctx context.Context) *env.SharedGateway {
	t.Helper()
	bins := build(t, "gatehouse", "gatehouse-proxy")
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	fleet := startMemberAndHub(t, ctx, bins["gatehouse"], xdsAddr, "0")
	caFile := pushCA(t, ctx, fleet)
	m, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{
		{Namespace: "shop", Hostname: tenantHost, Answer: "shop-1"},
		{Namespace: "team-b", Hostname: "b.apps.example.test", Answer: "team-b-1"},
	}, env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: xdsAddr, CAFile: caFile, CacheDir: t.TempDir(), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	waitAnswer(t, m.Address, tenantHost, "shop-1")
	return m
}

// holdPort listens on port (0: any) of the address the Gateway's proxy
// binds, as another process on its host would; closed when the test ends.
func holdPort(t *testing.T, m *env.SharedGateway, port int) net.Listener {
	t.Helper()
	proxyIP, _, _ := net.SplitHostPort(m.Address)
	ln, err := net.Listen("tcp", net.JoinHostPort(proxyIP, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func sharedGateway(t *testing.T, ctx context.Context, m *env.SharedGateway) *gwv1.Gateway {
	t.Helper()
	var gw gwv1.Gateway
	if err := m.Client.Get(ctx, types.NamespacedName{Namespace: env.GatewayNamespace, Name: env.GatewayName}, &gw); err != nil {
		t.Fatal(err)
	}
	return &gw
}

func listenerCondition(gw *gwv1.Gateway, listener, condType string) *metav1.Condition {
	for _, l := range gw.Status.Listeners {
		if string(l.Name) == listener {
			return meta.FindStatusCondition(l.Conditions, condType)
		}
	}
	return nil
}

// parentCondition is condType of a route's first parent.
func parentCondition(t *testing.T, ctx context.Context, m *env.SharedGateway, ns, name, condType string) metav1.Condition {
	t.Helper()
	r := route(t, ctx, m.Client, ns, name)
	if len(r.Status.Parents) == 0 {
		t.Fatalf("route %s/%s has no parent status", ns, name)
	}
	c := meta.FindStatusCondition(r.Status.Parents[0].Conditions, condType)
	if c == nil {
		t.Fatalf("route %s/%s has no %s", ns, name, condType)
	}
	return *c
}
