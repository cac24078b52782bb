package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestFailover runs two hub replicas with leader election against a real
// API server, each standing for a Pod of the namespace: the elected one
// labels its Pod active and no other; the standby is Ready and turns
// admission calls away; a SIGTERM hands the lease over at once (released,
// not left to expire) with no error logged; a crash leaves a stale label
// that the next leader removes.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and two hubs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bins, err := env.BuildCommands(dir, "gatehouse")
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := env.Start(ctx, env.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	cs, err := kubernetes.NewForConfig(fleet.Hub.Config)
	if err != nil {
		t.Fatal(err)
	}
	// hub-a starts with a label a crashed leader would have left on it.
	for name, labels := range map[string]map[string]string{"hub-a": {roleLabel: roleActive}, "hub-b": nil} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: env.HubNamespace, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "hub", Image: "gatehouse"}}}}
		if _, err := cs.CoreV1().Pods(env.HubNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{t: t, cs: cs}

	a := startHub(t, bins["gatehouse"], fleet.Hub.KubeconfigPath, "hub-a")
	w.eventually(ctx, "hub-a elected and alone labelled active", func() bool { return w.holder(ctx) == "hub-a" && w.active(ctx) == "hub-a" })
	b := startHub(t, bins["gatehouse"], fleet.Hub.KubeconfigPath, "hub-b")
	w.eventually(ctx, "standby hub-b Ready", func() bool { return b.ready() })
	if got := w.active(ctx); got != "hub-a" {
		t.Fatalf("with a standby running, the active Pods are %q, want hub-a", got)
	}
	if code, body := b.admission(); code != http.StatusServiceUnavailable || !strings.Contains(body, "standby") {
		t.Errorf("standby answered an admission call with %d %q, want 503 saying it is a standby", code, body)
	}
	if code, _ := a.admission(); code == http.StatusServiceUnavailable {
		t.Errorf("the elected hub answered an admission call with 503")
	}

	// SIGTERM: the leader steps down, releases the lease, and logs no error.
	start := time.Now()
	if err := a.proc.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if holder := w.holder(ctx); holder == "hub-a" {
		t.Errorf("hub-a exited and still holds the lease: it was not released")
	}
	w.eventually(ctx, "hub-b elected and alone labelled active", func() bool { return w.holder(ctx) == "hub-b" && w.active(ctx) == "hub-b" })
	t.Logf("failover after SIGTERM: %v (lease duration %s)", time.Since(start).Round(10*time.Millisecond), testLease)
	if _, err := a.proc.Exited(); err != nil {
		t.Errorf("hub-a exited with %v after SIGTERM, want 0", err)
	}
	if lines := a.errors(); len(lines) > 0 {
		t.Errorf("hub-a logged errors on a clean shutdown:\n%s", strings.Join(lines, "\n"))
	}

	// A crash: hub-b's label stays behind and its lease runs out; the next
	// leader takes over and removes the stale label.
	startHub(t, bins["gatehouse"], fleet.Hub.KubeconfigPath, "hub-a")
	b.proc.Kill()
	if got := w.active(ctx); got != "hub-b" {
		t.Fatalf("after hub-b crashed, the active Pods are %q, want the stale hub-b", got)
	}
	w.eventually(ctx, "hub-a elected again, the stale label gone", func() bool { return w.holder(ctx) == "hub-a" && w.active(ctx) == "hub-a" })
}

// Short lease timings: the crash case waits for the lease to expire.
const testLease = 4 * time.Second

type world struct {
	t  *testing.T
	cs kubernetes.Interface
}

// holder is the Pod (hostname part) named by the hub's Lease, "" if none.
func (w *world) holder(ctx context.Context) string {
	l, err := w.cs.CoordinationV1().Leases(env.HubNamespace).Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return leaseHolder(l)
}

func leaseHolder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	id := *l.Spec.HolderIdentity
	// The holder is named POD_UUID.
	if i := strings.LastIndexByte(id, '_'); i >= 0 {
		id = id[:i]
	}
	return id
}

// active lists the Pods labelled active, comma-separated.
func (w *world) active(ctx context.Context) string {
	pods, err := w.cs.CoreV1().Pods(env.HubNamespace).List(ctx, metav1.ListOptions{LabelSelector: roleLabel + "=" + roleActive})
	if err != nil {
		return "error: " + err.Error()
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return strings.Join(names, ",")
}

func (w *world) eventually(ctx context.Context, what string, cond func() bool) {
	w.t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			w.t.Fatalf("%s: never happened", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type hubProcess struct {
	proc         *env.Process
	health, hook string
	mu           sync.Mutex
	out          bytes.Buffer
	client       *http.Client
}

func (h *hubProcess) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out.Write(p)
}

// klogError is an error line of client-go's own logger.
var klogError = regexp.MustCompile(`^\[[^\]]+\] E\d{4} `)

// errors are the error lines the hub logged.
func (h *hubProcess) errors() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, l := range strings.Split(h.out.String(), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) || klogError.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

func (h *hubProcess) ready() bool {
	resp, err := h.client.Get("http://" + h.health + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// admission sends an admission call as a member's API server would (the
// hub checks the member's token after the standby check).
func (h *hubProcess) admission() (int, string) {
	resp, err := h.client.Post("https://"+h.hook+"/validate/member/token", "application/json", strings.NewReader("{}"))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func startHub(t *testing.T, bin, kubeconfig, pod string) *hubProcess {
	t.Helper()
	h := &hubProcess{health: freeAddr(t), hook: freeAddr(t),
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	p, err := env.StartProcess(pod, bin, []string{
		"--kubeconfig", kubeconfig, "--namespace", env.HubNamespace, "--leader-elect", "--pod-name", pod,
		"--leader-elect-lease-duration", testLease.String(), "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms",
		"--xds-address", freeAddr(t), "--metrics-address", "0", "--health-address", h.health,
		"--webhook-address", h.hook, "--certificates=false",
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	h.proc = p
	t.Cleanup(func() {
		_ = p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s:\n%s", pod, h.out.String())
		}
	})
	return h
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
