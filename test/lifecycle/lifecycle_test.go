// Package lifecycle_test runs the hub as an operator runs it — the chart
// installed with helm, two replicas with leader election — on a cluster of
// two nodes (the fake kubelet, kube-controller-manager's Deployment,
// ReplicaSet, EndpointSlice and disruption controllers, a stand-in for
// kube-proxy), and checks that upgrading it and draining the node of its
// leader drop no proxied request, keep route status Programmed, and never
// run two active hubs; and that restarting the member chart's proxies and
// draining the node of one drop no request either.
package lifecycle_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() && os.Geteuid() == 0 {
		env.EnterNetwork(localRanges...)
	}
	os.Exit(m.Run())
}

func TestHubLifecycle(t *testing.T) {
	skipWithoutBed(t, "two clusters, kube-controller-manager, two kubelets, two hubs and a proxy")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	b := startBed(t, ctx, 1)
	b.installHub(ctx)
	b.rolledOut(ctx)
	s := b.startScenario(ctx)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub logs:\n%s", b.hubLogs(context.Background()))
		}
	})
	m := b.monitor(ctx, s)
	defer m.finish()
	b.proxyBack(ctx, m)

	t.Run("helm upgrade", func(t *testing.T) {
		start := time.Now()
		if _, err := b.run(ctx, "helm", "upgrade", release, "charts/gatehouse", "--namespace", hubNamespace, "--reuse-values",
			"--set-string", "podAnnotations.lifecycle-test/revision=2"); err != nil {
			t.Fatal(err)
		}
		b.rolledOut(ctx)
		t.Logf("rollout of 2 hub replicas: %v", time.Since(start).Round(100*time.Millisecond))
		b.proxyBack(ctx, m)
		t.Logf("the proxy connected to the leader again %v after the upgrade began", time.Since(start).Round(100*time.Millisecond))
	})

	t.Run("drain the leader's node", func(t *testing.T) {
		leader := m.holder()
		pod, err := b.hub.CoreV1().Pods(hubNamespace).Get(ctx, leader, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the leader %q: %v", leader, err)
		}
		start := time.Now()
		if _, err := b.run(ctx, "kubectl", "drain", pod.Spec.NodeName, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=150s"); err != nil {
			t.Fatal(err)
		}
		t.Logf("drain of %s (holding the leader %s): %v", pod.Spec.NodeName, leader, time.Since(start).Round(100*time.Millisecond))
		b.eventually(ctx, time.Minute, "a new leader", func() (bool, string) {
			_, ok := m.failover(leader)
			return ok, "the Lease or the active label did not move"
		})
		f, _ := m.failover(leader)
		t.Logf("failover after the leader's SIGTERM: lease taken by another hub after %v, its Pod labelled active after %v",
			f.lease.Round(time.Millisecond), f.label.Round(time.Millisecond))
		if !f.released {
			t.Errorf("the leader did not release the Lease as it stopped: the next one waited for it to expire")
		}
		b.proxyBack(ctx, m)
		t.Logf("the proxy connected to the new leader %v after the drain began", time.Since(start).Round(100*time.Millisecond))
		b.rolledOut(ctx)
		if _, err := b.run(ctx, "kubectl", "uncordon", pod.Spec.NodeName); err != nil {
			t.Fatal(err)
		}
	})

	// The proxy is back on the last leader: what it writes now is settled.
	// A few more status samples see it.
	time.Sleep(4 * statusEvery)
	m.finish()
	m.mu.Lock()
	defer m.mu.Unlock()
	t.Logf("load: %d requests through the proxy, %d failed; status sampled %d times; at least %d hub replicas Ready at any time",
		m.requests.Load(), m.failures.Load(), m.samples, m.minReady)
	if m.failures.Load() > 0 {
		t.Errorf("%d of %d proxied requests failed:\n%s", m.failures.Load(), m.requests.Load(), strings.Join(m.failed, "\n"))
	}
	if m.requests.Load() == 0 || m.samples == 0 {
		t.Errorf("nothing measured: %d requests, %d status samples", m.requests.Load(), m.samples)
	}
	if len(m.notProgrammed) > 0 {
		t.Errorf("route status not continuous:\n%s", strings.Join(m.notProgrammed, "\n"))
	}
	if m.minReady < 1 {
		t.Errorf("at one moment %d hub replicas were Ready: the rollout or the drain took more than the budget allows", m.minReady)
	}
	if m.maxActive != 1 || len(m.twoActive) > 0 {
		t.Errorf("active hub Pods at once: at most %d, want 1 %v", m.maxActive, m.twoActive)
	}
	for svc, n := range m.maxEndpoints {
		if n > 1 {
			t.Errorf("Service %s had %d ready endpoints at once: traffic reached a standby", svc, n)
		}
	}
	t.Logf("events: %s", m.describeEvents())
}

func (m *monitor) describeEvents() string {
	var b strings.Builder
	for _, e := range m.events {
		fmt.Fprintf(&b, "\n  %s %s %s", e.at.Format("15:04:05.000"), e.kind, e.pod)
	}
	return b.String()
}
