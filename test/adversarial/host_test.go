package adversarial

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
)

// TestHost: Host and SNI confusion. A request is served by exactly one
// listener and virtual host, the one its authority names; an authority that
// is not a valid host[:port] is refused rather than guessed at.
func TestHost(t *testing.T) {
	b := newBed(t)

	badHost := func(host string) func(t *testing.T) {
		return func(t *testing.T) {
			b.answeredByProxy(t, "GET /public HTTP/1.1\r\nHost: "+host+"\r\n\r\n", http.StatusBadRequest)
		}
	}
	// servedByTenantA: a request with this Host is served by tenant A's routes
	// (403 outside /public, X-Tenant on /public).
	servedByTenantA := func(host string) func(t *testing.T) {
		return func(t *testing.T) {
			c := dialRaw(t, b.port)
			resp, body := c.roundTrip("GET /public HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "X-Tenant: tenant-a") {
				t.Fatalf("Host %q: got %d %q, want tenant A's route", host, resp.StatusCode, body)
			}
		}
	}
	tlsRequest := func(sni, host string) (*http.Response, string) {
		c := dialTLS(t, b.tlsPort, sni)
		return c.roundTrip("GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")
	}

	runCases(t, "host", []adversarialCase{
		{"port-not-digits", "RFC 9112 §3.2, RFC 3986 §3.2.3: port = *DIGIT; else 400", badHost("b.example.com:evil")},
		{"brackets-not-ip", "RFC 3986 §3.2.2: [..] holds an IP literal only; else 400", badHost("[a.example.com]")},
		{"userinfo", "RFC 9110 §4.2.4: no userinfo in an http authority; 400", badHost("user@a.example.com")},
		{"two-ports", "RFC 3986 §3.2: one port at most; 400", badHost("a.example.com:80:80")},
		{"space-inside", "RFC 3986 §3.2.2: reg-name has no spaces; 400", badHost("a.example.com x")},
		{"slash", "RFC 3986 §3.2.2: reg-name has no '/'; 400", badHost("a.example.com/x")},
		{"percent", "Envoy/nginx: a percent-encoded Host is not decoded to route; 400", badHost("a%2eexample.com")},
		{"port-too-large", "RFC 9112 §3.2: an authority naming no valid port; 400", badHost("a.example.com:99999")},
		{"duplicate-host", "RFC 9112 §3.2: more than one Host field: 400", func(t *testing.T) {
			c := dialRaw(t, b.port)
			resp, _ := c.roundTrip("GET /public HTTP/1.1\r\nHost: x.example.com\r\nHost: a.example.com\r\n\r\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("got %d, want 400", resp.StatusCode)
			}
		}},
		{"missing-host", "RFC 9112 §3.2: an HTTP/1.1 request without Host: 400", func(t *testing.T) {
			c := dialRaw(t, b.port)
			resp, _ := c.roundTrip("GET /public HTTP/1.1\r\n\r\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("got %d, want 400", resp.StatusCode)
			}
		}},
		{"case-and-port", "RFC 9110 §4.2.3: host is case-insensitive; the port does not change the virtual host",
			servedByTenantA("A.Example.COM:80")},
		{"absolute-form-wins", "RFC 9112 §3.2.2: absolute-form target overrides Host", func(t *testing.T) {
			c := dialRaw(t, b.port)
			resp, body := c.roundTrip("GET http://a.example.com/public HTTP/1.1\r\nHost: x.example.com\r\n\r\n")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "X-Tenant: tenant-a") || !strings.Contains(body, "Host: a.example.com\r\n") {
				t.Fatalf("got %d %q, want tenant A's route with Host a.example.com", resp.StatusCode, body)
			}
			if strings.Contains(body, "x.example.com") {
				t.Fatalf("the ignored Host reached the backend:\n%s", body)
			}
		}},
		{"sni-host-mismatch", "RFC 9110 §15.5.20: Host of another listener than the SNI's: 421", func(t *testing.T) {
			resp, body := tlsRequest("a.example.com", "b.example.com")
			if resp.StatusCode != http.StatusMisdirectedRequest {
				t.Fatalf("got %d %q, want 421", resp.StatusCode, body)
			}
		}},
		{"no-sni-other-listener", "RFC 9110 §15.5.20: no SNI gets the default certificate; another listener's Host: 421", func(t *testing.T) {
			c := dialTLS(t, b.tlsPort, "")
			if cn := c.c.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "default.example.com" {
				t.Fatalf("without SNI the proxy presented %q, want the catch-all listener's certificate", cn)
			}
			resp, body := c.roundTrip("GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != http.StatusMisdirectedRequest {
				t.Fatalf("got %d %q, want 421: the certificate presented was not a.example.com's listener's", resp.StatusCode, body)
			}
		}},
		{"no-sni-default-listener", "a client without SNI is still served by the listener whose certificate it got", func(t *testing.T) {
			resp, body := tlsRequest("", "other.example.com")
			if resp.StatusCode != http.StatusOK || strings.Contains(body, "X-Tenant") {
				t.Fatalf("got %d %q, want the catch-all listener's route", resp.StatusCode, body)
			}
		}},
		{"sni-matches", "the listener named by SNI and Host serves", func(t *testing.T) {
			resp, body := tlsRequest("b.example.com", "b.example.com")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "X-Tenant: tenant-b") {
				t.Fatalf("got %d %q, want tenant B's route", resp.StatusCode, body)
			}
		}},
	})
}
