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
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// clientIssuer signs client certificates, as a backend's private CA would.
type clientIssuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newClientIssuer(t *testing.T) *clientIssuer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "backend clients CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &clientIssuer{cert: cert, key: key}
}

// issue returns a key pair named name whose certificate, for client
// authentication, says commonName.
func (ci *clientIssuer) issue(t *testing.T, name, commonName string) *rt.KeyPair {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ci.cert, &key.PublicKey, ci.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return &rt.KeyPair{Name: name,
		CertificateChain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		PrivateKey:       pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})}
}

// TestBackendClientCertificate: a backend that requires a client
// certificate (a TLS server with RequireAndVerifyClientCert) refuses the
// proxy's connections that present none and serves those that present the
// Gateway's key pair; a renewed key pair under the same name is presented
// from then on; and a proxy serving two Gateways whose tables name one
// backend presents each Gateway's certificate, or none, on its own
// requests only.
func TestBackendClientCertificate(t *testing.T) {
	issuer := newClientIssuer(t)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(issuer.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "client=%s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	srv.StartTLS()
	defer srv.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	const keyName = "client/member/infra/gateway-a-client"
	gatewayTable := func(gateway string, port uint32, clientCertificate string) *rt.RouteTable {
		// httptest's certificate is for example.com.
		tbl := oneRoute(port, &rt.Backend{Name: "infra/secure:443", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{endpointOf(t, srv.URL)},
			Tls: &rt.BackendTLS{Sni: "example.com", CaPem: ca, ClientCertificate: clientCertificate}})
		tbl.Gateway, tbl.Name = gateway, "member/"+gateway
		return tbl
	}
	withPort, withoutPort := freePort(t), freePort(t)
	with := gatewayTable("infra/gateway-a", withPort, keyName)
	without := gatewayTable("infra/gateway-b", withoutPort, "")
	p := start(t)

	if err := p.Apply("no certificate", []*rt.RouteTable{without}, nil); err != nil {
		t.Fatal(err)
	}
	if r := do(t, withoutPort, "GET", "x", "/", nil); r.code != http.StatusBadGateway {
		t.Errorf("without a client certificate the backend answered through the proxy: %d %q, want 502", r.code, r.rawBody)
	}

	keys := map[string]*rt.KeyPair{keyName: issuer.issue(t, keyName, "gateway-a")}
	if err := p.Apply("both gateways", []*rt.RouteTable{with, without}, keys); err != nil {
		t.Fatal(err)
	}
	if r := do(t, withPort, "GET", "x", "/", nil); r.code != http.StatusOK || r.rawBody != "client=gateway-a" {
		t.Errorf("with the Gateway's client certificate: %d %q, want 200 client=gateway-a", r.code, r.rawBody)
	}
	if r := do(t, withoutPort, "GET", "x", "/", nil); r.code != http.StatusBadGateway {
		t.Errorf("the Gateway without a client certificate reached the backend with another's: %d %q, want 502", r.code, r.rawBody)
	}

	keys = map[string]*rt.KeyPair{keyName: issuer.issue(t, keyName, "gateway-a-renewed")}
	if err := p.Apply("renewed", []*rt.RouteTable{with, without}, keys); err != nil {
		t.Fatal(err)
	}
	if r := do(t, withPort, "GET", "x", "/", nil); r.code != http.StatusOK || r.rawBody != "client=gateway-a-renewed" {
		t.Errorf("after renewal: %d %q, want the renewed certificate", r.code, r.rawBody)
	}

	err := p.Apply("key pair missing", []*rt.RouteTable{with}, nil)
	if err == nil || !strings.Contains(err.Error(), keyName+" has not been received") {
		t.Errorf("a table whose backend names a key pair the proxy lacks was applied: %v", err)
	}
	if r := do(t, withPort, "GET", "x", "/", nil); r.code != http.StatusOK || r.rawBody != "client=gateway-a-renewed" {
		t.Errorf("after a refused version the previous one serves: %d %q", r.code, r.rawBody)
	}
}
