package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// BenchmarkServe is the proxy's own work on a request, without sockets:
// screening, routing and answering a route's direct response. It is where
// a per-request check (such as whether the proxy is draining) shows.
func BenchmarkServe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	p := New(Options{BindAddress: "127.0.0.1"})
	tbl := &rt.RouteTable{Gateway: "bench/gw", Listeners: []*rt.Listener{{Name: "http", Port: port, Protocol: rt.Protocol_HTTP,
		VirtualHosts: []*rt.VirtualHost{{Domain: "*", Routes: []*rt.Route{{
			Match:  &rt.RouteMatch{Path: &rt.RouteMatch_Prefix{Prefix: "/"}},
			Action: &rt.Route_DirectResponse{DirectResponse: &rt.DirectResponse{Status: 200, Body: "ok"}},
		}}}}}}}
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(b.Context()) })
	r := httptest.NewRequest(http.MethodGet, "http://app.example/item", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		p.serve(w, r, port)
	}
}

// discardWriter is a ResponseWriter that keeps nothing but its header.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
