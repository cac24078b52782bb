package xds

import (
	"fmt"
	"log/slog"
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// sink is a stream to the hub that takes every request and answers none.
type sink struct {
	discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
}

func (sink) Send(*discovery.DiscoveryRequest) error { return nil }

// A listener's certificate changes (a renewal under a new name, a listener
// replaced): the key pairs no table names any more leave the proxy's
// memory.
func TestTheClientForgetsKeyPairsNoTableNames(t *testing.T) {
	const n = 20
	c := &Client{Tables: []string{"member-1/infra/shared"}, Log: slog.New(slog.DiscardHandler), Apply: func(string, []*rt.RouteTable, map[string]*rt.KeyPair) error { return nil },
		tables: map[string]*rt.RouteTable{}, keys: map[string]*rt.KeyPair{},
		acks: prometheus.NewCounter(prometheus.CounterOpts{Name: "a"}), nacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "n"})}
	respond := func(typeURL, version string, msgs ...proto.Message) {
		t.Helper()
		resp := &discovery.DiscoveryResponse{TypeUrl: typeURL, VersionInfo: version, Nonce: version}
		for _, m := range msgs {
			a, err := anypb.New(m)
			if err != nil {
				t.Fatal(err)
			}
			resp.Resources = append(resp.Resources, a)
		}
		if err := c.handle(sink{}, resp); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		name := fmt.Sprintf("member-1/infra/tls-%d", i)
		respond(TableType, fmt.Sprint("t", i), &rt.RouteTable{Name: "member-1/infra/shared", Listeners: []*rt.Listener{{Name: "https", Port: 8443,
			Tls: &rt.ListenerTLS{Certificates: []string{name}}}}})
		respond(KeyPairType, fmt.Sprint("k", i), &rt.KeyPair{Name: name, PrivateKey: []byte("key")})
		if c.applied == "" || c.waiting != nil {
			t.Fatalf("version %d was not applied", i)
		}
	}
	if len(c.keys) != 1 {
		t.Errorf("after the listener's key pair changed %d times, the proxy holds %d key pairs; want the one its table names", n, len(c.keys))
	}
}
