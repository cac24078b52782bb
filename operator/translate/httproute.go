package translate

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

func (t *translator) compileHTTPRoute(hr *gwv1.HTTPRoute) *route {
	r := &route{
		kind: kindHTTPRoute, obj: hr, key: key(hr.Namespace, hr.Name), created: hr.CreationTimestamp,
		hostnames: lowerHostnames(hr.Spec.Hostnames), parents: hr.Spec.ParentRefs, rules: len(hr.Spec.Rules),
		fallbacks: httpRouteEnums(hr.Spec.Rules),
	}
	for i := range hr.Spec.Rules {
		rule := &hr.Spec.Rules[i]
		field := fieldPath{rule: i}
		rc := &ruleCompiler{t: t, r: r, field: field}
		action, problem := rc.httpRule(rule)
		if problem != "" {
			r.invalidRules = append(r.invalidRules, problem)
			continue
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwv1.HTTPRouteMatch{{}}
		}
		var entries []*entry
		for j := range matches {
			e, problem := t.httpMatch(&matches[j], field.at("matches", j))
			if problem == "" && action.needsPrefix && e.pathClass != 2 {
				problem = field.at("matches", j).String() + ": ReplacePrefixMatch needs a PathPrefix match"
			}
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

func lowerHostnames(hs []gwv1.Hostname) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, strings.ToLower(string(h)))
	}
	return out
}

func source(r *route, rule, match int, name *gwv1.SectionName) *routetable.RouteSource {
	s := &routetable.RouteSource{
		Kind: r.kind, Namespace: r.key.Namespace, Name: r.key.Name,
		Rule: uint32(rule), Match: uint32(match), Generation: r.obj.GetGeneration(),
	}
	if name != nil {
		s.RuleName = string(*name)
	}
	return s
}

// ruleAction is what every match of a rule shares.
type ruleAction struct {
	route       *routetable.RouteAction
	redirect    *routetable.RedirectAction
	direct      *routetable.DirectResponse
	reqHeaders  *routetable.HeaderMutation
	respHeaders *routetable.HeaderMutation
	cors        *routetable.CorsPolicy
	// needsPrefix: a ReplacePrefixMatch rewrite or redirect needs PathPrefix matches.
	needsPrefix bool
}

func (a *ruleAction) apply(r *routetable.Route) {
	switch {
	case a.direct != nil:
		r.Action = &routetable.Route_DirectResponse{DirectResponse: a.direct}
	case a.redirect != nil:
		r.Action = &routetable.Route_Redirect{Redirect: a.redirect}
	default:
		r.Action = &routetable.Route_Route{Route: a.route}
	}
	r.RequestHeaders, r.ResponseHeaders, r.Cors = a.reqHeaders, a.respHeaders, a.cors
}

type ruleCompiler struct {
	t     *translator
	r     *route
	field fieldPath
	// backends the rule sends traffic to, kept only if the rule is valid.
	used []resolvedBackend
}

// commit adds a valid rule's table routes and backends to its route; a rule
// with no entries was dropped.
func (c *ruleCompiler) commit(entries []*entry) {
	if len(entries) == 0 {
		return
	}
	c.r.entries = append(c.r.entries, entries...)
	for _, b := range c.used {
		c.r.useBackend(b)
	}
}

// unsupportedFilter makes the rule answer 500: skipping a filter it cannot
// apply could expose what the filter protects. An ExtensionRef that does not
// resolve leaves the route served, as the spec asks; a filter type Gatehouse
// does not implement makes the whole route not accepted.
func (c *ruleCompiler) unsupportedFilter(a *ruleAction, field fieldPath, typ string) {
	if typ == "ExtensionRef" {
		c.r.unresolved(gwv1.RouteReasonInvalidKind, fmt.Sprintf("%s: filter type %q is not supported; requests matching this rule get HTTP 500", field, typ))
	} else {
		c.r.fallbacks = append(c.r.fallbacks, fmt.Sprintf("%s: filter type %q is not supported: remove the filter or use one Gatehouse implements", field, typ))
	}
	a.direct = &routetable.DirectResponse{Status: http.StatusInternalServerError, Body: "filter not supported"}
}

// httpRule compiles a rule's filters, backends, timeouts and retries. A
// problem makes the whole rule invalid.
// unsupportedBackendFilter turns the backend's share into 500s.
func (c *ruleCompiler) unsupportedBackendFilter(wb *routetable.WeightedBackend, field fieldPath, filter int, typ string) {
	field.sub = fmt.Sprintf(".filters[%d]", filter)
	msg := fmt.Sprintf("%s: filter type %q is not supported on a backendRef; this backend's share of requests gets HTTP 500", field, typ)
	if typ == "ExtensionRef" {
		c.r.unresolved(gwv1.RouteReasonInvalidKind, msg)
	} else {
		c.r.fallbacks = append(c.r.fallbacks, fmt.Sprintf("%s: filter type %q is not supported on a backendRef: remove the filter or use one Gatehouse implements", field, typ))
	}
	wb.Backend, wb.InvalidReason = "", msg
}

func (c *ruleCompiler) httpRule(rule *gwv1.HTTPRouteRule) (*ruleAction, string) {
	a := &ruleAction{route: &routetable.RouteAction{}}
	unsupported := -1
	for i := range rule.Filters {
		f := &rule.Filters[i]
		ff := c.field.at("filters", i)
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier, gwv1.HTTPRouteFilterResponseHeaderModifier:
			if problem := headerModifier(string(f.Type), f.RequestHeaderModifier, f.ResponseHeaderModifier, ff.String(),
				&a.reqHeaders, &a.respHeaders, &a.route.HostRewrite); problem != "" {
				return nil, problem
			}
		case gwv1.HTTPRouteFilterRequestRedirect:
			if f.RequestRedirect == nil {
				return nil, ff.String() + ": requestRedirect is missing"
			}
			if problem := checkRedirect(f.RequestRedirect, ff.String()+".requestRedirect"); problem != "" {
				return nil, problem
			}
			a.redirect = redirect(f.RequestRedirect)
			a.needsPrefix = a.needsPrefix || isPrefixReplace(f.RequestRedirect.Path)
		case gwv1.HTTPRouteFilterURLRewrite:
			if f.URLRewrite == nil {
				return nil, ff.String() + ": urlRewrite is missing"
			}
			if problem := checkHostname(f.URLRewrite.Hostname, ff.String()+".urlRewrite.hostname"); problem != "" {
				return nil, problem
			}
			if f.URLRewrite.Hostname != nil {
				a.route.HostRewrite = string(*f.URLRewrite.Hostname)
			}
			a.route.PathRewrite = pathRewrite(f.URLRewrite.Path)
			a.needsPrefix = a.needsPrefix || isPrefixReplace(f.URLRewrite.Path)
		case gwv1.HTTPRouteFilterRequestMirror:
			if m := c.mirror(f.RequestMirror, ff); m != nil {
				a.route.Mirrors = append(a.route.Mirrors, m)
			}
		case gwv1.HTTPRouteFilterCORS:
			if problem := checkCORS(f.CORS, ff.String()+".cors"); problem != "" {
				return nil, problem
			}
			a.cors = cors(f.CORS)
		default:
			if unsupported < 0 {
				unsupported = i
			}
		}
	}
	if problem := c.timeouts(rule.Timeouts, a.route); problem != "" {
		return nil, problem
	}
	if problem := c.retry(rule.Retry, a.route); problem != "" {
		return nil, problem
	}
	if unsupported >= 0 {
		c.unsupportedFilter(a, c.field.at("filters", unsupported), string(rule.Filters[unsupported].Type))
		return a, ""
	}
	if a.redirect != nil {
		return a, ""
	}
	refs := make([]backendShare, len(rule.BackendRefs))
	for i := range rule.BackendRefs {
		br := &rule.BackendRefs[i]
		refs[i] = backendShare{ref: br.BackendObjectReference, weight: br.Weight}
		for _, f := range br.Filters {
			refs[i].filters = append(refs[i].filters, shareFilter{string(f.Type), f.RequestHeaderModifier, f.ResponseHeaderModifier, f.URLRewrite})
		}
	}
	return a, c.shares(a, refs)
}

// backendShare is a backendRef of either route kind, with its filters.
type backendShare struct {
	ref     gwv1.BackendObjectReference
	weight  *int32
	filters []shareFilter
}

// shareFilter is a backendRef filter: header modifiers and URL rewrites
// apply there.
type shareFilter struct {
	typ       string
	req, resp *gwv1.HTTPHeaderFilter
	rewrite   *gwv1.HTTPURLRewriteFilter
}

// shares resolves a rule's backendRefs into weighted shares; with no weight
// to serve (none, or all zero) the rule answers 500. A filter the proxy
// could not apply as written makes the rule invalid.
func (c *ruleCompiler) shares(a *ruleAction, refs []backendShare) string {
	total := uint32(0)
	for i, r := range refs {
		field := c.field.at("backendRefs", i)
		wb := c.weighted(r.ref, r.weight, field)
		for j, f := range r.filters {
			ff := field
			ff.sub = fmt.Sprintf(".filters[%d]", j)
			switch f.typ {
			case "RequestHeaderModifier", "ResponseHeaderModifier":
				if problem := headerModifier(f.typ, f.req, f.resp, ff.String(), &wb.RequestHeaders, &wb.ResponseHeaders, &wb.HostRewrite); problem != "" {
					return problem
				}
			case "URLRewrite":
				if f.rewrite == nil {
					c.unsupportedBackendFilter(wb, field, j, "URLRewrite without urlRewrite")
					continue
				}
				if problem := checkHostname(f.rewrite.Hostname, ff.String()+".urlRewrite.hostname"); problem != "" {
					return problem
				}
				if f.rewrite.Hostname != nil {
					wb.HostRewrite = string(*f.rewrite.Hostname)
				}
				wb.PathRewrite = pathRewrite(f.rewrite.Path)
				a.needsPrefix = a.needsPrefix || isPrefixReplace(f.rewrite.Path)
			default:
				c.unsupportedBackendFilter(wb, field, j, f.typ)
			}
		}
		total += wb.Weight
		a.route.Backends = append(a.route.Backends, wb)
	}
	if total == 0 {
		a.direct = &routetable.DirectResponse{Status: http.StatusInternalServerError, Body: "no backend is configured for this route rule"}
	}
	return ""
}

func (c *ruleCompiler) weighted(ref gwv1.BackendObjectReference, weight *int32, field fieldPath) *routetable.WeightedBackend {
	w := uint32(1)
	if weight != nil {
		w = uint32(max(*weight, 0))
	}
	b := c.t.backend(c.r.kind, c.r.key.Namespace, ref, field, c.r.kind == kindGRPCRoute)
	c.used = append(c.used, b)
	if b.reason != "" {
		c.r.unresolved(b.reason, b.message)
		return &routetable.WeightedBackend{Weight: w, InvalidReason: b.message}
	}
	return &routetable.WeightedBackend{Backend: b.name, Weight: w}
}

func (c *ruleCompiler) mirror(m *gwv1.HTTPRequestMirrorFilter, field fieldPath) *routetable.RequestMirror {
	if m == nil {
		return nil
	}
	field.sub = ".requestMirror.backendRef"
	b := c.t.backend(c.r.kind, c.r.key.Namespace, m.BackendRef, field, c.r.kind == kindGRPCRoute)
	c.used = append(c.used, b)
	if b.reason != "" {
		c.r.unresolved(b.reason, b.message)
		return nil
	}
	out := &routetable.RequestMirror{Backend: b.name, Numerator: 100, Denominator: 100}
	switch {
	case m.Fraction != nil:
		out.Numerator, out.Denominator = uint32(max(m.Fraction.Numerator, 0)), 100
		if m.Fraction.Denominator != nil && *m.Fraction.Denominator > 0 {
			out.Denominator = uint32(*m.Fraction.Denominator)
		}
	case m.Percent != nil:
		out.Numerator = uint32(max(*m.Percent, 0))
	}
	return out
}

func (c *ruleCompiler) timeouts(to *gwv1.HTTPRouteTimeouts, a *routetable.RouteAction) string {
	if to == nil {
		return ""
	}
	if to.Request != nil {
		d, ok := parseDuration(*to.Request)
		if !ok {
			return fmt.Sprintf("%s.timeouts.request: %q is not a duration such as 10s or 1m30s", c.field, *to.Request)
		}
		a.RequestTimeout = &routetable.Duration{Milliseconds: d.Milliseconds()}
	}
	if to.BackendRequest != nil {
		d, ok := parseDuration(*to.BackendRequest)
		if !ok {
			return fmt.Sprintf("%s.timeouts.backendRequest: %q is not a duration such as 10s or 1m30s", c.field, *to.BackendRequest)
		}
		a.BackendTimeout = &routetable.Duration{Milliseconds: d.Milliseconds()}
	}
	if a.RequestTimeout != nil && a.BackendTimeout != nil && a.RequestTimeout.Milliseconds > 0 &&
		a.BackendTimeout.Milliseconds > a.RequestTimeout.Milliseconds {
		return fmt.Sprintf("%s.timeouts: backendRequest (%s) must not exceed request (%s)", c.field, *to.BackendRequest, *to.Request)
	}
	return ""
}

func (c *ruleCompiler) retry(r *gwv1.HTTPRouteRetry, a *routetable.RouteAction) string {
	if r == nil {
		return ""
	}
	p := &routetable.RetryPolicy{}
	for _, code := range r.Codes {
		p.Codes = append(p.Codes, uint32(code))
	}
	if r.Attempts != nil {
		p.Attempts = uint32(max(*r.Attempts, 0))
	}
	if r.Backoff != nil {
		d, ok := parseDuration(*r.Backoff)
		if !ok {
			return fmt.Sprintf("%s.retry.backoff: %q is not a duration such as 100ms", c.field, *r.Backoff)
		}
		p.Backoff = &routetable.Duration{Milliseconds: d.Milliseconds()}
	}
	a.Retry = p
	return ""
}

// httpMatch compiles one match into a table route without its action.
func (t *translator) httpMatch(m *gwv1.HTTPRouteMatch, field fieldPath) (*entry, string) {
	e := &entry{r: &routetable.Route{Match: &routetable.RouteMatch{}}}
	rm := e.r.Match
	typ, value := gwv1.PathMatchPathPrefix, "/"
	if m.Path != nil {
		if m.Path.Type != nil {
			typ = *m.Path.Type
		}
		if m.Path.Value != nil {
			value = *m.Path.Value
		}
	}
	if typ != gwv1.PathMatchRegularExpression {
		// Written as the proxy writes a request's path before matching.
		value = routetable.CanonicalEscapes(value)
	}
	switch typ {
	case gwv1.PathMatchExact:
		rm.Path, e.pathClass = &routetable.RouteMatch_Exact{Exact: value}, 0
	case gwv1.PathMatchPathPrefix:
		if len(value) > 1 {
			value = strings.TrimSuffix(value, "/")
		}
		rm.Path, e.pathClass = &routetable.RouteMatch_Prefix{Prefix: value}, 2
	case gwv1.PathMatchRegularExpression:
		if err := t.validRegex(value); err != nil {
			return nil, fmt.Sprintf("%s.path.value: %v", field, err)
		}
		rm.Path, e.pathClass = &routetable.RouteMatch_Regex{Regex: value}, 1
	default:
		return nil, fmt.Sprintf("%s.path.type: %q is not supported", field, typ)
	}
	e.pathLen = len(value)
	for i, h := range m.Headers {
		regex := h.Type != nil && *h.Type == gwv1.HeaderMatchRegularExpression
		if problem := t.addHeaderMatch(rm, string(h.Name), h.Value, regex, field, i); problem != "" {
			return nil, problem
		}
	}
	for i, q := range m.QueryParams {
		name := string(q.Name)
		if hasQuery(rm.QueryParameters, name) {
			continue
		}
		qm := &routetable.QueryParameterMatcher{Name: name}
		if q.Type != nil && *q.Type == gwv1.QueryParamMatchRegularExpression {
			if err := t.validRegex(q.Value); err != nil {
				return nil, fmt.Sprintf("%s.queryParams[%d].value: %v", field, i, err)
			}
			qm.Value = &routetable.QueryParameterMatcher_Regex{Regex: q.Value}
		} else {
			qm.Value = &routetable.QueryParameterMatcher_Exact{Exact: q.Value}
		}
		rm.QueryParameters = append(rm.QueryParameters, qm)
	}
	if m.Method != nil {
		rm.Method, e.method = string(*m.Method), true
	}
	e.headers, e.query = len(rm.Headers), len(rm.QueryParameters)
	return e, ""
}

func mergeMutation(a, b *routetable.HeaderMutation) *routetable.HeaderMutation {
	if a == nil {
		return b
	}
	if b != nil {
		a.Set = append(a.Set, b.Set...)
		a.Add = append(a.Add, b.Add...)
		a.Remove = append(a.Remove, b.Remove...)
	}
	return a
}

func redirect(f *gwv1.HTTPRequestRedirectFilter) *routetable.RedirectAction {
	r := &routetable.RedirectAction{StatusCode: http.StatusFound, Path: pathRewrite(f.Path)}
	if f.Scheme != nil {
		r.Scheme = *f.Scheme
	}
	if f.Hostname != nil {
		r.Hostname = string(*f.Hostname)
	}
	if f.Port != nil {
		r.Port = uint32(*f.Port)
	}
	if f.StatusCode != nil {
		r.StatusCode = uint32(*f.StatusCode)
	}
	return r
}

func pathRewrite(p *gwv1.HTTPPathModifier) *routetable.PathRewrite {
	if p == nil {
		return nil
	}
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		if p.ReplaceFullPath != nil {
			return &routetable.PathRewrite{Rewrite: &routetable.PathRewrite_Full{Full: *p.ReplaceFullPath}}
		}
	case gwv1.PrefixMatchHTTPPathModifier:
		if p.ReplacePrefixMatch != nil {
			return &routetable.PathRewrite{Rewrite: &routetable.PathRewrite_Prefix{Prefix: *p.ReplacePrefixMatch}}
		}
	}
	return nil
}

func isPrefixReplace(p *gwv1.HTTPPathModifier) bool {
	return p != nil && p.Type == gwv1.PrefixMatchHTTPPathModifier
}

func cors(f *gwv1.HTTPCORSFilter) *routetable.CorsPolicy {
	if f == nil {
		return nil
	}
	c := &routetable.CorsPolicy{MaxAgeSeconds: f.MaxAge}
	for _, o := range f.AllowOrigins {
		c.AllowOrigins = append(c.AllowOrigins, string(o))
	}
	for _, m := range f.AllowMethods {
		c.AllowMethods = append(c.AllowMethods, string(m))
	}
	for _, h := range f.AllowHeaders {
		c.AllowHeaders = append(c.AllowHeaders, string(h))
	}
	for _, h := range f.ExposeHeaders {
		c.ExposeHeaders = append(c.ExposeHeaders, string(h))
	}
	if f.AllowCredentials != nil {
		c.AllowCredentials = *f.AllowCredentials
	}
	return c
}

// validRegex checks an expression once per translation, with the
// compiler the proxies use: what is accepted here is what they serve.
func (t *translator) validRegex(expr string) error {
	if err, ok := t.regexes[expr]; ok {
		return err
	}
	_, err := routetable.CompileRegex(expr)
	t.regexes[expr] = err
	return err
}

func hasHeader(ms []*routetable.HeaderMatcher, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

func hasQuery(ms []*routetable.QueryParameterMatcher, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

// addHeaderMatch adds a header matcher unless an equivalent name came first
// (only the first counts), or says why the value is not a valid RE2.
func (t *translator) addHeaderMatch(rm *routetable.RouteMatch, rawName, value string, regex bool, field fieldPath, i int) string {
	name := textproto.CanonicalMIMEHeaderKey(rawName)
	if hasHeader(rm.Headers, name) {
		return ""
	}
	if problem := checkHeaderMatch(rawName, value, regex, fmt.Sprintf("%s.headers[%d]", field, i)); problem != "" {
		return problem
	}
	hm := &routetable.HeaderMatcher{Name: name, Value: &routetable.HeaderMatcher_Exact{Exact: value}}
	if regex {
		if err := t.validRegex(value); err != nil {
			return fmt.Sprintf("%s.headers[%d].value: %v", field, i, err)
		}
		hm.Value = &routetable.HeaderMatcher_Regex{Regex: value}
	}
	rm.Headers = append(rm.Headers, hm)
	return ""
}
