package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// linearMatch is the reference the index must agree with: the first route,
// in table order, whose match holds.
func linearMatch(routes []*rt.Route, req *request) int {
	for i, r := range routes {
		m := r.Match
		switch p := m.Path.(type) {
		case *rt.RouteMatch_Exact:
			if req.path != p.Exact {
				continue
			}
		case *rt.RouteMatch_Prefix:
			pre := strings.TrimSuffix(p.Prefix, "/")
			if pre != "" && req.path != pre && !strings.HasPrefix(req.path, pre+"/") {
				continue
			}
		case *rt.RouteMatch_Regex:
			if !regexp.MustCompile("^(?:" + p.Regex + ")$").MatchString(req.path) {
				continue
			}
		}
		if m.Method != "" && m.Method != req.method {
			continue
		}
		ok := true
		for _, h := range m.Headers {
			// A repeated header is one field, its values comma-joined (RFC 9110 5.3).
			v := strings.Join(req.header.Values(h.Name), ",")
			if req.header.Values(h.Name) == nil || (h.GetRegex() == "" && v != h.GetExact()) ||
				(h.GetRegex() != "" && !regexp.MustCompile("^(?:"+h.GetRegex()+")$").MatchString(v)) {
				ok = false
			}
		}
		for _, q := range m.QueryParameters {
			v, present := req.queryValue(q.Name)
			if !present || v != q.GetExact() {
				ok = false
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

type matchGen struct{ r *rand.Rand }

func (g matchGen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g matchGen) path() string {
	return g.pick("/", "/a", "/a/", "/a/b", "/ab", "/a/b/c", "/b", "/b/a", "/api/v1", "/api/v1/x", "/api", "/x.y", "/a//b")
}

func (g matchGen) route() *rt.Route {
	m := &rt.RouteMatch{}
	switch g.r.IntN(4) {
	case 0:
		m.Path = &rt.RouteMatch_Exact{Exact: g.path()}
	case 1:
		m.Path = &rt.RouteMatch_Regex{Regex: g.pick("/a.*", "/[ab]/?", "/api/v[0-9]+.*", "/b")}
	default:
		p := g.path()
		if len(p) > 1 {
			p = strings.TrimSuffix(p, "/")
		}
		m.Path = &rt.RouteMatch_Prefix{Prefix: p}
	}
	for range g.r.IntN(3) {
		h := &rt.HeaderMatcher{Name: g.pick("X-A", "X-B")}
		if g.r.IntN(4) == 0 {
			h.Value = &rt.HeaderMatcher_Regex{Regex: g.pick("[12]", "one|two")}
		} else {
			h.Value = &rt.HeaderMatcher_Exact{Exact: g.pick("1", "2", "one")}
		}
		m.Headers = append(m.Headers, h)
	}
	if g.r.IntN(4) == 0 {
		m.QueryParameters = append(m.QueryParameters, &rt.QueryParameterMatcher{Name: "q", Value: &rt.QueryParameterMatcher_Exact{Exact: g.pick("1", "2")}})
	}
	if g.r.IntN(4) == 0 {
		m.Method = g.pick("GET", "POST")
	}
	return &rt.Route{Match: m, Action: &rt.Route_DirectResponse{DirectResponse: &rt.DirectResponse{Status: 200}}}
}

func (g matchGen) request() *request {
	h := http.Header{}
	for range g.r.IntN(3) {
		h.Add(g.pick("X-A", "X-B"), g.pick("1", "2", "one", "two"))
	}
	q := ""
	if g.r.IntN(3) == 0 {
		q = "q=" + g.pick("1", "2")
	}
	return &request{path: cleanPath(g.path() + g.pick("", "", "/x", "/")), method: g.pick("GET", "POST", "HEAD"), header: h, rawQ: q}
}

// FuzzMatch checks that the indexed lookup picks exactly the route a linear
// scan in precedence order picks, for random tables and requests.
func FuzzMatch(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 99} {
		f.Add(s, uint8(10))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		g := matchGen{rand.New(rand.NewPCG(seed, 17))}
		vh := &rt.VirtualHost{Domain: "*"}
		for range int(n%64) + 1 {
			vh.Routes = append(vh.Routes, g.route())
		}
		v, err := compileVhost(vh, nil, map[string]*rt.Regex{}, nil, nil)
		if err != nil {
			t.Fatalf("compiling: %v", err)
		}
		for range 32 {
			req := g.request()
			want := linearMatch(vh.Routes, req)
			got := -1
			if r := v.match(&request{path: req.path, method: req.method, header: req.header, rawQ: req.rawQ}); r != nil {
				for i, cr := range v.routes {
					if cr == r {
						got = i
					}
				}
			}
			if got != want {
				t.Fatalf("request %s %s %v ?%s: index picked route %d, linear scan %d\nroutes: %v",
					req.method, req.path, req.header, req.rawQ, got, want, describeRoutes(vh.Routes))
			}
		}
	})
}

func describeRoutes(rs []*rt.Route) string {
	var b strings.Builder
	for i, r := range rs {
		fmt.Fprintf(&b, "\n  %d: %v", i, r.Match)
	}
	return b.String()
}

func TestHostIndexPrecedence(t *testing.T) {
	var h hostIndex[string]
	for _, host := range []string{"*.example.com", "a.example.com", "*.a.example.com", "", "*.com"} {
		h.add(host, host)
	}
	for host, want := range map[string]string{
		"a.example.com":     "a.example.com",
		"b.example.com":     "*.example.com",
		"x.a.example.com":   "*.a.example.com",
		"x.y.a.example.com": "*.a.example.com",
		"example.com":       "*.com",
		"other.org":         "",
		"com":               "",
	} {
		if got, ok := h.lookup(host); !ok || got != want {
			t.Errorf("lookup(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"": "/", "/": "/", "/a/b": "/a/b", "/a/../b": "/b", "/a/./b/": "/a/b/", "/../../x": "/x",
		"/a//b": "/a/b", "/a/b/..": "/a/", "/a/.": "/a/",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}
