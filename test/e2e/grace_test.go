package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestProgrammedIsNeverClaimedWithoutAProxy: the Gateway's proxy is
// stopped, the hub restarts, and a route changes during the hub's startup
// grace. The hub used to keep the stored Programmed=True and raise its
// observedGeneration to the new generation, which no proxy had seen, and
// nothing looked again when the grace ended. Now the new generation is
// never Programmed=True until a proxy acknowledges it, the condition says
// why once the grace is over, and a proxy that comes back makes it True.
func TestProgrammedIsNeverClaimedWithoutAProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const grace = 6 * time.Second
	bins := build(t, "gatehouse", "gatehouse-proxy")
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	fleet, err := env.Start(ctx, env.Options{Members: 1, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	hubArgs := []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", xdsAddr,
		"--metrics-address", "0", "--health-address", "0", "--debounce", "20ms", "--startup-grace", grace.String()}
	hub := start(t, "hub", bins["gatehouse"], hubArgs...)
	caFile := pushCA(t, ctx, fleet)
	proxy := env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: xdsAddr, CAFile: caFile, CacheDir: t.TempDir(), Log: testLog{t}}
	m, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{{Namespace: "shop", Hostname: tenantHost, Answer: "shop-1"}}, proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	waitAnswer(t, m.Address, tenantHost, "shop-1")
	waitParentCondition(t, ctx, m.Client, "shop", "web", "Programmed", metav1.ConditionTrue, "Programmed")

	// No proxy, a new hub, and a change inside its grace.
	if err := m.Proxy.Stop(10 * time.Second); err != nil {
		t.Logf("stopping the proxy: %v", err)
	}
	hub.Kill()
	hub = start(t, "hub", bins["gatehouse"], hubArgs...)
	restarted := time.Now()
	time.Sleep(time.Second)
	var gen int64
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r := route(t, ctx, m.Client, "shop", "web")
		r.Spec.Hostnames = append(r.Spec.Hostnames, "also.apps.example.test")
		err := m.Client.Update(ctx, r)
		gen = r.Generation
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if time.Since(restarted) >= grace {
		t.Fatalf("the change came %s after the restart, past the %s grace: the test proves nothing", time.Since(restarted), grace)
	}

	// Until well past the grace, the new generation is never Programmed=True;
	// once the grace is over the condition says no proxy is connected.
	var last string
	deadline := restarted.Add(grace + 5*time.Second)
	for time.Now().Before(deadline) {
		c := programmedOf(t, ctx, m, gen)
		if c != nil && c.Status == metav1.ConditionTrue {
			t.Fatalf("Programmed=True for generation %d with no proxy running: %s", gen, c.Message)
		}
		if c != nil {
			last = fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(last, "no proxy of this Gateway is connected") {
		t.Errorf("after the grace, Programmed for generation %d says %q; want it re-evaluated to say no proxy is connected", gen, last)
	}

	// A proxy that comes back and acknowledges makes it True.
	proxyIP, _, _ := net.SplitHostPort(m.Address)
	p, err := env.StartProxy(m.Cluster.Name+"/proxy-again", proxy, m.Cluster.Name, proxyIP, m.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	waitFor(t, 30*time.Second, fmt.Sprintf("Programmed=True for generation %d once a proxy serves it", gen), func() bool {
		c := programmedOf(t, ctx, m, gen)
		return c != nil && c.Status == metav1.ConditionTrue
	})
	waitAnswer(t, m.Address, "also.apps.example.test", "shop-1")
}

// programmedOf is the Programmed condition of shop/web's first parent when
// it describes generation gen, else nil.
func programmedOf(t *testing.T, ctx context.Context, m *env.SharedGateway, gen int64) *metav1.Condition {
	t.Helper()
	var r gwv1.HTTPRoute
	if err := m.Client.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "web"}, &r); err != nil || len(r.Status.Parents) == 0 {
		return nil
	}
	c := meta.FindStatusCondition(r.Status.Parents[0].Conditions, "Programmed")
	if c == nil || c.ObservedGeneration != gen {
		return nil
	}
	return c
}
