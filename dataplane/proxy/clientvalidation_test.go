package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// client is a client certificate the CA signed.
func (ca *testCA) client(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// mtlsTable is one HTTPS listener for shop.example.com that validates
// client certificates as v says.
func mtlsTable(t *testing.T, port uint32, v *rt.ClientValidation, backend *echo) *rt.RouteTable {
	t.Helper()
	tbl := table(t, port, `{"gateway":"infra/gw","listeners":[
		{"name":"https","port":PORT,"protocol":"HTTPS","hostname":"shop.example.com","tls":{"certificates":["infra/shop"]},
		 "virtualHosts":[{"domain":"shop.example.com","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"`+backend.name+`","weight":1}]}}]}]}
	]}`, backend)
	tbl.Listeners[0].Tls.ClientValidation = v
	return tbl
}

// mtlsClient sends requests to the proxy's port with SNI shop.example.com,
// presenting cert when it is not nil, over HTTP/1.1 (the fast path) or h2
// (net/http).
type mtlsClient struct {
	port  uint32
	roots *x509.CertPool
	cert  *tls.Certificate
	h2    bool
	// sessions, when set, lets handshakes resume sessions.
	sessions tls.ClientSessionCache
	tr       *http.Transport
}

func (c *mtlsClient) tlsConfig() *tls.Config {
	protos := []string{"http/1.1"}
	if c.h2 {
		protos = []string{"h2"}
	}
	cfg := &tls.Config{ServerName: "shop.example.com", RootCAs: c.roots, NextProtos: protos, ClientSessionCache: c.sessions}
	if c.cert != nil {
		cfg.Certificates = []tls.Certificate{*c.cert}
	}
	return cfg
}

func (c *mtlsClient) get(t *testing.T) (int, string, error) {
	t.Helper()
	if c.tr == nil {
		c.tr = &http.Transport{TLSClientConfig: c.tlsConfig(), ForceAttemptHTTP2: c.h2}
		t.Cleanup(c.tr.CloseIdleConnections)
	}
	resp, err := (&http.Client{Transport: c.tr, Timeout: 10 * time.Second}).Do(httpsRequest(c.port, "shop.example.com"))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e echoed
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Backend, nil
}

// httpsRequest is a GET of / on the proxy's port for host.
func httpsRequest(port uint32, host string) *http.Request {
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/", port), nil)
	req.Host = host
	return req
}

// refused asserts that the proxy refuses the handshake of c with a TLS
// alert. In TLS 1.3 the client's side of the handshake ends before the
// server has checked its certificate: the alert arrives at the first read.
func (c *mtlsClient) refused(t *testing.T, what string) {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.port), c.tlsConfig())
	if err == nil {
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
	}
	if err == nil || !strings.Contains(err.Error(), "remote error: tls") {
		t.Errorf("%s: %v, want the handshake refused with a TLS alert", what, err)
	}
}

func TestClientCertificateValidation(t *testing.T) {
	web := newEcho(t, "web")
	serverKP, roots := selfSigned(t, "infra/shop", "shop.example.com")
	clients, others := newTestCA(t, "clients"), newTestCA(t, "others")
	valid, foreign := clients.client(t, "valid"), others.client(t, "foreign")

	for _, fast := range []bool{true, false} {
		for _, h2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("fastPath=%v/h2=%v", fast, h2), func(t *testing.T) {
				port := freePort(t)
				p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", DrainTimeout: time.Second, NoFastPath: !fast})
				t.Cleanup(func() { _ = p.Close(t.Context()) })
				kps := map[string]*rt.KeyPair{"infra/shop": serverKP}
				apply := func(version string, v *rt.ClientValidation) {
					t.Helper()
					if err := p.Apply(version, []*rt.RouteTable{mtlsTable(t, port, v, web)}, kps); err != nil {
						t.Fatal(err)
					}
					if ns := p.NotServed(); len(ns) != 0 {
						t.Fatalf("not served: %v", ns)
					}
				}
				client := func(cert *tls.Certificate) *mtlsClient {
					return &mtlsClient{port: port, roots: roots, cert: cert, h2: h2}
				}

				// AllowValidOnly.
				apply("valid-only", &rt.ClientValidation{CaPem: clients.pem})
				client(nil).refused(t, "without a certificate")
				client(&foreign).refused(t, "with a certificate of another CA")
				if code, backend, err := client(&valid).get(t); err != nil || code != 200 || backend != "web" {
					t.Errorf("with a valid certificate: %d from %q, %v; want 200 from web", code, backend, err)
				}

				// AllowInsecureFallback: every client is served.
				apply("fallback", &rt.ClientValidation{CaPem: clients.pem, InsecureFallback: true})
				for name, cert := range map[string]*tls.Certificate{"without a certificate": nil, "with a certificate of another CA": &foreign, "with a valid certificate": &valid} {
					if code, backend, err := client(cert).get(t); err != nil || code != 200 || backend != "web" {
						t.Errorf("fallback, %s: %d from %q, %v; want 200 from web", name, code, backend, err)
					}
				}
			})
		}
	}
}

// TestClientCAChangeAppliesOnSwap: a new CA bundle applies to the next
// handshake, resumed or not, and a connection verified against a CA the
// listener no longer trusts is answered 421 so that its client connects
// again.
func TestClientCAChangeAppliesOnSwap(t *testing.T) {
	web := newEcho(t, "web")
	serverKP, roots := selfSigned(t, "infra/shop", "shop.example.com")
	before, after := newTestCA(t, "before"), newTestCA(t, "after")
	oldClient, newClient := before.client(t, "old"), after.client(t, "new")
	kps := map[string]*rt.KeyPair{"infra/shop": serverKP}
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			port := freePort(t)
			p := start(t)
			if err := p.Apply("before", []*rt.RouteTable{mtlsTable(t, port, &rt.ClientValidation{CaPem: before.pem}, web)}, kps); err != nil {
				t.Fatal(err)
			}
			sessions := tls.NewLRUClientSessionCache(8)
			kept := &mtlsClient{port: port, roots: roots, cert: &oldClient, h2: h2, sessions: sessions}
			if code, _, err := kept.get(t); err != nil || code != 200 {
				t.Fatalf("before the swap: %d, %v", code, err)
			}

			if err := p.Apply("after", []*rt.RouteTable{mtlsTable(t, port, &rt.ClientValidation{CaPem: after.pem}, web)}, kps); err != nil {
				t.Fatal(err)
			}
			(&mtlsClient{port: port, roots: roots, cert: &oldClient, h2: h2, sessions: sessions}).refused(t, "a new handshake of the old CA's client, offering its session")
			if code, _, err := (&mtlsClient{port: port, roots: roots, cert: &newClient, h2: h2}).get(t); err != nil || code != 200 {
				t.Errorf("the new CA's client: %d, %v; want 200", code, err)
			}
			if code, _, err := kept.get(t); err != nil || code != http.StatusMisdirectedRequest {
				t.Errorf("the old CA's connection kept open: %d, %v; want 421", code, err)
			}
		})
	}
}

// TestClientValidationWithoutCANotServed: a listener whose validation has
// no CA would refuse every client, or let every client in: it is not
// served, the proxy says why, and the other listener of its port is
// served.
func TestClientValidationWithoutCANotServed(t *testing.T) {
	web := newEcho(t, "web")
	serverKP, roots := selfSigned(t, "infra/shop", "shop.example.com", "open.example.com")
	port := freePort(t)
	tbl := mtlsTable(t, port, &rt.ClientValidation{CaPem: "no certificate here", InsecureFallback: true}, web)
	tbl.Listeners = append(tbl.Listeners, &rt.Listener{
		Name: "open", Port: port, Protocol: rt.Protocol_HTTPS, Hostname: "open.example.com",
		Tls: &rt.ListenerTLS{Certificates: []string{"infra/shop"}},
		VirtualHosts: []*rt.VirtualHost{{Domain: "open.example.com", Routes: []*rt.Route{{
			Match:  &rt.RouteMatch{Path: &rt.RouteMatch_Prefix{Prefix: "/"}},
			Action: &rt.Route_Route{Route: &rt.RouteAction{Backends: []*rt.WeightedBackend{{Backend: "web", Weight: 1}}}},
		}}}},
	})
	p := start(t)
	if err := p.Apply("v2", []*rt.RouteTable{tbl}, map[string]*rt.KeyPair{"infra/shop": serverKP}); err != nil {
		t.Fatal(err)
	}
	why := p.NotServed()["infra/gw"]["https"]
	if !strings.Contains(why, "no CA certificate") {
		t.Errorf("NotServed: %v, want the https listener with why", p.NotServed())
	}
	(&mtlsClient{port: port, roots: roots}).refused(t, "the listener without a CA")

	open := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "open.example.com", RootCAs: roots}}
	defer open.CloseIdleConnections()
	resp, err := (&http.Client{Transport: open}).Do(httpsRequest(port, "open.example.com"))
	if err != nil {
		t.Fatalf("the other listener: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the other listener: %d, want 200", resp.StatusCode)
	}
}
