package translate

import (
	"testing"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestPathValuesAreWrittenAsTheProxyReadsRequests: the proxy writes a
// request's escapes one way before matching (routetable.CanonicalEscapes);
// a route's exact and prefix values are written the same way, or a route
// written with lower-case hex would never match.
func TestPathValuesAreWrittenAsTheProxyReadsRequests(t *testing.T) {
	for _, c := range []struct {
		typ       gwv1.PathMatchType
		value     string
		exact     string
		prefix    string
		unchanged bool
	}{
		{typ: gwv1.PathMatchExact, value: "/caf%c3%a9", exact: "/caf%C3%A9"},
		{typ: gwv1.PathMatchPathPrefix, value: "/%7euser/", prefix: "/~user"},
		{typ: gwv1.PathMatchRegularExpression, value: "/caf%c3%a9", unchanged: true},
	} {
		typ, value := c.typ, c.value
		e, problem := (&translator{regexes: map[string]error{}}).httpMatch(&gwv1.HTTPRouteMatch{Path: &gwv1.HTTPPathMatch{Type: &typ, Value: &value}}, fieldPath{})
		if problem != "" {
			t.Fatalf("%s %q: %s", typ, value, problem)
		}
		m := e.r.Match
		switch {
		case c.exact != "" && m.GetExact() != c.exact:
			t.Errorf("exact %q became %q, want %q", value, m.GetExact(), c.exact)
		case c.prefix != "" && m.GetPrefix() != c.prefix:
			t.Errorf("prefix %q became %q, want %q", value, m.GetPrefix(), c.prefix)
		case c.unchanged && m.GetRegex() != value:
			t.Errorf("regex %q became %q: a regex is the tenant's own", value, m.GetRegex())
		}
	}
}
