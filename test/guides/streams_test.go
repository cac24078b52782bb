package guides

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The applications of team web that the guides serve through TLS, TCP and
// UDP listeners.
const (
	// ledger serves HTTPS itself, with a certificate of its own that the
	// Gateway never holds: TLS passthrough. Its certificate is in the
	// ConfigMap ledger-ca, for clients to trust.
	ledgerHost    = "ledger.store.apps.example.com"
	ledgerBackend = "10.244.1.22:8443"
	ledgerAnswer  = "ledger: hello over TLS from team web"
	// echo answers each line sent over TCP, and each UDP datagram, on the
	// same port number.
	echoBackend = "10.244.1.23:7000"
)

// startStreamApps runs ledger and echo in namespace web of the member,
// behind Services with the EndpointSlices an endpoint controller would
// write.
func startStreamApps(t *testing.T, ctx context.Context, c client.Client) {
	t.Helper()
	certPEM, pair := selfSignedCert(t, ledgerHost)
	serve(t, ledgerBackend, ledgerAnswer, &pair)
	serveEcho(t, echoBackend)

	ledgerIP, _, _ := net.SplitHostPort(ledgerBackend)
	echoIP, _, _ := net.SplitHostPort(echoBackend)
	objs := []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ledger-ca", Namespace: "web"}, Data: map[string]string{"ca.crt": string(certPEM)}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ledger", Namespace: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "ledger"},
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}}}},
		appSlice("ledger", ledgerIP, slicePort("https", 8443, corev1.ProtocolTCP)),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "echo"},
			Ports: []corev1.ServicePort{
				{Name: "tcp", Port: 7000, Protocol: corev1.ProtocolTCP},
				{Name: "udp", Port: 7000, Protocol: corev1.ProtocolUDP},
			}}},
		appSlice("echo", echoIP, slicePort("tcp", 7000, corev1.ProtocolTCP), slicePort("udp", 7000, corev1.ProtocolUDP)),
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func appSlice(service, ip string, ports ...discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: service + "-1", Namespace: "web", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       ports,
	}
}

func slicePort(name string, port int32, protocol corev1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(port), Protocol: ptr.To(protocol)}
}

// selfSignedCert is a certificate for host that is its own issuer, so that
// clients can trust it alone, in PEM and as a key pair.
func selfSignedCert(t *testing.T, host string) ([]byte, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host, Organization: []string{"team web"}}, DNSNames: []string{host},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serveEcho answers on addr each line of a TCP connection with
// "tcp echo: LINE", and each UDP datagram with "udp echo: DATAGRAM".
func serveEcho(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("backend %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(time.Minute))
				lines := bufio.NewScanner(c)
				for lines.Scan() {
					if _, err := io.WriteString(c, "tcp echo: "+lines.Text()+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("backend %s/udp: %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("udp echo: "), buf[:n]...), from)
		}
	}()
}
