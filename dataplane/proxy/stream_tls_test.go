package proxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// tlsLineBackend is a lineBackend behind its own TLS certificate for host.
type tlsLineBackend struct {
	*lineBackend
	kp   *rt.KeyPair
	pool *x509.CertPool
}

func newTLSLineBackend(t *testing.T, name, host string) *tlsLineBackend {
	t.Helper()
	kp, pool := selfSigned(t, name, host)
	cert, err := tls.X509KeyPair(kp.CertificateChain, kp.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	return &tlsLineBackend{lineBackend: serveLines(t, name, ln), kp: kp, pool: pool}
}

// dialTLS handshakes with the proxy's port for sni, trusting pool.
func dialTLS(t *testing.T, port uint32, sni string, pool *x509.CertPool) (*tls.Conn, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
		&tls.Config{ServerName: sni, RootCAs: pool, InsecureSkipVerify: pool == nil})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// passthrough is a TLS Passthrough listener on PORT for *.example.com
// whose routes send a.example.com to backend a and b.example.com to b.
const passthrough = `{"name":"tls","port":PORT,"protocol":"TLS","hostname":"*.example.com","tls":{"passthrough":true},"streamRoutes":[
	{"source":{"kind":"TLSRoute","namespace":"apps","name":"a"},"domain":"a.example.com","backends":[{"backend":"a","weight":1}]},
	{"source":{"kind":"TLSRoute","namespace":"apps","name":"b"},"domain":"b.example.com","backends":[{"backend":"b","weight":1}]}]}`

func TestTLSPassthroughBySNI(t *testing.T) {
	a, b := newTLSLineBackend(t, "a", "a.example.com"), newTLSLineBackend(t, "b", "b.example.com")
	port := freePort(t)
	start(t, streamTable(t, port, `{"gateway":"infra/gw","listeners":[`+passthrough+`]}`, a.backend(), b.backend()))
	for _, be := range []*tlsLineBackend{a, b} {
		host := be.name + ".example.com"
		// The handshake verifies against the backend's own certificate:
		// the session is the backend's, end to end.
		c, err := dialTLS(t, port, host, be.pool)
		if err != nil {
			t.Fatalf("SNI %s: %v", host, err)
		}
		if names := c.ConnectionState().PeerCertificates[0].DNSNames; !slices.Equal(names, []string{host}) {
			t.Errorf("SNI %s: certificate for %v", host, names)
		}
		if got := talk(t, c, "hi"); got != be.name+":hi" {
			t.Errorf("SNI %s: %q", host, got)
		}
		// The client's close_notify and end reach the backend.
		c.CloseWrite()
		if rest, _ := io.ReadAll(c); string(rest) != be.name+":bye\n" {
			t.Errorf("SNI %s, after the client's end: %q", host, rest)
		}
	}
}

// A connection whose SNI no route takes, or without SNI, is closed
// without an answer.
func TestTLSWithoutARouteForTheSNIIsClosed(t *testing.T) {
	a, b := newTLSLineBackend(t, "a", "a.example.com"), newTLSLineBackend(t, "b", "b.example.com")
	port := freePort(t)
	start(t, streamTable(t, port, `{"gateway":"infra/gw","listeners":[`+passthrough+`]}`, a.backend(), b.backend()))
	for _, sni := range []string{"c.example.com", "other.org", ""} {
		if _, err := dialTLS(t, port, sni, nil); err == nil {
			t.Errorf("SNI %q: the handshake succeeded", sni)
		}
	}
	// Nor does a plaintext request get an answer.
	c := dialPort(t, port)
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
	if !closedAtOnce(c) {
		t.Errorf("a plaintext request on a TLS port was answered")
	}
	if n := a.conns.Load() + b.conns.Load(); n != 0 {
		t.Errorf("the backends got %d connections", n)
	}
}

func TestTLSTerminateToPlaintextAndTLSBackends(t *testing.T) {
	plain := newLineBackend(t, "plain")
	secure := newTLSLineBackend(t, "secure", "secure.internal")
	securePort := uint32(secure.ln.Addr().(*net.TCPAddr).Port)
	kp, pool := selfSigned(t, "infra/term", "*.example.com")
	port := freePort(t)
	tbl := streamTable(t, port, `{"gateway":"infra/gw","listeners":[
		{"name":"tls","port":PORT,"protocol":"TLS","tls":{"certificates":["infra/term"]},"streamRoutes":[
			{"domain":"plain.example.com","backends":[{"backend":"plain","weight":1}]},
			{"domain":"secure.example.com","backends":[{"backend":"secure","weight":1}]}]}]}`,
		plain.backend(),
		&rt.Backend{Name: "secure", Endpoints: []*rt.Endpoint{{Address: "127.0.0.1", Port: securePort}},
			Tls: &rt.BackendTLS{Sni: "secure.internal", CaPem: string(secure.kp.CertificateChain)}})
	p := start(t)
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, map[string]*rt.KeyPair{"infra/term": kp}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"plain", "secure"} {
		c, err := dialTLS(t, port, name+".example.com", pool)
		if err != nil {
			t.Fatalf("%s: the proxy's handshake: %v", name, err)
		}
		if got := talk(t, c, "hi"); got != name+":hi" {
			t.Errorf("%s: %q", name, got)
		}
		c.CloseWrite()
		if rest, _ := io.ReadAll(c); string(rest) != name+":bye\n" {
			t.Errorf("%s, after the client's end: %q", name, rest)
		}
	}
}

// HTTPS and TLS listeners share a port: each connection goes where its
// SNI says, the HTTPS one to the HTTP path as on any HTTPS port.
func TestTLSAndHTTPSListenersShareAPort(t *testing.T) {
	web := newEcho(t, "web")
	a, b := newTLSLineBackend(t, "a", "a.example.com"), newTLSLineBackend(t, "b", "b.example.com")
	kp, pool := selfSigned(t, "infra/web", "web.example.org")
	port := freePort(t)
	tbl := streamTable(t, port, `{"gateway":"infra/gw","listeners":[`+passthrough+`,
		{"name":"https","port":PORT,"protocol":"HTTPS","hostname":"web.example.org","tls":{"certificates":["infra/web"]},
		 "virtualHosts":[{"domain":"web.example.org","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"web","weight":1}]}}]}]}]}`,
		a.backend(), b.backend(), web.backend())
	p := start(t)
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, map[string]*rt.KeyPair{"infra/web": kp}); err != nil {
		t.Fatal(err)
	}
	if n := p.NotServed(); len(n) != 0 {
		t.Fatalf("not served: %v", n)
	}
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{ForceAttemptHTTP2: h2, TLSClientConfig: &tls.Config{ServerName: "web.example.org", RootCAs: pool}}
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/", port), nil)
		req.Host = "web.example.org"
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatalf("HTTPS (h2 %v): %v", h2, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "web" || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
			t.Errorf("HTTPS (h2 %v): %d from %q over %s", h2, resp.StatusCode, resp.Header.Get("X-Backend"), resp.Proto)
		}
		tr.CloseIdleConnections()
	}
	c, err := dialTLS(t, port, "a.example.com", a.pool)
	if err != nil {
		t.Fatalf("TLS passthrough beside HTTPS: %v", err)
	}
	if got := talk(t, c, "hi"); got != "a:hi" {
		t.Errorf("TLS passthrough beside HTTPS: %q", got)
	}
}

// A terminating TLS listener validates client certificates as its table
// says, as HTTPS listeners do: without a certificate its CA signed, the
// handshake fails.
func TestTLSTerminateValidatesClientCertificates(t *testing.T) {
	plain := newLineBackend(t, "plain")
	kp, pool := selfSigned(t, "infra/term", "db.example.com")
	ca, other := newTestCA(t, "clients"), newTestCA(t, "others")
	port := freePort(t)
	tbl := streamTable(t, port, `{"gateway":"infra/gw","listeners":[
		{"name":"tls","port":PORT,"protocol":"TLS","tls":{"certificates":["infra/term"]},"streamRoutes":[
			{"domain":"db.example.com","backends":[{"backend":"plain","weight":1}]}]}]}`, plain.backend())
	tbl.Listeners[0].Tls.ClientValidation = &rt.ClientValidation{CaPem: ca.pem}
	p := start(t)
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, map[string]*rt.KeyPair{"infra/term": kp}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"signed by the CA", []tls.Certificate{ca.client(t, "app")}, true},
		{"signed by another CA", []tls.Certificate{other.client(t, "app")}, false},
		{"no certificate", nil, false},
	} {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "db.example.com", RootCAs: pool, Certificates: tt.certs})
		answer := ""
		if err == nil {
			// TLS 1.3 reports a refused client certificate at the first read.
			answer = talk(t, c, "hi")
			c.Close()
		}
		if got := answer == "plain:hi"; got != tt.ok {
			t.Errorf("%s: served %v (%q, %v), want %v", tt.name, got, answer, err, tt.ok)
		}
	}
}
