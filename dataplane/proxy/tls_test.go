package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// selfSigned returns a key pair for names, and a pool that trusts it.
func selfSigned(t *testing.T, name string, names ...string) (*rt.KeyPair, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &rt.KeyPair{
		Name:             name,
		CertificateChain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		PrivateKey:       pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}),
	}, pool
}

func TestHTTPSListenersBySNI(t *testing.T) {
	v1, v2 := newEcho(t, "v1"), newEcho(t, "v2")
	port := freePort(t)
	kpAny, poolAny := selfSigned(t, "infra/any", "example.org", "unknown.example.org")
	kpSecond, poolSecond := selfSigned(t, "infra/second", "second.example.org")
	tbl := table(t, port, `{"gateway":"infra/gw","listeners":[
		{"name":"https","port":PORT,"protocol":"HTTPS","tls":{"certificates":["infra/any"]},
		 "virtualHosts":[{"domain":"*","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]}}]}]},
		{"name":"second","port":PORT,"protocol":"HTTPS","hostname":"second.example.org","tls":{"certificates":["infra/second"]},
		 "virtualHosts":[{"domain":"second.example.org","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v2","weight":1}]}}]}]}
	]}`, v1, v2)
	p := start(t)
	if err := p.Apply("tls", []*rt.RouteTable{tbl}, map[string]*rt.KeyPair{"infra/any": kpAny, "infra/second": kpSecond}); err != nil {
		t.Fatal(err)
	}
	pools := map[string]*x509.CertPool{"example.org": poolAny, "unknown.example.org": poolAny, "second.example.org": poolSecond}
	get := func(sni, host string) (int, string, string) {
		tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{ServerName: sni, RootCAs: pools[sni], NextProtos: []string{"h2", "http/1.1"}}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/", port), nil)
		req.Host = host
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatalf("SNI %s Host %s: %v", sni, host, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Proto, string(body)
	}
	for _, tt := range []struct {
		sni, host string
		want      int
		backend   string
	}{
		{"example.org", "example.org", 200, "v1"},
		{"second.example.org", "second.example.org", 200, "v2"},
		{"example.org", "second.example.org", 421, ""},
		{"second.example.org", "example.org", 421, ""},
		{"unknown.example.org", "example.org", 200, "v1"},
	} {
		code, proto, body := get(tt.sni, tt.host)
		if code != tt.want || (tt.backend != "" && !contains(body, `"backend":"`+tt.backend+`"`)) {
			t.Errorf("SNI %s, Host %s: got %d %s, want %d from %s", tt.sni, tt.host, code, body, tt.want, tt.backend)
		}
		if proto != "HTTP/2.0" {
			t.Errorf("SNI %s: negotiated %s, want HTTP/2.0 over ALPN", tt.sni, proto)
		}
	}

	// A renewed key pair is served by new handshakes without rebinding.
	renewed, renewedPool := selfSigned(t, "infra/second", "second.example.org")
	if err := p.Apply("tls-2", []*rt.RouteTable{tbl}, map[string]*rt.KeyPair{"infra/any": kpAny, "infra/second": renewed}); err != nil {
		t.Fatal(err)
	}
	pools["second.example.org"] = renewedPool
	if code, _, _ := get("second.example.org", "second.example.org"); code != 200 {
		t.Errorf("after renewal: %d", code)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
