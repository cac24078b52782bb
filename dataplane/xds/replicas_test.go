package xds_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// Each replica of a Gateway's proxies is its own stream: the server reports
// what each acknowledged, so that one replica's acknowledgement does not
// speak for another that rejected the table.
func TestReplicasAreReportedApart(t *testing.T) {
	hub := startHub(t)
	good, bad := &applied{}, &applied{fail: errors.New("port 8080 is taken")}
	for _, a := range []*applied{good, bad} {
		c := &xds.Client{Address: hub.addr, CAFile: hub.caFile, NodeID: tableName, Tables: []string{tableName}, Apply: a.apply}
		go c.Run(t.Context())
	}
	h := hub.set(t, &rt.RouteTable{Name: tableName, Gateway: "infra/shared"})
	waitFor(t, 5*time.Second, "both replicas to answer", func() bool {
		s := hub.srv.Status(tableName)
		return len(s.Replicas) == 2 && s.Nack != nil && s.Acked[tableName] == h
	})
	s := hub.srv.Status(tableName)
	served := 0
	for _, r := range s.Replicas {
		if r.Acked[tableName] == h {
			served++
		}
	}
	if served != 1 || s.Streams != 2 {
		t.Errorf("replicas: %v (streams %d); want one serving %s and one not", s.Replicas, s.Streams, h)
	}
	if s.Nack.Message != "port 8080 is taken" {
		t.Errorf("rejection message %q", s.Nack.Message)
	}
}

// A proxy may advertise where it answers; the server reports the addresses
// of the connected replicas, without repeats, and forgets those of a replica
// that went away.
func TestAdvertisedAddresses(t *testing.T) {
	hub := startHub(t)
	a := &applied{}
	gone, cancel := context.WithCancel(t.Context())
	for _, c := range []struct {
		ctx   context.Context
		addrs []string
	}{{t.Context(), []string{"10.0.0.2", "lb.example.test"}}, {gone, []string{"10.0.0.1", "10.0.0.2"}}} {
		cl := &xds.Client{Address: hub.addr, CAFile: hub.caFile, NodeID: tableName, Tables: []string{tableName}, Apply: a.apply, Addresses: c.addrs}
		go cl.Run(c.ctx)
	}
	hub.set(t, &rt.RouteTable{Name: tableName, Gateway: "infra/shared"})
	want := []string{"10.0.0.1", "10.0.0.2", "lb.example.test"}
	waitFor(t, 5*time.Second, "both replicas' addresses", func() bool {
		return slices.Equal(hub.srv.Status(tableName).Addresses, want)
	})
	cancel()
	want = []string{"10.0.0.2", "lb.example.test"}
	waitFor(t, 5*time.Second, "the remaining replica's addresses", func() bool {
		return slices.Equal(hub.srv.Status(tableName).Addresses, want)
	})
}
