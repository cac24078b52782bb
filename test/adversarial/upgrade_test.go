package adversarial

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// upgradingBackend switches protocols whenever asked to (any Upgrade
// token, h2c included) and then echoes raw bytes: the kind of backend that
// turns a forwarded upgrade into a tunnel past routing and filters. With
// always set it answers 101 even to requests that asked for nothing.
func upgradingBackend(t testing.TB, always bool) (*rawBackend, <-chan seenRequest) {
	return httpBackend(t, func(c net.Conn, br *bufio.Reader, sr seenRequest) bool {
		up := sr.req.Header.Get("Upgrade")
		if up == "" && always {
			up = "websocket"
		}
		if up == "" {
			echo(c, sr)
			return true
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\ntunnel open\n", up)
		_, _ = io.Copy(c, br)
		return false
	})
}

// TestUpgrade: 1xx and protocol upgrades. Only upgrades the proxy knows
// how to carry (WebSocket) reach a backend; an upgrade to h2c would hand the
// client a raw HTTP/2 connection to the backend on which every later
// request skips the route table.
func TestUpgrade(t *testing.T) {
	be, seen := upgradingBackend(t, false)
	rude, _ := upgradingBackend(t, true)
	port := freePort(t)
	tbl := table([]*routetable.Listener{httpListener("http", port, "",
		vhost("*", prefixRoute("rude", "/rude", "adversarial/rude:80"), prefixRoute("any", "/", "adversarial/up:80")))},
		backendAt(t, "adversarial/up:80", be.addr), backendAt(t, "adversarial/rude:80", rude.addr))
	startProxy(t, proxyOptions{}, tbl)
	drain := func() {
		for len(seen) > 0 {
			<-seen
		}
	}
	const settings = "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"

	noH2C := func(lines string) func(t *testing.T) {
		return func(t *testing.T) {
			drain()
			c := dialRaw(t, port)
			resp, body := c.roundTrip("GET /x HTTP/1.1\r\nHost: a.example.com\r\n" + lines + "\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %q, want 200 without switching protocols", resp.StatusCode, body)
			}
			low := strings.ToLower(body)
			if strings.Contains(low, "h2c") || strings.Contains(low, "http2-settings") {
				t.Fatalf("the h2c upgrade reached the backend:\n%s", body)
			}
		}
	}

	runCases(t, "upgrade", []adversarialCase{
		{"h2c-stripped", "Envoy/nginx: Upgrade: h2c is not forwarded (RFC 9113 §3.1 removed the h2c upgrade)",
			noH2C("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" + settings)},
		{"h2c-settings-unlisted", "RFC 9113 §3.1: HTTP2-Settings is connection-specific even when Connection omits it",
			noH2C("Connection: Upgrade\r\nUpgrade: h2c\r\n" + settings)},
		{"h2c-among-tokens", "Envoy: an h2c token is removed from a list of upgrades",
			noH2C("Connection: Upgrade\r\nUpgrade: H2C, h2c\r\n")},
		{"websocket-works", "RFC 6455 §4: a WebSocket upgrade is carried end to end", func(t *testing.T) {
			drain()
			c := dialRaw(t, port)
			c.send("GET /ws HTTP/1.1\r\nHost: a.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
			resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("got %v %v, want 101", resp, err)
			}
			c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := c.br.ReadString('\n')
			if err != nil || line != "tunnel open\n" {
				t.Fatalf("read %q %v from the tunnel", line, err)
			}
			c.send("ping\n")
			if line, err := c.br.ReadString('\n'); err != nil || line != "ping\n" {
				t.Fatalf("the tunnel echoed %q %v", line, err)
			}
		}},
		{"unsolicited-101", "RFC 9110 §15.2.2: a 101 to a request without Upgrade is a bad gateway, not a tunnel", func(t *testing.T) {
			c := dialRaw(t, port)
			resp, body := c.roundTrip("GET /rude HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
			}
		}},
		{"upgrade-without-connection", "RFC 9110 §7.8: Upgrade is ignored unless Connection lists it", func(t *testing.T) {
			drain()
			c := dialRaw(t, port)
			resp, body := c.roundTrip("GET /x HTTP/1.1\r\nHost: a.example.com\r\nUpgrade: websocket\r\n\r\n")
			if resp.StatusCode != http.StatusOK || strings.Contains(strings.ToLower(body), "upgrade") {
				t.Fatalf("got %d, want a plain 200 with no Upgrade forwarded:\n%s", resp.StatusCode, body)
			}
		}},
	})
}
