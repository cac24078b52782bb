package xds_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// A client that asks for everything gets nothing: in legacy xDS an empty
// list of names, or the name "*", subscribes to every resource of a type —
// every Gateway's table, every listener's private key.
func TestWildcardRequestsGetNothing(t *testing.T) {
	hub := startHub(t)
	hub.set(t, &rt.RouteTable{Name: "member-2/infra/other", Gateway: "infra/other"})
	if _, err := hub.srv.SetKeyPair(&rt.KeyPair{Name: "member-2/infra/other-https", CertificateChain: []byte("cert"), PrivateKey: []byte("secret key")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		typeURL string
		names   []string
	}{
		{"tables, no names", xds.TableType, nil},
		{"tables, explicit wildcard", xds.TableType, []string{"*"}},
		{"key pairs, explicit wildcard", xds.KeyPairType, []string{"*"}},
		{"key pairs, no names", xds.KeyPairType, nil},
		{"key pairs, an empty name", xds.KeyPairType, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := adsStream(t, hub, tlsTo(t, hub))
			req := &discovery.DiscoveryRequest{Node: &core.Node{Id: "member-1/tenant/anything"}, TypeUrl: tc.typeURL, ResourceNames: tc.names}
			if err := s.Send(req); err != nil {
				t.Fatal(err)
			}
			got := make(chan *discovery.DiscoveryResponse, 1)
			go func() {
				resp, err := s.Recv()
				if err == nil {
					got <- resp
				}
				close(got)
			}()
			select {
			case resp, ok := <-got:
				if ok && len(resp.GetResources()) > 0 {
					t.Fatalf("the wildcard request got %d resources", len(resp.GetResources()))
				}
			case <-time.After(time.Second):
				// No answer at all: nothing was subscribed.
			}
		})
	}
}

// The push channel is TLS: a plaintext client does not get through, and a
// client that does not trust the hub's CA refuses the hub.
func TestThePushChannelIsTLS(t *testing.T) {
	hub := startHub(t)
	hub.set(t, &rt.RouteTable{Name: tableName, Gateway: "infra/shared"})
	t.Run("plaintext", func(t *testing.T) {
		conn, err := grpc.NewClient(hub.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(t.Context())
		if err != nil {
			return // refused at the handshake
		}
		_ = s.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: tableName}, TypeUrl: xds.TableType, ResourceNames: []string{tableName}})
		if _, err := s.Recv(); err == nil {
			t.Fatal("a plaintext client received a response")
		}
	})
	t.Run("an untrusted server", func(t *testing.T) {
		_, otherCA := testCA(t)
		c := &xds.Client{Address: hub.addr, CAFile: otherCA, NodeID: tableName, Tables: []string{tableName}, Apply: (&applied{}).apply}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		c.Run(ctx)
		if hub.srv.Status(tableName).Streams != 0 {
			t.Fatal("a client that does not trust the hub's certificate opened a stream")
		}
	})
	t.Run("no CA bundle", func(t *testing.T) {
		c := &xds.Client{Address: hub.addr, NodeID: tableName, Tables: []string{tableName}, Apply: (&applied{}).apply}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		c.Run(ctx)
		if hub.srv.Status(tableName).Streams != 0 {
			t.Fatal("a client without a CA bundle connected")
		}
	})
}

func tlsTo(t *testing.T, hub *hubServer) credentials.TransportCredentials {
	pem, err := os.ReadFile(hub.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
}

func adsStream(t *testing.T, hub *hubServer, creds credentials.TransportCredentials) discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	conn, err := grpc.NewClient(hub.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
