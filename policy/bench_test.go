package policy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/policy/rego"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// Five kinds of rule a platform team writes, each used with ten sets of
// parameters: fifty RoutePolicies.
var benchTemplates = []string{
	`package bench.labels%d

violation contains {"msg": sprintf("label %%s is required", [k])} if {
	some k in input.parameters.labels
	not input.review.object.metadata.labels[k]
}`,
	`package bench.suffix%d

violation contains {"msg": sprintf("hostname %%s must end in %%s", [h, input.parameters.suffix])} if {
	some h in input.review.object.spec.hostnames
	not endswith(h, input.parameters.suffix)
}`,
	`package bench.rules%d

violation contains {"msg": "too many rules"} if {
	count(input.review.object.spec.rules) > input.parameters.max
}`,
	`package bench.delegated%d

violation contains {"msg": sprintf("%%s is outside the tenant's hostnames", [h])} if {
	some h in input.review.object.spec.hostnames
	t := data.gatehouse.tenants[input.review.tenant]
	not delegated(h, t.hostnames)
}

delegated(h, list) if {
	some d in list
	d == h
}

delegated(h, list) if {
	some d in list
	startswith(d, "*.")
	endswith(h, substring(d, 1, -1))
}`,
	`package bench.headers%d

violation contains {"msg": sprintf("rule %%d sets header %%s", [i, hd.name])} if {
	some i, rule in input.review.object.spec.rules
	some f in rule.filters
	f.type == "RequestHeaderModifier"
	some hd in f.requestHeaderModifier.set
	lower(hd.name) in {x | some x in input.parameters.forbidden}
}`,
}

func benchDecider(b *testing.B, tenants, policies int) *policy.Decider {
	var ts []*tenancyv1.Tenant
	for i := range tenants {
		spec := tenancyv1.TenantSpec{
			Hostnames: []gwv1.Hostname{gwv1.Hostname(fmt.Sprintf("*.t%d.example.com", i)), gwv1.Hostname(fmt.Sprintf("api-%d.example.com", i))},
			Gateways:  []tenancyv1.GatewayDelegation{{Namespace: "infra", Name: "shared"}},
		}
		if i%2 == 0 {
			spec.Namespaces = []tenancyv1.NamespaceDelegation{{Names: []string{fmt.Sprintf("ns-%d", i)}}}
		} else {
			spec.Namespaces = []tenancyv1.NamespaceDelegation{{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": fmt.Sprint(i)}}}}
		}
		ts = append(ts, tenant(fmt.Sprintf("tenant-%d", i), i, spec))
	}
	view := tenancy.NewView(ts, tenancy.Platform)
	engine := rego.New(rego.Options{})
	data := map[string]any{}
	for _, name := range view.Tenants() {
		hs := []any{}
		for _, h := range view.Hostnames(name) {
			hs = append(hs, h)
		}
		data[name] = map[string]any{"hostnames": hs}
	}
	if err := engine.SetData(context.Background(), "tenants", data); err != nil {
		b.Fatal(err)
	}
	params := []string{`{"labels": ["team", "cost-center"]}`, `{"suffix": ".example.com"}`, `{"max": 20}`, `{}`, `{"forbidden": ["x-forwarded-for", "authorization"]}`}
	compiled := map[string]*policy.Policy{}
	var mods []rego.Module
	for i := range policies {
		name := fmt.Sprintf("p%02d", i)
		rp := &v1alpha1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.RoutePolicySpec{
			Rego: fmt.Sprintf(benchTemplates[i%5], i), Enforcement: v1alpha1.Deny,
			Parameters: &apiextensionsv1.JSON{Raw: []byte(params[i%5])},
		}}
		p, err := policy.NewPolicy(rp)
		if err != nil {
			b.Fatal(err)
		}
		compiled[name] = p
		mods = append(mods, rego.Module{Name: name, Source: rp.Spec.Rego, Parameters: rp.Spec.Parameters.Raw})
	}
	if errs := engine.Load(mods); len(errs) > 0 {
		b.Fatal(errs)
	}
	return &policy.Decider{Tenancy: view, Routes: tenancy.NewRoutes(), Engine: engine, Policies: compiled}
}

// benchRoute is a tenant's route of realistic size: five rules with
// matches, filters and backends.
func benchRoute(ns string, tenant int) *gwv1.HTTPRoute {
	r := httpRoute(ns, "shop", map[string]string{"team": "shop", "cost-center": "42"},
		fmt.Sprintf("www.t%d.example.com", tenant), fmt.Sprintf("api-%d.example.com", tenant))
	r.Spec.Rules = nil
	for i := range 5 {
		r.Spec.Rules = append(r.Spec.Rules, gwv1.HTTPRouteRule{
			Matches: []gwv1.HTTPRouteMatch{{
				Path:    &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To(fmt.Sprintf("/v%d", i))},
				Headers: []gwv1.HTTPHeaderMatch{{Name: "x-version", Value: fmt.Sprint(i)}},
			}},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
				Set: []gwv1.HTTPHeader{{Name: "x-tenant", Value: "shop"}}}}},
			BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(fmt.Sprintf("svc-%d", i)), Port: ptr.To[gwv1.PortNumber](80)}}}},
		})
	}
	return r
}

// BenchmarkAdmissionDecision is the webhook's whole decision for one route
// — namespace, hostnames, limits, 50 policies, the attachment — with 1,000
// Tenants. It reports the 50th and 99th percentile of one decision.
func BenchmarkAdmissionDecision(b *testing.B) {
	for _, c := range []struct{ tenants, policies int }{{1000, 50}, {1000, 0}, {1000, 1}} {
		b.Run(fmt.Sprintf("tenants=%d/policies=%d", c.tenants, c.policies), func(b *testing.B) {
			d := benchDecider(b, c.tenants, c.policies)
			// An odd tenant: its namespace is found by label selector, after
			// every selector of the fleet is tried.
			route := benchRoute("shop-ns", 501)
			labels := map[string]string{"tenant": "501"}
			gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}}
			s := policy.Subject{Cluster: tenancy.Cluster{Name: "member-1"}, Kind: "HTTPRoute", Object: route, Operation: "CREATE", NamespaceLabels: labels}
			ctx := context.Background()
			times := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				v := d.Attached(d.Decide(ctx, s), s, policy.Attachment{Gateway: gw, Listener: "https", Hostnames: []string{"www.t501.example.com", "api-501.example.com"}})
				times = append(times, time.Since(start))
				if !v.Allowed() || v.Tenant != "tenant-501" {
					b.Fatalf("the route was refused: %s (tenant %q)", v.Message(), v.Tenant)
				}
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
