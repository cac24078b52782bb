package xds

import (
	"fmt"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// What the server keeps follows what exists: nodes with a stream open,
// resources published now, and the last few responses of a stream. Under
// churn (proxies coming and going, tables changing, Gateways deleted) it
// must not grow with the history.
func TestTheServerForgetsWhatIsGone(t *testing.T) {
	const n = 200
	s := NewServer(t.Context(), nil, nil)

	t.Run("nodes whose streams closed", func(t *testing.T) {
		for i := range n {
			id := int64(i + 1)
			node := fmt.Sprintf("member-1/ns/gw-%d", i)
			if err := s.OnStreamOpen(t.Context(), id, TableType); err != nil {
				t.Fatal(err)
			}
			if err := s.OnStreamRequest(id, &discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: TableType, ResourceNames: []string{node}}); err != nil {
				t.Fatal(err)
			}
			if i < n-1 {
				s.OnStreamClosed(id, nil)
			}
		}
		if got := s.Nodes(); len(got) != 1 || got[0] != fmt.Sprintf("member-1/ns/gw-%d", n-1) {
			t.Errorf("after %d proxies connected and %d left, the server knows %d nodes; want the one connected", n, n-1, len(got))
		}
		if st := s.Status("member-1/ns/gw-0"); st.Streams != 0 || len(st.Acked) != 0 {
			t.Errorf("a node that left reads %+v; want one never seen", st)
		}
	})

	t.Run("hashes of past versions and deleted resources", func(t *testing.T) {
		for i := range n {
			if _, err := s.SetTable(&rt.RouteTable{Name: "member-1/ns/churn", Gateway: fmt.Sprintf("ns/v%d", i)}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SetKeyPair(&rt.KeyPair{Name: fmt.Sprintf("member-1/ns/tls-%d", i), PrivateKey: []byte("k")}); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteKeyPair(fmt.Sprintf("member-1/ns/tls-%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		s.mu.Lock()
		names, hashes := len(s.names), len(s.hashes)
		s.mu.Unlock()
		if names != 1 || hashes != 1 {
			t.Errorf("after %d versions of one table and %d key pairs deleted, the server holds %d hashes → names and %d names → hashes; want 1 each", n, n, names, hashes)
		}
		if k := s.keys.NumResources(); k != 0 {
			t.Errorf("%d deleted key pairs are still published", k)
		}
		if err := s.DeleteTable("member-1/ns/churn"); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		names, hashes = len(s.names), len(s.hashes)
		s.mu.Unlock()
		if names != 0 || hashes != 0 {
			t.Errorf("with nothing published the server holds %d hashes → names and %d names → hashes", names, hashes)
		}
	})

	t.Run("responses a proxy never answers", func(t *testing.T) {
		const id = 100000
		if err := s.OnStreamOpen(t.Context(), id, TableType); err != nil {
			t.Fatal(err)
		}
		table, err := anypb.New(&rt.RouteTable{Name: "x"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			s.OnStreamResponse(t.Context(), id, nil, &discovery.DiscoveryResponse{Nonce: fmt.Sprint(i), Resources: []*anypb.Any{table}})
		}
		s.mu.Lock()
		sent := len(s.streams[id].sent)
		s.mu.Unlock()
		if sent > maxSent {
			t.Errorf("a stream that answered none of %d responses holds %d of them; want at most %d", n, sent, maxSent)
		}
	})
}
