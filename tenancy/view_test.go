package tenancy_test

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/tenancy"
	"github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func tenant(name string, age int, spec v1alpha1.TenantSpec) *v1alpha1.Tenant {
	return &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Minute))}, Spec: spec}
}

func hosts(hs ...string) []gwv1.Hostname {
	out := make([]gwv1.Hostname, len(hs))
	for i, h := range hs {
		out[i] = gwv1.Hostname(h)
	}
	return out
}

func TestOwnerTakesTheMostSpecificDelegation(t *testing.T) {
	v := tenancy.NewView([]*v1alpha1.Tenant{
		tenant("web", 0, v1alpha1.TenantSpec{Hostnames: hosts("*.example.com")}),
		tenant("payments", 1, v1alpha1.TenantSpec{Hostnames: hosts("shop.example.com", "*.pay.example.com")}),
		// Younger and equally specific: loses shop.example.com.
		tenant("thief", 2, v1alpha1.TenantSpec{Hostnames: hosts("shop.example.com")}),
	}, tenancy.Platform)
	cases := []struct{ host, owner, delegation string }{
		{"a.example.com", "web", "*.example.com"},
		{"a.b.example.com", "web", "*.example.com"},
		{"*.x.example.com", "web", "*.example.com"},
		{"*.example.com", "web", "*.example.com"},
		{"shop.example.com", "payments", "shop.example.com"},
		{"SHOP.example.com", "payments", "shop.example.com"},
		{"x.pay.example.com", "payments", "*.pay.example.com"},
		{"*.pay.example.com", "payments", "*.pay.example.com"},
		{"example.com", "", ""},
		{"other.org", "", ""},
		{"*", "", ""},
	}
	for _, c := range cases {
		t.Run(c.host, func(t *testing.T) {
			owner, del := v.Owner(c.host)
			if owner != c.owner || del != c.delegation {
				t.Errorf("Owner(%q) = %q, %q; want %q, %q", c.host, owner, del, c.owner, c.delegation)
			}
		})
	}
	if got := v.Conflicts("thief"); len(got) != 1 {
		t.Errorf("thief's conflicts = %v, want one about shop.example.com", got)
	}
	if got := v.Hostnames("thief"); len(got) != 0 {
		t.Errorf("thief holds %v, want nothing", got)
	}
	want := [][2]string{{"*.pay.example.com", "payments"}, {"shop.example.com", "payments"}}
	if got := v.Delegated("*.example.com"); !slices.Equal(got, want) {
		t.Errorf("Delegated(*.example.com) = %v, want %v", got, want)
	}
	if got := v.Delegated("*"); len(got) != 3 {
		t.Errorf("Delegated(*) = %v, want all three", got)
	}
}

func TestNamespaceOwner(t *testing.T) {
	prod := map[string]string{"env": "prod"}
	v := tenancy.NewView([]*v1alpha1.Tenant{
		tenant("by-label", 0, v1alpha1.TenantSpec{Namespaces: []v1alpha1.NamespaceDelegation{{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}}}}),
		tenant("by-name", 1, v1alpha1.TenantSpec{Namespaces: []v1alpha1.NamespaceDelegation{{Names: []string{"a1"}}}}),
		tenant("prod-only", 2, v1alpha1.TenantSpec{Namespaces: []v1alpha1.NamespaceDelegation{{Names: []string{"p"}, Clusters: &metav1.LabelSelector{MatchLabels: prod}}}}),
		tenant("older", 3, v1alpha1.TenantSpec{Namespaces: []v1alpha1.NamespaceDelegation{{Names: []string{"shared"}}}}),
		tenant("younger", 4, v1alpha1.TenantSpec{Namespaces: []v1alpha1.NamespaceDelegation{{Names: []string{"shared"}}}}),
	}, tenancy.Platform)
	prodCluster := tenancy.Cluster{Name: "c1", Labels: prod}
	devCluster := tenancy.Cluster{Name: "c2"}
	cases := []struct {
		name   string
		cl     tenancy.Cluster
		ns     string
		labels map[string]string
		owner  string
		losers []string
	}{
		{"by label", devCluster, "x", map[string]string{"team": "a"}, "by-label", nil},
		{"a name beats a label", devCluster, "a1", map[string]string{"team": "a"}, "by-name", nil},
		{"limited to matching clusters", prodCluster, "p", nil, "prod-only", nil},
		{"not in other clusters", devCluster, "p", nil, "", nil},
		{"equal claims: the older wins", devCluster, "shared", nil, "older", []string{"younger"}},
		{"no claim", devCluster, "nobody", nil, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			owner, losers := v.NamespaceOwner(c.cl, c.ns, c.labels)
			if owner != c.owner || !slices.Equal(losers, c.losers) {
				t.Errorf("got %q losers %v; want %q losers %v", owner, losers, c.owner, c.losers)
			}
		})
	}
}

func TestAllowsGateway(t *testing.T) {
	gw := func(ns, name string, labels map[string]string) *gwv1.Gateway {
		return &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	}
	v := tenancy.NewView([]*v1alpha1.Tenant{
		tenant("any", 0, v1alpha1.TenantSpec{}),
		tenant("limited", 1, v1alpha1.TenantSpec{Gateways: []v1alpha1.GatewayDelegation{
			{Namespace: "infra", Name: "shared", Listeners: []gwv1.SectionName{"https"}},
			{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"shared": "true"}}, Clusters: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}},
		}}),
	}, tenancy.Platform)
	dev := tenancy.Cluster{Name: "dev", Labels: map[string]string{"env": "dev"}}
	prod := tenancy.Cluster{Name: "prod", Labels: map[string]string{"env": "prod"}}
	cases := []struct {
		name     string
		tenant   string
		cl       tenancy.Cluster
		gw       *gwv1.Gateway
		listener gwv1.SectionName
		want     bool
	}{
		{"no delegation list allows all", "any", prod, gw("x", "y", nil), "http", true},
		{"named gateway and listener", "limited", prod, gw("infra", "shared", nil), "https", true},
		{"named gateway, other listener", "limited", prod, gw("infra", "shared", nil), "http", false},
		{"by label in a matching cluster", "limited", dev, gw("x", "y", map[string]string{"shared": "true"}), "http", true},
		{"by label in another cluster", "limited", prod, gw("x", "y", map[string]string{"shared": "true"}), "http", false},
		{"unknown tenant", "nobody", prod, gw("infra", "shared", nil), "https", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := v.AllowsGateway(c.tenant, c.cl, c.gw, c.listener); got != c.want {
				t.Errorf("AllowsGateway = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRoutesLimitsRefuseTheNewest(t *testing.T) {
	two := int32(2)
	three := int32(3)
	v := tenancy.NewView([]*v1alpha1.Tenant{
		tenant("web", 0, v1alpha1.TenantSpec{Limits: &v1alpha1.TenantLimits{MaxRoutes: &two}}),
		tenant("hosts", 0, v1alpha1.TenantSpec{Limits: &v1alpha1.TenantLimits{MaxHostnames: &three}}),
	}, tenancy.Platform)
	x := tenancy.NewRoutes()
	entry := func(cluster, name, tenant string, age int, hs ...string) tenancy.RouteEntry {
		return tenancy.RouteEntry{Cluster: cluster, Kind: "HTTPRoute", Namespace: "ns", Name: name, Tenant: tenant, Created: epoch.Add(time.Duration(age) * time.Minute), Hostnames: hs}
	}
	r1, r2, r3 := entry("c1", "r1", "web", 1), entry("c2", "r2", "web", 2), entry("c1", "r3", "web", 3)
	if changed := x.SetCluster("c1", []tenancy.RouteEntry{r1, r3}); !slices.Equal(changed, []string{"web"}) {
		t.Errorf("changed = %v", changed)
	}
	x.SetCluster("c2", []tenancy.RouteEntry{r2})
	if why := x.OverLimit(v, r1); why != "" {
		t.Errorf("the oldest route is over the limit: %s", why)
	}
	if why := x.OverLimit(v, r2); why != "" {
		t.Errorf("the second route (another cluster) is over the limit: %s", why)
	}
	if why := x.OverLimit(v, r3); why == "" {
		t.Error("the third route is within a limit of two")
	}
	// Admission of a fourth, not yet created.
	if why := x.Admit(v, tenancy.RouteEntry{Cluster: "c2", Kind: "HTTPRoute", Namespace: "ns", Name: "r4", Tenant: "web"}); why == "" {
		t.Error("a new route was admitted beyond the limit")
	}
	// Deleting the oldest frees a place for r3.
	x.SetCluster("c1", []tenancy.RouteEntry{r3})
	if why := x.OverLimit(v, r3); why != "" {
		t.Errorf("after a deletion, r3 is still over: %s", why)
	}

	h1, h2 := entry("c1", "h1", "hosts", 1, "a", "b"), entry("c1", "h2", "hosts", 2, "b", "c")
	h3 := entry("c1", "h3", "hosts", 3, "d")
	x.SetCluster("c1", []tenancy.RouteEntry{r3, h1, h2, h3})
	if why := x.OverLimit(v, h2); why != "" {
		t.Errorf("h2 adds one hostname to two: %s", why)
	}
	if why := x.OverLimit(v, h3); why == "" {
		t.Error("h3 adds a fourth hostname beyond three")
	}
}
