package adversarial

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// TestLimits: slow and oversized clients, stalled backends. The proxy
// holds each to the limits its table carries (a GatewayClass's parameters),
// short here so that the cases run in seconds; the defaults are in
// docs/limits.md.
func TestLimits(t *testing.T) {
	// stall reads requests and never answers.
	stall := startRawBackend(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	// sink counts the connections the proxy holds open to it; it reads
	// until the proxy closes them.
	var sinkOpen atomic.Int32
	sink := startRawBackend(t, func(c net.Conn) {
		sinkOpen.Add(1)
		defer sinkOpen.Add(-1)
		_, _ = io.Copy(io.Discard, c)
	})
	echo, _ := echoBackend(t)
	port := freePort(t)
	clamped := prefixRoute("clamped", "/clamped", "ns/stall:80")
	clamped.GetRoute().RequestTimeout = &routetable.Duration{} // 0s: none, beyond any maximum
	tbl := table([]*routetable.Listener{
		httpListener("http", port, "", vhost("*",
			prefixRoute("stall", "/stall", "ns/stall:80"),
			clamped,
			prefixRoute("sink", "/sink", "ns/sink:80"),
			prefixRoute("echo", "/", "ns/echo:80"),
		)),
	}, backendAt(t, "ns/echo:80", echo.addr), backendAt(t, "ns/sink:80", sink.addr), backendAt(t, "ns/stall:80", stall.addr))
	tbl.Limits = &routetable.Limits{
		RequestTimeout:       routetable.Millis(time.Second),
		MaxRequestTimeout:    routetable.Millis(2 * time.Second),
		RequestHeaderTimeout: routetable.Millis(time.Second),
		RequestBodyTimeout:   routetable.Millis(time.Second),
		MinRequestBodyRate:   100,
	}
	startProxy(t, proxyOptions{}, tbl)

	runCases(t, "limits", []adversarialCase{
		{"stalled-backend-default-timeout", "a route without timeouts gets the class's (Envoy: 15s route timeout): 504", func(t *testing.T) {
			start := time.Now()
			resp, body := get(t, port, "a.example.com", "/stall")
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("got %d %q after %s, want 504 after the table's 1s default", resp.StatusCode, body, time.Since(start))
			}
		}},
		{"route-timeout-clamped", "a route's 0s (none) is capped at the class's maximum: 504", func(t *testing.T) {
			resp, body := get(t, port, "a.example.com", "/clamped")
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("got %d %q, want 504 after the table's 2s maximum", resp.StatusCode, body)
			}
		}},
		{"slowloris-headers", "headers must arrive within the header timeout (nginx client_header_timeout)", func(t *testing.T) {
			c := dialRaw(t, port)
			c.send("GET / HTTP/1.1\r\nHost: a.example.com\r\n")
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
					}
					if _, err := io.WriteString(c.c, "X-Drip: "+strings.Repeat("a", i%8)+"\r\n"); err != nil {
						return
					}
				}
			}()
			if closed, _ := c.closedWithin(5 * time.Second); !closed {
				t.Fatal("a client dripping header lines kept its connection 5s past a 1s header timeout")
			}
		}},
		{"body-trickle", "a body below the minimum rate gets 408 and frees its backend connection (Apache mod_reqtimeout MinRate)", func(t *testing.T) {
			c := dialRaw(t, port)
			c.send("POST /sink HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 1000\r\n\r\n")
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(500 * time.Millisecond):
					}
					if _, err := io.WriteString(c.c, "x"); err != nil {
						return
					}
				}
			}()
			if !eventually(5*time.Second, func() bool { return sinkOpen.Load() > 0 }) {
				t.Fatal("the request never reached the backend")
			}
			resp, _, err := c.tryResponse("POST")
			if err != nil {
				t.Fatalf("no answer to a body trickling 2 bytes/s against a 100 bytes/s minimum: %v", err)
			}
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("got %d, want 408", resp.StatusCode)
			}
			if !eventually(5*time.Second, func() bool { return sinkOpen.Load() == 0 }) {
				t.Fatalf("the backend connection stayed open after the 408 (%d open)", sinkOpen.Load())
			}
		}},
		{"steady-slow-body", "a body above the minimum rate is served however long it takes", func(t *testing.T) {
			c := dialRaw(t, port)
			c.send("POST /echo HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 300\r\nConnection: close\r\n\r\n")
			for range 6 { // 1.5s in all, past the 1s grace, at 200 bytes/s
				time.Sleep(250 * time.Millisecond)
				c.send(strings.Repeat("y", 50))
			}
			resp, body := c.response("POST")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %q, want 200", resp.StatusCode, body)
			}
		}},
		{"header-too-large", "70 KiB of headers is over the 60 KiB default (Envoy max_request_headers_kb): 431", func(t *testing.T) {
			c := dialRaw(t, port)
			resp, body := c.roundTrip("GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n")
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("got %d %q, want 431", resp.StatusCode, body)
			}
		}},
		{"uri-too-long", "a 100 KiB request target is over the 16 KiB default (RFC 9110 §15.5.15): 414", func(t *testing.T) {
			c := dialRaw(t, port)
			resp, body := c.roundTrip("GET /" + strings.Repeat("u", 100<<10) + " HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
			if resp.StatusCode != http.StatusRequestURITooLong {
				t.Fatalf("got %d %q, want 414", resp.StatusCode, body)
			}
		}},
		{"within-limits", "a request within every limit (3 KiB target, 40 KiB of headers) is served", func(t *testing.T) {
			c := dialRaw(t, port)
			// Lines under 4 KiB: the echo backend reads lines of at most that.
			headers := strings.Repeat("X-Big: "+strings.Repeat("b", 3<<10)+"\r\n", 13)
			resp, body := c.roundTrip("GET /" + strings.Repeat("u", 3<<10) + " HTTP/1.1\r\nHost: a.example.com\r\n" + headers + "\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %q, want 200", resp.StatusCode, body)
			}
		}},
	})
}
