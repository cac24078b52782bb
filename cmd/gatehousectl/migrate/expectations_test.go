package migrate

import (
	"cmp"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/migrate/migratetest"
)

// share is one backend of a weighted split, as expectations.yaml names it.
type share = migratetest.Share

// TestExpectations sends every request of testdata/expectations.yaml through
// a model of HTTPRoute matching over the routes converted from its file. The
// expectations were written from the Ingress semantics; this keeps them and
// the converter in agreement before the integration test runs them for real.
func TestExpectations(t *testing.T) {
	exp, err := migratetest.Load(filepath.Join("testdata", "expectations.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ns, name, _ := strings.Cut(exp.Gateway, "/")
	if gw := (types.NamespacedName{Namespace: ns, Name: name}); gw != sharedGateway {
		t.Fatalf("expectations are for Gateway %s, the tests convert for %s", gw, sharedGateway)
	}
	cases := map[string]testCase{}
	for _, tc := range loadCases(t) {
		cases[tc.name] = tc
	}
	covered := map[string]bool{}
	for _, f := range exp.Files {
		tc, ok := cases[f.File]
		if !ok {
			t.Errorf("expectations name %s, which is not in testdata/ingress", f.File)
			continue
		}
		covered[f.File] = true
		if len(f.Requests) < 2 {
			t.Errorf("%s: %d requests; check at least 2", f.File, len(f.Requests))
		}
		routes := tc.convert().Routes
		for _, e := range f.Requests {
			if err := e.WellFormed(); err != nil {
				t.Errorf("%s: %s%s: %v", f.File, e.Host, e.Path, err)
				continue
			}
			got := serve(routes, sharedGateway, requestOf(e))
			if want := outcomeOf(e); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s:\n got %+v\nwant %+v", f.File, e, got, want)
			}
		}
	}
	for name := range cases {
		if !covered[name] {
			t.Errorf("testdata/ingress/%s has no entry in testdata/expectations.yaml", name)
		}
	}
}

func requestOf(e migratetest.Expectation) request {
	r := request{scheme: e.RequestScheme(), host: e.Host, path: e.Path, headers: map[string]string{}}
	for k, v := range e.Headers {
		r.headers[strings.ToLower(k)] = v
	}
	return r
}

func outcomeOf(e migratetest.Expectation) outcome {
	o := outcome{status: e.WantStatus, service: e.WantService, port: e.WantPort, path: e.WantPath, split: e.WantSplit, location: e.WantLocation}
	if len(e.WantResponseHeaders) > 0 {
		o.headers = map[string]string{}
		for k, v := range e.WantResponseHeaders {
			o.headers[strings.ToLower(k)] = v
		}
	}
	return o
}

type request struct {
	scheme, host, path string
	headers            map[string]string // lower-case names
}

type outcome struct {
	status   int
	service  string
	port     int32
	path     string
	split    []share
	location string
	headers  map[string]string // response headers the Gateway adds
}

// listener is one of the two listeners the expectations assume.
type listener struct {
	name string
	port int32
}

func listenerFor(scheme string) listener {
	if scheme == "https" {
		return listener{"https", 443}
	}
	return listener{"http", 80}
}

// serve is a model of an HTTPRoute implementation (Gatehouse's where the spec
// leaves a choice): attach by parentRef, pick the routes of the most specific
// matching hostname, then the rule by match precedence, then act.
func serve(routes []*gwv1.HTTPRoute, gw types.NamespacedName, req request) outcome {
	l := listenerFor(req.scheme)
	type candidate struct {
		route       *gwv1.HTTPRoute
		rule        gwv1.HTTPRouteRule
		match       gwv1.HTTPRouteMatch
		order       int
		class, size int
		headers     int
	}
	var attached []*gwv1.HTTPRoute
	best := -1
	for _, r := range routes {
		if !attaches(r, gw, l) {
			continue
		}
		score := hostScore(r.Spec.Hostnames, req.host)
		switch {
		case score < 0 || score < best:
			continue
		case score > best:
			attached, best = nil, score
		}
		attached = append(attached, r)
	}
	slices.SortFunc(attached, func(a, b *gwv1.HTTPRoute) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var cands []candidate
	for _, r := range attached {
		for _, rule := range r.Spec.Rules {
			matches := rule.Matches
			if len(matches) == 0 {
				matches = []gwv1.HTTPRouteMatch{{}}
			}
			for _, m := range matches {
				typ, value := pathOf(m)
				if !pathMatches(typ, value, req.path) || !headersMatch(m.Headers, req.headers) {
					continue
				}
				class := map[gwv1.PathMatchType]int{gwv1.PathMatchExact: 0, gwv1.PathMatchRegularExpression: 1, gwv1.PathMatchPathPrefix: 2}[typ]
				cands = append(cands, candidate{route: r, rule: rule, match: m, order: len(cands), class: class, size: len(strings.TrimSuffix(value, "/")), headers: len(m.Headers)})
			}
		}
	}
	if len(cands) == 0 {
		return outcome{status: 404}
	}
	c := slices.MinFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.class, b.class), cmp.Compare(b.size, a.size), cmp.Compare(b.headers, a.headers), cmp.Compare(a.order, b.order))
	})
	return act(c.route, c.rule, c.match, req, l)
}

func attaches(r *gwv1.HTTPRoute, gw types.NamespacedName, l listener) bool {
	for _, p := range r.Spec.ParentRefs {
		ns := r.Namespace
		if p.Namespace != nil {
			ns = string(*p.Namespace)
		}
		if string(p.Name) != gw.Name || ns != gw.Namespace ||
			(p.SectionName != nil && string(*p.SectionName) != l.name) ||
			(p.Port != nil && int32(*p.Port) != l.port) {
			continue
		}
		return true
	}
	return false
}

// hostScore ranks how specifically hostnames match host: -1 not at all, 0
// for no hostnames, then wildcards by length, then exact names.
func hostScore(hostnames []gwv1.Hostname, host string) int {
	if len(hostnames) == 0 {
		return 0
	}
	best := -1
	for _, h := range hostnames {
		s := string(h)
		switch {
		case s == host:
			best = max(best, 10000+len(s))
		case strings.HasPrefix(s, "*.") && strings.HasSuffix(host, s[1:]) && len(host) > len(s)-1:
			best = max(best, len(s))
		}
	}
	return best
}

func pathMatches(typ gwv1.PathMatchType, value, path string) bool {
	switch typ {
	case gwv1.PathMatchExact:
		return path == value
	case gwv1.PathMatchPathPrefix:
		prefix := strings.TrimSuffix(value, "/")
		return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
	case gwv1.PathMatchRegularExpression:
		return regexp.MustCompile("^(?:" + value + ")$").MatchString(path)
	}
	return false
}

func headersMatch(want []gwv1.HTTPHeaderMatch, got map[string]string) bool {
	for _, h := range want {
		v, ok := got[strings.ToLower(string(h.Name))]
		if !ok || v != h.Value {
			return false
		}
	}
	return true
}

// act applies the rule's filters and picks its backend.
func act(route *gwv1.HTTPRoute, rule gwv1.HTTPRouteRule, m gwv1.HTTPRouteMatch, req request, l listener) outcome {
	_, prefix := pathOf(m)
	path := req.path
	var headers map[string]string
	for _, f := range rule.Filters {
		switch {
		case f.RequestRedirect != nil:
			return outcome{status: cmp.Or(derefInt(f.RequestRedirect.StatusCode), 302), location: location(f.RequestRedirect, req, prefix, l)}
		case f.URLRewrite != nil && f.URLRewrite.Path != nil:
			path = modifyPath(f.URLRewrite.Path, path, prefix)
		case f.CORS != nil:
			if origin, ok := req.headers["origin"]; ok && originAllowed(f.CORS.AllowOrigins, origin) {
				headers = map[string]string{"access-control-allow-origin": origin}
			}
		}
	}
	var shares []share
	for _, b := range rule.BackendRefs {
		ns := route.Namespace
		if b.Namespace != nil {
			ns = string(*b.Namespace)
		}
		w := int32(1)
		if b.Weight != nil {
			w = *b.Weight
		}
		shares = append(shares, share{Service: ns + "/" + string(b.Name), Port: int32(*b.Port), Weight: w})
	}
	switch len(shares) {
	case 0:
		return outcome{status: 500}
	case 1:
		return outcome{status: 200, service: shares[0].Service, port: shares[0].Port, path: path, headers: headers}
	}
	return outcome{status: 200, split: shares, path: path, headers: headers}
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// location is the Location header of a RequestRedirect, as the Gateway API
// derives it (no port for http:80 and https:443).
func location(f *gwv1.HTTPRequestRedirectFilter, req request, prefix string, l listener) string {
	scheme, host, port := req.scheme, req.host, l.port
	if f.Scheme != nil {
		scheme = *f.Scheme
		port = map[string]int32{"http": 80, "https": 443}[scheme]
	}
	if f.Hostname != nil {
		host = string(*f.Hostname)
	}
	if f.Port != nil {
		port = int32(*f.Port)
	}
	path := req.path
	if f.Path != nil {
		path = modifyPath(f.Path, path, prefix)
	}
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		return scheme + "://" + host + path
	}
	return scheme + "://" + host + ":" + strconv.Itoa(int(port)) + path
}

// modifyPath applies an HTTPPathModifier as the table in its documentation.
func modifyPath(m *gwv1.HTTPPathModifier, path, prefix string) string {
	if m.Type == gwv1.FullPathHTTPPathModifier {
		return *m.ReplaceFullPath
	}
	rest := strings.TrimPrefix(path, strings.TrimSuffix(prefix, "/"))
	out := strings.TrimSuffix(*m.ReplacePrefixMatch, "/") + rest
	if !strings.HasPrefix(out, "/") {
		out = "/" + out
	}
	return out
}

func originAllowed(allowed []gwv1.CORSOrigin, origin string) bool {
	for _, a := range allowed {
		pattern := "^" + strings.ReplaceAll(regexp.QuoteMeta(string(a)), `\*`, `[^/]+`) + "$"
		if a == "*" || regexp.MustCompile(pattern).MatchString(origin) {
			return true
		}
	}
	return false
}
