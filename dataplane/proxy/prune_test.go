package proxy_test

import (
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// Routes and endpoints churn over a proxy's life: a route deleted takes its
// metric series along, and a backend endpoint or backend TLS setting that
// is gone takes its pooled connections along.
func TestWhatIsGoneLeavesTheProxy(t *testing.T) {
	const n = 12

	t.Run("series of deleted routes", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", Registry: reg})
		t.Cleanup(func() { _ = p.Close(t.Context()) })
		echo := newEcho(t, "echo")
		port := freePort(t)
		for i := range n {
			b := echo.backend()
			b.Name = fmt.Sprintf("shop/echo-%d", i)
			tbl := oneRoute(port, b)
			tbl.Listeners[0].VirtualHosts[0].Routes[0].Source = &rt.RouteSource{Kind: "HTTPRoute", Namespace: "shop", Name: fmt.Sprintf("web-%d", i)}
			if err := p.Apply(fmt.Sprint(i), []*rt.RouteTable{tbl}, nil); err != nil {
				t.Fatal(err)
			}
			if r := do(t, port, "GET", "x", "/", nil); r.code != 200 {
				t.Fatalf("route %d answered %d", i, r.code)
			}
		}
		if got := seriesOf(t, reg, "gatehouse_proxy_route_requests_total"); got != 1 {
			t.Errorf("after %d routes were replaced one by one, the proxy exports %d route series; want the live route's 1", n, got)
		}
	})

	for _, c := range []struct {
		name string
		tls  bool
	}{{"pooled connections of endpoints that are gone", false}, {"pools of backend TLS settings that are gone", true}} {
		t.Run(c.name, func(t *testing.T) {
			p := start(t)
			port := freePort(t)
			var open atomic.Int64
			for i := range n {
				srv := countingBackend(t, &open, c.tls)
				b := &rt.Backend{Name: "shop/echo", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{endpointOf(t, srv.URL)}}
				if c.tls {
					ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
					// Each version names other subject alt names: another
					// way of reaching the backend, another pool.
					b.Tls = &rt.BackendTLS{Sni: "example.com", CaPem: ca, SubjectAltNames: []string{"example.com", fmt.Sprintf("v%d.example.com", i)}}
				}
				if err := p.Apply(fmt.Sprint(i), []*rt.RouteTable{oneRoute(port, b)}, nil); err != nil {
					t.Fatal(err)
				}
				if r := do(t, port, "GET", "x", "/", nil); r.code != 200 {
					t.Fatalf("version %d answered %d: %s", i, r.code, r.rawBody)
				}
			}
			// The live backend keeps its idle connection; the others' are closed.
			deadline := time.Now().Add(5 * time.Second)
			for open.Load() > 1 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if got := open.Load(); got > 1 {
				t.Errorf("after %d versions each to a new backend, %d connections to backends are open; want at most the live one's", n, got)
			}
		})
	}
}

// countingBackend answers 200 and counts the connections open to it in open.
func countingBackend(t *testing.T, open *atomic.Int64, tls bool) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func seriesOf(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}
