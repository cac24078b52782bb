package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

const (
	testNodeName = "conformance-node"
	testNodeIP   = "10.244.255.2"
	testPodCIDR  = "10.244.0.0/17"
	echoImage    = "registry.k8s.io/gateway-api/conformance/echo-basic:v0.1.0"
)

func TestMain(m *testing.M) {
	// 10.0.0.0/24 is the Service range, where ServiceProxy listens.
	env.EnterNetwork("10.244.254.0/23", "10.0.0.0/24")
	os.Exit(m.Run())
}

// fixture is one control plane with the fake kubelet, shared by the
// subtests of TestKubelet.
type fixture struct {
	fleet   *env.Fleet
	client  kubernetes.Interface
	dir     string
	kubelet *Kubelet
}

func TestKubelet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the fake kubelet needs root")
	}
	f := startFixture(t)
	ns := f.namespace(t, "kubelet-test")

	t.Run("node", f.testNode)
	t.Run("echo pod", func(t *testing.T) { f.testEchoPod(t, ns) })
	t.Run("secret volume created late", func(t *testing.T) { f.testSecretVolume(t, ns) })
	t.Run("restart after crash", func(t *testing.T) { f.testRestart(t, ns) })
	t.Run("unknown image", func(t *testing.T) { f.testUnknownImage(t, ns) })
	t.Run("volumes, env and hostname in a shell container", func(t *testing.T) { f.testShell(t, ns) })
	t.Run("deployment and service with kube-controller-manager", f.testDeployment)
	t.Run("probes and preStop", func(t *testing.T) { f.testProbes(t, ns) })
	t.Run("two nodes: placement and cordon", func(t *testing.T) { f.testNodes(t, ns) })
	t.Run("load balancer, and TCP and UDP through the service proxy", f.testLoadBalancer)
}

func startFixture(t *testing.T) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cpLog := newTestLog(t, filepath.Join(dir, "controlplane.log"))
	log := newTestLog(t, filepath.Join(dir, "kubelet.log"))

	shell, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	echo := make(chan error, 1)
	go func() { echo <- buildEcho(filepath.Join(dir, "echo-basic")) }()
	fleet, err := env.Start(ctx, env.Options{Members: 0, AdvertiseAddress: env.AdvertiseAddress, Log: cpLog})
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := fleet.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	if err := <-echo; err != nil {
		t.Fatal(err)
	}
	kubelet, err := Start(ctx, Options{
		Config:   fleet.Hub.Config,
		NodeName: testNodeName,
		NodeIP:   testNodeIP,
		Port:     10250,
		PodCIDR:  testPodCIDR,
		Images:   map[string]string{"echo-basic": filepath.Join(dir, "echo-basic"), "sh": shell},
		Dir:      filepath.Join(dir, "kubelet"),
		Log:      log,
	})
	if err != nil {
		t.Fatalf("starting the kubelet: %v", err)
	}
	t.Cleanup(func() {
		if err := kubelet.Stop(); err != nil {
			t.Errorf("stopping the kubelet: %v", err)
		}
		if pids := processesWithEnv("KUBELET_TEST=1"); len(pids) > 0 {
			t.Errorf("containers left running after Stop: %v", pids)
		}
		if out, _ := exec.Command("ip", "-o", "link", "show").Output(); bytes.Contains(out, []byte(": kl")) {
			t.Errorf("veths left after Stop:\n%s", out)
		}
	})
	client, err := kubernetes.NewForConfig(fleet.Hub.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{fleet: fleet, client: client, dir: dir, kubelet: kubelet}
}

// buildEcho builds the suite's echo backend from the module cache.
func buildEcho(out string) error {
	cmd := exec.Command("go", "build", "-o", out, "sigs.k8s.io/gateway-api-conformance-images/echo-basic")
	cmd.Dir = ".." // the conformance module
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building echo-basic: %v\n%s", err, b)
	}
	return nil
}

func (f *fixture) namespace(t *testing.T, name string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := f.client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

func (f *fixture) testNode(t *testing.T) {
	node, err := f.client.CoreV1().Nodes().Get(context.Background(), testNodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := false
	for _, c := range node.Status.Conditions {
		ready = ready || c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	}
	if !ready {
		t.Errorf("node not Ready: %+v", node.Status.Conditions)
	}
	if len(node.Status.Addresses) != 1 || node.Status.Addresses[0] != (corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: testNodeIP}) {
		t.Errorf("addresses = %+v, want only InternalIP %s", node.Status.Addresses, testNodeIP)
	}
	if len(node.Spec.Taints) > 0 {
		t.Errorf("node taints = %+v, want none", node.Spec.Taints)
	}
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got != 10250 {
		t.Errorf("kubelet port = %d, want 10250", got)
	}
}

// echoPod is a Pod like the suite's backends: echo-basic with its name
// and namespace from the downward API.
func echoPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  name,
				Image: echoImage,
				Env: []corev1.EnvVar{
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "KUBELET_TEST", Value: "1"},
				},
			}},
		},
	}
}

func (f *fixture) testEchoPod(t *testing.T, ns string) {
	ctx := context.Background()
	pods := f.client.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, echoPod(ns, "echo"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := f.waitReady(t, ns, "echo")
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil || !netip.MustParsePrefix(testPodCIDR).Contains(ip) {
		t.Fatalf("pod IP %q is not in %s", pod.Status.PodIP, testPodCIDR)
	}
	if pod.Spec.NodeName != testNodeName || pod.Status.HostIP != testNodeIP {
		t.Errorf("nodeName %q, hostIP %q; want %s, %s", pod.Spec.NodeName, pod.Status.HostIP, testNodeName, testNodeIP)
	}

	since := time.Now()
	var echoed struct{ Pod, Namespace, Path string }
	body := httpGet(t, "http://"+net.JoinHostPort(pod.Status.PodIP, "3000")+"/hello-kubelet", nil)
	if err := json.Unmarshal(body, &echoed); err != nil {
		t.Fatalf("echo response %q: %v", body, err)
	}
	if echoed.Pod != "echo" || echoed.Namespace != ns || echoed.Path != "/hello-kubelet" {
		t.Errorf("echo answered %+v, want pod echo in %s, path /hello-kubelet", echoed, ns)
	}

	// What the suite's mirror tests do: pods/log with container and sinceTime.
	logs := f.podLogs(t, ns, "echo", &corev1.PodLogOptions{Container: "echo", SinceTime: &metav1.Time{Time: since}})
	if !strings.Contains(logs, "Echoing back request made to /hello-kubelet") {
		t.Errorf("logs since %s lack the request:\n%s", since.Format(time.RFC3339), logs)
	}
	if future := f.podLogs(t, ns, "echo", &corev1.PodLogOptions{Container: "echo", SinceTime: &metav1.Time{Time: since.Add(time.Hour)}}); future != "" {
		t.Errorf("logs since an hour from now = %q, want none", future)
	}
	tail := f.podLogs(t, ns, "echo", &corev1.PodLogOptions{TailLines: ptr.To(int64(1)), Timestamps: true})
	if lines := strings.Split(strings.TrimSpace(tail), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "/hello-kubelet") {
		t.Errorf("tailLines=1 gave %q", tail)
	} else if _, err := time.Parse(time.RFC3339Nano, strings.Fields(lines[0])[0]); err != nil {
		t.Errorf("timestamps=true line %q: %v", lines[0], err)
	}

	// The pod reaches the test network through its default route.
	ln, err := net.Listen("tcp", net.JoinHostPort(testNodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			fmt.Fprintf(c, "%s", c.RemoteAddr())
			c.Close()
		}
	}()
	conn, err := dialFromPod(f.pid(t, "echo"), ln.Addr().String())
	if err != nil {
		t.Fatalf("pod -> %s: %v", ln.Addr(), err)
	}
	got, err := io.ReadAll(conn)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(string(got)); host != pod.Status.PodIP {
		t.Errorf("the test network saw the pod as %s, want %s", got, pod.Status.PodIP)
	}

	// Deletion: graceful by default; the kubelet ends it.
	pid := f.pid(t, "echo")
	start := time.Now()
	if err := pods.Delete(ctx, "echo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() (bool, string) {
		_, err := pods.Get(ctx, "echo", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("pod still there: %v", err)
	})
	t.Logf("pod deleted in %s", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("container process %d still runs", pid)
	}
	if err := exec.Command("ip", "link", "show", vethName(ip)).Run(); err == nil {
		t.Errorf("veth %s still exists", vethName(ip))
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(pod.Status.PodIP, "3000"), time.Second); err == nil {
		c.Close()
		t.Errorf("%s:3000 still answers", pod.Status.PodIP)
	}
}

// testSecretVolume mirrors the suite's tls-backend: the Secret comes after
// the Pod, and echo-basic reads its certificate from the mounted volume.
func (f *fixture) testSecretVolume(t *testing.T, ns string) {
	ctx := context.Background()
	_, hostErr := os.Stat("/etc/secret-volume")
	pod := echoPod(ns, "tls")
	pod.Spec.Volumes = []corev1.Volume{{Name: "secret-volume", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: "tls-cert",
		Items:      []corev1.KeyToPath{{Key: "tls.crt", Path: "crt"}, {Key: "tls.key", Path: "key"}},
	}}}}
	c := &pod.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "secret-volume", MountPath: "/etc/secret-volume"}}
	c.Env = append(c.Env,
		corev1.EnvVar{Name: "TLS_SERVER_CERT", Value: "/etc/secret-volume/crt"},
		corev1.EnvVar{Name: "TLS_SERVER_PRIVKEY", Value: "/etc/secret-volume/key"})
	if _, err := f.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		p, err := f.client.CoreV1().Pods(ns).Get(ctx, "tls", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprintf("no container status yet: %v", err)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return p.Status.Phase == corev1.PodPending && w != nil && w.Reason == "ContainerCreating" && strings.Contains(w.Message, "tls-cert"),
			fmt.Sprintf("phase %s, state %+v", p.Status.Phase, p.Status.ContainerStatuses[0].State)
	})

	certPEM, keyPEM := testCert(t, "abc.example.com")
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "tls-cert", Namespace: ns},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM},
	}
	if _, err := f.client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := f.waitReady(t, ns, "tls")

	var served []byte
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // we compare the certificate below
		VerifyConnection: func(cs tls.ConnectionState) error {
			served = cs.PeerCertificates[0].Raw
			return nil
		},
	}}}
	httpGet(t, "https://"+net.JoinHostPort(running.Status.PodIP, "8443")+"/", client)
	block, _ := pem.Decode(certPEM)
	if !bytes.Equal(served, block.Bytes) {
		t.Errorf("echo-basic served another certificate than the Secret's")
	}
	if _, err := os.Stat("/etc/secret-volume"); errors.Is(hostErr, fs.ErrNotExist) && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the mountpoint leaked to the host: stat /etc/secret-volume: %v", err)
	}
}

func (f *fixture) testRestart(t *testing.T, ns string) {
	pid := f.pid(t, "tls")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() (bool, string) {
		p, err := f.client.CoreV1().Pods(ns).Get(context.Background(), "tls", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		s := p.Status.ContainerStatuses[0]
		last := s.LastTerminationState.Terminated
		return s.RestartCount == 1 && s.Ready && last != nil && last.ExitCode == 137 && isReady(p),
			fmt.Sprintf("restarts %d, ready %v, last state %+v", s.RestartCount, s.Ready, s.LastTerminationState)
	})
	if newPID := f.pid(t, "tls"); newPID == pid {
		t.Errorf("the container was not restarted (pid %d)", pid)
	}
	previous := f.podLogs(t, ns, "tls", &corev1.PodLogOptions{Previous: true})
	if !strings.Contains(previous, "listening on port 8443") {
		t.Errorf("previous logs = %q", previous)
	}
}

func (f *fixture) testUnknownImage(t *testing.T, ns string) {
	pod := echoPod(ns, "unknown")
	pod.Spec.Containers[0].Image = "example.com/not/known:v1"
	if _, err := f.client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		p, err := f.client.CoreV1().Pods(ns).Get(context.Background(), "unknown", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return p.Status.Phase == corev1.PodPending && w != nil && w.Reason == "ErrImagePull",
			fmt.Sprintf("phase %s, state %+v", p.Status.Phase, p.Status.ContainerStatuses[0].State)
	})
}

// testShell runs sh as an image to look at a container from the inside:
// a ConfigMap volume with items and modes, emptyDirs at mountPaths that do
// not exist on the host (one below /dev, which has mounts of its own), a
// read-only volume, $(VAR) expansion, the hostname and workingDir.
func (f *fixture) testShell(t *testing.T, ns string) {
	ctx := context.Background()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "ca", Namespace: ns},
		Data:       map[string]string{"ca.crt": "the-ca", "other": "x"},
	}
	if _, err := f.client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "shell", Namespace: ns}}
	if _, err := f.client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	script := strings.Join([]string{
		"echo hostname=`cat /proc/sys/kernel/hostname`",
		"echo pod=$(POD_NAME) greeting=$GREETING",
		"echo ca=`cat /etc/configmap-volume/ca` mode=`stat -c %a /etc/configmap-volume/ca` other=`ls /etc/configmap-volume | wc -l`",
		"touch /etc/configmap-volume/new 2>/dev/null && echo cm=rw || echo cm=ro",
		"echo data > /dev/kubelet-test/file && echo dev=`cat /dev/kubelet-test/file`",
		"test -d /dev/shm && mountpoint -q /dev/shm && echo shm=mounted",
		"echo data > /var/lib/kubelet-test/file && echo varlib=`cat /var/lib/kubelet-test/file`",
		"echo pwd=`pwd`",
		"echo token=`cat /var/run/secrets/kubelet-test/token`",
		"echo done",
		"exec sleep 1000",
	}, "\n")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shell", Namespace: ns},
		Spec: corev1.PodSpec{
			ServiceAccountName: "shell",
			Containers: []corev1.Container{{
				Name:       "shell",
				Image:      "example.com/tools/sh:1",
				Args:       []string{"-c", script},
				WorkingDir: "/etc",
				Env: []corev1.EnvVar{
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "GREETING", Value: "hello-$(POD_NAME)"},
					{Name: "KUBELET_TEST", Value: "1"},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "ca", MountPath: "/etc/configmap-volume"},
					{Name: "dev", MountPath: "/dev/kubelet-test"},
					{Name: "varlib", MountPath: "/var/lib/kubelet-test"},
					{Name: "token", MountPath: "/var/run/secrets/kubelet-test"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "ca", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "ca"},
					Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca"}},
					DefaultMode:          ptr.To(int32(0o440)),
				}}},
				{Name: "dev", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "varlib", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
					ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "kubelet-test", ExpirationSeconds: ptr.To[int64](600), Path: "token"},
				}}}}},
			},
		},
	}
	if _, err := f.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitReady(t, ns, "shell")
	var logs string
	eventually(t, 10*time.Second, func() (bool, string) {
		logs = f.podLogs(t, ns, "shell", &corev1.PodLogOptions{})
		return strings.Contains(logs, "done"), logs
	})
	for _, want := range []string{
		"hostname=shell",
		"pod=shell greeting=hello-shell",
		"ca=the-ca mode=440 other=1",
		"cm=ro",
		"dev=data",
		"shm=mounted",
		"varlib=data",
		"pwd=/etc",
	} {
		if !strings.Contains(logs, want+"\n") {
			t.Errorf("the container did not print %q:\n%s", want, logs)
		}
	}
	f.checkProjectedToken(t, ns, logs)
	for _, p := range []string{"/etc/configmap-volume", "/dev/kubelet-test", "/var/lib/kubelet-test", "/var/run/secrets/kubelet-test"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s leaked to the host: %v", p, err)
		}
	}
	if host, _ := os.Hostname(); host == "shell" {
		t.Errorf("the hostname leaked to the host")
	}
}

// checkProjectedToken: the token the shell Pod printed is its
// ServiceAccount's, for the projected volume's audience, bound to the Pod.
func (f *fixture) checkProjectedToken(t *testing.T, ns, logs string) {
	_, rest, _ := strings.Cut(logs, "token=")
	token, _, _ := strings.Cut(rest, "\n")
	review, err := f.client.AuthenticationV1().TokenReviews().Create(context.Background(), &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{"kubelet-test"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := review.Status
	if want := "system:serviceaccount:" + ns + ":shell"; !s.Authenticated || s.User.Username != want || !slices.Contains(s.Audiences, "kubelet-test") {
		t.Errorf("the projected token: authenticated %v as %q for %v (%s), want %s for audience kubelet-test", s.Authenticated, s.User.Username, s.Audiences, s.Error, want)
	}
	if pod := s.User.Extra["authentication.kubernetes.io/pod-name"]; len(pod) != 1 || pod[0] != "shell" {
		t.Errorf("the projected token is bound to Pod %v, want shell", pod)
	}
}

// testDeployment runs what the suite relies on: a Deployment becomes
// available, its Service's EndpointSlice lists every Pod ready, Pods reach
// each other, and deleting the namespace removes everything.
func (f *fixture) testDeployment(t *testing.T) {
	ctx := context.Background()
	f.startControllerManager(t)
	ns := f.namespace(t, "kubelet-deploy")
	template := echoPod(ns, "backend")
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "backend", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: template.Labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: template.Labels}, Spec: template.Spec},
		},
	}
	if _, err := f.client.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: template.Labels,
			Ports:    []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(3000)}},
		},
	}
	if _, err := f.client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() (bool, string) {
		d, err := f.client.AppsV1().Deployments(ns).Get(ctx, "backend", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return d.Status.AvailableReplicas == 2, fmt.Sprintf("deployment status %+v", d.Status)
	})
	pods, err := f.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("want 2 pods, got %v (%v)", len(pods.Items), err)
	}
	want := map[string]bool{pods.Items[0].Status.PodIP: true, pods.Items[1].Status.PodIP: true}
	eventually(t, 30*time.Second, func() (bool, string) {
		slices, err := f.client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=backend"})
		if err != nil {
			return false, err.Error()
		}
		got := map[string]bool{}
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if ptr.Deref(e.Conditions.Ready, false) {
					got[e.Addresses[0]] = true
				}
			}
		}
		return len(got) == 2 && got[pods.Items[0].Status.PodIP] && got[pods.Items[1].Status.PodIP],
			fmt.Sprintf("ready endpoints %v, want %v", got, want)
	})

	// Through the Service's cluster IP, as kube-proxy would forward it.
	proxy, err := StartServiceProxy(ctx, f.fleet.Hub.Config, newTestLog(t, filepath.Join(f.dir, "service-proxy.log")))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()
	created, err := f.client.CoreV1().Services(ns).Get(ctx, "backend", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var echoed struct{ Pod string }
	if err := json.Unmarshal(httpGet(t, "http://"+net.JoinHostPort(created.Spec.ClusterIP, "8080")+"/via-service", nil), &echoed); err != nil || !want[podIP(pods.Items, echoed.Pod)] {
		t.Errorf("the Service's cluster IP reached %q (%v), want one of its Pods", echoed.Pod, err)
	}

	// Pod to pod, forwarded by the test network.
	from, to := pods.Items[0], pods.Items[1]
	fromPID := f.pid(t, from.Name)
	eventually(t, 5*time.Second, func() (bool, string) {
		conn, err := dialFromPod(fromPID, net.JoinHostPort(to.Status.PodIP, "3000"))
		if err != nil {
			return false, fmt.Sprintf("pod %s -> pod %s: %v", from.Name, to.Name, err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET /from-pod HTTP/1.0\r\nHost: backend\r\n\r\n")
		body, err := io.ReadAll(conn)
		return err == nil && bytes.Contains(body, []byte(`"pod": "`+to.Name+`"`)), fmt.Sprintf("pod %s -> pod %s: %v %s", from.Name, to.Name, err, body)
	})
	seen := f.podLogs(t, ns, to.Name, &corev1.PodLogOptions{})
	if !strings.Contains(seen, "/from-pod to client ("+from.Status.PodIP+":") {
		t.Errorf("pod %s did not see the request come from %s:\n%s", to.Name, from.Status.PodIP, seen)
	}

	// Namespace deletion, as the suite cleans up.
	if err := f.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() (bool, string) {
		_, err := f.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("namespace still there: %v", err)
	})
}

func podIP(pods []corev1.Pod, name string) string {
	for _, p := range pods {
		if p.Name == name {
			return p.Status.PodIP
		}
	}
	return ""
}

// waitReady waits for the Pod to be Running and Ready.
func (f *fixture) waitReady(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, 30*time.Second, func() (bool, string) {
		p, err := f.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		return p.Status.Phase == corev1.PodRunning && isReady(p), fmt.Sprintf("phase %s, status %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
	return pod
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (f *fixture) podLogs(t *testing.T, ns, name string, opts *corev1.PodLogOptions) string {
	t.Helper()
	b, err := f.client.CoreV1().Pods(ns).GetLogs(name, opts).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("logs of %s/%s: %v (%s)", ns, name, err, b)
	}
	return string(b)
}

// pid finds the container process of a test Pod by its environment.
func (f *fixture) pid(t *testing.T, pod string) int {
	t.Helper()
	var pids []int
	eventually(t, 10*time.Second, func() (bool, string) {
		pids = processesWithEnv("POD_NAME=" + pod)
		return len(pids) == 1, fmt.Sprintf("processes of pod %s: %v", pod, pids)
	})
	return pids[0]
}

// processesWithEnv lists the processes whose environment has entry.
func processesWithEnv(entry string) []int {
	dirs, _ := os.ReadDir("/proc")
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, e := range bytes.Split(environ, []byte{0}) {
			if string(e) == entry {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// dialFromPod opens a TCP connection from the network namespace of pid:
// the socket is created on a thread that joined that namespace, and stays
// there. The thread returns to its namespace before it is unlocked; should
// that fail, it stays locked and ends with the goroutine.
func dialFromPod(pid int, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, restored, err := dialInNamespace(pid, addr)
		if restored {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// dialInNamespace dials from the namespace of pid on the current, locked
// thread; restored reports whether the thread is back in its own namespace.
func dialInNamespace(pid int, addr string) (c net.Conn, restored bool, err error) {
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, err
	}
	defer own.Close()
	pod, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, true, err
	}
	defer pod.Close()
	if err := unix.Setns(int(pod.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("setns: %w", err)
	}
	c, err = net.DialTimeout("tcp", addr, 5*time.Second)
	return c, unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil, err
}

// httpGet retries for a few seconds: a container without a readiness
// probe is Ready as soon as it starts, possibly before it listens.
func httpGet(t *testing.T, url string, client *http.Client) []byte {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	var body []byte
	eventually(t, 5*time.Second, func() (bool, string) {
		resp, err := client.Get(url)
		if err != nil {
			return false, fmt.Sprintf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == http.StatusOK, fmt.Sprintf("GET %s: %s %v %s", url, resp.Status, err, body)
	})
	return body
}

func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func testCert(t *testing.T, host string) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// testLog collects a component's output in a file and shows its end when
// the test fails.
type testLog struct {
	mu sync.Mutex
	f  *os.File
}

func newTestLog(t *testing.T, path string) *testLog {
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{f: file}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if t.Failed() || testing.Verbose() && os.Getenv("KUBELET_TEST_LOG") != "" {
			t.Logf("last lines of %s:\n%s", filepath.Base(path), tailFile(path, 80))
		}
		file.Close()
	})
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
