// Package conformance runs the official Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance) against Gatehouse as it runs in
// production: the hub binary, which runs each Gateway's gatehouse-proxy
// Pods (managed mode), a real etcd, kube-apiserver and
// kube-controller-manager, and a kubelet of our own that runs the proxies
// and the suite's echo backends in network namespaces. See README.md.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	xv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"
	"sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/flags"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/test/conformance/kubelet"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The test network: 10.244.254.0/23 is local to the harness (the API
// server's advertise address, the node, the hub, the Gateways' load
// balancer addresses), and so is the Service range; pods get addresses
// below it, each in a network namespace of its own.
const (
	localRange       = "10.244.254.0/23"
	advertiseAddress = "10.244.255.1"
	nodeIP           = "10.244.255.2"
	firstGatewayIP   = "10.244.254.10"
	lastGatewayIP    = "10.244.255.200"
	podCIDR          = "10.244.0.0/17"
	// usableAddress is one the load balancer gives a Gateway's Service
	// when the Gateway asks for it in spec.addresses; unusableAddress is
	// outside the test network, so the load balancer never gives it.
	usableAddress   = "10.244.255.250"
	unusableAddress = "10.244.253.250"

	// memberName is the name the hub knows the one cluster by: it is the
	// hub and its only member.
	memberName     = "conformance"
	className      = "gatehouse"
	controllerName = "gatehouse.dev/gateway-controller"
	reportName     = "standard-v1.7.0-default-report.yaml"
)

func TestMain(m *testing.M) {
	env.EnterNetwork(localRange, serviceRange)
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctrllog.SetLogger(zap.New(zap.WriteTo(io.Discard)))

	root, err := env.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("GATEHOUSE_BIN_DIR")
	if bin == "" {
		bin = filepath.Join(root, "bin")
	}
	for _, b := range []string{"gatehouse", "gatehouse-proxy", "echo-basic", "kube-controller-manager", "etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Fatalf("%s is missing from %s: run 'make conformance', which builds it", b, bin)
		}
	}
	artifacts := os.Getenv("CONFORMANCE_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := func(name string) io.Writer {
		f, err := os.Create(filepath.Join(artifacts, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		return f
	}
	t.Logf("logs of the control plane, the hub, the proxies and the kubelet: %s", artifacts)

	// One cluster, which is the hub and its only member.
	fleet, err := env.Start(ctx, env.Options{AdvertiseAddress: advertiseAddress, BinDir: bin, Log: logFile("control-plane.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	cluster := fleet.Hub
	cl, err := client.New(cluster.Config, client.Options{Scheme: suiteScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: memberName, Namespace: env.HubNamespace,
			Labels: map[string]string{kubeconfig.DefaultKubeconfigSecretLabel: "true"}},
		Data: map[string][]byte{kubeconfig.DefaultKubeconfigSecretKey: cluster.Kubeconfig},
	}); err != nil {
		t.Fatal(err)
	}

	kcm, err := kubelet.StartControllerManager(ctx, bin, cluster.KubeconfigPath, logFile("kube-controller-manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kcm.Stop(10 * time.Second) })

	kl, err := kubelet.Start(ctx, kubelet.Options{
		Config: cluster.Config, NodeName: "conformance-node", NodeIP: nodeIP, Port: 10250, PodCIDR: podCIDR,
		Images: map[string]string{"echo-basic": filepath.Join(bin, "echo-basic"), "gatehouse-proxy": filepath.Join(bin, "gatehouse-proxy")},
		Dir:    filepath.Join(artifacts, "kubelet"), Log: logFile("kubelet.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kl.Stop() })

	if err := createGatewayClass(ctx, cl); err != nil {
		t.Fatal(err)
	}

	startServiceNetwork(ctx, t, cluster, logFile)
	whAddr := freeAddress(t)
	hub, err := env.StartProcess("hub", filepath.Join(bin, "gatehouse"), append([]string{
		"--kubeconfig", cluster.KubeconfigPath,
		"--metrics-address", "0", "--health-address", "0", "--startup-grace", "0s",
		"--webhook-address", whAddr, "--webhook-url", "https://" + whAddr,
	}, hubProvisioningArgs()...), logFile("hub.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Stop(10 * time.Second) })

	if err := waitForClass(ctx, cl); err != nil {
		t.Fatal(err)
	}

	reports := filepath.Join(root, "test", "conformance", "reports")
	if err := os.MkdirAll(reports, 0o755); err != nil {
		t.Fatal(err)
	}
	reportPath := filepath.Join(reports, reportName)
	opts := suiteOptions(t, cl, cluster, reportPath, version(root))
	t.Run("suite", func(t *testing.T) { conformance.RunConformanceWithOptions(t, opts) })

	summary, err := summarize(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Print(summary)
	if err := os.WriteFile(filepath.Join(artifacts, "summary.txt"), []byte(summary), 0o644); err != nil {
		t.Fatal(err)
	}
}

// suiteOptions are the suite's defaults, the features our GatewayClass
// publishes (inferred by the suite from its status), and whatever the
// suite's own flags say (for example -run-test or -skip-tests).
func suiteOptions(t *testing.T, cl client.Client, cluster *env.Cluster, reportPath, version string) suite.ConformanceOptions {
	cs, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	opts := suite.ConfigurableOptions{
		GatewayClassName:     className,
		CleanupBaseResources: true,
		CleanupTestResources: true,
		Mode:                 flags.DefaultMode,
		TimeoutConfig:        config.DefaultTimeoutConfig(),
		ReportOutputPath:     reportPath,
		// Every profile of the standard channel: L7 (HTTP, gRPC) and L4
		// (TLS, TCP, UDP).
		ConformanceProfiles: []suite.ConformanceProfileName{
			suite.GatewayHTTPConformanceProfileName, suite.GatewayGRPCConformanceProfileName,
			suite.GatewayTLSConformanceProfileName, suite.GatewayTCPConformanceProfileName, suite.GatewayUDPConformanceProfileName,
		},
		UsableNetworkAddresses: []gwv1.GatewaySpecAddress{
			{Type: ptr.To(gwv1.IPAddressType), Value: usableAddress}},
		UnusableNetworkAddresses: []gwv1.GatewaySpecAddress{
			{Type: ptr.To(gwv1.IPAddressType), Value: unusableAddress}},
		Implementation: confv1.Implementation{
			Organization: "gatehouse-dev",
			Project:      "gatehouse",
			URL:          "https://github.com/gatehouse-dev/gatehouse",
			Version:      version,
			Contact:      []string{"@gatehouse-dev/maintainers"},
		},
	}
	flags.ApplyAll(&opts)
	return suite.ConformanceOptions{
		ConfigurableOptions: opts,
		Client:              cl,
		ClientOptions:       client.Options{Scheme: cl.Scheme()},
		Clientset:           cs,
		RestConfig:          cluster.Config,
	}
}

func suiteScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme,
		gwv1.Install, gwv1beta1.Install, xv1alpha1.Install,
	} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// createGatewayClass creates our class with classParameters.
func createGatewayClass(ctx context.Context, cl client.Client) error {
	for _, o := range []client.Object{
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-conformance", Namespace: env.HubNamespace},
			Data:       classParameters,
		},
		&gwv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: className},
			Spec: gwv1.GatewayClassSpec{ControllerName: controllerName, ParametersRef: &gwv1.ParametersReference{
				Kind: "ConfigMap", Name: "gatehouse-conformance", Namespace: ptr.To[gwv1.Namespace](env.HubNamespace)}},
		},
	} {
		if err := cl.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// waitForClass waits until the hub accepted the class and published the
// features it supports, which the suite reads.
func waitForClass(ctx context.Context, cl client.Client) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var gc gwv1.GatewayClass
		if err := cl.Get(ctx, client.ObjectKey{Name: className}, &gc); err == nil &&
			meta.IsStatusConditionTrue(gc.Status.Conditions, string(gwv1.GatewayClassConditionStatusAccepted)) &&
			len(gc.Status.SupportedFeatures) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the hub did not accept GatewayClass " + className + " within 2m: see hub.log")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// version names the build under test: the commit, marked when the tree has
// changes.
func version(root string) string {
	if v := os.Getenv("CONFORMANCE_VERSION"); v != "" {
		return v
	}
	cmd := exec.Command("git", "describe", "--always", "--dirty", "--tags")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil || len(out) == 0 {
		return "dev"
	}
	return strings.TrimSpace(string(out))
}

func freeAddress(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// summarize reads the report the suite wrote and says, per profile, how
// many core tests passed, failed and were skipped, which extended features
// passed, and the names of failed tests.
func summarize(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the report: %w", err)
	}
	var r confv1.ConformanceReport
	if err := yaml.Unmarshal(data, &r); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Gateway API conformance %s (%s channel), %s %s, %s\n", r.GatewayAPIVersion, r.GatewayAPIChannel, r.Project, r.Version, r.Date)
	for _, p := range r.ProfileReports {
		fmt.Fprintf(&b, "%s: %s\n", p.Name, p.Summary)
		fmt.Fprintf(&b, "  core: %s, %d passed, %d failed, %d skipped\n", p.Core.Result, p.Core.Passed, p.Core.Failed, p.Core.Skipped)
		for _, f := range p.Core.FailedTests {
			fmt.Fprintf(&b, "    failed: %s\n", f)
		}
		for _, s := range p.Core.SkippedTests {
			fmt.Fprintf(&b, "    skipped: %s\n", s)
		}
		if e := p.Extended; e != nil {
			fmt.Fprintf(&b, "  extended: %s, %d passed, %d failed, %d skipped\n", e.Result, e.Passed, e.Failed, e.Skipped)
			fmt.Fprintf(&b, "    features claimed: %s\n", strings.Join(e.SupportedFeatures, ", "))
			fmt.Fprintf(&b, "    features declared unsupported: %s\n", strings.Join(e.UnsupportedFeatures, ", "))
			for _, f := range e.FailedTests {
				fmt.Fprintf(&b, "    failed: %s\n", f)
			}
		}
	}
	if len(r.SucceededProvisionalTests) > 0 {
		fmt.Fprintf(&b, "provisional tests passed: %s\n", strings.Join(r.SucceededProvisionalTests, ", "))
	}
	return b.String(), nil
}
