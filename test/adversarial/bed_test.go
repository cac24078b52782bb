package adversarial

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// bed is the gateway most cases attack: two tenants' hostnames on one
// plaintext and one HTTPS port, in front of one echo backend.
//
// Plaintext port, any hostname:
//   - a.example.com: /public → echo; /redirect → 302 to r.example.com;
//     everything else answered 403 by the proxy itself ("denied"), so a
//     path that escapes /public shows as a 403 and never reaches the backend;
//     every forwarded request gets X-Tenant: tenant-a set by the route.
//   - anything else: / → echo.
//
// HTTPS port: listeners a.example.com and b.example.com with their own
// certificates, and a catch-all listener (certificate "default") that
// answers clients without SNI.
type bed struct {
	proxy     *proxyProcess
	port      uint32
	tlsPort   uint32
	backend   *rawBackend
	seen      <-chan seenRequest
	certNames map[string]string // key pair name → CN
}

func newBed(t *testing.T) *bed {
	t.Helper()
	be, seen := echoBackend(t)
	b := &bed{port: freePort(t), tlsPort: freePort(t), backend: be, seen: seen}
	const echo = "adversarial/echo:80"
	tenantA := vhost("a.example.com",
		withRequestHeader(prefixRoute("a-public", "/public", echo), "X-Tenant", "tenant-a"),
		redirectRoute("a-redirect", "/redirect", "r.example.com"),
		directRoute("a-denied", "/", http.StatusForbidden, "denied"),
	)
	anyHost := vhost("*", prefixRoute("any", "/", echo))
	listeners := []*routetable.Listener{
		httpListener("http", b.port, "", tenantA, anyHost),
		httpsListener("https-a", b.tlsPort, "a.example.com", []string{"adversarial/a"},
			vhost("a.example.com", withRequestHeader(prefixRoute("a-tls", "/", echo), "X-Tenant", "tenant-a"))),
		httpsListener("https-b", b.tlsPort, "b.example.com", []string{"adversarial/b"},
			vhost("b.example.com", withRequestHeader(prefixRoute("b-tls", "/", echo), "X-Tenant", "tenant-b"))),
		httpsListener("https-default", b.tlsPort, "", []string{"adversarial/default"}, vhost("*", prefixRoute("default-tls", "/", echo))),
	}
	keys := map[string]keyPair{
		"adversarial/a":       selfSigned(t, "a.example.com"),
		"adversarial/b":       selfSigned(t, "b.example.com"),
		"adversarial/default": selfSigned(t, "default.example.com"),
	}
	b.proxy = startProxy(t, proxyOptions{keyPairs: keys}, table(listeners, backendAt(t, echo, be.addr)))
	return b
}

func withRequestHeader(r *routetable.Route, name, value string) *routetable.Route {
	r.RequestHeaders = &routetable.HeaderMutation{Set: []*routetable.Header{{Name: name, Value: value}}}
	return r
}

func redirectRoute(name, prefix, host string) *routetable.Route {
	r := prefixRoute(name, prefix, "")
	r.Action = &routetable.Route_Redirect{Redirect: &routetable.RedirectAction{Hostname: host}}
	return r
}

func directRoute(name, prefix string, status uint32, body string) *routetable.Route {
	r := prefixRoute(name, prefix, "")
	r.Action = &routetable.Route_DirectResponse{DirectResponse: &routetable.DirectResponse{Status: status, Body: body}}
	return r
}

// drain forgets the requests the backend has seen so far.
func (b *bed) drain() {
	for {
		select {
		case <-b.seen:
		default:
			return
		}
	}
}

// backendSaw waits up to d for a request whose head contains s to reach the
// backend, and returns it.
func (b *bed) backendSaw(s string, d time.Duration) (seenRequest, bool) {
	timeout := time.After(d)
	for {
		select {
		case sr := <-b.seen:
			if strings.Contains(sr.head, s) {
				return sr, true
			}
		case <-timeout:
			return seenRequest{}, false
		}
	}
}

// answeredByProxy sends raw on a new connection and checks that the proxy
// itself answered with one of codes and the backend never saw the request.
func (b *bed) answeredByProxy(t *testing.T, raw string, codes ...int) *rawClient {
	t.Helper()
	b.drain()
	c := dialRaw(t, b.port)
	resp, body := c.roundTrip(raw)
	if !containsCode(codes, resp.StatusCode) {
		t.Fatalf("got %d %q, want one of %v", resp.StatusCode, body, codes)
	}
	if sr, ok := b.backendSaw("", 200*time.Millisecond); ok {
		t.Fatalf("the backend was reached:\n%s", sr.head)
	}
	return c
}
