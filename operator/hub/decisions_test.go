package hub

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/policy/rego"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// TestUnsettledPolicyIsNotCached: a Rego evaluation that did not finish
// (under load) refuses the route for this pass only; the next pass
// evaluates again instead of reusing the refusal until the route changes.
func TestUnsettledPolicyIsNotCached(t *testing.T) {
	rp := &v1alpha1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Name: "team-label"}, Spec: v1alpha1.RoutePolicySpec{
		Enforcement: v1alpha1.Deny,
		Rego: `package p.team
violation contains {"msg": "label team is required"} if { not input.review.object.metadata.labels.team }`,
	}}
	compiled, err := policy.NewPolicy(rp)
	if err != nil {
		t.Fatal(err)
	}
	engine := rego.New(rego.Options{})
	if errs := engine.Load([]rego.Module{{Name: rp.Name, Source: rp.Spec.Rego}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	decider := &policy.Decider{Tenancy: tenancy.NewView(nil, tenancy.Platform), Routes: tenancy.NewRoutes(), Engine: engine,
		Policies: map[string]*policy.Policy{rp.Name: compiled}}
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "web", UID: "u1", Generation: 1,
		Labels: map[string]string{"team": "shop"}}}
	newPass := func(ctx context.Context, cache map[string]cachedPolicy) *pass {
		return &pass{decider: decider, ctx: ctx, cluster: tenancy.Cluster{Name: "member-1"}, tenantOf: map[string]string{},
			verdicts: map[string]*routeVerdict{}, cache: cache, next: map[string]cachedPolicy{}}
	}

	overloaded, cancel := context.WithCancel(context.Background())
	cancel()
	first := newPass(overloaded, nil)
	if v := first.verdict("HTTPRoute", route); len(v.denials) == 0 {
		t.Fatalf("an unevaluated deny policy admitted the route")
	}
	if !first.Unsettled() || len(first.next) != 0 {
		t.Fatalf("unsettled %v, cached %d results: a timeout was kept as a verdict", first.Unsettled(), len(first.next))
	}

	second := newPass(context.Background(), first.next)
	if v := second.verdict("HTTPRoute", route); len(v.denials) != 0 {
		t.Errorf("the next pass still refuses the route: %+v", v.denials)
	}
	if second.Unsettled() || len(second.next) != 1 {
		t.Errorf("unsettled %v, cached %d: a settled result is cached", second.Unsettled(), len(second.next))
	}
}

// A route too large for the hub to read is listed among its Tenant's
// violations with the reason translate gave, not judged by what a policy
// makes of its stub.
func TestATooLargeRouteIsATenantViolation(t *testing.T) {
	d := NewDecisions(nil, DecisionsOptions{})
	decider := &policy.Decider{Tenancy: tenancy.NewView(nil, tenancy.Platform), Routes: tenancy.NewRoutes()}
	p := &pass{d: d, decider: decider, ctx: context.Background(), cluster: tenancy.Cluster{Name: "member-1"},
		tenantOf: map[string]string{"web": "web"}, verdicts: map[string]*routeVerdict{}, next: map[string]cachedPolicy{}}
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "huge", Namespace: "web", UID: "u1", Generation: 1}}
	tooLarge := metav1.Condition{Type: string(gwv1.RouteConditionAccepted), Status: metav1.ConditionFalse,
		Reason: translate.ReasonTooLarge, Message: "HTTPRoute web/huge is 974856 bytes"}
	in := translate.Input{HTTPRoutes: []*gwv1.HTTPRoute{route}}
	out := translate.Output{HTTPRoutes: map[types.NamespacedName][]gwv1.RouteParentStatus{
		{Namespace: "web", Name: "huge"}: {{Conditions: []metav1.Condition{tooLarge}}}}}
	p.report(in, out)
	got := d.reports["member-1"].violations["web"]
	if len(got) != 1 || got[0].Reason != translate.ReasonTooLarge || got[0].Message != tooLarge.Message {
		t.Fatalf("tenant web's violations: %+v", got)
	}
}

// A route's verdict is kept from one pass to the next while nothing it
// depends on changes, and computed again when its namespace's labels change
// or when its tenant has limits, which rank it against the tenant's other
// routes fleet-wide.
func TestVerdictKeptOnlyWhileItCannotChange(t *testing.T) {
	one := int32(1)
	view := tenancy.NewView([]*tenancyv1.Tenant{
		{ObjectMeta: metav1.ObjectMeta{Name: "web"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "capped"}, Spec: tenancyv1.TenantSpec{Limits: &tenancyv1.TenantLimits{MaxRoutes: &one}}},
	}, tenancy.Platform)
	decider := &policy.Decider{Tenancy: view, Routes: tenancy.NewRoutes(), Engine: rego.New(rego.Options{})}
	newPass := func(cache map[string]cachedPolicy, nsLabels map[string]string) *pass {
		return &pass{decider: decider, ctx: context.Background(), cluster: tenancy.Cluster{Name: "member-1"},
			tenantOf: map[string]string{"web": "web", "capped": "capped"},
			nsLabels: map[string]map[string]string{"web": nsLabels, "capped": nsLabels},
			verdicts: map[string]*routeVerdict{}, cache: cache, next: map[string]cachedPolicy{}}
	}
	route := func(ns string) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: ns, UID: types.UID(ns), Generation: 1}}
	}
	labels := map[string]string{"team": "a"}

	first := newPass(nil, labels)
	v := first.verdict("HTTPRoute", route("web"))
	second := newPass(first.next, map[string]string{"team": "a"})
	if second.verdict("HTTPRoute", route("web")) != v {
		t.Error("an unchanged route of a tenant without limits was judged again")
	}
	third := newPass(second.next, map[string]string{"team": "b"})
	if third.verdict("HTTPRoute", route("web")) == v {
		t.Error("the verdict was kept though the namespace's labels changed")
	}

	capped := newPass(nil, labels)
	c := capped.verdict("HTTPRoute", route("capped"))
	again := newPass(capped.next, labels)
	if again.verdict("HTTPRoute", route("capped")) == c {
		t.Error("the verdict of a tenant with limits was kept: another route may have changed its rank")
	}
}
