package conformance

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// proxyFleet plays the platform team's external proxy fleet: every Gateway
// of our class gets a gatehouse-proxy process of its own, on an address of
// its own (the suite puts several Gateways on port 80), that presents the
// Gateway's ServiceAccount token to the hub and advertises its address so
// that the hub reports it in the Gateway's status. A Gateway that goes away
// takes its proxy with it. Addresses are never reused within a run, so a
// client never reaches a stale proxy on a recycled address. A Gateway that
// asks for one of the usable addresses in spec.addresses gets its proxy
// there, as an address manager would assign a requested static address.
type proxyFleet struct {
	cluster    *env.Cluster
	client     client.Client
	class      string
	binary     string
	xdsAddress string
	caFile     string
	dir        string
	log        io.Writer

	// usable are the static addresses the fleet can be asked for.
	usable map[string]bool

	mu      sync.Mutex
	next    netip.Addr
	last    netip.Addr
	taken   map[string]bool
	running map[types.UID]*gatewayProxy
}

type gatewayProxy struct {
	gateway types.NamespacedName
	addr    netip.Addr
	proc    *env.Process
}

// run reconciles proxies with Gateways until ctx ends, then stops them all.
func (f *proxyFleet) run(ctx context.Context) {
	defer f.stopAll()
	for {
		if err := f.reconcile(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintf(f.log, "proxy fleet: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (f *proxyFleet) reconcile(ctx context.Context) error {
	var list gwv1.GatewayList
	if err := f.client.List(ctx, &list); err != nil {
		return err
	}
	want := map[types.UID]*gwv1.Gateway{}
	for i := range list.Items {
		gw := &list.Items[i]
		if string(gw.Spec.GatewayClassName) == f.class && gw.DeletionTimestamp == nil {
			want[gw.UID] = gw
		}
	}
	f.mu.Lock()
	var gone []*gatewayProxy
	for uid, p := range f.running {
		if want[uid] == nil {
			gone = append(gone, p)
			delete(f.running, uid)
		}
	}
	f.mu.Unlock()
	for _, p := range gone {
		_ = p.proc.Stop(5 * time.Second)
		fmt.Fprintf(f.log, "proxy fleet: stopped the proxy of %s on %s\n", p.gateway, p.addr)
	}
	for uid, gw := range want {
		f.mu.Lock()
		_, ok := f.running[uid]
		f.mu.Unlock()
		if ok {
			continue
		}
		p, err := f.start(ctx, gw)
		if err != nil {
			// The namespace may be going away, or the token not mintable
			// yet: the next round tries again.
			fmt.Fprintf(f.log, "proxy fleet: %s/%s: %v\n", gw.Namespace, gw.Name, err)
			continue
		}
		f.mu.Lock()
		f.running[uid] = p
		f.mu.Unlock()
		fmt.Fprintf(f.log, "proxy fleet: started the proxy of %s on %s (pid %d)\n", p.gateway, p.addr, p.proc.PID())
	}
	return nil
}

func (f *proxyFleet) start(ctx context.Context, gw *gwv1.Gateway) (*gatewayProxy, error) {
	addr, err := f.allocate(gw)
	if err != nil {
		return nil, err
	}

	dir := filepath.Join(f.dir, fmt.Sprintf("%s.%s.%s", gw.Namespace, gw.Name, addr))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	token, err := env.ProxyToken(ctx, f.cluster, gw.Namespace, gw.Name, dir)
	if err != nil {
		return nil, err
	}
	key := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	proc, err := env.StartProcess("proxy "+key.String(), f.binary, []string{
		"--xds-address", f.xdsAddress, "--cluster", memberName, "--gateway", key.String(),
		"--bind-address", addr.String(), "--advertise-address", addr.String(),
		"--admin-address", "127.0.0.1:0", "--cache-dir", dir, "--drain-delay", "0s", "--drain-timeout", "1s", "--token-file", token,
		"--xds-ca-file", f.caFile,
	}, f.log)
	if err != nil {
		return nil, err
	}
	return &gatewayProxy{gateway: key, addr: addr, proc: proc}, nil
}

// allocate picks the Gateway's address: a usable static address it asks
// for, else the next free one of the pool.
func (f *proxyFleet) allocate(gw *gwv1.Gateway) (netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.taken == nil {
		f.taken = map[string]bool{}
	}
	for _, a := range gw.Spec.Addresses {
		if f.usable[a.Value] && !f.taken[a.Value] {
			f.taken[a.Value] = true
			return netip.ParseAddr(a.Value)
		}
	}
	addr := f.next
	if !addr.IsValid() || addr.Compare(f.last) > 0 {
		return netip.Addr{}, fmt.Errorf("no Gateway address left")
	}
	f.next = addr.Next()
	return addr, nil
}

func (f *proxyFleet) stopAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	var wg sync.WaitGroup
	for uid, p := range f.running {
		wg.Go(func() { _ = p.proc.Stop(5 * time.Second) })
		delete(f.running, uid)
	}
	wg.Wait()
}
