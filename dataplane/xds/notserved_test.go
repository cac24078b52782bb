package xds_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// notServed is what a proxy reports it does not serve, changed by tests.
type notServed struct {
	mu      sync.Mutex
	current map[string]map[string]string
	changed chan struct{}
}

func (n *notServed) get() map[string]map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.current
}

func (n *notServed) set(v map[string]map[string]string) {
	n.mu.Lock()
	n.current = v
	n.mu.Unlock()
	n.changed <- struct{}{}
}

// A proxy that serves a version but for one listener acknowledges it and
// says which listener it does not serve and why; when the listener comes
// up later, the hub learns it without a new version.
func TestListenersNotServedTravelWithTheAcknowledgement(t *testing.T) {
	hub := startHub(t)
	a := &applied{}
	ns := &notServed{current: map[string]map[string]string{tableName: {"extra": "binding listener port 8081: address already in use"}}, changed: make(chan struct{}, 1)}
	c := &xds.Client{Address: hub.addr, CAFile: hub.caFile, NodeID: tableName, Tables: []string{tableName}, Apply: a.apply,
		NotServed: ns.get, NotServedChanged: ns.changed}
	go c.Run(t.Context())
	h := hub.set(t, &rt.RouteTable{Name: tableName, Gateway: "infra/shared"})
	waitFor(t, 5*time.Second, "the version acknowledged with the listener not served", func() bool {
		r := hub.srv.Status(tableName).Replicas
		return len(r) == 1 && r[0].Acked[tableName] == h && r[0].NotServed[tableName]["extra"] == "binding listener port 8081: address already in use"
	})
	if n := hub.srv.Status(tableName).Nack; n != nil {
		t.Errorf("a version served but for one listener was rejected: %s", n.Message)
	}

	ns.set(nil)
	waitFor(t, 5*time.Second, "the hub to learn the listener is served", func() bool {
		r := hub.srv.Status(tableName).Replicas
		return len(r) == 1 && len(r[0].NotServed) == 0 && r[0].Acked[tableName] == h
	})

	// What a proxy reports is bounded: it ends up in status messages.
	ns.set(map[string]map[string]string{tableName: {"extra": strings.Repeat("x", 100_000)}})
	waitFor(t, 5*time.Second, "a long report cut short", func() bool {
		r := hub.srv.Status(tableName).Replicas
		return len(r) == 1 && len(r[0].NotServed[tableName]["extra"]) > 0 && len(r[0].NotServed[tableName]["extra"]) <= 1100
	})
}
