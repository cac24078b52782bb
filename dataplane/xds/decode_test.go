package xds_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// tablesApplied keeps the tables of each version a client applies.
type tablesApplied struct {
	mu       sync.Mutex
	versions [][]*rt.RouteTable
}

func (a *tablesApplied) apply(_ string, tables []*rt.RouteTable, _ map[string]*rt.KeyPair) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.versions = append(a.versions, tables)
	return nil
}

func (a *tablesApplied) get() [][]*rt.RouteTable {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.versions
}

// A new version of a table reaches the proxy with what did not change as
// the messages of the version before, which is how the proxy knows not to
// compile them again, and with what changed as it was pushed.
func TestUnchangedPartsArriveAsTheSameMessages(t *testing.T) {
	hub := startHub(t)
	a := &tablesApplied{}
	c := &xds.Client{Address: hub.addr, CAFile: hub.caFile, NodeID: tableName, Tables: []string{tableName}, Apply: a.apply}
	go c.Run(t.Context())
	v1 := routeTo(8080, backend(t, "v1"))
	v1.Listeners[0].VirtualHosts = append(v1.Listeners[0].VirtualHosts, &rt.VirtualHost{Domain: "other.example.com",
		Routes: []*rt.Route{{Match: &rt.RouteMatch{Path: &rt.RouteMatch_Exact{Exact: "/"}},
			Action: &rt.Route_DirectResponse{DirectResponse: &rt.DirectResponse{Status: 204}}}}})
	hub.set(t, v1)
	waitFor(t, 5*time.Second, "the first version applied", func() bool { return len(a.get()) == 1 })
	v2 := proto.Clone(v1).(*rt.RouteTable)
	v2.Listeners[0].VirtualHosts[1].Routes[0].Match.Method = "GET"
	hub.set(t, v2)
	waitFor(t, 5*time.Second, "the second version applied", func() bool { return len(a.get()) == 2 })

	first, second := a.get()[0][0], a.get()[1][0]
	if !proto.Equal(second, v2) {
		t.Fatalf("applied\n%v\npushed\n%v", second, v2)
	}
	if second.Listeners[0].VirtualHosts[0] != first.Listeners[0].VirtualHosts[0] || second.Backends[0] != first.Backends[0] {
		t.Error("the virtual host and the backend that did not change are new messages")
	}
	if second.Listeners[0].VirtualHosts[1] == first.Listeners[0].VirtualHosts[1] {
		t.Error("the virtual host that changed is the message of the version before")
	}
}

// The cache holds each table as pushed, written from the bytes that came
// in the push, and a proxy restarted with it serves that version.
func TestTheCacheHoldsTheTablesAsPushed(t *testing.T) {
	dir := t.TempDir()
	hub := startHub(t)
	a := &tablesApplied{}
	ctx, stop := context.WithCancel(t.Context())
	c := &xds.Client{Address: hub.addr, CAFile: hub.caFile, NodeID: tableName, Tables: []string{tableName}, CacheDir: dir, Apply: a.apply}
	go c.Run(ctx)
	v1 := routeTo(8080, backend(t, "v1"))
	h := hub.set(t, v1)
	waitFor(t, 5*time.Second, "the table acknowledged", func() bool { return hub.srv.Status(tableName).Acked[tableName] == h })
	stop()

	data, err := os.ReadFile(filepath.Join(dir, "tables.pb"))
	if err != nil {
		t.Fatal(err)
	}
	cache := &rt.ProxyCache{}
	if err := proto.Unmarshal(data, cache); err != nil {
		t.Fatal(err)
	}
	if len(cache.Tables) != 1 || !proto.Equal(cache.Tables[0], v1) {
		t.Fatalf("the cache holds %v, want the table pushed", cache.Tables)
	}
	restarted := &tablesApplied{}
	c = &xds.Client{Address: "127.0.0.1:1", CAFile: hub.caFile, NodeID: tableName, Tables: []string{tableName}, CacheDir: dir, Apply: restarted.apply}
	go c.Run(t.Context())
	waitFor(t, 5*time.Second, "the cached version applied", func() bool { return len(restarted.get()) == 1 })
	if got := restarted.get()[0]; len(got) != 1 || !proto.Equal(got[0], v1) {
		t.Errorf("the restarted client applied %v, want the table pushed", got)
	}
}
