package xds_test

import (
	"sync"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

type applied struct {
	mu    sync.Mutex
	calls []map[string]*rt.KeyPair
	fail  error
}

func (a *applied) apply(_ string, _ []*rt.RouteTable, keys map[string]*rt.KeyPair) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.calls = append(a.calls, keys)
	return nil
}

func (a *applied) last() map[string]*rt.KeyPair {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) == 0 {
		return nil
	}
	return a.calls[len(a.calls)-1]
}

// A table that names a key pair is applied and acknowledged only once the
// key pair has arrived; a renewed key pair is applied again without the
// table being resent.
func TestTablesWaitForTheirKeyPairs(t *testing.T) {
	hub := startHub(t)
	a := &applied{}
	c := &xds.Client{Address: hub.addr, CAFile: hub.caFile, NodeID: tableName, Tables: []string{tableName}, Apply: a.apply}
	go c.Run(t.Context())

	table := &rt.RouteTable{Name: tableName, Gateway: "infra/shared", Listeners: []*rt.Listener{{
		Name: "https", Port: 8443, Protocol: rt.Protocol_HTTPS, Tls: &rt.ListenerTLS{Certificates: []string{"member-1/infra/shared-https"}},
	}}}
	h := hub.set(t, table)
	time.Sleep(300 * time.Millisecond)
	if a.last() != nil || hub.srv.Status(tableName).Acked[tableName] != "" {
		t.Fatalf("the table was applied (%v) or acknowledged (%v) before its key pair arrived", a.last(), hub.srv.Status(tableName).Acked)
	}

	kp := &rt.KeyPair{Name: "member-1/infra/shared-https", CertificateChain: []byte("chain-1"), PrivateKey: []byte("key-1")}
	if _, err := hub.srv.SetKeyPair(kp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "table acknowledged after its key pair", func() bool { return hub.srv.Status(tableName).Acked[tableName] == h })
	if got := a.last()["member-1/infra/shared-https"]; got == nil || string(got.CertificateChain) != "chain-1" {
		t.Fatalf("applied key pairs: %v", a.last())
	}

	renewed := &rt.KeyPair{Name: kp.Name, CertificateChain: []byte("chain-2"), PrivateKey: []byte("key-2")}
	kh, _ := hub.srv.SetKeyPair(renewed)
	waitFor(t, 5*time.Second, "renewed key pair applied", func() bool {
		got := a.last()[kp.Name]
		return got != nil && string(got.CertificateChain) == "chain-2"
	})
	waitFor(t, 5*time.Second, "renewed key pair acknowledged", func() bool { return hub.srv.Status(tableName).Acked[kp.Name] == kh })
	if s := hub.srv.Status(tableName); s.Streams != 1 || s.Nack != nil {
		t.Errorf("node status: %+v", s)
	}
	_ = xds.TableType
}
