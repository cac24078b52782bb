package guides

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// What the guides take for granted about the fleet they describe.
const (
	// clusterName is the member's name on the hub: the guides join it so.
	clusterName = "eu-west"
	// gatewayAddress is the shared Gateway's address in the guides
	// (member-values.yaml, a documentation address): the test's proxy
	// answers there, as the load balancer of the chart's proxies would.
	gatewayAddress = "192.0.2.10"
	// blockTimeout bounds one ```sh block.
	blockTimeout = 2 * time.Minute
)

// The teams' applications already running in the member, which the guides
// route to: a Service each, with an endpoint the test serves.
var apps = []struct {
	namespace, service, backend, answer string
}{
	{"web", "store", "10.244.1.20:8080", "store: hello from team web"},
	{"shop", "catalog", "10.244.1.21:8080", "catalog: hello from the shop"},
}

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		// Backends get pod-like addresses; the proxy answers on the
		// guides' documentation address.
		env.EnterNetwork("10.244.0.0/16", gatewayAddress+"/32")
	}
	os.Exit(m.Run())
}

// TestGuides runs every ```sh block of the guides, in order, against a hub
// and one member, with the hub binary and a proxy running as the charts
// would run them.
func TestGuides(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub, a member, cert-manager, the hub binary and a proxy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	root := repoRoot(t)
	all := readGuides(t, root)
	bins := build(t, root)

	fleet, err := env.Start(ctx, env.Options{Members: 1, CertManager: true, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	member := fleet.Members[0]
	freshClusters(t, ctx, fleet)
	startApps(t, ctx, member)

	work := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "charts"), filepath.Join(work, "charts")); err != nil {
		t.Fatal(err)
	}
	r := &runner{dir: work, env: append(os.Environ(),
		"PATH="+bins+string(os.PathListSeparator)+filepath.Join(root, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+t.TempDir(), "KUBECONFIG=",
		"HUB_KUBECONFIG="+fleet.Hub.KubeconfigPath, "MEMBER_KUBECONFIG="+member.KubeconfigPath, "GATEWAY_ADDRESS="+gatewayAddress,
	)}

	// Stagehands do, after the block that asks for it, what a real cluster
	// would do by itself.
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stagehands := []*stagehand{
		{after: "helm install gatehouse charts/gatehouse ", what: "run the hub the chart's Deployment describes", do: func() error {
			// The chart's Deployment never runs here (no kubelet): the
			// hub binary runs in its place, with the flags the test bed
			// needs (local addresses, the webhook reachable from the
			// member's API server).
			webhook := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			return start(t, "hub", filepath.Join(bins, "gatehouse"), "--kubeconfig", fleet.Hub.KubeconfigPath,
				"--xds-address", xdsAddr, "--metrics-address", "0", "--health-address", "0",
				"--webhook-address", webhook, "--webhook-url", "https://"+webhook,
				"--class-issuers", "ClusterIssuer/gatehouse-ca",
				"--debounce", "20ms", "--startup-grace", "5s")
		}},
		{after: "helm install gatehouse-member charts/gatehouse-member ", what: "run the proxy the member chart's proxyFleet describes", do: func() error {
			// With a token of the ServiceAccount the chart created,
			// answering where the chart's load balancer would. Like the
			// chart's pods, it starts before the member joins and is
			// refused until then.
			dir := t.TempDir()
			token, err := env.ProxyToken(ctx, member, "infra", "shared", dir)
			if err != nil {
				return err
			}
			ca, err := env.PushCABundle(ctx, fleet.Hub, dir)
			if err != nil {
				return err
			}
			p, err := env.StartProxy("proxy", env.ProxyOptions{Binary: filepath.Join(bins, "gatehouse-proxy"), XDSAddress: xdsAddr, CAFile: ca, CacheDir: dir, Log: testLog{t}},
				clusterName, gatewayAddress, token)
			if err != nil {
				return err
			}
			t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
			return nil
		}},
	}

	for _, blocks := range all {
		for _, b := range blocks {
			switch {
			case b.lang == "yaml" && b.file() != "":
				if err := os.WriteFile(filepath.Join(work, b.file()), []byte(b.text), 0o644); err != nil {
					t.Fatal(err)
				}
			case b.lang == "sh":
				if !t.Run(b.String(), func(t *testing.T) { r.run(t, ctx, b) }) {
					t.Fatalf("stopped at %s: the blocks after it build on it", b)
				}
				for _, s := range stagehands {
					if !s.done && strings.Contains(b.text, s.after) {
						t.Logf("stagehand: %s", s.what)
						if err := s.do(); err != nil {
							t.Fatalf("%s: %v", s.what, err)
						}
						s.done = true
					}
				}
			}
		}
	}
	for _, s := range stagehands {
		if !s.done {
			t.Errorf("no block runs %q: nothing asked the test to %s", s.after, s.what)
		}
	}
}

type stagehand struct {
	after, what string
	do          func() error
	done        bool
}

type runner struct {
	dir string
	env []string
}

// run runs one ```sh block as a reader would, and checks the outcome its
// directives announce.
func (r *runner) run(t *testing.T, ctx context.Context, b block) {
	ctx, cancel := context.WithTimeout(ctx, blockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", b.text)
	cmd.Dir, cmd.Env = r.dir, r.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("$ %s\n%s(%v, %v)", strings.TrimSpace(b.text), out.String(), time.Since(start).Round(time.Millisecond), exitText(err))
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("did not finish within %v", blockTimeout)
	case err != nil && !errors.As(err, &exit):
		t.Fatalf("could not run bash: %v", err)
	case b.expectFail() && err == nil:
		t.Errorf("marked '# expect: fail', but it succeeded")
	case !b.expectFail() && err != nil:
		t.Errorf("failed: %v", err)
	}
	for _, want := range b.directives("expect-output") {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q", want)
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// freshClusters undoes what the test bed installs that a new cluster does
// not have, so that the guides install it themselves: the CRDs (the charts
// bring them) and the member's registration (the guides join it).
func freshClusters(t *testing.T, ctx context.Context, fleet *env.Fleet) {
	t.Helper()
	if err := fleet.Unregister(ctx, fleet.Members[0].Name); err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{"gateway.networking.k8s.io": true, "tenancy.gatehouse.dev": true, "policy.gatehouse.dev": true}
	for _, c := range []*env.Cluster{fleet.Hub, fleet.Members[0]} {
		cs, err := apiextensionsclient.NewForConfig(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		crds := cs.ApiextensionsV1().CustomResourceDefinitions()
		list, err := crds.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dyn, err := dynamic.NewForConfig(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		for _, crd := range list.Items {
			if !ours[crd.Spec.Group] {
				continue
			}
			// A CRD deleted while its storage still initializes keeps
			// its finalizer for minutes: wait until it serves a list.
			gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: crd.Spec.Versions[0].Name, Resource: crd.Spec.Names.Plural}
			err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
				return err == nil, nil
			})
			if err != nil {
				t.Fatalf("%s: %s never served a list: %v", c.Name, crd.Name, err)
			}
			if err := crds.Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			list, err := crds.List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			return !containsGroup(list.Items, ours), nil
		})
		if err != nil {
			t.Fatalf("%s: waiting for the CRDs to go: %v", c.Name, err)
		}
	}
}

func containsGroup(crds []apiextensionsv1.CustomResourceDefinition, groups map[string]bool) bool {
	for _, crd := range crds {
		if groups[crd.Spec.Group] {
			return true
		}
	}
	return false
}

// startApps creates, in the member, the applications the guides route to:
// namespaces, Services and the EndpointSlices an endpoint controller would
// write, with a server of the test behind each; the Ingress of the shop
// that the platform team's guide migrates; and team web's applications
// behind TLS, TCP and UDP listeners (streams_test.go).
func startApps(t *testing.T, ctx context.Context, member *env.Cluster) {
	t.Helper()
	c, err := client.New(member.Config, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		serve(t, a.backend, a.answer, nil)
		host, port, _ := net.SplitHostPort(a.backend)
		var portNumber int32
		fmt.Sscan(port, &portNumber)
		objs := []client.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.namespace}},
			&corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: a.service, Namespace: a.namespace},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": a.service},
					Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(portNumber)}}},
			},
			&discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: a.service + "-1", Namespace: a.namespace, Labels: map[string]string{discoveryv1.LabelServiceName: a.service}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
				Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(portNumber)}},
			},
		}
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil {
				t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
			}
		}
	}
	prefix := networkingv1.PathTypePrefix
	ingress := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: "shop", Annotations: map[string]string{
			"nginx.ingress.kubernetes.io/proxy-read-timeout": "30",
			"nginx.ingress.kubernetes.io/limit-rps":          "20",
		}},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"), Rules: []networkingv1.IngressRule{{
			Host: "catalog.apps.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "catalog", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}
	if err := c.Create(ctx, ingress); err != nil {
		t.Fatal(err)
	}
	startStreamApps(t, ctx, c)
}

// serve answers every HTTP request on addr with answer, over TLS with cert
// when it is not nil.
func serve(t *testing.T, addr, answer string, cert *tls.Certificate) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("backend %s: %v", addr, err)
	}
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, answer+"\n") }),
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
}

// build compiles the hub, the proxy and gatehousectl from this checkout
// into one directory, with kubectl-gatehouse beside them, and returns it.
func build(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	for _, c := range []string{"gatehouse", "gatehouse-proxy", "gatehousectl"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, c), "./cmd/"+c)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", c, err, out)
		}
	}
	if err := os.Symlink("gatehousectl", filepath.Join(dir, "kubectl-gatehouse")); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"kubectl", "helm"} {
		if _, err := os.Stat(filepath.Join(root, "bin", tool)); err != nil {
			t.Fatalf("%s is built by 'make tools': %v", tool, err)
		}
	}
	return dir
}

func start(t *testing.T, name, bin string, args ...string) error {
	p, err := env.StartProcess(name, bin, args, testLog{t})
	if err != nil {
		return err
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testLog sends a process's output to the test log (shown on failure and
// with -v).
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // output after the test ended
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
