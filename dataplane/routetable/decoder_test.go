package routetable_test

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// TestDecoderReusesWhatDidNotChange: each version decodes to what
// proto.Unmarshal gives, and a backend, virtual host or route encoded as
// in the version before is that version's message; one that changed, or
// came back after a version without it, is new.
func TestDecoderReusesWhatDidNotChange(t *testing.T) {
	var d rt.Decoder
	v1 := decoderTable(3, 2)
	t1 := decode(t, &d, v1)

	v2 := proto.Clone(v1).(*rt.RouteTable)
	vhosts := v2.Listeners[0].VirtualHosts
	vhosts[1].Routes[0].Match.Method = "POST"
	v2.Backends = v2.Backends[:2]
	t2 := decode(t, &d, v2)
	old, now := t1.Listeners[0].VirtualHosts, t2.Listeners[0].VirtualHosts
	if now[0] != old[0] || now[2] != old[2] {
		t.Error("virtual hosts encoded as before are not the messages decoded before")
	}
	if now[1] == old[1] || now[1].Routes[0] == old[1].Routes[0] {
		t.Error("the changed virtual host and route must be new messages")
	}
	if now[1].Routes[1] != old[1].Routes[1] {
		t.Error("the unchanged route of a changed virtual host is not the message decoded before")
	}
	if t2.Backends[0] != t1.Backends[0] || t2.Listeners[0] == t1.Listeners[0] {
		t.Error("backends are reused, listeners decoded again")
	}

	t3 := decode(t, &d, v1)
	if t3.Backends[2] == t1.Backends[2] || t3.Listeners[0].VirtualHosts[1] == old[1] {
		t.Error("parts the version before did not have must not be kept")
	}
	if t3.Listeners[0].VirtualHosts[0] != old[0] {
		t.Error("a virtual host kept through versions is not the same message")
	}
}

// TestDecoderRefusesWhatUnmarshalRefuses: a table that does not decode is
// an error, and the decoder goes on with the next version.
func TestDecoderRefusesWhatUnmarshalRefuses(t *testing.T) {
	var d rt.Decoder
	b, err := proto.Marshal(decoderTable(2, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode(b[:len(b)-3]); err == nil {
		t.Error("a truncated table decoded")
	}
	decode(t, &d, decoderTable(2, 1))
}

func decode(t *testing.T, d *rt.Decoder, table *rt.RouteTable) *rt.RouteTable {
	t.Helper()
	b, err := proto.Marshal(table)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &rt.RouteTable{}
	if err := proto.Unmarshal(b, want); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded\n%v\nunmarshalled\n%v", got, want)
	}
	return got
}

// decoderTable has vhosts virtual hosts of routes routes each, and a
// backend per virtual host.
func decoderTable(vhosts, routes int) *rt.RouteTable {
	l := &rt.Listener{Name: "http", Port: 80, Protocol: rt.Protocol_HTTP}
	t := &rt.RouteTable{Gateway: "ns/gw", Name: "c/ns/gw", Listeners: []*rt.Listener{l}, Limits: &rt.Limits{MaxUriLength: 100}}
	for i := range vhosts {
		be := fmt.Sprintf("svc-%d", i)
		t.Backends = append(t.Backends, &rt.Backend{Name: be, Endpoints: []*rt.Endpoint{{Address: "10.0.0.1", Port: uint32(8000 + i)}}})
		vh := &rt.VirtualHost{Domain: fmt.Sprintf("h%d.example.com", i)}
		for j := range routes {
			vh.Routes = append(vh.Routes, &rt.Route{
				Match:  &rt.RouteMatch{Path: &rt.RouteMatch_Prefix{Prefix: fmt.Sprintf("/r%d", j)}},
				Action: &rt.Route_Route{Route: &rt.RouteAction{Backends: []*rt.WeightedBackend{{Backend: be, Weight: 1}}}},
			})
		}
		l.VirtualHosts = append(l.VirtualHosts, vh)
	}
	return t
}
