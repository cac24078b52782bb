package kubelet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// testProbes: a readiness probe (exec) sets Ready both ways, a readiness
// probe on a named port (httpGet) passes and a failing liveness probe
// (tcpSocket) restarts the container, and a graceful deletion runs the
// preStop hook (httpGet) before SIGTERM.
func (f *fixture) testProbes(t *testing.T, ns string) {
	ctx := context.Background()
	pods := f.client.CoreV1().Pods(ns)
	dir := t.TempDir() // shared with the containers: their mount namespaces start as copies of this one
	ready := filepath.Join(dir, "ready")
	hooked := filepath.Join(dir, "hooked")
	term := filepath.Join(dir, "term")

	// The hook's target: a server of the test that marks the hook as run.
	ln, err := net.Listen("tcp", net.JoinHostPort(testNodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/prestop" {
			_ = os.WriteFile(hooked, nil, 0o644)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	hookPort := ln.Addr().(*net.TCPAddr).Port

	script := fmt.Sprintf(`trap 'if [ -e %[1]s ]; then echo after-hook > %[2]s; else echo before-hook > %[2]s; fi; exit 0' TERM
while :; do sleep 0.1; done`, hooked, term)
	shell := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probed", Namespace: ns},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []corev1.Container{{
				Name: "shell", Image: "sh", Args: []string{"-c", script},
				Env: []corev1.EnvVar{{Name: "KUBELET_TEST", Value: "1"}, {Name: "POD_NAME", Value: "probed"}},
				ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
					ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", ready}}}},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
					Host: testNodeIP, Port: intstr.FromInt(hookPort), Path: "/prestop"}}},
			}},
		},
	}
	if _, err := pods.Create(ctx, shell, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitRunning(t, ns, "probed")
	if f.ready(t, ns, "probed") {
		t.Fatalf("Ready before its readiness probe passed")
	}
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.waitReady(t, ns, "probed")
	if err := os.Remove(ready); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) { return !f.ready(t, ns, "probed"), "still Ready after its probe failed" })

	// Its emptyDir covers the directory of the image's binary, as /tmp
	// volumes do where tests keep binaries: the binary still runs.
	echo := echoPod(ns, "lively")
	echo.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	echo.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: f.dir}}
	echo.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 3000}}
	echo.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1,
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}}
	echo.Spec.Containers[0].LivenessProbe = &corev1.Probe{InitialDelaySeconds: 2, PeriodSeconds: 1, FailureThreshold: 1,
		ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(9)}}}
	if _, err := pods.Create(ctx, echo, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitReady(t, ns, "lively")
	eventually(t, 30*time.Second, func() (bool, string) {
		p, err := pods.Get(ctx, "lively", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		return p.Status.ContainerStatuses[0].RestartCount > 0, "not restarted by its failing liveness probe"
	})

	if err := pods.Delete(ctx, "probed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		_, err := pods.Get(ctx, "probed", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("pod still there: %v", err)
	})
	got, err := os.ReadFile(term)
	if err != nil || strings.TrimSpace(string(got)) != "after-hook" {
		t.Errorf("the container saw SIGTERM %q (%v), want after-hook: the preStop hook runs first", got, err)
	}
	if err := pods.Delete(ctx, "lively", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
}

// testNodes: a second kubelet registers a second Node; Pods of one set
// spread over both; a cordoned node gets no new Pod.
func (f *fixture) testNodes(t *testing.T, ns string) {
	ctx := context.Background()
	second, err := Start(ctx, Options{
		Config: f.fleet.Hub.Config, NodeName: "second-node", NodeIP: "10.244.255.3", Port: 10250, PodCIDR: "10.244.128.0/18",
		Images: map[string]string{"echo-basic": filepath.Join(f.dir, "echo-basic")},
		Dir:    filepath.Join(f.dir, "second-kubelet"), Log: newTestLog(t, filepath.Join(f.dir, "second-kubelet.log")),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := second.Stop(); err != nil {
			t.Error(err)
		}
		if err := f.client.CoreV1().Nodes().Delete(ctx, "second-node", metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
	}()
	pods := f.client.CoreV1().Pods(ns)
	nodeOf := func(name string) string {
		p := f.waitReady(t, ns, name)
		return p.Spec.NodeName
	}
	create := func(name string) {
		p := echoPod(ns, name)
		p.Labels = map[string]string{"app": "spread"}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// All at once, as a ReplicaSet creates them: each kubelet places each
	// Pod before it sees the others bound.
	for i := range 4 {
		create(fmt.Sprintf("spread-%d", i))
	}
	count := map[string]int{}
	for i := range 4 {
		count[nodeOf(fmt.Sprintf("spread-%d", i))]++
	}
	if count[testNodeName] != 2 || count["second-node"] != 2 {
		t.Errorf("4 Pods of one set ran %v, want 2 on each node", count)
	}
	patch := []byte(`{"spec":{"unschedulable":true}}`)
	if _, err := f.client.CoreV1().Nodes().Patch(ctx, testNodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		patch := []byte(`{"spec":{"unschedulable":false}}`)
		if _, err := f.client.CoreV1().Nodes().Patch(ctx, testNodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Error(err)
		}
	}()
	eventually(t, 10*time.Second, func() (bool, string) {
		for _, k := range []*Kubelet{f.kubelet, second} {
			if n, err := k.nodes.Get(testNodeName); err != nil || !n.Spec.Unschedulable {
				return false, "the cordon did not reach the kubelet of " + k.opts.NodeName
			}
		}
		return true, ""
	})
	for i := 4; i < 7; i++ {
		create(fmt.Sprintf("spread-%d", i))
		if got := nodeOf(fmt.Sprintf("spread-%d", i)); got != "second-node" {
			t.Errorf("a Pod went to %s, which is cordoned", got)
		}
	}
	for i := range 7 {
		if err := pods.Delete(ctx, fmt.Sprintf("spread-%d", i), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Error(err)
		}
	}
}

func (f *fixture) ready(t *testing.T, ns, name string) bool {
	t.Helper()
	p, err := f.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return isReady(p)
}

// waitRunning waits for the Pod's containers to run, Ready or not.
func (f *fixture) waitRunning(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, 30*time.Second, func() (bool, string) {
		p, err := f.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning, fmt.Sprintf("phase %s", p.Status.Phase)
	})
}
