package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestARouteAProxyCannotServeSaysWhy: a proxy built from other sources than
// the hub (another Go release, another compiler) may refuse a route the
// hub's own check accepted. It leaves the route out, serves the rest and
// says so with its acknowledgement. The hub then writes that route
// Programmed=False with the proxy's words, and every other route of the
// Gateway stays Programmed and changeable; once the proxy serves the route
// again, it is Programmed.
//
// The hub's check and the proxy's compiler are one function, so no real
// proxy of this tree refuses a route the hub sent. The proxy here is the
// real xDS client feeding a real proxy.Proxy in this process, with the
// hub's token and push CA as gatehouse-proxy wires them; only its
// RoutesNotServed report adds team-b's route "nested", standing in for a
// proxy whose compiler refuses a repeat inside a repeat. The report travels
// to the real hub binary over the real push stream.
func TestARouteAProxyCannotServeSaysWhy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	fleet := startMemberAndHub(t, ctx, build(t, "gatehouse")["gatehouse"], xdsAddr, "0")
	caFile := pushCA(t, ctx, fleet)
	m, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{
		{Namespace: "shop", Hostname: tenantHost, Answer: "shop-1"},
		{Namespace: "team-b", Hostname: "b.apps.example.test", Answer: "team-b-1"},
	}, env.ProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	const expr = "/(a+)+"
	if _, err := routetable.CompileRegex(expr); err != nil {
		t.Fatalf("the hub refuses %q, so no proxy would ever see it: %v", expr, err)
	}
	p := startStricterProxy(t, ctx, m, xdsAddr, caFile, types.NamespacedName{Namespace: "team-b", Name: "nested"})
	nested := env.TenantRoute("team-b", "nested", "nested.apps.example.test")
	nested.Spec.Rules[0].Matches = []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchRegularExpression), Value: ptr.To(expr)}}}
	if err := m.Client.Create(ctx, nested); err != nil {
		t.Fatal(err)
	}

	// The refused route says so, in the proxy's words and with the fix.
	waitParentCondition(t, ctx, m.Client, "team-b", "nested", "Programmed", metav1.ConditionFalse, "Invalid")
	checkRefusal := func() {
		t.Helper()
		cond := parentCondition(t, ctx, m, "team-b", "nested", "Programmed")
		for _, want := range []string{"do not serve this route", stricterWords, "run proxies of the hub's version"} {
			if !strings.Contains(cond.Message, want) {
				t.Errorf("the refused route says %q; want it to say %q", cond.Message, want)
			}
		}
	}
	checkRefusal()

	// Another tenant's route on the Gateway is Programmed and served.
	waitParentCondition(t, ctx, m.Client, "shop", "web", "Programmed", metav1.ConditionTrue, "Programmed")
	waitAnswer(t, m.Address, tenantHost, "shop-1")

	// A change of that tenant's after the refusal is served and Programmed,
	// and the refused route still says why.
	later := env.TenantRoute("shop", "later", "later-shop.apps.example.test")
	if err := m.Client.Create(ctx, later); err != nil {
		t.Fatal(err)
	}
	waitParentCondition(t, ctx, m.Client, "shop", "later", "Programmed", metav1.ConditionTrue, "Programmed")
	waitAnswer(t, m.Address, "later-shop.apps.example.test", "shop-1")
	checkRefusal()

	// The proxy serves the route again (no new version needed): the route
	// is Programmed.
	served := time.Now()
	p.serveAll()
	waitParentCondition(t, ctx, m.Client, "team-b", "nested", "Programmed", metav1.ConditionTrue, "Programmed")
	t.Logf("the route was Programmed %v after the proxy stopped reporting it", time.Since(served).Round(10*time.Millisecond))
	if got := get(m.Address, tenantHost); got != "shop-1" {
		t.Errorf("the first tenant's route answers %q", got)
	}
}

// stricterWords is what the stand-in for a stricter proxy says of the
// route it refuses.
const stricterWords = "a repeat inside a repeat is refused by this proxy's regular expression compiler: write the expression without nested repeats"

// stricterProxy is a real proxy.Proxy fed by the real xDS client, whose
// route report adds one route object to what the proxy itself reports.
type stricterProxy struct {
	*proxy.Proxy
	refused atomic.Pointer[types.NamespacedName]
	tables  atomic.Pointer[[]*routetable.RouteTable]
	// changed tells the xDS client to report again between versions.
	changed chan struct{}
}

// startStricterProxy serves the shared Gateway of m on its address, pushed
// by the hub at xdsAddr (verified with caFile), refusing every route of the
// object named refused.
func startStricterProxy(t *testing.T, ctx context.Context, m *env.SharedGateway, xdsAddr, caFile string, refused types.NamespacedName) *stricterProxy {
	t.Helper()
	token, err := env.ProxyToken(ctx, m.Cluster, env.GatewayNamespace, env.GatewayName, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ip := strings.Split(m.Address, ":")[0]
	s := &stricterProxy{Proxy: proxy.New(proxy.Options{BindAddress: ip, DrainTimeout: 2 * time.Second}), changed: make(chan struct{}, 1)}
	s.refused.Store(&refused)
	node := m.Cluster.Name + "/" + env.GatewayNamespace + "/" + env.GatewayName
	client := &xds.Client{Address: xdsAddr, NodeID: node, Tables: []string{node}, TokenFile: token, CAFile: caFile,
		Apply: s.apply, NotServed: s.NotServed, NotServedChanged: s.changed, RoutesNotServed: s.routesNotServed}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.Run(cctx)
	}()
	go func() {
		for {
			select {
			case <-cctx.Done():
				return
			case <-s.Proxy.NotServedChanged():
				s.report()
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		<-done
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(sctx)
	})
	return s
}

func (s *stricterProxy) apply(version string, tables []*routetable.RouteTable, keyPairs map[string]*routetable.KeyPair) error {
	if err := s.Apply(version, tables, keyPairs); err != nil {
		return err
	}
	s.tables.Store(&tables)
	return nil
}

// routesNotServed is the proxy's own report plus every route of the
// refused object in the applied tables, under the keys a proxy reports.
func (s *stricterProxy) routesNotServed() map[string]map[string]string {
	out := s.RoutesNotServed()
	refused, tables := s.refused.Load(), s.tables.Load()
	if refused == nil || tables == nil {
		return out
	}
	if out == nil {
		out = map[string]map[string]string{}
	}
	for _, t := range *tables {
		for _, l := range t.GetListeners() {
			for _, vh := range l.GetVirtualHosts() {
				for _, r := range vh.GetRoutes() {
					src := r.GetSource()
					if src.GetKind() != "HTTPRoute" || src.GetNamespace() != refused.Namespace || src.GetName() != refused.Name {
						continue
					}
					if out[t.GetName()] == nil {
						out[t.GetName()] = map[string]string{}
					}
					out[t.GetName()][src.ObjectKey()] = fmt.Sprintf("HTTPRoute %s/%s rule %d match %d: regular expression %q: %s",
						src.GetNamespace(), src.GetName(), src.GetRule(), src.GetMatch(), r.GetMatch().GetRegex(), stricterWords)
				}
			}
		}
	}
	return out
}

// serveAll stops refusing the route and tells the hub at once.
func (s *stricterProxy) serveAll() {
	s.refused.Store(nil)
	s.report()
}

func (s *stricterProxy) report() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}
