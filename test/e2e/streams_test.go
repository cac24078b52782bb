package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// Ports of the listeners TestStreamsAndClientCertificates adds to the
// shared Gateway, on the proxy's address.
const (
	tlsPort   = 8443
	tcpPort   = 7000
	udpPort   = 5353
	mtlsPort  = 9443
	dbHost    = "db.web.apps.example.test"
	mtlsHost  = "m.web.apps.example.test"
	streamsNS = "web"
)

// TestStreamsAndClientCertificates runs one real hub, one member, the
// admission webhook and a real proxy, and checks every stream route kind
// and client-certificate validation end to end:
//   - a TLSRoute passes a TLS session through by SNI: the client sees the
//     backend's own certificate, and the Gateway never decrypts;
//   - a TCPRoute and a UDPRoute carry bytes and datagrams to their backends;
//   - a TLSRoute for an SNI name delegated to another tenant is denied at
//     kubectl apply, with what to change;
//   - an HTTPS listener of a Gateway that asks for client certificates
//     refuses a client without one and serves a client with a valid one.
func TestStreamsAndClientCertificates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse", "gatehouse-proxy")
	kubectl := kubectlPath(t)

	fleet, _ := fleetWithTenants(t, ctx, 1)
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	whAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, "hub", bins["gatehouse"], "--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", xdsAddr,
		"--metrics-address", "0", "--health-address", "0", "--debounce", "20ms", "--startup-grace", "5s",
		"--webhook-address", whAddr, "--webhook-url", "https://"+whAddr, "--webhook-failure-policy", "Fail")
	caFile := pushCA(t, ctx, fleet)
	m, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{
		{Namespace: "web", Hostname: "a.web.apps.example.test", Answer: "web-1"},
		{Namespace: "payments", Hostname: checkoutHost, Answer: "payments-1"},
	}, env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: xdsAddr, CAFile: caFile, CacheDir: t.TempDir(), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	waitAnswer(t, m.Address, "a.web.apps.example.test", "web-1")
	proxyIP, _, _ := net.SplitHostPort(m.Address)

	// The tenant's backends, on pod-like addresses of the test's network.
	backendCA := newTestCA(t, "backend CA")
	dbCert := backendCA.leaf(t, dbHost)
	const tlsBackend, tcpBackend, udpBackend = "10.244.1.40", "10.244.1.41", "10.244.1.42"
	serveTLSAnswer(t, tlsBackend+":5432", dbCert, "db-1")
	serveTCPEcho(t, tcpBackend+":7000", "tcp-1")
	serveUDPEcho(t, udpBackend+":5353", "udp-1")
	for _, o := range []client.Object{
		streamService(streamsNS, "db", 5432, corev1.ProtocolTCP),
		streamSlice(streamsNS, "db", tlsBackend, 5432, corev1.ProtocolTCP),
		streamService(streamsNS, "echo-tcp", 7000, corev1.ProtocolTCP),
		streamSlice(streamsNS, "echo-tcp", tcpBackend, 7000, corev1.ProtocolTCP),
		streamService(streamsNS, "echo-udp", 5353, corev1.ProtocolUDP),
		streamSlice(streamsNS, "echo-udp", udpBackend, 5353, corev1.ProtocolUDP),
	} {
		if err := m.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// The platform team adds stream listeners and an HTTPS listener that
	// requires client certificates, with its CA in a ConfigMap.
	serverCA := newTestCA(t, "listener CA")
	clientCA := newTestCA(t, "client CA")
	listenerCert := serverCA.leaf(t, mtlsHost)
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mtls-listener", Namespace: env.GatewayNamespace}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: listenerCert.certPEM, corev1.TLSPrivateKeyKey: listenerCert.keyPEM}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "client-ca", Namespace: env.GatewayNamespace},
			Data: map[string]string{"ca.crt": string(clientCA.certPEM)}},
	} {
		if err := m.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	all := gwv1.NamespacesFromAll
	allowAll := &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}}
	updateSharedGateway(t, ctx, m, func(gw *gwv1.Gateway) {
		gw.Spec.Listeners = append(gw.Spec.Listeners,
			gwv1.Listener{Name: "tls", Port: tlsPort, Protocol: gwv1.TLSProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.apps.example.test"),
				TLS: &gwv1.ListenerTLSConfig{Mode: ptr.To(gwv1.TLSModePassthrough)}, AllowedRoutes: allowAll},
			gwv1.Listener{Name: "tcp", Port: tcpPort, Protocol: gwv1.TCPProtocolType, AllowedRoutes: allowAll},
			gwv1.Listener{Name: "udp", Port: udpPort, Protocol: gwv1.UDPProtocolType, AllowedRoutes: allowAll},
			gwv1.Listener{Name: "mtls", Port: mtlsPort, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To[gwv1.Hostname](mtlsHost),
				TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "mtls-listener"}}}, AllowedRoutes: allowAll},
		)
		gw.Spec.TLS = &gwv1.GatewayTLSConfig{Frontend: &gwv1.FrontendTLSConfig{Default: gwv1.TLSConfig{Validation: &gwv1.FrontendTLSValidation{
			CACertificateRefs: []gwv1.ObjectReference{{Kind: "ConfigMap", Name: "client-ca"}},
		}}}}
	})

	parent := func(section string) []gwv1.ParentReference {
		return []gwv1.ParentReference{{Name: env.GatewayName, Namespace: ptr.To[gwv1.Namespace](env.GatewayNamespace), SectionName: ptr.To(gwv1.SectionName(section))}}
	}
	backend := func(name string, port gwv1.PortNumber) []gwv1.BackendRef {
		return []gwv1.BackendRef{{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: &port}}}
	}
	for _, o := range []client.Object{
		&gwv1.TLSRoute{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: streamsNS}, Spec: gwv1.TLSRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parent("tls")}, Hostnames: []gwv1.Hostname{dbHost},
			Rules: []gwv1.TLSRouteRule{{BackendRefs: backend("db", 5432)}}}},
		&gwv1.TCPRoute{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: streamsNS}, Spec: gwv1.TCPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parent("tcp")}, Rules: []gwv1.TCPRouteRule{{BackendRefs: backend("echo-tcp", 7000)}}}},
		&gwv1.UDPRoute{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: streamsNS}, Spec: gwv1.UDPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parent("udp")}, Rules: []gwv1.UDPRouteRule{{BackendRefs: backend("echo-udp", 5353)}}}},
		env.TenantRoute(streamsNS, "mtls", mtlsHost),
	} {
		if err := m.Client.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}

	t.Run("each stream route is accepted and programmed", func(t *testing.T) {
		for _, o := range []client.Object{&gwv1.TLSRoute{}, &gwv1.TCPRoute{}, &gwv1.UDPRoute{}} {
			name := "db"
			if _, ok := o.(*gwv1.TLSRoute); !ok {
				name = "echo"
			}
			for _, c := range []string{"Accepted", "Programmed"} {
				waitStreamCondition(t, ctx, m.Client, o, streamsNS, name, c)
			}
		}
	})

	t.Run("a TLSRoute passes the session through by SNI", func(t *testing.T) {
		waitFor(t, 30*time.Second, "the TLS backend to answer through the Gateway", func() bool {
			got, _ := tlsAnswer(net.JoinHostPort(proxyIP, fmt.Sprint(tlsPort)), dbHost, backendCA.pool(), nil)
			return got == "db-1"
		})
		// Another SNI name on the listener has no route: the session ends
		// without a handshake, rather than reaching the db backend.
		if got, err := tlsAnswer(net.JoinHostPort(proxyIP, fmt.Sprint(tlsPort)), "other.web.apps.example.test", backendCA.pool(), nil); err == nil {
			t.Errorf("an SNI name without a route was answered %q", got)
		}
	})

	t.Run("a TCPRoute carries bytes both ways", func(t *testing.T) {
		waitFor(t, 30*time.Second, "the TCP echo through the Gateway", func() bool {
			got, _ := tcpExchange(net.JoinHostPort(proxyIP, fmt.Sprint(tcpPort)), "hello")
			return got == "tcp-1:hello"
		})
	})

	t.Run("a UDPRoute carries datagrams both ways", func(t *testing.T) {
		waitFor(t, 30*time.Second, "the UDP echo through the Gateway", func() bool {
			got, _ := udpExchange(net.JoinHostPort(proxyIP, fmt.Sprint(udpPort)), "ping")
			return got == "udp-1:ping"
		})
	})

	t.Run("an SNI name delegated to another tenant is denied at apply", func(t *testing.T) {
		manifest := fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: grab, namespace: web}
spec:
  parentRefs: [{name: %s, namespace: %s, sectionName: tls}]
  hostnames: [%s]
  rules: [{backendRefs: [{name: db, port: 5432}]}]
`, env.GatewayName, env.GatewayNamespace, checkoutHost)
		out, err := kubectlApply(kubectl, m.Cluster, manifest)
		if err == nil {
			t.Fatalf("kubectl apply succeeded: %s", out)
		}
		for _, want := range []string{`admission webhook "routes.gatehouse.dev" denied the request`, `"checkout.apps.example.test" is delegated to tenant "payments"`} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl said:\n%s\nwant it to contain:\n%s", out, want)
			}
		}
	})

	t.Run("a listener that requires client certificates refuses a client without one", func(t *testing.T) {
		addr := net.JoinHostPort(proxyIP, fmt.Sprint(mtlsPort))
		clientCert := clientCA.leaf(t, "client.web.apps.example.test")
		pair, err := tls.X509KeyPair(clientCert.certPEM, clientCert.keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		var lastErr error
		defer func() {
			if t.Failed() {
				t.Logf("last error of a client with a valid certificate: %v", lastErr)
			}
		}()
		waitFor(t, 30*time.Second, "the mTLS listener to serve a client with a valid certificate", func() bool {
			got, err := httpsAnswer(addr, mtlsHost, serverCA.pool(), &pair)
			lastErr = err
			return got == "web-1"
		})
		if got, err := httpsAnswer(addr, mtlsHost, serverCA.pool(), nil); err == nil {
			t.Errorf("a client without a certificate was answered %q", got)
		}
		stranger := newTestCA(t, "another CA").leaf(t, "client.web.apps.example.test")
		other, err := tls.X509KeyPair(stranger.certPEM, stranger.keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := httpsAnswer(addr, mtlsHost, serverCA.pool(), &other); err == nil {
			t.Errorf("a client with a certificate of another CA was answered %q", got)
		}
		gw := sharedGateway(t, ctx, m)
		if c := listenerCondition(gw, "mtls", "ResolvedRefs"); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("listener mtls ResolvedRefs: %+v", c)
		}
	})
}

// waitStreamCondition waits for the first parent of a stream route to have
// condition condType True at the route's generation.
func waitStreamCondition(t *testing.T, ctx context.Context, c client.Client, obj client.Object, ns, name, condType string) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%T %s/%s %s=True", obj, ns, name, condType), func() bool {
		if c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj) != nil {
			return false
		}
		var parents []gwv1.RouteParentStatus
		switch o := obj.(type) {
		case *gwv1.TLSRoute:
			parents = o.Status.Parents
		case *gwv1.TCPRoute:
			parents = o.Status.Parents
		case *gwv1.UDPRoute:
			parents = o.Status.Parents
		}
		if len(parents) == 0 {
			return false
		}
		cond := meta.FindStatusCondition(parents[0].Conditions, condType)
		if cond == nil {
			return false
		}
		return cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == obj.GetGeneration()
	})
}

func streamService(ns, name string, port int32, proto corev1.Protocol) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "p", Port: port, Protocol: proto}}}}
}

func streamSlice(ns, name, ip string, port int32, proto corev1.Protocol) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("p"), Port: ptr.To(port), Protocol: ptr.To(proto)}},
	}
}

// serveTLSAnswer accepts TLS sessions with cert on addr and writes answer
// to each, then closes it.
func serveTLSAnswer(t *testing.T, addr string, cert testCert, answer string) {
	t.Helper()
	pair, err := tls.X509KeyPair(cert.certPEM, cert.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptLoop(ln, func(c net.Conn) { io.WriteString(c, answer) })
}

// serveTCPEcho answers each line a client sends with prefix:line.
func serveTCPEcho(t *testing.T, addr, prefix string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptLoop(ln, func(c net.Conn) {
		buf := make([]byte, 1024)
		n, _ := c.Read(buf)
		io.WriteString(c, prefix+":"+string(buf[:n]))
	})
}

func acceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			serve(c)
		}()
	}
}

// serveUDPEcho answers each datagram with prefix:datagram.
func serveUDPEcho(t *testing.T, addr, prefix string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(prefix+":"+string(buf[:n])), from)
		}
	}()
}

func tlsAnswer(addr, sni string, roots *x509.CertPool, cert *tls.Certificate) (string, error) {
	cfg := &tls.Config{ServerName: sni, RootCAs: roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) == 0 && err != nil {
		return "", err
	}
	return string(b), nil
}

func tcpExchange(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if len(b) == 0 && err != nil {
		return "", err
	}
	return string(b), nil
}

func udpExchange(addr, msg string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// httpsAnswer sends GET / for host over HTTPS to addr, presenting cert
// when not nil, and returns the body of a 200.
func httpsAnswer(addr, host string, roots *x509.CertPool, cert *tls.Certificate) (string, error) {
	cfg := &tls.Config{ServerName: host, RootCAs: roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	cl := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	return string(b), nil
}

// testCA is a throwaway certificate authority.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

type testCert struct{ certPEM, keyPEM []byte }

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a certificate for name, usable by servers and clients.
func (ca *testCA) leaf(t *testing.T, name string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}
