package adversarial

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// answering is a route of a tenant that answers by itself, so that a test
// tells from the body which route a request took.
func answering(tenant, body string, m *routetable.RouteMatch) *routetable.Route {
	return &routetable.Route{
		Source: &routetable.RouteSource{Kind: "HTTPRoute", Namespace: tenant, Name: body, Generation: 1},
		Match:  m,
		Action: &routetable.Route_DirectResponse{DirectResponse: &routetable.DirectResponse{Status: 200, Body: body}},
	}
}

// TestRegexRoutes feeds gatehouse-proxy, from a table file as at a fresh
// start, routes whose expressions it must not compile: one tenant's route
// costs only that route, and an expression cannot escape the anchors
// around it.
func TestRegexRoutes(t *testing.T) {
	be, _ := echoBackend(t)
	port := freePort(t)
	prefix := func(p string) *routetable.RouteMatch {
		return &routetable.RouteMatch{Path: &routetable.RouteMatch_Prefix{Prefix: p}}
	}
	tenantHeader := func(m *routetable.RouteMatch, v *routetable.HeaderMatcher) *routetable.RouteMatch {
		v.Name = "X-Tenant"
		m.Headers = append(m.Headers, v)
		return m
	}
	// Go compiles it alone, not anchored ("nests too deeply"): the
	// expression that once froze a shared Gateway.
	deep := strings.Repeat("(", 999) + "a" + strings.Repeat(")", 999)
	tbl := table([]*routetable.Listener{httpListener("http", port, "", vhost("*",
		answering("tenant-a", "deep", tenantHeader(prefix("/"), &routetable.HeaderMatcher{Value: &routetable.HeaderMatcher_Regex{Regex: deep}})),
		// Anchored by wrapping, "/x)|(.*" would read "^(?:/x)|(.*)$" and
		// take every path of the host.
		answering("tenant-a", "escaped", &routetable.RouteMatch{Path: &routetable.RouteMatch_Regex{Regex: "/x)|(.*"}}),
		answering("tenant-b", "b", tenantHeader(prefix("/"), &routetable.HeaderMatcher{Value: &routetable.HeaderMatcher_Exact{Exact: "b"}})),
		// Accepted by the dialect (about 600 instructions), and costly on a
		// long value: Go's regexp walks every state for every byte.
		answering("tenant-c", "costly", &routetable.RouteMatch{Path: &routetable.RouteMatch_Prefix{Prefix: "/costly"},
			Headers: []*routetable.HeaderMatcher{{Name: "X-Costly", Value: &routetable.HeaderMatcher_Regex{Regex: strings.Repeat(".*a", 200) + "b"}}}}),
		answering("tenant-c", "not-costly", prefix("/costly")),
		prefixRoute("rest", "/", "ns/echo:80")))}, backendAt(t, "ns/echo:80", be.addr))
	p := startProxy(t, proxyOptions{}, tbl)

	request := func(t *testing.T, path, tenant string) string {
		t.Helper()
		c := dialRaw(t, port)
		resp, body := c.roundTrip("GET " + path + " HTTP/1.1\r\nHost: shop.example.com\r\nX-Tenant: " + tenant + "\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s (X-Tenant %s): %d %q", path, tenant, resp.StatusCode, body)
		}
		// A direct response ends its body with a newline.
		return strings.TrimSuffix(body, "\n")
	}
	runCases(t, "regex", []adversarialCase{
		{"bad-route-costs-only-itself", "a route the proxy cannot compile is left out and the rest served (Envoy NACKs the whole RouteConfiguration)", func(t *testing.T) {
			if body := request(t, "/", "a"); !strings.HasPrefix(body, "GET / HTTP/1.1\r\n") {
				t.Errorf("a request for the left-out route got %q, want the next matching route (the backend)", body)
			}
			if body := request(t, "/", "b"); body != "b" {
				t.Errorf("another tenant's route after it answers %q, want b", body)
			}
		}},
		{"no-escape-from-anchors", "an expression is anchored on the whole path; one that parses only once wrapped is refused", func(t *testing.T) {
			if body := request(t, "/anything", "c"); body == "escaped" {
				t.Errorf("%q took a path it does not match", "/x)|(.*")
			}
		}},
		{"reported", "a left-out route is logged by table, route and why, and counted", func(t *testing.T) {
			log := p.logText()
			for _, want := range []string{"route not served", "HTTPRoute/tenant-a/deep@1", "is 1999 bytes long and at most 1024 are allowed", "HTTPRoute/tenant-a/escaped@1", "unexpected )"} {
				if !strings.Contains(log, want) {
					t.Errorf("the proxy log does not say %q", want)
				}
			}
			if !strings.Contains(metricsText(t, p), "\ngatehouse_proxy_routes_not_served 2\n") {
				t.Errorf("gatehouse_proxy_routes_not_served is not 2")
			}
		}},
		{"work-bounded", "PCRE match limits (nginx): a request's regex matching is bounded; past the bound a regex does not match, counted", func(t *testing.T) {
			costly := func(value string) string {
				c := dialRaw(t, port)
				resp, body := c.roundTrip("GET /costly HTTP/1.1\r\nHost: shop.example.com\r\nX-Costly: " + value + "\r\nConnection: close\r\n\r\n")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /costly: %d %q", resp.StatusCode, body)
				}
				return strings.TrimSuffix(body, "\n")
			}
			if body := costly(strings.Repeat("a", 200) + "b"); body != "costly" {
				t.Fatalf("a short value the expression matches got %q, want the costly route", body)
			}
			// 40 KiB against ~600 instructions is ~24 Mi units of work,
			// about a quarter of a second of one core without the bound.
			if body := costly(strings.Repeat("a", 40<<10) + "b"); body != "not-costly" {
				t.Errorf("a 40 KiB value got %q, want the next route (not-costly): the regex work bound did not hold", body)
			}
			if !strings.Contains(metricsText(t, p), "\ngatehouse_proxy_regex_over_budget_total 1\n") {
				t.Errorf("gatehouse_proxy_regex_over_budget_total is not 1")
			}
		}},
	})
}

// metricsText is the proxy's /metrics page.
func metricsText(t *testing.T, p *proxyProcess) string {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	return string(metrics)
}
