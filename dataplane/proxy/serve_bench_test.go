package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
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

// BenchmarkForward is a matched request forwarded over real sockets, on
// the fast path: a keep-alive client, the proxy, and a keep-alive backend
// answering from memory. The route matches a prefix and a header, sets
// and removes request headers and adds a response header. Client and
// backend allocate nothing per request, so allocs/op is the proxy's.
func BenchmarkForward(b *testing.B) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { backend.Close() })
	go rawBackend(backend, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	bport := uint32(backend.Addr().(*net.TCPAddr).Port)
	p := New(Options{BindAddress: "127.0.0.1"})
	tbl := &rt.RouteTable{Gateway: "bench/gw",
		Backends: []*rt.Backend{{Name: "echo", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{{Address: "127.0.0.1", Port: bport}}}},
		Listeners: []*rt.Listener{{Name: "http", Port: port, Protocol: rt.Protocol_HTTP,
			VirtualHosts: []*rt.VirtualHost{{Domain: "*", Routes: []*rt.Route{{
				Match: &rt.RouteMatch{Path: &rt.RouteMatch_Prefix{Prefix: "/svc"},
					Headers: []*rt.HeaderMatcher{{Name: "X-Tenant", Value: &rt.HeaderMatcher_Exact{Exact: "t1"}}}},
				RequestHeaders:  &rt.HeaderMutation{Set: []*rt.Header{{Name: "X-Env", Value: "bench"}}, Remove: []string{"X-Debug"}},
				ResponseHeaders: &rt.HeaderMutation{Add: []*rt.Header{{Name: "X-Served-By", Value: "gatehouse"}}},
				Action:          &rt.Route_Route{Route: &rt.RouteAction{Backends: []*rt.WeightedBackend{{Backend: "echo", Weight: 1}}}},
			}}}}}}}
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(context.Background()) })
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /svc/item?id=7 HTTP/1.1\r\nHost: app.example\r\nUser-Agent: bench\r\nAccept: */*\r\nX-Tenant: t1\r\nX-Debug: 1\r\n\r\n")
	// The first answer gives the response's size (its Date is of fixed
	// width) and shows the route was taken.
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	first, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(first.Body)
	if first.StatusCode != 200 || string(body) != "ok\n" || first.Header.Get("X-Served-By") != "gatehouse" {
		b.Fatalf("first answer: %d %q %v", first.StatusCode, body, first.Header)
	}
	var head bytes.Buffer
	first.Header.Write(&head)
	size := len("HTTP/1.1 200 OK\r\n") + head.Len() + len("\r\n") + len(body)
	buf := make([]byte, size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(buf, []byte("\r\n\r\nok\n")) {
		b.Fatalf("last answer: %q", buf)
	}
}

// rawBackend answers every request head on its connections with resp,
// allocating nothing per request.
func rawBackend(ln net.Listener, resp []byte) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 16<<10)
			n := 0
			for {
				m, err := c.Read(buf[n:])
				if err != nil {
					return
				}
				n += m
				if !bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) {
					continue
				}
				n = 0
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}()
	}
}
