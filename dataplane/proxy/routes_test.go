package proxy_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// A route the proxy cannot compile (the header expression that froze a
// shared Gateway: Go compiles it alone, not anchored; the hub used to
// check it alone) costs only that
// route: the version is applied, the other routes of the virtual host are
// served in their precedence order, and the route is reported by table and
// route object with why, in RoutesNotServed (which travels to the hub with
// the acknowledgement) and in a metric.
func TestARouteThatDoesNotCompileCostsOnlyThatRoute(t *testing.T) {
	v1, v2, v3 := newEcho(t, "v1"), newEcho(t, "v2"), newEcho(t, "v3")
	port := freePort(t)
	deep := strings.Repeat("(", 999) + "a" + strings.Repeat(")", 999)
	tbl := table(t, port, `{"name":"member-1/infra/gw","gateway":"infra/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP","virtualHosts":[{"domain":"*","routes":[
		{"match":{"prefix":"/","headers":[{"name":"X-Tenant","regex":"`+deep+`"}]},"route":{"backends":[{"backend":"v2","weight":1}]},
		 "source":{"kind":"HTTPRoute","namespace":"tenant-a","name":"bad","generation":"3"}},
		{"match":{"prefix":"/","headers":[{"name":"X-Tenant","exact":"b"}]},"route":{"backends":[{"backend":"v2","weight":1}]},
		 "source":{"kind":"HTTPRoute","namespace":"tenant-b","name":"good","generation":"1"}},
		{"match":{"regex":"/re/[0-9]+"},"route":{"backends":[{"backend":"v3","weight":1}]},
		 "source":{"kind":"HTTPRoute","namespace":"tenant-b","name":"numbers","generation":"1"}},
		{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]},
		 "source":{"kind":"HTTPRoute","namespace":"tenant-c","name":"rest","generation":"1"}}
	]}]}]}`, v1, v2, v3)
	reg := prometheus.NewRegistry()
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", Registry: reg})
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, nil); err != nil {
		t.Fatalf("one route that does not compile failed the whole version: %v", err)
	}

	for _, tc := range []struct {
		name, target, tenant, want string
	}{
		{"the left-out route's requests go to the next route that matches", "/", "a", "v1"},
		{"the route after it keeps its precedence", "/", "b", "v2"},
		{"a regular expression route after it is served", "/re/12", "", "v3"},
		{"the last route is served", "/other", "", "v1"},
	} {
		hdr := map[string]string{}
		if tc.tenant != "" {
			hdr["X-Tenant"] = tc.tenant
		}
		if r := do(t, port, "GET", "x", tc.target, hdr); r.code != 200 || r.body.Backend != tc.want {
			t.Errorf("%s: GET %s (X-Tenant %q) → %d from %q, want 200 from %s", tc.name, tc.target, tc.tenant, r.code, r.body.Backend, tc.want)
		}
	}

	got := p.RoutesNotServed()
	why := got["member-1/infra/gw"]["HTTPRoute/tenant-a/bad@3"]
	if len(got) != 1 || len(got["member-1/infra/gw"]) != 1 ||
		!strings.Contains(why, "HTTPRoute tenant-a/bad rule 0 match 0: regular expression") ||
		!strings.Contains(why, "is 1999 bytes long and at most 1024 are allowed: shorten it") {
		t.Fatalf("routes not served: %v; want only HTTPRoute/tenant-a/bad@3 of member-1/infra/gw, naming the match, why and the fix", got)
	}
	if n := gauge(t, reg, "gatehouse_proxy_routes_not_served"); n != 1 {
		t.Errorf("gatehouse_proxy_routes_not_served = %v, want 1", n)
	}

	// The next version without the bad route reports nothing.
	tbl.Listeners[0].VirtualHosts[0].Routes = tbl.Listeners[0].VirtualHosts[0].Routes[1:]
	if err := p.Apply("v2", []*rt.RouteTable{tbl}, nil); err != nil {
		t.Fatal(err)
	}
	if got := p.RoutesNotServed(); len(got) != 0 {
		t.Errorf("after the route was removed, not served: %v", got)
	}
	if n := gauge(t, reg, "gatehouse_proxy_routes_not_served"); n != 0 {
		t.Errorf("gatehouse_proxy_routes_not_served = %v after the route was removed, want 0", n)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
