package adversarial

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHeaders: header spellings and hop-by-hop handling. A header reaches
// the backend only under the one spelling every parser reads the same
// way, and a client cannot use hop-by-hop rules to remove what the route
// sets.
func TestHeaders(t *testing.T) {
	b := newBed(t)

	// backendHead sends extra header lines on a /public request and
	// returns the status and the head the backend received.
	backendHead := func(t *testing.T, lines string) (int, string) {
		c := dialRaw(t, b.port)
		resp, body := c.roundTrip("GET /public HTTP/1.1\r\nHost: a.example.com\r\n" + lines + "\r\n")
		return resp.StatusCode, body
	}
	rejected := func(lines string) func(t *testing.T) {
		return func(t *testing.T) {
			b.answeredByProxy(t, "GET /public HTTP/1.1\r\nHost: a.example.com\r\n"+lines+"\r\n", http.StatusBadRequest)
		}
	}
	// notForwarded: the request is served but the backend never sees
	// the named text in its head.
	notForwarded := func(lines, absent string) func(t *testing.T) {
		return func(t *testing.T) {
			code, head := backendHead(t, lines)
			if code != http.StatusOK {
				t.Fatalf("got %d %q, want 200", code, head)
			}
			if strings.Contains(strings.ToLower(head), strings.ToLower(absent)) {
				t.Fatalf("the backend got %q:\n%s", absent, head)
			}
		}
	}

	runCases(t, "headers", []adversarialCase{
		{"underscore-dropped", "nginx underscores_in_headers off, Envoy DROP_HEADER: X_User never reaches a backend",
			notForwarded("X_User: admin\r\nX_Tenant: tenant-b\r\n", "_")},
		{"underscore-not-matched", "a dropped header cannot satisfy a route's header match either", func(t *testing.T) {
			code, head := backendHead(t, "X-User: alice\r\nX_User: admin\r\n")
			if code != http.StatusOK || !strings.Contains(head, "X-User: alice\r\n") || strings.Contains(head, "admin") {
				t.Fatalf("got %d:\n%s", code, head)
			}
		}},
		{"space-before-colon", "RFC 9112 §5.1: whitespace between name and colon: 400",
			rejected("X-Tenant : tenant-b\r\n")},
		{"non-token-name", "RFC 9110 §5.1: a field name is a token: 400",
			rejected("X(Tenant): tenant-b\r\n")},
		{"empty-name", "RFC 9110 §5.1: a field name is at least one character: 400",
			rejected(": value\r\n")},
		{"obs-fold", "RFC 9112 §5.2: obs-fold is rejected (400) or replaced, never forwarded", func(t *testing.T) {
			code, head := backendHead(t, "X-Fold: a\r\n b\r\n")
			if code == http.StatusOK && strings.Contains(head, "\r\n ") {
				t.Fatalf("the backend got a folded line:\n%s", head)
			}
			if code != http.StatusOK && code != http.StatusBadRequest {
				t.Fatalf("got %d", code)
			}
		}},
		{"leading-space-first-header", "RFC 9112 §2.2: whitespace before the first field: 400",
			rejected(" X-A: 1\r\n")},
		{"nul-in-value", "RFC 9110 §5.5: NUL in a field value: 400",
			rejected("X-A: a\x00b\r\n")},
		{"cr-in-value", "RFC 9110 §5.5: a bare CR in a field value: 400",
			rejected("X-A: a\rX-B: b\r\n")},
		{"connection-names-route-header", "RFC 9110 §7.6.1: Connection cannot remove a header the route sets", func(t *testing.T) {
			code, head := backendHead(t, "Connection: X-Tenant\r\nX-Tenant: tenant-b\r\n")
			if code != http.StatusOK || !strings.Contains(head, "X-Tenant: tenant-a\r\n") || strings.Contains(head, "tenant-b") {
				t.Fatalf("got %d, want the route's X-Tenant only:\n%s", code, head)
			}
		}},
		{"connection-names-xff", "RFC 9110 §7.6.1: Connection cannot remove X-Forwarded-For the proxy sets", func(t *testing.T) {
			code, head := backendHead(t, "Connection: X-Forwarded-For\r\n")
			if code != http.StatusOK || !strings.Contains(head, "X-Forwarded-For: 127.0.0.1\r\n") {
				t.Fatalf("got %d, want X-Forwarded-For set by the proxy:\n%s", code, head)
			}
		}},
		{"xff-not-trusted", "Envoy use_remote_address, xff_num_trusted_hops 0: a client's X-Forwarded-* is replaced, not passed on", func(t *testing.T) {
			code, head := backendHead(t, "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: admin.internal\r\nX-Forwarded-Proto: https\r\n")
			if code != http.StatusOK || strings.Contains(head, "10.0.0.1") || strings.Contains(head, "admin.internal") || strings.Contains(head, "https") ||
				!strings.Contains(head, "X-Forwarded-For: 127.0.0.1\r\n") {
				t.Fatalf("got %d, want only the proxy's own X-Forwarded-*:\n%s", code, head)
			}
		}},
		{"hop-by-hop-not-forwarded", "RFC 9110 §7.6.1: Connection-listed and hop-by-hop fields are not forwarded",
			notForwarded("Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate\r\n", "x-secret")},
		{"keep-alive-not-forwarded", "RFC 9110 §7.6.1: Keep-Alive and Proxy-Connection are hop-by-hop",
			notForwarded("Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n", "keep-alive")},
		{"connection-close-honoured", "RFC 9112 §9.6: Connection: close ends the connection after the response", func(t *testing.T) {
			c := dialRaw(t, b.port)
			resp, _ := c.roundTrip("GET /public HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d", resp.StatusCode)
			}
			if closed, _ := c.closedWithin(2 * time.Second); !closed {
				t.Fatal("the connection stayed open after Connection: close")
			}
		}},
	})
}
