package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestATenantRegexCostsOnlyThatRoute: a tenant writes a header match whose
// expression Go compiles alone but not anchored. The hub once checked it
// alone and accepted it; the proxy then rejected every table of the shared
// Gateway, and no tenant's change was served again. Now the hub checks with
// the proxy's own compiler: the route says why it is refused and what to
// write; a route with the worst expression the hub accepts is served; and
// another tenant's change on the Gateway goes through. (A route the proxy
// cannot compile cannot get past the hub any more: the proxy's side, a
// route left out and reported, is held by test/adversarial/regex_test.go
// with a table file and by dataplane/xds's push test over the stream.)
func TestATenantRegexCostsOnlyThatRoute(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m := twoTenantsOnOneMember(t, ctx)

	headerRoute := func(name, host, header, expr string) *gwv1.HTTPRoute {
		r := env.TenantRoute("team-b", name, host)
		r.Spec.Rules[0].Matches = []gwv1.HTTPRouteMatch{{Headers: []gwv1.HTTPHeaderMatch{{
			Type: ptr.To(gwv1.HeaderMatchRegularExpression), Name: gwv1.HTTPHeaderName(header), Value: expr}}}}
		return r
	}
	// The historic expression, and the worst the dialect accepts: nested
	// as deep as allowed, with a repeat that brings the program near its
	// bound.
	hostile := strings.Repeat("(", 999) + "a" + strings.Repeat(")", 999)
	worst := strings.Repeat("(", routetable.MaxRegexNesting-2) + "[a-z]{0,400}" + strings.Repeat(")", routetable.MaxRegexNesting-2)
	if _, err := routetable.CompileRegex(worst); err != nil {
		t.Fatalf("the worst accepted expression is not accepted: %v", err)
	}
	for _, r := range []*gwv1.HTTPRoute{
		headerRoute("hostile", "hostile.apps.example.test", "X-Tenant", hostile),
		headerRoute("worst", "worst.apps.example.test", "X-Worst", worst),
	} {
		if err := m.Client.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	// The refused route says which match, why and what to write.
	waitParentCondition(t, ctx, m.Client, "team-b", "hostile", "Accepted", metav1.ConditionFalse, "UnsupportedValue")
	cond := parentCondition(t, ctx, m, "team-b", "hostile", "Accepted")
	for _, want := range []string{"spec.rules[0].matches[0].headers[0].value", "is 1999 bytes long and at most 1024 are allowed", "shorten it"} {
		if !strings.Contains(cond.Message, want) {
			t.Errorf("the refused route says %q; want it to say %q", cond.Message, want)
		}
	}

	// The worst accepted expression is served and Programmed.
	waitParentCondition(t, ctx, m.Client, "team-b", "worst", "Programmed", metav1.ConditionTrue, "Programmed")
	waitFor(t, 30*time.Second, "the worst accepted expression to be served", func() bool {
		return getWith(m.Address, "worst.apps.example.test", "X-Worst", strings.Repeat("q", 400)) == "team-b-1"
	})
	if got := getWith(m.Address, "worst.apps.example.test", "X-Worst", strings.Repeat("q", 401)); got != "" {
		t.Errorf("a header the expression does not match was served: %q", got)
	}

	// Another tenant's change on the same Gateway goes through.
	later := env.TenantRoute("shop", "later", "later-shop.apps.example.test")
	if err := m.Client.Create(ctx, later); err != nil {
		t.Fatal(err)
	}
	waitParentCondition(t, ctx, m.Client, "shop", "later", "Programmed", metav1.ConditionTrue, "Programmed")
	waitAnswer(t, m.Address, "later-shop.apps.example.test", "shop-1")
	if got := get(m.Address, tenantHost); got != "shop-1" {
		t.Errorf("the first tenant's route answers %q", got)
	}
}
