package lifecycle_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gatehouse-dev/gatehouse/test/conformance/kubelet"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The test network: the API servers and the nodes on 10.244.255.0/24, the
// scenario's proxy and backends on 10.244.200.0/24, Services on
// 10.0.0.0/24 (the API server's default range), all local to the test's
// network namespace; Pods get addresses of each node's range, each in a
// network namespace of its own.
const (
	advertiseAddress = "10.244.255.1"
	scenarioIndex    = 200 // env.SetUpSharedGateway's 10.244.<index>.x
	release          = "gatehouse"
	hubNamespace     = env.HubNamespace
)

var localRanges = []string{"10.244.255.0/24", "10.244.200.0/24", "10.0.0.0/24"}

var nodes = []struct{ name, ip, podCIDR string }{
	{"node-a", "10.244.255.2", "10.244.0.0/18"},
	{"node-b", "10.244.255.3", "10.244.64.0/18"},
}

// bed is a hub cluster with kube-controller-manager, two kubelets and a
// stand-in for kube-proxy, and member clusters; the charts are installed
// with helm as an operator would.
type bed struct {
	t        *testing.T
	fleet    *env.Fleet
	hub      kubernetes.Interface
	bins     map[string]string
	toolsDir string // helm, kubectl
	root     string
	logs     string
	home     string
}

// skipWithoutBed skips a test of the bed, which starts what it says,
// under -short or without root.
func skipWithoutBed(t *testing.T, starts string) {
	if testing.Short() {
		t.Skip("starts " + starts)
	}
	if os.Geteuid() != 0 {
		t.Skip("the fake kubelet needs root (network namespaces)")
	}
}

// startBed starts the bed with members member clusters besides the hub's.
func startBed(t *testing.T, ctx context.Context, members int) *bed {
	root, err := env.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b := &bed{t: t, root: root, toolsDir: filepath.Join(root, "bin"), home: t.TempDir()}
	if b.logs = os.Getenv("LIFECYCLE_ARTIFACTS"); b.logs == "" {
		b.logs = t.TempDir()
	} else if err := os.MkdirAll(b.logs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"helm", "kubectl", "kube-controller-manager", "kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(b.toolsDir, tool)); err != nil {
			t.Fatalf("%s is missing from bin/: run 'make tools'", tool)
		}
	}
	// Built in the main module, with its dependencies: this module only
	// replaces it.
	bins := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o", bins+string(filepath.Separator), "./cmd/gatehouse", "./cmd/gatehouse-proxy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the hub and the proxy: %v\n%s", err, out)
	}
	b.bins = map[string]string{"gatehouse": filepath.Join(bins, "gatehouse"), "gatehouse-proxy": filepath.Join(bins, "gatehouse-proxy")}
	t.Logf("logs of the control planes, kubelets, service proxy and proxy: %s", b.logs)

	b.fleet, err = env.Start(ctx, env.Options{Members: members, AdvertiseAddress: advertiseAddress, ServeOnAdvertiseAddress: true,
		Log: b.logFile("control-plane.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.fleet.Stop() })
	if b.hub, err = kubernetes.NewForConfig(b.fleet.Hub.Config); err != nil {
		t.Fatal(err)
	}
	kcm, err := kubelet.StartControllerManager(ctx, b.toolsDir, b.fleet.Hub.KubeconfigPath, b.logFile("kube-controller-manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kcm.Stop(10 * time.Second) })
	for _, n := range nodes {
		k, err := kubelet.Start(ctx, kubelet.Options{
			Config: b.fleet.Hub.Config, NodeName: n.name, NodeIP: n.ip, PodCIDR: n.podCIDR,
			// The charts' images, whatever their registry and tag.
			Images: b.bins,
			Dir:    filepath.Join(t.TempDir(), n.name), Log: b.logFile("kubelet-" + n.name + ".log"),
			// The charts' grace periods (the hub's 30 s, the proxies'
			// 60 s), and the API reached in-cluster as the hub's
			// ServiceAccount.
			MaxGracePeriod: time.Minute, ServiceAccountTokens: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.Stop() })
	}
	sp, err := kubelet.StartServiceProxy(ctx, b.fleet.Hub.Config, b.logFile("service-proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Stop)
	return b
}

func (b *bed) logFile(name string) io.Writer {
	f, err := os.Create(filepath.Join(b.logs, name))
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = f.Close() })
	return f // an *os.File takes concurrent writes whole
}

// run runs helm or kubectl against the hub cluster, as an operator would.
func (b *bed) run(ctx context.Context, tool string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(b.toolsDir, tool), args...)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+b.fleet.Hub.KubeconfigPath, "HOME="+b.home,
		"HELM_CACHE_HOME="+filepath.Join(b.home, "cache"), "HELM_CONFIG_HOME="+filepath.Join(b.home, "config"), "HELM_DATA_HOME="+filepath.Join(b.home, "data"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	b.t.Logf("$ %s %s\n%s", tool, strings.Join(args, " "), out.String())
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w", tool, strings.Join(args, " "), err)
	}
	return out.String(), nil
}

// installHub installs the hub chart with two replicas. The CRDs are the
// test bed's already.
func (b *bed) installHub(ctx context.Context) {
	if _, err := b.run(ctx, "helm", "install", release, "charts/gatehouse", "--namespace", hubNamespace,
		"--set", "replicas=2",
		"--set", "crds.install=false", "--set", "crds.gatewayAPI=false", "--set", "certificates.enabled=false",
		"--wait", "--timeout", "3m"); err != nil {
		b.t.Fatal(err)
	}
}

// rolledOut waits until the hub's Deployment has every replica updated,
// Ready and available, and no old one left.
func (b *bed) rolledOut(ctx context.Context) { b.deploymentRolledOut(ctx, hubNamespace, release) }

// deploymentRolledOut waits until a Deployment of the hub cluster has every
// replica updated, Ready and available, and no old one left.
func (b *bed) deploymentRolledOut(ctx context.Context, namespace, name string) {
	b.eventually(ctx, 3*time.Minute, "Deployment "+namespace+"/"+name+" rolled out", func() (bool, string) {
		d, err := b.hub.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s, want := d.Status, *d.Spec.Replicas
		ok := s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want &&
			s.AvailableReplicas == want && s.Replicas == want && available(d)
		return ok, fmt.Sprintf("%+v", s)
	})
}

func available(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (b *bed) eventually(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b.t.Fatalf("%s: not within %v: %s", what, timeout, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// hubLogs is what the hub Pods logged, for a failure's report.
func (b *bed) hubLogs(ctx context.Context) string { return b.podLogs(ctx, hubNamespace) }

// podLogs is what the Pods of namespace logged lately, for a failure's
// report.
func (b *bed) podLogs(ctx context.Context, namespace string) string {
	pods, err := b.hub.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var out strings.Builder
	for _, p := range pods.Items {
		logs, err := b.hub.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptrTo(int64(80))}).DoRaw(ctx)
		fmt.Fprintf(&out, "--- %s (%v):\n%s\n", p.Name, err, logs)
	}
	return out.String()
}

func ptrTo[T any](v T) *T { return &v }

// proxiesOf is how many proxies of the shared Gateway the hub in pod has
// connected to its push server, as its /metrics says (-1 if unknown).
func (b *bed) proxiesOf(ctx context.Context, pod string) int {
	p, err := b.hub.CoreV1().Pods(hubNamespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil || p.Status.PodIP == "" {
		return -1
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(p.Status.PodIP, "8080")+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	series := fmt.Sprintf(`gatehouse_hub_gateway_proxies{cluster=%q,gateway="%s/%s"} `, b.fleet.Members[0].Name, env.GatewayNamespace, env.GatewayName)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			n, err := strconv.Atoi(v)
			if err == nil {
				return n
			}
		}
	}
	return 0
}

// proxyBack waits until the hub that holds the Lease has the proxy
// connected again.
func (b *bed) proxyBack(ctx context.Context, m *monitor) {
	b.eventually(ctx, time.Minute, "the proxy connected to the leader", func() (bool, string) {
		leader := m.holder()
		n := b.proxiesOf(ctx, leader)
		return leader != "" && n == 1, fmt.Sprintf("leader %q has %d proxies connected", leader, n)
	})
}
