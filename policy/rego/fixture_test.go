package rego_test

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/policy/rego"
)

// route is a tenant's HTTPRoute of a realistic size: three hostnames, two
// parents and five rules, each with matches, a header filter and two
// backends. Its last rule has no timeouts.
func route() *gwv1.HTTPRoute {
	r := &gwv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "web", Labels: map[string]string{"app": "shop", "team": "checkout"}},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{
				{Name: "public", Namespace: ptr[gwv1.Namespace]("infra"), SectionName: ptr[gwv1.SectionName]("https")},
				{Name: "internal", Namespace: ptr[gwv1.Namespace]("infra")},
			}},
			Hostnames: []gwv1.Hostname{"shop.web.example.com", "api.web.example.com", "www.web.example.com"},
		},
	}
	for i := range 5 {
		rule := gwv1.HTTPRouteRule{
			Matches: []gwv1.HTTPRouteMatch{{
				Path:    &gwv1.HTTPPathMatch{Type: ptr(gwv1.PathMatchPathPrefix), Value: ptr(fmt.Sprintf("/v%d/cart", i))},
				Headers: []gwv1.HTTPHeaderMatch{{Name: "X-Canary", Value: "true"}},
			}, {
				Path:   &gwv1.HTTPPathMatch{Type: ptr(gwv1.PathMatchExact), Value: ptr(fmt.Sprintf("/v%d/checkout", i))},
				Method: ptr(gwv1.HTTPMethodPost),
			}},
			Filters: []gwv1.HTTPRouteFilter{{
				Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
				RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
					Set:    []gwv1.HTTPHeader{{Name: "X-Route", Value: "shop"}},
					Remove: []string{"X-Debug"},
				},
			}},
			BackendRefs: []gwv1.HTTPBackendRef{
				{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "cart", Port: ptr[gwv1.PortNumber](8080)}, Weight: ptr[int32](90)}},
				{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "cart-next", Namespace: ptr[gwv1.Namespace]("web-shared"), Port: ptr[gwv1.PortNumber](8080)}, Weight: ptr[int32](10)}},
			},
		}
		if i < 4 {
			rule.Timeouts = &gwv1.HTTPRouteTimeouts{Request: ptr[gwv1.Duration]("15s"), BackendRequest: ptr[gwv1.Duration]("10s")}
		}
		r.Spec.Rules = append(r.Spec.Rules, rule)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

func routeReview() rego.Review {
	return rego.Review{
		Object:    route(),
		Operation: "CREATE",
		UserInfo:  map[string]any{"username": "jane@web.example.com", "groups": []any{"web-devs"}},
		Cluster:   "eu-west-1",
		Tenant:    "web",
		Kind:      rego.Kind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"},
	}
}

// fleetTenants is data.gatehouse.tenants for a fleet of 50 tenants.
func fleetTenants() map[string]any {
	tenants := map[string]any{}
	for i := range 50 {
		name := fmt.Sprintf("tenant-%d", i)
		tenants[name] = map[string]any{
			"domains":    []any{name + ".example.com"},
			"namespaces": []any{name, name + "-jobs"},
		}
	}
	tenants["web"] = map[string]any{
		"domains":    []any{"web.example.com", "web.example.org"},
		"namespaces": []any{"web", "web-shared"},
	}
	return tenants
}

func fleetGateways() map[string]any {
	return map[string]any{
		"infra/public":   map[string]any{"tenants": []any{"web", "tenant-1", "tenant-2"}, "listeners": []any{"http", "https"}},
		"infra/internal": map[string]any{"tenants": []any{"tenant-3"}, "listeners": []any{"http"}},
	}
}

// fleetPolicies are n policies in the shapes a platform team writes, each
// with its own parameters.
func fleetPolicies(n int) []rego.Module {
	mods := make([]rego.Module, n)
	for i := range mods {
		name := fmt.Sprintf("%s-%d", policyShapes[i%len(policyShapes)].name, i)
		shape := policyShapes[i%len(policyShapes)]
		mods[i] = rego.Module{
			Name:       name,
			Source:     fmt.Sprintf(shape.source, i),
			Parameters: fmt.Appendf(nil, shape.params, i),
		}
	}
	return mods
}

var policyShapes = []struct{ name, source, params string }{{
	name: "hostnames",
	source: `package policies.hostnames_%d

violation contains {"msg": msg, "details": {"hostname": h}} if {
	some i, h in input.review.object.spec.hostnames
	not allowed(h)
	msg := sprintf("spec.hostnames[%%d]: %%q is outside tenant %%q's domains; use a subdomain of one of them", [i, h, input.review.tenant])
}

allowed(h) if {
	some suffix in input.parameters.allowedSuffixes
	endswith(h, suffix)
}

allowed(h) if {
	some domain in data.gatehouse.tenants[input.review.tenant].domains
	endswith(h, concat("", [".", domain]))
}
`,
	params: `{"allowedSuffixes": [".shared-%d.example.net"]}`,
}, {
	name: "timeouts",
	source: `package policies.timeouts_%d

violation contains {"msg": msg, "details": {"rule": i}} if {
	some i, rule in input.review.object.spec.rules
	not rule.timeouts.request
	msg := sprintf("spec.rules[%%d].timeouts.request is required", [i])
}

violation contains {"msg": msg, "details": {"rule": i}} if {
	some i, rule in input.review.object.spec.rules
	time.parse_duration_ns(rule.timeouts.request) > input.parameters.maxRequestSeconds * 1000000000
	msg := sprintf("spec.rules[%%d].timeouts.request %%s is over %%ds", [i, rule.timeouts.request, input.parameters.maxRequestSeconds])
}
`,
	params: `{"maxRequestSeconds": %d}`,
}, {
	name: "headers",
	source: `package policies.headers_%d

forbidden := {lower(h) | some h in input.parameters.forbiddenHeaders}

violation contains {"msg": msg, "details": {"rule": i, "header": header.name}} if {
	some i, rule in input.review.object.spec.rules
	some filter in rule.filters
	filter.type == "RequestHeaderModifier"
	some header in array.concat(object.get(filter.requestHeaderModifier, "set", []), object.get(filter.requestHeaderModifier, "add", []))
	lower(header.name) in forbidden
	msg := sprintf("spec.rules[%%d]: header %%q is reserved for the platform", [i, header.name])
}

violation contains {"msg": msg, "details": {"rule": i, "header": header.name}} if {
	some i, rule in input.review.object.spec.rules
	some match in rule.matches
	some header in match.headers
	lower(header.name) in forbidden
	msg := sprintf("spec.rules[%%d]: matching on header %%q is reserved for the platform", [i, header.name])
}
`,
	params: `{"forbiddenHeaders": ["X-Internal-%d", "X-Forwarded-Client-Cert", "X-Canary"]}`,
}, {
	name: "backends",
	source: `package policies.backends_%d

violation contains {"msg": msg, "details": {"rule": i, "backend": j}} if {
	some i, rule in input.review.object.spec.rules
	some j, ref in rule.backendRefs
	ns := object.get(ref, "namespace", input.review.object.metadata.namespace)
	not ns in data.gatehouse.tenants[input.review.tenant].namespaces
	msg := sprintf("spec.rules[%%d].backendRefs[%%d]: namespace %%q does not belong to tenant %%q", [i, j, ns, input.review.tenant])
}

violation contains {"msg": msg, "details": {"rule": i, "backend": j}} if {
	some i, rule in input.review.object.spec.rules
	some j, ref in rule.backendRefs
	not ref.port in input.parameters.ports
	msg := sprintf("spec.rules[%%d].backendRefs[%%d]: port %%v is not one of %%v", [i, j, ref.port, input.parameters.ports])
}
`,
	params: `{"ports": [80, 8080, %d]}`,
}, {
	name: "gateways",
	source: `package policies.gateways_%d

violation contains {"msg": msg, "details": {"parent": i}} if {
	some i, ref in input.review.object.spec.parentRefs
	key := sprintf("%%s/%%s", [object.get(ref, "namespace", input.review.object.metadata.namespace), ref.name])
	not data.gatehouse.gateways[key]
	msg := sprintf("spec.parentRefs[%%d]: there is no Gateway %%s", [i, key])
}

violation contains {"msg": msg, "details": {"parent": i}} if {
	some i, ref in input.review.object.spec.parentRefs
	key := sprintf("%%s/%%s", [object.get(ref, "namespace", input.review.object.metadata.namespace), ref.name])
	gateway := data.gatehouse.gateways[key]
	not input.review.tenant in gateway.tenants
	not input.review.tenant in input.parameters.exempt
	msg := sprintf("spec.parentRefs[%%d]: Gateway %%s is not shared with tenant %%q", [i, key, input.review.tenant])
}
`,
	params: `{"exempt": ["tenant-%d"]}`,
}}
