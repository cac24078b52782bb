package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/explain"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestExplain: on a fleet of two members, each with the shared Gateway and
// its proxy, 'gatehousectl explain route' tells why a route is served or
// not, from the status the hub wrote and the objects it reads: a served
// route, one a listener's allowedRoutes refuses, one whose backend needs a
// ReferenceGrant, one tenancy refuses, and one a proxy rejects.
func TestExplain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse", "gatehouse-proxy")

	fleet, err := env.Start(ctx, env.Options{Members: 2, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	hubClient, err := client.New(fleet.Hub.Config, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// Tenant team-a holds namespace team-a and *.team-a.apps.example.test;
	// shop belongs to no tenant (the platform's).
	if err := hubClient.Create(ctx, &tenancyv1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}, Spec: tenancyv1.TenantSpec{
		Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"team-a"}}},
		Hostnames:  []gwv1.Hostname{"*.team-a.apps.example.test"},
	}}); err != nil {
		t.Fatal(err)
	}

	// No webhook: routes that tenancy refuses must reach the cluster, to
	// be refused in status.
	h := startHub(t, ctx, fleet, bins["gatehouse"])
	xdsAddr, caFile := h.xdsAddr, h.caFile
	proxy := func() env.ProxyOptions {
		return env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: xdsAddr, CAFile: caFile, CacheDir: t.TempDir(), Log: testLog{t}}
	}
	m1, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{
		{Namespace: "shop", Hostname: tenantHost, Answer: "shop-1"},
		{Namespace: "team-a", Hostname: "a.team-a.apps.example.test", Answer: "team-a-1"},
	}, proxy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m1.Close() })
	m2, err := env.SetUpSharedGateway(ctx, 2, fleet.Members[1], []env.Tenant{{Namespace: "shop", Hostname: tenantHost, Answer: "shop-2"}}, proxy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m2.Close() })

	explainRoute := func(t *testing.T, cluster, ns, name, format string) string {
		t.Helper()
		var out bytes.Buffer
		if err := explain.Route(ctx, explain.Options{Hub: hubClient, HubNamespace: env.HubNamespace, HubCredentials: true, Cluster: cluster,
			Route: types.NamespacedName{Namespace: ns, Name: name}, Format: format, Out: &out}); err != nil {
			t.Fatalf("explain %s/%s: %v\n%s", ns, name, err, out.String())
		}
		t.Logf("gatehousectl explain route %s/%s --cluster %q:\n%s", ns, name, cluster, out.String())
		return out.String()
	}
	expect := func(t *testing.T, out string, phrases ...string) {
		t.Helper()
		for _, p := range phrases {
			if !strings.Contains(out, p) {
				t.Errorf("the explanation lacks %q", p)
			}
		}
	}

	t.Run("an attached route is attached and served, in every member that has it", func(t *testing.T) {
		waitAnswer(t, m1.Address, tenantHost, "shop-1")
		waitAnswer(t, m2.Address, tenantHost, "shop-2")
		for _, m := range []*env.SharedGateway{m1, m2} {
			waitParentCondition(t, ctx, m.Client, "shop", "web", "Programmed", metav1.ConditionTrue, "Programmed")
		}
		out := explainRoute(t, "", "shop", "web", "text")
		expect(t, out, "cluster member-1", "cluster member-2", "Gateway infra/shared is accepted and programmed; addresses: 10.244.1.10",
			"hostnames in common with listener \"http\" (which accepts *.apps.example.test): "+tenantHost, "served by 1 proxy")
		if n := strings.Count(out, "verdict: attached and served\n"); n != 2 {
			t.Errorf("%d verdicts 'attached and served', want one per member", n)
		}
		if strings.Contains(out, "[no]") {
			t.Errorf("a served route has a failed check")
		}

		var rep explain.Report
		if err := json.Unmarshal([]byte(explainRoute(t, "", "shop", "web", "json")), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Clusters) != 2 {
			t.Fatalf("json: %d clusters, want 2", len(rep.Clusters))
		}
		for _, c := range rep.Clusters {
			if len(c.Parents) != 1 || !c.Parents[0].Attached || !c.Parents[0].Served || len(c.Parents[0].Reasons) == 0 {
				t.Errorf("json, cluster %s: %+v", c.Cluster, c.Parents)
			}
		}

		err := explain.Route(ctx, explain.Options{Hub: hubClient, HubNamespace: env.HubNamespace, HubCredentials: true,
			Route: types.NamespacedName{Namespace: "shop", Name: "nowhere"}, Out: &bytes.Buffer{}})
		if want := "HTTPRoute shop/nowhere exists in no member cluster (looked in: member-1, member-2)"; err == nil || err.Error() != want {
			t.Errorf("explaining a route no member has: %v, want %q", err, want)
		}
	})

	t.Run("a route a listener's allowedRoutes refuses is not attached, with the fix", func(t *testing.T) {
		// A Gateway whose listener takes routes from its own namespace only
		// (allowedRoutes unset: from Same); the route is in shop.
		if err := m1.Client.Create(ctx, &gwv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: "private", Namespace: env.GatewayNamespace},
			Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{
				{Name: "http", Port: 8081, Protocol: gwv1.HTTPProtocolType}}},
		}); err != nil {
			t.Fatal(err)
		}
		r := env.TenantRoute("shop", "private", "private.example.test")
		r.Spec.ParentRefs[0].Name = "private"
		if err := m1.Client.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		waitParentCondition(t, ctx, m1.Client, "shop", "private", "Accepted", metav1.ConditionFalse, "NotAllowedByListeners")
		out := explainRoute(t, "member-1", "shop", "private", "text")
		expect(t, out, "verdict: not attached",
			`[no] allowedRoutes.namespaces: listener "http" of Gateway infra/private takes routes only from its own namespace "infra" (allowedRoutes.namespaces.from: Same); this route is in namespace "shop"`,
			`fix: move the route to namespace "infra", or ask the owner of Gateway infra/private to set listener "http"'s allowedRoutes.namespaces.from to All`,
			"Accepted=False (NotAllowedByListeners)")
	})

	t.Run("a backend in another namespace without a ReferenceGrant names the grant to create", func(t *testing.T) {
		r := env.TenantRoute("shop", "crossref", "cross.apps.example.test")
		r.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To[gwv1.Namespace]("team-a")
		if err := m1.Client.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		waitParentCondition(t, ctx, m1.Client, "shop", "crossref", "ResolvedRefs", metav1.ConditionFalse, "RefNotPermitted")
		out := explainRoute(t, "member-1", "shop", "crossref", "text")
		expect(t, out, "[no] ResolvedRefs: ResolvedRefs=False (RefNotPermitted)",
			`no ReferenceGrant in namespace "team-a" allows HTTPRoutes from namespace "shop" to refer to it`,
			`fix: create a ReferenceGrant in namespace "team-a" (its owner must) allowing from group gateway.networking.k8s.io, kind HTTPRoute, namespace "shop" to kind Service, name "echo"`)

		// Doing what it says resolves the reference.
		if err := m1.Client.Create(ctx, &gwv1.ReferenceGrant{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-routes", Namespace: "team-a"},
			Spec: gwv1.ReferenceGrantSpec{
				From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "shop"}},
				To:   []gwv1.ReferenceGrantTo{{Kind: "Service", Name: ptr.To[gwv1.ObjectName]("echo")}},
			},
		}); err != nil {
			t.Fatal(err)
		}
		waitParentCondition(t, ctx, m1.Client, "shop", "crossref", "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
		waitAnswer(t, m1.Address, "cross.apps.example.test", "team-a-1")
		out = explainRoute(t, "member-1", "shop", "crossref", "text")
		expect(t, out, `[ok] referenceGrant: spec.rules[0].backendRefs[0]: Service team-a/echo is in another namespace, and a ReferenceGrant in namespace "team-a" allows`)
	})

	t.Run("a route tenancy refuses names the reason and the Tenant", func(t *testing.T) {
		if err := m1.Client.Create(ctx, env.TenantRoute("team-a", "rogue", "rogue.apps.example.test")); err != nil {
			t.Fatal(err)
		}
		waitParentCondition(t, ctx, m1.Client, "team-a", "rogue", "Accepted", metav1.ConditionFalse, "HostnameNotDelegated")
		out := explainRoute(t, "member-1", "team-a", "rogue", "text")
		expect(t, out, "verdict: not attached", "Accepted=False (HostnameNotDelegated)",
			`[no] tenancy: HostnameNotDelegated: namespace "team-a" belongs to tenant "team-a" (Tenant "team-a" on the hub, delegated hostnames: *.team-a.apps.example.test); "rogue.apps.example.test" is not delegated to tenant "team-a"`,
			`fix: use hostnames within *.team-a.apps.example.test in spec.hostnames, or ask the platform team to add "rogue.apps.example.test" to spec.hostnames of Tenant "team-a" on the hub`)
	})

	t.Run("a route a proxy rejects says so and what to fix", func(t *testing.T) {
		// Something else listens on member-2's proxy address at port 8090:
		// a listener on that port cannot be opened, and the proxy NACKs
		// every table that has it.
		proxyIP, _, _ := net.SplitHostPort(m2.Address)
		taken, err := net.Listen("tcp", net.JoinHostPort(proxyIP, "8090"))
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		var gw gwv1.Gateway
		if err := m2.Client.Get(ctx, types.NamespacedName{Namespace: env.GatewayNamespace, Name: env.GatewayName}, &gw); err != nil {
			t.Fatal(err)
		}
		all := gwv1.NamespacesFromAll
		gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{Name: "blocked", Port: 8090, Protocol: gwv1.HTTPProtocolType,
			Hostname: ptr.To[gwv1.Hostname]("*.apps.example.test"), AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}}})
		if err := m2.Client.Update(ctx, &gw); err != nil {
			t.Fatal(err)
		}
		r := env.TenantRoute("shop", "nacked", "nacked.apps.example.test")
		r.Spec.ParentRefs[0].SectionName = ptr.To[gwv1.SectionName]("blocked")
		if err := m2.Client.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		waitParentCondition(t, ctx, m2.Client, "shop", "nacked", "Programmed", metav1.ConditionFalse, "Invalid")
		out := explainRoute(t, "member-2", "shop", "nacked", "text")
		expect(t, out, "verdict: attached, not yet served", "[ok] Accepted: Accepted=True",
			"[no] Programmed: a proxy rejected the route table: binding listener port 8090",
			`fix: the proxy cannot open listener "blocked" (port 8090) where it runs`)
		// The proxy keeps serving what it had.
		if got := get(m2.Address, tenantHost); got != "shop-2" {
			t.Errorf("member-2's proxy answers %q for %s after the rejection", got, tenantHost)
		}
	})
}
