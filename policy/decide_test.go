package policy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/referencegrant"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/policy/rego"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func tenant(name string, age int, spec tenancyv1.TenantSpec) *tenancyv1.Tenant {
	return &tenancyv1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Minute))}, Spec: spec}
}

func httpRoute(ns, name string, labels map[string]string, hosts ...string) *gwv1.HTTPRoute {
	r := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, CreationTimestamp: metav1.NewTime(epoch)}}
	for _, h := range hosts {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwv1.Hostname(h))
	}
	r.Spec.ParentRefs = []gwv1.ParentReference{{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")}}
	r.Spec.Rules = []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptr.To[gwv1.PortNumber](80)}}}}}}
	return r
}

const teamLabel = `package p.team

violation contains {"msg": "routes must carry a team label", "details": {"field": "metadata.labels"}} if {
	not input.review.object.metadata.labels.team
}
`

const noRegex = `package p.regex

violation contains {"msg": sprintf("rule %d uses a regular expression path", [i])} if {
	some i, rule in input.review.object.spec.rules
	some m in rule.matches
	m.path.type == "RegularExpression"
}
`

// decider builds the decision of a small fleet: tenants web and payments,
// a warn policy for web and a deny policy for everyone.
func decider(t testing.TB, unassigned tenancy.Unassigned) *policy.Decider {
	t.Helper()
	max := int32(3)
	view := tenancy.NewView([]*tenancyv1.Tenant{
		tenant("web", 0, tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"web"}}},
			Hostnames:  []gwv1.Hostname{"*.web.example.com"},
			Gateways:   []tenancyv1.GatewayDelegation{{Namespace: "infra", Name: "shared"}},
			Limits:     &tenancyv1.TenantLimits{MaxRoutes: &max},
		}),
		tenant("payments", 1, tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"payments"}}},
			Hostnames:  []gwv1.Hostname{"shop.example.com"},
		}),
	}, unassigned)
	engine := rego.New(rego.Options{})
	policies := []*v1alpha1.RoutePolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "team-label"}, Spec: v1alpha1.RoutePolicySpec{Rego: teamLabel, Enforcement: v1alpha1.Warn, Match: v1alpha1.PolicyMatch{Tenants: []string{"web"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "no-regex"}, Spec: v1alpha1.RoutePolicySpec{Rego: noRegex, Enforcement: v1alpha1.Deny}},
	}
	compiled := map[string]*policy.Policy{}
	var mods []rego.Module
	for _, p := range policies {
		c, err := policy.NewPolicy(p)
		if err != nil {
			t.Fatal(err)
		}
		compiled[p.Name] = c
		mods = append(mods, rego.Module{Name: p.Name, Source: p.Spec.Rego})
	}
	if errs := engine.Load(mods); len(errs) > 0 {
		t.Fatal(errs)
	}
	return &policy.Decider{Tenancy: view, Routes: tenancy.NewRoutes(), Engine: engine, Policies: compiled}
}

func TestDecide(t *testing.T) {
	ctx := context.Background()
	cl := tenancy.Cluster{Name: "member-1"}
	regex := httpRoute("web", "regex", map[string]string{"team": "web"}, "a.web.example.com")
	regex.Spec.Rules[0].Matches = []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchRegularExpression), Value: ptr.To("/x.*")}}}
	cases := []struct {
		name       string
		unassigned tenancy.Unassigned
		obj        client.Object
		// reason of the first denial, "" when allowed; the messages must
		// contain each of want; warnings must contain each of warn.
		reason string
		want   []string
		warn   []string
	}{
		{name: "inside the delegation", obj: httpRoute("web", "ok", map[string]string{"team": "web"}, "a.web.example.com")},
		{name: "another tenant's hostname", obj: httpRoute("web", "grab", map[string]string{"team": "web"}, "a.web.example.com", "shop.example.com"),
			reason: policy.ReasonHostnameOwnedByOtherTenant,
			want:   []string{`spec.hostnames[1]: Forbidden: "shop.example.com" is delegated to tenant "payments"; this namespace belongs to tenant "web" (delegated: *.web.example.com)`}},
		{name: "a hostname no one holds", obj: httpRoute("web", "stray", map[string]string{"team": "web"}, "stray.example.org"),
			reason: policy.ReasonHostnameNotDelegated,
			want:   []string{`spec.hostnames[0]: Forbidden: "stray.example.org" is not delegated to tenant "web" (delegated: *.web.example.com)`}},
		{name: "a wildcard broader than the delegation", obj: httpRoute("web", "broad", map[string]string{"team": "web"}, "*.example.com"),
			reason: policy.ReasonHostnameNotDelegated, want: []string{`"*.example.com" is not delegated to tenant "web"`}},
		{name: "warn policy: admitted with a warning", obj: httpRoute("web", "nolabel", nil, "a.web.example.com"),
			warn: []string{`RoutePolicy "team-label": routes must carry a team label`}},
		{name: "deny policy names the field", obj: regex, reason: policy.ReasonPolicyViolation,
			want: []string{`spec: Forbidden: RoutePolicy "no-regex": rule 0 uses a regular expression path`}},
		{name: "platform namespace: free hostnames", obj: httpRoute("infra", "site", nil, "www.example.org")},
		{name: "platform namespace: a tenant's hostname", obj: httpRoute("infra", "site", nil, "shop.example.com"),
			reason: policy.ReasonHostnameOwnedByOtherTenant, want: []string{`"shop.example.com" is delegated to tenant "payments"; namespace "infra" belongs to no tenant`}},
		{name: "unassigned namespaces denied", unassigned: tenancy.Deny, obj: httpRoute("infra", "site", nil, "www.example.org"),
			reason: policy.ReasonNamespaceNotDelegated, want: []string{`metadata.namespace: Forbidden: namespace "infra" of cluster "member-1" belongs to no tenant`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decider(t, c.unassigned)
			v := d.Decide(ctx, policy.Subject{Cluster: cl, Kind: "HTTPRoute", Object: c.obj, Operation: "CREATE"})
			if v.Reason() != c.reason {
				t.Fatalf("reason %q, want %q (message: %s)", v.Reason(), c.reason, v.Message())
			}
			for _, w := range c.want {
				if !strings.Contains(v.Message(), w) {
					t.Errorf("message:\n%s\nwant it to contain:\n%s", v.Message(), w)
				}
			}
			for _, w := range c.warn {
				if !strings.Contains(strings.Join(v.Warnings, "\n"), w) {
					t.Errorf("warnings %q, want one containing %q", v.Warnings, w)
				}
			}
			if len(c.warn) == 0 && len(v.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", v.Warnings)
			}
		})
	}
}

func TestAttachment(t *testing.T) {
	d := decider(t, tenancy.Platform)
	cl := tenancy.Cluster{Name: "member-1"}
	shared := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}}
	other := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "internal"}}
	cases := []struct {
		name   string
		obj    client.Object
		a      policy.Attachment
		reason string
		want   string
	}{
		{"delegated gateway", httpRoute("web", "r", nil, "a.web.example.com"), policy.Attachment{Gateway: shared, Listener: "http", Hostnames: []string{"a.web.example.com"}}, "", ""},
		{"gateway not delegated", httpRoute("web", "r", nil, "a.web.example.com"), policy.Attachment{Gateway: other, Listener: "http", Hostnames: []string{"a.web.example.com"}},
			policy.ReasonGatewayNotDelegated, `listener "http" of Gateway infra/internal in cluster "member-1" is not delegated to tenant "web" (allowed: infra/shared)`},
		{"no hostnames on an any-host listener", httpRoute("web", "r", nil), policy.Attachment{Gateway: shared, Listener: "http", Hostnames: []string{"*"}},
			policy.ReasonHostnameNotDelegated, `spec.hostnames: Required value: listener "http" accepts any hostname, which is not delegated to tenant "web"`},
		{"no hostnames on a listener inside the delegation", httpRoute("web", "r", nil), policy.Attachment{Gateway: shared, Listener: "web", Hostnames: []string{"*.web.example.com"}}, "", ""},
		{"platform route taking a tenant's listener hostname", httpRoute("infra", "r", nil), policy.Attachment{Gateway: shared, Listener: "shop", Hostnames: []string{"shop.example.com"}},
			policy.ReasonHostnameOwnedByOtherTenant, `listener "shop" accepts "shop.example.com", which is delegated to tenant "payments"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := policy.Subject{Cluster: cl, Kind: "HTTPRoute", Object: c.obj}
			tenant := d.Tenancy.TenantOf(cl, c.obj.GetNamespace(), nil)
			v := d.Attached(policy.Verdict{Tenant: tenant}, s, c.a)
			if v.Reason() != c.reason || !strings.Contains(v.Message(), c.want) {
				t.Errorf("got %q: %s\nwant %q containing: %s", v.Reason(), v.Message(), c.reason, c.want)
			}
		})
	}
}

func TestLimitsAtAdmissionAndInStatus(t *testing.T) {
	d := decider(t, tenancy.Platform)
	cl := tenancy.Cluster{Name: "member-1"}
	var entries []tenancy.RouteEntry
	for i, name := range []string{"r1", "r2", "r3"} {
		entries = append(entries, tenancy.RouteEntry{Kind: "HTTPRoute", Namespace: "web", Name: name, Tenant: "web", Created: epoch.Add(time.Duration(i) * time.Minute)})
	}
	d.Routes.SetCluster("member-1", entries)
	fourth := httpRoute("web", "r4", map[string]string{"team": "web"}, "a.web.example.com")
	v := d.Decide(context.Background(), policy.Subject{Cluster: cl, Kind: "HTTPRoute", Object: fourth, Operation: "CREATE"})
	if v.Reason() != policy.ReasonTenantQuotaExceeded || !strings.Contains(v.Message(), `tenant "web" may have at most 3 routes across the fleet`) {
		t.Errorf("a fourth route: %q %s", v.Reason(), v.Message())
	}
	third := httpRoute("web", "r3", map[string]string{"team": "web"}, "a.web.example.com")
	third.CreationTimestamp = metav1.NewTime(epoch.Add(2 * time.Minute))
	if v := d.Decide(context.Background(), policy.Subject{Cluster: cl, Kind: "HTTPRoute", Object: third}); !v.Allowed() {
		t.Errorf("the third route, in status: %s", v.Message())
	}
}

func TestReferenceWarnings(t *testing.T) {
	r := httpRoute("web", "r", nil, "a.web.example.com")
	r.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To[gwv1.Namespace]("backends")
	s := policy.Subject{Kind: "HTTPRoute", Object: r, Grants: referencegrant.New(nil, nil)}
	want := `spec.rules[0].backendRefs[0]: Service backends/echo is in another namespace and no ReferenceGrant there allows HTTPRoutes from namespace "web"`
	if w := policy.ReferenceWarnings(s); len(w) != 1 || !strings.Contains(w[0], want) {
		t.Errorf("warnings %q, want one containing %q", w, want)
	}
	s.Grants = referencegrant.New(nil, []*gwv1beta1.ReferenceGrant{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "backends", Name: "g"},
		Spec: gwv1beta1.ReferenceGrantSpec{
			From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "web"}},
			To:   []gwv1beta1.ReferenceGrantTo{{Kind: "Service"}},
		},
	}})
	if w := policy.ReferenceWarnings(s); len(w) != 0 {
		t.Errorf("granted, yet warned: %q", w)
	}
}

// TestEvaluateErrorIsUnsettled: a deny policy that cannot be evaluated (a
// timeout under load, here a cancelled evaluation) refuses, and says the
// refusal is no verdict on the route, so that nobody keeps it as one.
func TestEvaluateErrorIsUnsettled(t *testing.T) {
	d := decider(t, tenancy.Platform)
	s := policy.Subject{Cluster: tenancy.Cluster{Name: "member-1"}, Kind: "HTTPRoute", Object: httpRoute("web", "shop", nil, "a.web.example.com")}
	if r := d.Evaluate(context.Background(), "web", s); r.Unsettled {
		t.Fatalf("an evaluated route is unsettled: %+v", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := d.Evaluate(ctx, "web", s)
	if !r.Unsettled || len(r.Denials) == 0 {
		t.Errorf("a policy that was not evaluated: %+v, want a denial marked unsettled", r)
	}
}

func tlsRoute(ns, name string, hosts ...string) *gwv1.TLSRoute {
	r := &gwv1.TLSRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(epoch)}}
	for _, h := range hosts {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwv1.Hostname(h))
	}
	r.Spec.ParentRefs = []gwv1.ParentReference{{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")}}
	r.Spec.Rules = []gwv1.TLSRouteRule{{BackendRefs: []gwv1.BackendRef{{BackendObjectReference: gwv1.BackendObjectReference{Name: "db", Port: ptr.To[gwv1.PortNumber](5432)}}}}}
	return r
}

func tcpRoute(ns, name string) *gwv1.TCPRoute {
	r := &gwv1.TCPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(epoch)}}
	r.Spec.ParentRefs = []gwv1.ParentReference{{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")}}
	r.Spec.Rules = []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{{BackendObjectReference: gwv1.BackendObjectReference{Name: "db", Port: ptr.To[gwv1.PortNumber](5432)}}}}}
	return r
}

// TestStreamRoutes: a TLSRoute's SNI names are hostnames like any route's;
// TCPRoutes and UDPRoutes have none, so only the namespace, the Gateways
// and listeners, limits and policies decide them.
func TestStreamRoutes(t *testing.T) {
	cl := tenancy.Cluster{Name: "member-1"}
	shared := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}}
	internal := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "internal"}}
	udp := &gwv1.UDPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "dns", CreationTimestamp: metav1.NewTime(epoch)}}
	tcpSet := &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "ports"}, Spec: gwv1.ListenerSetSpec{
		Listeners: []gwv1.ListenerEntry{{Name: "db", Port: 5432, Protocol: gwv1.TCPProtocolType}}}}
	cases := []struct {
		name       string
		unassigned tenancy.Unassigned
		kind       string
		obj        client.Object
		a          []policy.Attachment
		reason     string
		want       string
	}{
		{name: "a TLSRoute within its tenant's SNI names", kind: "TLSRoute", obj: tlsRoute("web", "db", "db.web.example.com"),
			a: []policy.Attachment{{Gateway: shared, Listener: "tls", Hostnames: []string{"db.web.example.com"}}}},
		{name: "a TLSRoute for another tenant's SNI name", kind: "TLSRoute", obj: tlsRoute("web", "db", "db.web.example.com", "shop.example.com"),
			reason: policy.ReasonHostnameOwnedByOtherTenant,
			want:   `spec.hostnames[1]: Forbidden: "shop.example.com" is delegated to tenant "payments"; this namespace belongs to tenant "web" (delegated: *.web.example.com)`},
		{name: "a TLSRoute of a platform namespace for a tenant's SNI name", kind: "TLSRoute", obj: tlsRoute("infra", "db", "shop.example.com"),
			reason: policy.ReasonHostnameOwnedByOtherTenant, want: `"shop.example.com" is delegated to tenant "payments"; namespace "infra" belongs to no tenant`},
		{name: "a TCPRoute on a delegated Gateway, whatever the listener's hostname", kind: "TCPRoute", obj: tcpRoute("web", "db"),
			a: []policy.Attachment{{Gateway: shared, Listener: "tcp-5432", Hostnames: []string{"*"}}}},
		{name: "a UDPRoute of a platform namespace", kind: "UDPRoute", obj: &gwv1.UDPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "dns"}},
			a: []policy.Attachment{{Gateway: internal, Listener: "udp-53", Hostnames: []string{"*"}}}},
		{name: "a UDPRoute on a Gateway not delegated", kind: "UDPRoute", obj: udp,
			a:      []policy.Attachment{{Gateway: internal, Listener: "udp-53", Hostnames: []string{"*"}}},
			reason: policy.ReasonGatewayNotDelegated, want: `listener "udp-53" of Gateway infra/internal in cluster "member-1" is not delegated to tenant "web" (allowed: infra/shared)`},
		{name: "a TCPRoute from a namespace of no tenant, when such namespaces are refused", unassigned: tenancy.Deny, kind: "TCPRoute", obj: tcpRoute("infra", "db"),
			reason: policy.ReasonNamespaceNotDelegated, want: `metadata.namespace: Forbidden: namespace "infra" of cluster "member-1" belongs to no tenant`},
		{name: "a tenant's ListenerSet opening a TCP port", kind: "ListenerSet", obj: tcpSet,
			reason: policy.ReasonGatewayNotDelegated,
			want:   `spec.listeners[0].protocol: Forbidden: tenant "web" may not open TCP ports through a ListenerSet: ports are delegated as listeners of the platform team's Gateways; attach a TCPRoute to a listener tenant "web" may use (infra/shared)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.unassigned == "" {
				c.unassigned = tenancy.Platform
			}
			d := decider(t, c.unassigned)
			s := policy.Subject{Cluster: cl, Kind: c.kind, Object: c.obj, Operation: "CREATE"}
			v := d.Decide(context.Background(), s)
			v = d.Attached(v, s, c.a...)
			if v.Reason() != c.reason || !strings.Contains(v.Message(), c.want) {
				t.Errorf("got %q: %s\nwant %q containing: %s", v.Reason(), v.Message(), c.reason, c.want)
			}
		})
	}
}

// TestStreamRoutesCountTowardLimits: a tenant's limit on routes counts
// routes of every kind.
func TestStreamRoutesCountTowardLimits(t *testing.T) {
	d := decider(t, tenancy.Platform)
	cl := tenancy.Cluster{Name: "member-1"}
	d.Routes.SetCluster("member-1", []tenancy.RouteEntry{
		{Kind: "HTTPRoute", Namespace: "web", Name: "site", Tenant: "web", Created: epoch},
		{Kind: "TLSRoute", Namespace: "web", Name: "db", Tenant: "web", Created: epoch.Add(time.Minute), Hostnames: []string{"db.web.example.com"}},
		{Kind: "UDPRoute", Namespace: "web", Name: "dns", Tenant: "web", Created: epoch.Add(2 * time.Minute)},
	})
	v := d.Decide(context.Background(), policy.Subject{Cluster: cl, Kind: "TCPRoute", Object: tcpRoute("web", "cache"), Operation: "CREATE"})
	if v.Reason() != policy.ReasonTenantQuotaExceeded || !strings.Contains(v.Message(), `tenant "web" may have at most 3 routes across the fleet and has 4`) {
		t.Errorf("a fourth route, a TCPRoute: %q %s", v.Reason(), v.Message())
	}
}

// TestStreamRouteReferenceWarnings: a TCPRoute's backendRef into another
// namespace without a ReferenceGrant is warned of, naming the kind a grant
// must allow.
func TestStreamRouteReferenceWarnings(t *testing.T) {
	r := tcpRoute("web", "db")
	r.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To[gwv1.Namespace]("data")
	s := policy.Subject{Kind: "TCPRoute", Object: r, Grants: referencegrant.New(nil, nil)}
	want := `spec.rules[0].backendRefs[0]: Service data/db is in another namespace and no ReferenceGrant there allows TCPRoutes from namespace "web"`
	if w := policy.ReferenceWarnings(s); len(w) != 1 || !strings.Contains(w[0], want) {
		t.Errorf("warnings %q, want one containing %q", w, want)
	}
}

// TestPolicyMatchesStreamKinds: a RoutePolicy may apply to TLSRoutes only,
// and sees the TLSRoute as written.
func TestPolicyMatchesStreamKinds(t *testing.T) {
	const sniOnly = `package p.sni

violation contains {"msg": sprintf("%s %s: SNI names must be exact", [input.review.kind.kind, input.review.object.metadata.name]), "details": {"field": "spec.hostnames"}} if {
	some h in input.review.object.spec.hostnames
	startswith(h, "*.")
}
`
	engine := rego.New(rego.Options{})
	if errs := engine.Load([]rego.Module{{Name: "sni", Source: sniOnly}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	p, err := policy.NewPolicy(&v1alpha1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Name: "sni"},
		Spec: v1alpha1.RoutePolicySpec{Rego: sniOnly, Match: v1alpha1.PolicyMatch{Kinds: []string{"TLSRoute"}}}})
	if err != nil {
		t.Fatal(err)
	}
	d := &policy.Decider{Tenancy: tenancy.NewView(nil, tenancy.Platform), Engine: engine, Policies: map[string]*policy.Policy{"sni": p}}
	cl := tenancy.Cluster{Name: "member-1"}
	v := d.Decide(context.Background(), policy.Subject{Cluster: cl, Kind: "TLSRoute", Object: tlsRoute("web", "db", "*.web.example.com")})
	if want := `spec.hostnames: Forbidden: RoutePolicy "sni": TLSRoute db: SNI names must be exact`; v.Message() != want {
		t.Errorf("TLSRoute: %q, want %q", v.Message(), want)
	}
	wild := httpRoute("web", "site", nil, "*.web.example.com")
	if v := d.Decide(context.Background(), policy.Subject{Cluster: cl, Kind: "HTTPRoute", Object: wild}); !v.Allowed() {
		t.Errorf("an HTTPRoute, which the policy does not match, refused: %s", v.Message())
	}
}

// TestAPortDelegatedAsAListener: docs/tenancy.md's way of giving a tenant
// a TCP port — the listener named in the Tenant's spec.gateways — lets its
// TCPRoutes use that port of the Gateway and no other.
func TestAPortDelegatedAsAListener(t *testing.T) {
	d := &policy.Decider{Tenancy: tenancy.NewView([]*tenancyv1.Tenant{tenant("db", 0, tenancyv1.TenantSpec{
		Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"db"}}},
		Gateways:   []tenancyv1.GatewayDelegation{{Namespace: "infra", Name: "shared", Listeners: []gwv1.SectionName{"tcp-5432"}}},
	})}, tenancy.Platform)}
	cl := tenancy.Cluster{Name: "member-1"}
	shared := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}}
	s := policy.Subject{Cluster: cl, Kind: "TCPRoute", Object: tcpRoute("db", "postgres"), Operation: "CREATE"}
	v := d.Decide(context.Background(), s)
	if got := d.Attached(v, s, policy.Attachment{Gateway: shared, Listener: "tcp-5432", Hostnames: []string{"*"}}); !got.Allowed() {
		t.Errorf("the delegated port: %s", got.Message())
	}
	got := d.Attached(v, s, policy.Attachment{Gateway: shared, Listener: "tcp-6379", Hostnames: []string{"*"}})
	want := `listener "tcp-6379" of Gateway infra/shared in cluster "member-1" is not delegated to tenant "db" (allowed: infra/shared listeners tcp-5432)`
	if got.Reason() != policy.ReasonGatewayNotDelegated || !strings.Contains(got.Message(), want) {
		t.Errorf("another port: %q %s\nwant %q", got.Reason(), got.Message(), want)
	}
}
