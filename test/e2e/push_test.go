package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestPushChannelRefusesAttackers attacks the hub's push server as a tenant
// of member-1, as a member's own proxy reaching for another member, with a
// token for the wrong audience, in plaintext, and as a network observer
// between a proxy and the hub. Member-2 has an HTTPS listener, so the hub
// holds a private key worth stealing; its own proxy identity fetching it is
// the control that shows the key is there to be had.
func TestPushChannelRefusesAttackers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse", "gatehouse-proxy")
	fleet, err := env.Start(ctx, env.Options{Members: 2, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })

	h := startHub(t, ctx, fleet, bins["gatehouse"])
	xdsAddr, caFile := h.xdsAddr, h.caFile
	var members []*env.SharedGateway
	for i, c := range fleet.Members {
		g, err := env.SetUpSharedGateway(ctx, i+1, c, []env.Tenant{{Namespace: "shop", Hostname: tenantHost, Answer: c.Name}},
			env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: xdsAddr, CAFile: caFile, CacheDir: t.TempDir(), Log: testLog{t}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Close() })
		members = append(members, g)
	}
	_, keyPEM := addHTTPSListener(t, ctx, members[1])
	const stolen = "member-2/infra/shared-tls"
	hub := pushClient{addr: xdsAddr, caFile: caFile}

	t.Run("control: member-2's proxy identity fetches its own key pair", func(t *testing.T) {
		waitFor(t, 30*time.Second, "member-2's key pair to be served to its proxies", func() bool {
			res, _ := hub.fetch(ctx, members[1].TokenFile, "member-2/infra/shared", xds.KeyPairType, stolen)
			return holdsKey(res, keyPEM)
		})
	})

	tenantToken, err := env.ProxyToken(ctx, fleet.Members[0], "shop", "anything", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, token, node, typeURL string
		names                      []string
	}{
		{"a tenant's ServiceAccount, key pairs without names", tenantToken, "member-1/shop/anything", xds.KeyPairType, nil},
		{"a tenant's ServiceAccount, tables without names", tenantToken, "member-1/shop/anything", xds.TableType, nil},
		{"a tenant's ServiceAccount, the wildcard", tenantToken, "member-1/shop/anything", xds.KeyPairType, []string{"*"}},
		{"a tenant's ServiceAccount, member-2's key by name", tenantToken, "member-1/shop/anything", xds.KeyPairType, []string{stolen}},
		{"member-1's proxy, member-2's key by name", members[0].TokenFile, "member-1/infra/shared", xds.KeyPairType, []string{stolen}},
		{"member-1's proxy, member-2's table by name", members[0].TokenFile, "member-1/infra/shared", xds.TableType, []string{"member-2/infra/shared"}},
		{"member-1's proxy posing as member-2's", members[0].TokenFile, "member-2/infra/shared", xds.KeyPairType, []string{stolen}},
	} {
		t.Run("refused: "+c.what, func(t *testing.T) {
			res, err := hub.fetch(ctx, c.token, c.node, c.typeURL, c.names...)
			if len(res) > 0 {
				t.Fatalf("the hub sent %d resources (key pair included: %v)", len(res), holdsKey(res, keyPEM))
			}
			t.Logf("refused: %v", err)
		})
	}

	t.Run("refused: member-2's proxy ServiceAccount with an API-server token", func(t *testing.T) {
		token := apiServerToken(t, ctx, fleet.Members[1], env.GatewayNamespace, "gatehouse-proxy-"+env.GatewayName)
		res, err := hub.fetch(ctx, token, "member-2/infra/shared", xds.KeyPairType, stolen)
		if len(res) > 0 || err == nil || !strings.Contains(err.Error(), "audience") {
			t.Fatalf("a token for the API server's audience got %d resources, error %v", len(res), err)
		}
	})

	t.Run("refused: a plaintext client", func(t *testing.T) {
		plain := pushClient{addr: xdsAddr, creds: insecure.NewCredentials()}
		res, err := plain.fetch(ctx, members[1].TokenFile, "member-2/infra/shared", xds.KeyPairType, stolen)
		if len(res) > 0 || err == nil {
			t.Fatalf("a plaintext client got %d resources, error %v", len(res), err)
		}
	})

	t.Run("a network observer sees neither the token nor the key", func(t *testing.T) {
		relay := startRelay(t, xdsAddr)
		through := pushClient{addr: relay.addr, caFile: caFile, serverName: "127.0.0.1"}
		res, err := through.fetch(ctx, members[1].TokenFile, "member-2/infra/shared", xds.KeyPairType, stolen)
		if !holdsKey(res, keyPEM) {
			t.Fatalf("the proxy did not get its key through the relay: %v", err)
		}
		token, _ := os.ReadFile(members[1].TokenFile)
		captured := relay.captured()
		for what, secret := range map[string][]byte{"the private key": keyPEM, "the token": bytes.TrimSpace(token)} {
			if bytes.Contains(captured, secret) || bytes.Contains(captured, secret[len(secret)/2:len(secret)/2+24]) {
				t.Errorf("%s crossed the network in clear", what)
			}
		}
		t.Logf("captured %d bytes between proxy and hub", len(captured))
	})
}

// addHTTPSListener gives the shared Gateway an HTTPS listener whose key
// pair is the Secret infra/shared-tls.
func addHTTPSListener(t *testing.T, ctx context.Context, g *env.SharedGateway) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, _ = selfSignedCertificate(t, "*.apps.example.test")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shared-tls", Namespace: env.GatewayNamespace}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
	if err := g.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	gw := &gwv1.Gateway{}
	if err := g.Client.Get(ctx, client.ObjectKey{Namespace: env.GatewayNamespace, Name: env.GatewayName}, gw); err != nil {
		t.Fatal(err)
	}
	all := gwv1.NamespacesFromAll
	gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{
		Name: "https", Port: 8443, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.apps.example.test"),
		TLS:           &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "shared-tls"}}},
		AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}},
	})
	if err := g.Client.Update(ctx, gw); err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// apiServerToken mints a token of the ServiceAccount for the API server's
// own audience, as the default mounted token is.
func apiServerToken(t *testing.T, ctx context.Context, c *env.Cluster, ns, sa string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(tr.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pushClient speaks xDS to the hub as a hand-written proxy would.
type pushClient struct {
	addr, caFile, serverName string
	creds                    credentials.TransportCredentials
}

// fetch opens a stream with the token in tokenFile, asks once and returns
// what the first response carried, or why there was none within 3 s.
func (p pushClient) fetch(ctx context.Context, tokenFile, node, typeURL string, names ...string) ([]*rt.KeyPair, error) {
	creds := p.creds
	if creds == nil {
		pem, err := os.ReadFile(p.caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: p.serverName, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.TrimSpace(string(token)))
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: typeURL, ResourceNames: names}); err != nil {
		return nil, err
	}
	resp, err := s.Recv()
	if err != nil {
		return nil, err
	}
	var out []*rt.KeyPair
	for _, a := range resp.GetResources() {
		kp := &rt.KeyPair{}
		if a.UnmarshalTo(kp) != nil {
			kp = &rt.KeyPair{Name: "(a route table)"}
		}
		out = append(out, kp)
	}
	if len(out) == 0 {
		return nil, errors.New("an empty response")
	}
	return out, nil
}

func holdsKey(res []*rt.KeyPair, keyPEM []byte) bool {
	for _, kp := range res {
		if bytes.Equal(kp.PrivateKey, keyPEM) {
			return true
		}
	}
	return false
}

// relay forwards TCP to the hub and keeps every byte that crosses it, both
// ways, as someone on the network path would.
type relay struct {
	addr string
	mu   sync.Mutex
	buf  bytes.Buffer
}

func startRelay(t *testing.T, target string) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &relay{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.forward(c, target)
		}
	}()
	return r
}

func (r *relay) forward(c net.Conn, target string) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	copyCapture := func(dst, src net.Conn) {
		_, _ = io.Copy(io.MultiWriter(dst, r), src)
		done <- struct{}{}
	}
	go copyCapture(up, c)
	go copyCapture(c, up)
	<-done
}

func (r *relay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *relay) captured() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}
