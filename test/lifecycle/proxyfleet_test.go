package lifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The member chart's proxy fleet, run as an operator runs it: the hub's
// own cluster is a member too (charts/README.md: install both charts
// there), so the proxies are Pods on the bed's two kubelets beside the
// hub's replicas, clients reach them through their Service, and
// kube-controller-manager's Deployment, ReplicaSet, EndpointSlice and
// disruption controllers act on them.
const (
	memberRelease   = "gatehouse-member"
	memberNamespace = "gatehouse-member"
	// The chart's Deployment, Service, PodDisruptionBudget and
	// ServiceAccount of the shared Gateway's proxies.
	proxyFleetName = "gatehouse-proxy-" + env.GatewayName
	proxyReplicas  = 2
	// The hub cluster's name as a member ("hub" is reserved).
	ownMember = "hub-cluster"
)

// TestProxyFleetLifecycle restarts the proxies with a rollout, then drains
// the node of one of them, under load through their Service: no request
// fails, and each proxy Pod taken away leaves the Service's endpoints
// before its process gets SIGTERM (the chart's preStop sleep), then
// drains.
func TestProxyFleetLifecycle(t *testing.T) {
	skipWithoutBed(t, "a cluster, kube-controller-manager, two kubelets, two hubs and two proxies")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	b := startBed(t, ctx, 0)
	b.installHub(ctx)
	b.rolledOut(ctx)
	var w *proxyWatch
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx := context.Background()
		t.Logf("hub logs:\n%s\nproxy logs:\n%s", b.hubLogs(ctx), b.podLogs(ctx, env.GatewayNamespace))
		if w != nil {
			t.Logf("logs of the proxies taken away:\n%s", w.logsOfGone())
		}
	})
	f := b.startProxyFleet(ctx)
	w = b.watchProxies(ctx, f)
	defer w.finish()

	t.Run("rollout restart", func(t *testing.T) {
		old := w.live("")
		start, before := time.Now(), w.load.snapshot()
		if _, err := b.run(ctx, "kubectl", "rollout", "restart", "deployment/"+proxyFleetName, "--namespace", env.GatewayNamespace); err != nil {
			t.Fatal(err)
		}
		if _, err := b.run(ctx, "kubectl", "rollout", "status", "deployment/"+proxyFleetName, "--namespace", env.GatewayNamespace, "--timeout=3m"); err != nil {
			t.Fatal(err)
		}
		b.deploymentRolledOut(ctx, env.GatewayNamespace, proxyFleetName)
		w.waitGone(ctx, old)
		t.Logf("rollout restart of %d proxies, until the old Pods were gone: %v; %s", len(old), time.Since(start).Round(100*time.Millisecond), w.load.since(before))
		w.checkDrained(t, old)
	})

	t.Run("drain a proxy's node", func(t *testing.T) {
		pdb, err := b.hub.PolicyV1().PodDisruptionBudgets(env.GatewayNamespace).Get(ctx, proxyFleetName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the chart's PodDisruptionBudget of the proxies: %v", err)
		}
		node := w.nodeOfAProxy()
		evicted := w.live(node)
		start, before := time.Now(), w.load.snapshot()
		if _, err := b.run(ctx, "kubectl", "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=150s"); err != nil {
			t.Fatal(err)
		}
		w.waitGone(ctx, evicted)
		b.deploymentRolledOut(ctx, env.GatewayNamespace, proxyFleetName)
		t.Logf("drain of %s (proxies %v; PodDisruptionBudget minAvailable %s) until a replacement was Ready: %v; %s",
			node, evicted, pdb.Spec.MinAvailable, time.Since(start).Round(100*time.Millisecond), w.load.since(before))
		w.checkDrained(t, evicted)
		b.rolledOut(ctx)
		if _, err := b.run(ctx, "kubectl", "uncordon", node); err != nil {
			t.Fatal(err)
		}
	})

	w.finish()
	total := w.load.snapshot()
	t.Logf("load through the proxies' Service: %s", w.load.since(loadCount{}))
	if total.failures > 0 {
		t.Errorf("%d of %d requests failed:\n%s", total.failures, total.requests, strings.Join(w.load.failedList(), "\n"))
	}
	if total.keepAlive == 0 || total.fresh == 0 {
		t.Errorf("nothing measured: %d requests on kept-alive connections, %d on new ones", total.keepAlive, total.fresh)
	}
}

// proxyFleet is the shared Gateway of the hub's own cluster, served by the
// member chart's proxies.
type proxyFleet struct {
	address      string // the proxies' Service, clusterIP:port
	host, answer string
}

// startProxyFleet joins the hub's cluster to its own hub, creates the
// Gateway, a tenant's backend and route there, and installs the member
// chart with the proxy fleet of that Gateway.
func (b *bed) startProxyFleet(ctx context.Context) *proxyFleet {
	t := b.t
	member := b.fleet.Hub
	// A kubeconfig Secret, as for every member of the bed (env.Start).
	join := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ownMember, Namespace: hubNamespace, Labels: map[string]string{kubeconfig.DefaultKubeconfigSecretLabel: "true"}},
		Data:       map[string][]byte{kubeconfig.DefaultKubeconfigSecretKey: member.Kubeconfig},
	}
	if _, err := b.hub.CoreV1().Secrets(hubNamespace).Create(ctx, join, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(member.Config, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	tenant := env.Tenant{Namespace: "shop", Hostname: "shop.apps.example.test", Answer: "shop: served through every proxy change"}
	backendIP := fmt.Sprintf("10.244.%d.20", scenarioIndex)
	backend, err := env.ServeAnswer(backendIP+":9000", tenant.Answer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backend.Close() })
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: env.GatewayNamespace}}, env.SharedGatewayObject()}
	for _, o := range append(objs, env.TenantObjects(tenant, backendIP)...) {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}

	dir := t.TempDir()
	ca, err := env.PushCABundle(ctx, b.fleet.Hub, dir)
	if err != nil {
		t.Fatal(err)
	}
	push, err := b.hub.CoreV1().Services(hubNamespace).Get(ctx, release+"-push", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(dir, "member-values.json")
	writeJSON(t, values, map[string]any{
		"gatewayClass": map[string]any{"parameters": map[string]any{"mode": "external"}},
		// The drain settings are the chart's defaults.
		"proxyFleet": map[string]any{
			"enabled":       true,
			"replicas":      proxyReplicas,
			"hubAddress":    net.JoinHostPort(push.Spec.ClusterIP, fmt.Sprint(push.Spec.Ports[0].Port)),
			"hubServerName": fmt.Sprintf("%s-push.%s.svc", release, hubNamespace),
			"cluster":       ownMember,
			"gateways": []any{map[string]any{"namespace": env.GatewayNamespace, "name": env.GatewayName,
				"ports": []any{map[string]any{"name": "http", "port": env.ListenerPort}}}},
			// The bed has kube-proxy's stand-in, no load balancer.
			"service": map[string]any{"type": "ClusterIP"},
		},
	})
	if _, err := b.run(ctx, "helm", "install", memberRelease, "charts/gatehouse-member", "--namespace", memberNamespace, "--create-namespace",
		"--values", values, "--set-file", "proxyFleet.hubCABundle="+ca, "--wait", "--timeout", "3m"); err != nil {
		t.Fatal(err)
	}
	svc, err := b.hub.CoreV1().Services(env.GatewayNamespace).Get(ctx, proxyFleetName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &proxyFleet{address: net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(env.ListenerPort)), host: tenant.Hostname, answer: tenant.Answer}
	probe := &http.Client{Timeout: 2 * time.Second}
	b.eventually(ctx, 2*time.Minute, "the route served through the proxies' Service", func() (bool, string) {
		err := f.get(probe)
		return err == nil, fmt.Sprint(err)
	})
	return f
}

func writeJSON(t *testing.T, path string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// get asks for the tenant's page through the proxies' Service.
func (f *proxyFleet) get(c *http.Client) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+f.address+"/", nil)
	if err != nil {
		return err
	}
	req.Host = f.host
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return fmt.Errorf("HTTP %d, reading the body: %w", resp.StatusCode, err)
	case resp.StatusCode != http.StatusOK || string(body) != f.answer:
		return fmt.Errorf("HTTP %d %q", resp.StatusCode, body)
	}
	return nil
}
