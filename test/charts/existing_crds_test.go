package charts_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// helmCommand runs helm against one cluster and namespace.
type helmCommand func(args ...string) (string, error)

func helmIn(t *testing.T, fleet *env.Fleet, namespace string) helmCommand {
	return func(args ...string) (string, error) {
		return runHelm(t, append(args, "--kubeconfig", fleet.Hub.KubeconfigPath, "--namespace", namespace)...)
	}
}

// must runs a helm command that has to succeed and returns its output.
func (h helmCommand) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h(args...)
	if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// mustFail runs a helm command that has to fail saying each of want.
func (h helmCommand) mustFail(t *testing.T, want []string, args ...string) {
	t.Helper()
	out, err := h(args...)
	if err == nil {
		t.Fatalf("helm %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("helm %s failed without saying %q:\n%v", strings.Join(args, " "), w, err)
		}
	}
}

// wantOutput checks that helm's output (its notes) says each of want.
func wantOutput(t *testing.T, out string, want ...string) {
	t.Helper()
	flat := strings.Join(strings.Fields(out), " ")
	for _, w := range want {
		if !strings.Contains(flat, w) {
			t.Errorf("helm's output does not say %q:\n%s", w, out)
		}
	}
}

// gatewayAPICRDs reads the Gateway API CRDs of a module release and channel.
func gatewayAPICRDs(t *testing.T, release, channel string) []*unstructured.Unstructured {
	t.Helper()
	dir := filepath.Join(moduleDir(t, "sigs.k8s.io/gateway-api@"+release), "config", "crd", channel)
	paths, _ := filepath.Glob(filepath.Join(dir, "gateway.networking.*.yaml")) // not kustomization.yaml
	var out []*unstructured.Unstructured
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decode(string(data))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, ofKind(objs, "CustomResourceDefinition")...)
	}
	if len(out) == 0 {
		t.Fatalf("no Gateway API CRDs in %s", dir)
	}
	return out
}

// bundleOf is the bundle version of the Gateway API CRDs in dir.
func bundleOf(t *testing.T, dir string) string {
	t.Helper()
	objs, err := decode(readAll(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ofKind(objs, "CustomResourceDefinition") {
		if v := o.GetAnnotations()["gateway.networking.k8s.io/bundle-version"]; v != "" {
			return v
		}
	}
	t.Fatalf("no Gateway API CRD in %s says its bundle version", dir)
	return ""
}

// wantForeign checks the channel of every stored Gateway API CRD and that
// none carries a Helm release's annotations.
func wantForeign(t *testing.T, c client.Client, channel string) {
	t.Helper()
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := c.List(context.Background(), &crds); err != nil {
		t.Fatal(err)
	}
	for _, crd := range crds.Items {
		if crd.Spec.Group != "gateway.networking.k8s.io" {
			continue
		}
		if got := crd.Annotations["gateway.networking.k8s.io/channel"]; got != channel {
			t.Errorf("CRD %s is of the %s channel, want %s", crd.Name, got, channel)
		}
		if owner := crd.Annotations["meta.helm.sh/release-name"]; owner != "" {
			t.Errorf("CRD %s was taken over by release %s", crd.Name, owner)
		}
	}
}

// TestInstallOverExistingCRDs: Gateway API CRDs that another tool
// installed are left to it, whichever channel; the notes say which
// version and channel they are; CRDs older than the charts need fail the
// install with what to do; asking to install the standard channel over
// experimental CRDs is refused, naming the channel annotation.
func TestInstallOverExistingCRDs(t *testing.T) {
	fleet, c := bareCluster(t)
	hub, member := helmIn(t, fleet, hubNamespace), helmIn(t, fleet, memberNamespace)

	// Too old: v1.6.0, applied by someone else.
	applyForReal(t, c, gatewayAPICRDs(t, "v1.6.0", "standard"))
	hub.mustFail(t, []string{"older than v1.7.0", "crds.gatewayAPI=install", "--take-ownership"}, "install", "gh", chartDir(t, hubChart), "--create-namespace")

	// Experimental v1.7.0 over them, by the same someone: both charts
	// leave it as it is.
	applyForReal(t, c, gatewayAPICRDs(t, "v1.7.0", "experimental"))
	out := hub.must(t, "install", "gh", chartDir(t, hubChart), "--create-namespace")
	wantOutput(t, out, "this release did not install (v1.7.0, experimental channel)", "left to their owner")
	out = member.must(t, "install", "gm", chartDir(t, memberChart), "--create-namespace")
	wantOutput(t, out, "this release did not install (v1.7.0, experimental channel)")
	wantForeign(t, c, "experimental")
	var vap unstructured.Unstructured
	vap.SetAPIVersion("admissionregistration.k8s.io/v1")
	vap.SetKind("ValidatingAdmissionPolicy")
	if err := c.Get(context.Background(), client.ObjectKey{Name: "safe-upgrades.gateway.networking.k8s.io"}, &vap); !apierrors.IsNotFound(err) {
		t.Errorf("a release that installs no Gateway API CRDs installed the safe-upgrades policy (%v)", err)
	}

	// Asked to take them over as the standard channel: refused.
	hub.mustFail(t, []string{"annotation gateway.networking.k8s.io/channel: experimental", "never does that"},
		"upgrade", "gh", chartDir(t, hubChart), "--set", "crds.gatewayAPI=install", "--take-ownership")
	wantForeign(t, c, "experimental")

	// Standard v1.7.0, as a provider would install it.
	applyForReal(t, c, gatewayAPICRDs(t, "v1.7.0", "standard"))
	out = member.must(t, "upgrade", "gm", chartDir(t, memberChart))
	wantOutput(t, out, "this release did not install (v1.7.0, standard channel)")
	wantForeign(t, c, "standard")
}

// TestUninstallLeavesOnlyCRDs: `helm uninstall` removes every object the
// release made, the cluster-wide admission policies included, and keeps
// the CRDs. The hub cluster is a member too here: the member chart,
// installed second, leaves the Gateway API CRDs to the hub's release.
// The monitoring objects are left out, with a note, until the Prometheus
// Operator's CRDs are there, and created by the next upgrade.
func TestUninstallLeavesOnlyCRDs(t *testing.T) {
	fleet, c := bareCluster(t)
	hub, member := helmIn(t, fleet, hubNamespace), helmIn(t, fleet, memberNamespace)
	monitors := []string{"--set", "metrics.serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true"}

	out := hub.must(t, append([]string{"install", "gh", chartDir(t, hubChart), "--create-namespace"}, monitors...)...)
	wantOutput(t, out, "No ServiceMonitor was created", "No PrometheusRule was created")
	out = member.must(t, "install", "gm", chartDir(t, memberChart), "--create-namespace", "--set", "podMonitor.enabled=true")
	wantOutput(t, out, "this release did not install (v1.7.0, standard channel)", "No PodMonitor was created")

	data, err := os.ReadFile(testdata(t, "monitoring-crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crds, err := decode(string(data))
	if err != nil {
		t.Fatal(err)
	}
	applyForReal(t, c, crds)
	out = hub.must(t, append([]string{"upgrade", "gh", chartDir(t, hubChart)}, monitors...)...)
	if strings.Contains(out, "was created") {
		t.Errorf("with the monitoring CRDs installed the notes still say an object was left out:\n%s", out)
	}
	member.must(t, "upgrade", "gm", chartDir(t, memberChart), "--set", "podMonitor.enabled=true")

	for _, r := range []struct {
		release string
		helm    helmCommand
	}{{"gm", member}, {"gh", hub}} {
		objs, err := decode(r.helm.must(t, "get", "manifest", r.release))
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, o := range objs {
			kinds[o.GetKind()] = true
		}
		for _, k := range []string{"ValidatingAdmissionPolicy", "ClusterRole", "Deployment"} {
			if r.release == "gh" && !kinds[k] {
				t.Errorf("release gh made no %s: the test would not show that uninstall removes it", k)
			}
		}
		if r.release == "gh" && (!kinds["ServiceMonitor"] || !kinds["PrometheusRule"]) {
			t.Errorf("release gh made no ServiceMonitor or PrometheusRule once the monitoring CRDs were there: %v", kinds)
		}
		if r.release == "gm" && !kinds["PodMonitor"] {
			t.Errorf("release gm made no PodMonitor once the monitoring CRDs were there: %v", kinds)
		}
		r.helm.must(t, "uninstall", r.release, "--wait")
		for _, o := range objs {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(o.GroupVersionKind())
			err := c.Get(context.Background(), client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}, live)
			switch {
			case o.GetKind() == "CustomResourceDefinition" && err != nil:
				t.Errorf("CRD %s is gone after helm uninstall %s: %v", o.GetName(), r.release, err)
			case o.GetKind() != "CustomResourceDefinition" && !apierrors.IsNotFound(err):
				t.Errorf("%s %s/%s is left after helm uninstall %s (%v)", o.GetKind(), o.GetNamespace(), o.GetName(), r.release, err)
			}
		}
	}
}

// wantRollbackRefused: `helm rollback` to revision 1, whose chart bundles
// an older Gateway API, is refused with the reason and what to do
// instead; the CRDs stay as they are. Doing what the refusal says — an
// upgrade with the older chart — works, and keeps the newer CRDs.
func wantRollbackRefused(t *testing.T, c client.Client, h helmCommand, older string) {
	t.Helper()
	h.mustFail(t, []string{"would downgrade the Gateway API CRD", "from v1.7.0 to v1.6.0", "run helm upgrade with the older chart version"},
		"rollback", "gh", "1")
	wantBundle(t, c, "v1.7.0")
	out := h.must(t, "upgrade", "gh", older, "--set", "crds.gatewayAPI=auto")
	wantOutput(t, out, "are newer than this chart's v1.6.0: kept as they are")
	wantBundle(t, c, "v1.7.0")
}

// bareCluster starts a cluster without the CRDs the test bed installs in
// every cluster (the Gateway API's and Gatehouse's), as a new cluster is.
func bareCluster(t *testing.T) (*env.Fleet, client.Client) {
	t.Helper()
	fleet := startCluster(t, env.Options{WithoutCRDs: true})
	return fleet, newClient(t, fleet.Hub.Config)
}
