package xds

import (
	"testing"

	"google.golang.org/protobuf/proto"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// The cache is handed a table as its encoding: encoding that again gives
// the same bytes, hence the same hash the hub recorded, and decodes to the
// table.
func TestEncodedIsTheTable(t *testing.T) {
	table := &rt.RouteTable{Name: "member-1/infra/shared", Gateway: "infra/shared", Listeners: []*rt.Listener{{
		Name: "http", Port: 80, VirtualHosts: []*rt.VirtualHost{{Domain: "a.example.test", Routes: []*rt.Route{{}}}, {Domain: "*"}},
	}}}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(table)
	if err != nil {
		t.Fatal(err)
	}
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(encoded(table, b))
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(b) || Hash(table) != hashBytes(again) {
		t.Fatalf("encoded table marshals to %d bytes, the table to %d", len(again), len(b))
	}
	var decoded rt.RouteTable
	if err := proto.Unmarshal(again, &decoded); err != nil || !proto.Equal(&decoded, table) {
		t.Fatalf("decoded %v (%v), want %v", &decoded, err, table)
	}
}
