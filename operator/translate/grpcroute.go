package translate

import (
	"fmt"
	"net/http"
	"regexp"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// compileGRPCRoute maps gRPC matches onto HTTP/2 paths ("/service/method")
// and compiles the rest as an HTTPRoute rule would be.
func (t *translator) compileGRPCRoute(gr *gwv1.GRPCRoute) *route {
	r := &route{
		kind: kindGRPCRoute, obj: gr, key: key(gr.Namespace, gr.Name), created: gr.CreationTimestamp,
		hostnames: lowerHostnames(gr.Spec.Hostnames), parents: gr.Spec.ParentRefs, rules: len(gr.Spec.Rules),
		fallbacks: grpcRouteEnums(gr.Spec.Rules),
	}
	for i := range gr.Spec.Rules {
		rule := &gr.Spec.Rules[i]
		field := fieldPath{rule: i}
		rc := &ruleCompiler{t: t, r: r, field: field}
		action, problem := rc.grpcRule(rule)
		if problem != "" {
			r.invalidRules = append(r.invalidRules, problem)
			continue
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwv1.GRPCRouteMatch{{}}
		}
		var entries []*entry
		for j := range matches {
			e, problem := t.grpcMatch(&matches[j], field.at("matches", j))
			if problem != "" {
				entries = nil
				r.invalidRules = append(r.invalidRules, problem)
				break
			}
			e.route, e.rule, e.match = r, i, j
			action.apply(e.r)
			e.r.Source = source(r, i, j, rule.Name)
			entries = append(entries, e)
		}
		rc.commit(entries)
	}
	return r
}

// grpcRule compiles a rule's filters and backends; a filter the proxy could
// not apply as written makes the whole rule invalid.
func (c *ruleCompiler) grpcRule(rule *gwv1.GRPCRouteRule) (*ruleAction, string) {
	a := &ruleAction{route: &routetable.RouteAction{}}
	for i := range rule.Filters {
		f := &rule.Filters[i]
		ff := c.field.at("filters", i)
		switch f.Type {
		case gwv1.GRPCRouteFilterRequestHeaderModifier, gwv1.GRPCRouteFilterResponseHeaderModifier:
			if problem := headerModifier(string(f.Type), f.RequestHeaderModifier, f.ResponseHeaderModifier, ff.String(),
				&a.reqHeaders, &a.respHeaders, &a.route.HostRewrite); problem != "" {
				return nil, problem
			}
		case gwv1.GRPCRouteFilterRequestMirror:
			if m := c.mirror(f.RequestMirror, ff); m != nil {
				a.route.Mirrors = append(a.route.Mirrors, m)
			}
		default:
			c.unsupportedFilter(a, ff, string(f.Type))
			return a, ""
		}
	}
	refs := make([]backendShare, len(rule.BackendRefs))
	for i := range rule.BackendRefs {
		br := &rule.BackendRefs[i]
		refs[i] = backendShare{ref: br.BackendObjectReference, weight: br.Weight}
		for _, f := range br.Filters {
			refs[i].filters = append(refs[i].filters, shareFilter{typ: string(f.Type), req: f.RequestHeaderModifier, resp: f.ResponseHeaderModifier})
		}
	}
	return a, c.shares(a, refs)
}

// grpcMatch turns a gRPC method match into a path match: service and method
// → exact "/service/method"; service only → prefix "/service"; method only
// or regular expressions → an anchored regex over the path.
func (t *translator) grpcMatch(m *gwv1.GRPCRouteMatch, field fieldPath) (*entry, string) {
	e := &entry{r: &routetable.Route{Match: &routetable.RouteMatch{Method: http.MethodPost}}, method: true}
	rm := e.r.Match
	if mm := m.Method; mm != nil {
		typ := gwv1.GRPCMethodMatchExact
		if mm.Type != nil {
			typ = *mm.Type
		}
		svc, method := deref(mm.Service), deref(mm.Method)
		switch {
		case typ == gwv1.GRPCMethodMatchExact && svc != "" && method != "":
			rm.Path, e.pathClass = &routetable.RouteMatch_Exact{Exact: "/" + svc + "/" + method}, 0
		case typ == gwv1.GRPCMethodMatchExact && svc != "":
			rm.Path, e.pathClass = &routetable.RouteMatch_Prefix{Prefix: "/" + svc}, 2
		case typ == gwv1.GRPCMethodMatchExact && method != "":
			rm.Path, e.pathClass = &routetable.RouteMatch_Regex{Regex: "/[^/]+/" + regexp.QuoteMeta(method)}, 1
		case typ == gwv1.GRPCMethodMatchRegularExpression:
			if svc == "" {
				svc = "[^/]+"
			}
			if method == "" {
				method = "[^/]+"
			}
			re := "/(?:" + svc + ")/(?:" + method + ")"
			if err := t.validRegex(re); err != nil {
				return nil, fmt.Sprintf("%s.method: %v", field, err)
			}
			rm.Path, e.pathClass = &routetable.RouteMatch_Regex{Regex: re}, 1
		}
		e.pathLen = len(svc) + len(method)
	}
	if rm.Path == nil {
		rm.Path, e.pathClass = &routetable.RouteMatch_Prefix{Prefix: "/"}, 2
	}
	for i, h := range m.Headers {
		regex := h.Type != nil && *h.Type == gwv1.GRPCHeaderMatchRegularExpression
		if problem := t.addHeaderMatch(rm, string(h.Name), h.Value, regex, field, i); problem != "" {
			return nil, problem
		}
	}
	e.headers = len(rm.Headers)
	return e, ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
