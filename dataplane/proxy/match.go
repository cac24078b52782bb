package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy/wire"
	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// vhost indexes the routes of one virtual host by path so that a request
// looks only at routes whose path can match it. Routes keep the table's
// precedence order; every index list is sorted by that order, and candidates
// are visited in it, so the first route whose predicates hold wins.
type vhost struct {
	routes []*route
	exact  map[string][]int32
	prefix *trieNode
	regex  []int32
	// spec is the message compiled; partial, that some of its routes did
	// not compile (they may once their backends change).
	spec    *routetable.VirtualHost
	partial bool
}

type trieNode struct {
	routes   []int32
	children map[string]*trieNode
}

type route struct {
	// spec is the message compiled, for the next version to recognize.
	spec   *routetable.Route
	source string
	// name is the route object, "Kind namespace/name", for metrics.
	name    string
	regex   *routetable.Regex
	headers []headerMatch
	query   []queryMatch
	method  string
	action  *action
	// prefix is the matched prefix for ReplacePrefixMatch ("" for others).
	prefix string
}

type headerMatch struct {
	name  string
	exact string
	re    *routetable.Regex
}

type queryMatch struct {
	name  string
	exact string
	re    *routetable.Regex
}

// routeError is a route of a virtual host that did not compile.
type routeError struct {
	// route is the route's object as the hub keys it, or its place in the
	// virtual host when it names none.
	route string
	err   error
}

// compileVhost compiles a virtual host's routes one by one. A route that
// does not compile is left out and returned with why; the others keep
// their precedence order, so one tenant's route costs only that route.
// The routes of old (nil for none) compiled from the same messages that
// reach the same backends (same) are taken as they are.
func compileVhost(vh *routetable.VirtualHost, backends map[string]*backend, regexes map[string]*routetable.Regex, old *vhost, same func(*route) bool) (*vhost, []routeError) {
	v := &vhost{spec: vh, exact: map[string][]int32{}, prefix: &trieNode{}}
	was := earlier{old: old}
	var failed []routeError
	for i, rt := range vh.Routes {
		r := was.find(rt)
		if r == nil || !same(r) {
			var err error
			if r, err = compileRoute(rt, backends, regexes); err != nil {
				failed = append(failed, routeError{route: routeName(vh, i), err: fmt.Errorf("%s: %w", describe(rt.Source), err)})
				continue
			}
		}
		v.index(r)
	}
	v.partial = len(failed) > 0
	return v, failed
}

// index appends a route, last in precedence, to the lists its path can
// match.
func (v *vhost) index(r *route) {
	idx := int32(len(v.routes))
	v.routes = append(v.routes, r)
	switch p := r.spec.GetMatch().GetPath().(type) {
	case *routetable.RouteMatch_Exact:
		v.exact[p.Exact] = append(v.exact[p.Exact], idx)
	case *routetable.RouteMatch_Regex:
		v.regex = append(v.regex, idx)
	case *routetable.RouteMatch_Prefix:
		n := v.prefix
		for _, seg := range segments(p.Prefix) {
			if n.children == nil {
				n.children = map[string]*trieNode{}
			}
			child := n.children[seg]
			if child == nil {
				child = &trieNode{}
				n.children[seg] = child
			}
			n = child
		}
		n.routes = append(n.routes, idx)
	default:
		v.prefix.routes = append(v.prefix.routes, idx)
	}
}

// routeName names a virtual host's route in what the proxy reports.
func routeName(vh *routetable.VirtualHost, i int) string {
	if s := vh.Routes[i].Source; s != nil {
		return s.ObjectKey()
	}
	return fmt.Sprintf("virtual host %s route %d", vh.Domain, i)
}

func describe(s *routetable.RouteSource) string {
	if s == nil {
		return "?"
	}
	return fmt.Sprintf("%s %s/%s rule %d match %d", s.Kind, s.Namespace, s.Name, s.Rule, s.Match)
}

// segments splits "/a/b/" into ["a", "b"]; "/" has none.
func segments(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func compileRoute(rt *routetable.Route, backends map[string]*backend, regexes map[string]*routetable.Regex) (*route, error) {
	m := rt.GetMatch()
	r := &route{spec: rt, method: m.GetMethod(), source: describe(rt.Source)}
	if s := rt.Source; s != nil {
		r.name = routeLabel(s)
	}
	var err error
	switch p := m.GetPath().(type) {
	case *routetable.RouteMatch_Regex:
		if r.regex, err = anchored(p.Regex, regexes); err != nil {
			return nil, err
		}
	case *routetable.RouteMatch_Prefix:
		r.prefix = p.Prefix
	}
	for _, h := range m.GetHeaders() {
		hm := headerMatch{name: http.CanonicalHeaderKey(h.Name), exact: h.GetExact()}
		if re := h.GetRegex(); re != "" {
			if hm.re, err = anchored(re, regexes); err != nil {
				return nil, err
			}
		}
		r.headers = append(r.headers, hm)
	}
	for _, q := range m.GetQueryParameters() {
		qm := queryMatch{name: q.Name, exact: q.GetExact()}
		if re := q.GetRegex(); re != "" {
			if qm.re, err = anchored(re, regexes); err != nil {
				return nil, err
			}
		}
		r.query = append(r.query, qm)
	}
	if r.action, err = compileAction(rt, backends); err != nil {
		return nil, err
	}
	return r, nil
}

// anchored compiles an expression in the route table's dialect, the one
// the hub checks routes with.
func anchored(expr string, cache map[string]*routetable.Regex) (*routetable.Regex, error) {
	if re, ok := cache[expr]; ok {
		return re, nil
	}
	re, err := routetable.CompileRegex(expr)
	if err != nil {
		return nil, err
	}
	cache[expr] = re
	return re, nil
}

// request is what matching reads of a request.
type request struct {
	path   string
	method string
	// header, or on the fast path fields, are the request's header.
	header http.Header
	fields []wire.Field
	rawQ   string
	query  url.Values // parsed on first use
	// regexWork is what the request's regex matches cost so far
	// (routetable.MaxRegexWork); overBudget, that one was refused.
	regexWork  int
	overBudget bool
}

// matchRegex matches s within the request's regex budget.
func (q *request) matchRegex(re *routetable.Regex, s string) bool {
	ok, over := re.MatchWithin(s, &q.regexWork)
	q.overBudget = q.overBudget || over
	return ok
}

// headerValue is the value of the header name (canonical), its values
// joined with "," when it came more than once. On the fast path a single
// value is a view of the read buffer, valid while the request is.
func (q *request) headerValue(name string) (string, bool) {
	if q.fields == nil {
		vs := q.header[name]
		switch len(vs) {
		case 0:
			return "", false
		case 1:
			return vs[0], true
		}
		return strings.Join(vs, ","), true
	}
	var first []byte
	n := 0
	for _, f := range q.fields {
		if wire.EqualFold(f.Name, name) {
			if n == 0 {
				first = f.Value
			}
			n++
		}
	}
	switch n {
	case 0:
		return "", false
	case 1:
		return view(first), true
	}
	var b []byte
	for _, f := range q.fields {
		if wire.EqualFold(f.Name, name) {
			if n < 0 {
				b = append(b, ',')
			}
			b = append(b, f.Value...)
			n = -1
		}
	}
	return string(b), true
}

func (q *request) queryValue(name string) (string, bool) {
	if q.query == nil {
		q.query, _ = url.ParseQuery(q.rawQ)
	}
	vs, ok := q.query[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// match returns the first route, in precedence order, that matches.
func (v *vhost) match(req *request) *route {
	// Candidate lists, each in precedence order: exact, every prefix along
	// the path, and the regular expressions.
	var lists [24][]int32
	n := 0
	if l := v.exact[req.path]; len(l) > 0 {
		lists[n] = l
		n++
	}
	node := v.prefix
	if len(node.routes) > 0 {
		lists[n] = node.routes
		n++
	}
	rest := req.path
	for node != nil && len(rest) > 1 && node.children != nil {
		rest = rest[1:] // drop the leading "/"
		seg := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		node = node.children[seg]
		if node != nil && len(node.routes) > 0 {
			if n == len(lists) {
				break
			}
			lists[n] = node.routes
			n++
		}
	}
	if len(v.regex) > 0 && n < len(lists) {
		lists[n] = v.regex
		n++
	}
	heads := [24]int{}
	for {
		best, bestList := int32(-1), -1
		for i := 0; i < n; i++ {
			if heads[i] < len(lists[i]) {
				if c := lists[i][heads[i]]; best < 0 || c < best {
					best, bestList = c, i
				}
			}
		}
		if bestList < 0 {
			return nil
		}
		heads[bestList]++
		r := v.routes[best]
		if r.matches(req) {
			return r
		}
	}
}

func (r *route) matches(req *request) bool {
	if r.regex != nil && !req.matchRegex(r.regex, req.path) {
		return false
	}
	if r.method != "" && r.method != req.method {
		return false
	}
	for i := range r.headers {
		h := &r.headers[i]
		val, ok := req.headerValue(h.name)
		if !ok {
			return false
		}
		if h.re != nil {
			if !req.matchRegex(h.re, val) {
				return false
			}
		} else if val != h.exact {
			return false
		}
	}
	for i := range r.query {
		q := &r.query[i]
		val, ok := req.queryValue(q.name)
		if !ok {
			return false
		}
		if q.re != nil {
			if !req.matchRegex(q.re, val) {
				return false
			}
		} else if val != q.exact {
			return false
		}
	}
	return true
}

// cleanPath removes "." and ".." segments and duplicate slashes so that the
// path matched is the path forwarded; the trailing slash is kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.Contains(p, "/.") && !strings.Contains(p, "//") {
		if p[0] != '/' {
			return "/" + p
		}
		return p
	}
	trailing := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	s := "/" + strings.Join(out, "/")
	if trailing && s != "/" {
		s += "/"
	}
	return s
}
