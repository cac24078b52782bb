package charts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/join"
	"github.com/gatehouse-dev/gatehouse/operator/hub"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// fieldManager owns what the tests apply, as Helm would own a release's objects.
const fieldManager = "helm-test"

func startCluster(t *testing.T, opts env.Options) *env.Fleet {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a control plane (-short)")
	}
	helmBinary(t)
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fleet, err := env.Start(ctx, opts)
	if err != nil {
		t.Fatalf("starting kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := fleet.Stop(); err != nil {
			t.Errorf("stopping kube-apiserver: %v", err)
		}
	})
	return fleet
}

func newClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// moduleDir is where the module cache holds module@version, downloading
// it through the module proxy when it is not there yet.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	args := []string{"list", "-m", "-f", "{{.Dir}}", module}
	if strings.Contains(module, "@") {
		args = []string{"mod", "download", "-json", module}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = errors.New(string(ee.Stderr))
		}
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	if !strings.Contains(module, "@") {
		return strings.TrimSpace(string(out))
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", module, err, m.Error)
	}
	return m.Dir
}

// applyForReal server-side applies objects and waits for CRDs among them
// to be established.
func applyForReal(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	for _, o := range ofKind(objs, "CustomResourceDefinition") {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := c.Get(ctx, client.ObjectKey{Name: o.GetName()}, &crd); err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s is not established: %v", o.GetName(), err)
		}
	}
}

func ensureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// TestServerSideDryRun: a real kube-apiserver accepts every object the
// charts render. The charts' CRDs are applied for real first, as Helm
// applies them before the rest; then every other object is applied with a
// server-side dry run, which runs the API server's validation, CRD schemas
// and admission without storing anything.
func TestServerSideDryRun(t *testing.T) {
	fleet := startCluster(t, env.Options{CRDPaths: []string{filepath.Join(moduleDir(t, "github.com/cert-manager/cert-manager"), "deploy", "crds")}})
	c := newClient(t, fleet.Hub.Config)
	ctx := context.Background()
	for _, r := range renderings() {
		t.Run(r.name, func(t *testing.T) {
			objs := r.render(t)
			applyForReal(t, c, ofKind(objs, "CustomResourceDefinition"))
			ensureNamespace(t, c, r.namespace)
			applied := 0
			for _, o := range objs {
				if o.GetKind() == "CustomResourceDefinition" {
					continue
				}
				mapping, err := c.RESTMapper().RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
				if meta.IsNoMatchError(err) && o.GroupVersionKind().Group == "monitoring.coreos.com" {
					// The Prometheus Operator's CRDs are no dependency of
					// this repository; TestHubChartRenders checks what the
					// ServiceMonitor selects, TestPrometheusRule the rules.
					t.Logf("%s %s: not validated by the API server, which has no monitoring.coreos.com CRDs", o.GetKind(), o.GetName())
					continue
				}
				if err != nil {
					t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
					continue
				}
				if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
					if o.GetNamespace() == "" {
						t.Errorf("%s %s has no namespace: Helm would put it in the namespace of the client's context", o.GetKind(), o.GetName())
						continue
					}
					ensureNamespace(t, c, o.GetNamespace())
				}
				err = c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldManager), client.ForceOwnership, client.DryRunAll)
				if err != nil {
					t.Errorf("dry run of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
					continue
				}
				applied++
			}
			t.Logf("%d CRDs applied, %d objects accepted in a dry run", len(ofKind(objs, "CustomResourceDefinition")), applied)
		})
	}
}

// TestCRDUpgrade runs the upgrade path with the real Helm: a cluster on
// the previous Gateway API release (v1.6.0, and for the hub a Tenant CRD
// without spec.limits) whose CRDs a previous release of the chart took
// over (crds.gatewayAPI=install, --take-ownership); `helm upgrade` to this
// chart must store this chart's CRDs. `helm rollback` to the previous
// revision would downgrade them: it is refused with the reason and what to
// do instead, which works and keeps the newer CRDs. `helm uninstall` must
// leave them.
func TestCRDUpgrade(t *testing.T) {
	previous := filepath.Join(moduleDir(t, "sigs.k8s.io/gateway-api@v1.6.0"), "config", "crd", "standard")
	for _, c := range []struct{ chart, namespace string }{{hubChart, hubNamespace}, {memberChart, memberNamespace}} {
		t.Run(c.chart, func(t *testing.T) {
			fleet := startCluster(t, env.Options{})
			cl := newClient(t, fleet.Hub.Config)
			helm := func(args ...string) string {
				t.Helper()
				out, err := runHelm(t, append(args, "--kubeconfig", fleet.Hub.KubeconfigPath, "--namespace", c.namespace)...)
				if err != nil {
					t.Fatalf("helm %s: %v", args[0], err)
				}
				return out
			}

			old := previousChart(t, c.chart, previous)
			oldObjs, err := decode(readAll(t, filepath.Join(old, "files", "gateway-api")))
			if err != nil {
				t.Fatal(err)
			}
			// CRDs before the policy that guards their upgrades.
			applyForReal(t, cl, ofKind(oldObjs, "CustomResourceDefinition"))
			applyForReal(t, cl, append(ofKind(oldObjs, "ValidatingAdmissionPolicy"), ofKind(oldObjs, "ValidatingAdmissionPolicyBinding")...))
			wantBundle(t, cl, "v1.6.0")

			helm("install", "gh", old, "--create-namespace", "--take-ownership", "--set", "crds.gatewayAPI=install")
			wantBundle(t, cl, "v1.6.0")
			if c.chart == hubChart && tenantHasLimits(t, cl) {
				t.Fatalf("the previous chart's Tenant CRD has spec.limits")
			}

			start := time.Now()
			helm("upgrade", "gh", chartDir(t, c.chart), "--set", "crds.gatewayAPI=auto")
			t.Logf("helm upgrade took %v", time.Since(start).Round(time.Millisecond))
			wantBundle(t, cl, "v1.7.0")
			if !httpRouteHasRetry(t, cl) {
				t.Errorf("the stored HTTPRoute CRD has no spec.rules[].retry, a field of v1.7.0")
			}
			if c.chart == hubChart && !tenantHasLimits(t, cl) {
				t.Errorf("the stored Tenant CRD has no spec.limits after the upgrade")
			}
			if c.chart == memberChart {
				var gc unstructured.Unstructured
				gc.SetAPIVersion("gateway.networking.k8s.io/v1")
				gc.SetKind("GatewayClass")
				if err := cl.Get(context.Background(), client.ObjectKey{Name: "gatehouse"}, &gc); err != nil {
					t.Errorf("GatewayClass gatehouse: %v", err)
				}
			}
			wantHubAccess(t, fleet.Hub.Config, c.chart)
			wantReleaseFits(t, cl, c.namespace, "gh", 2)

			wantRollbackRefused(t, cl, helmIn(t, fleet, c.namespace), old)

			helm("uninstall", "gh")
			var crds apiextensionsv1.CustomResourceDefinitionList
			if err := cl.List(context.Background(), &crds); err != nil {
				t.Fatal(err)
			}
			if n := len(crds.Items); n < len(ofKind(oldObjs, "CustomResourceDefinition")) {
				t.Errorf("%d CRDs left after helm uninstall: the chart's CRDs must be kept", n)
			}
		})
	}
}

// previousChart is a copy of chart as its previous release would be: the
// Gateway API CRDs of dir and, for the hub, a Tenant CRD without a field.
func previousChart(t *testing.T, chart, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), chart)
	if err := os.CopyFS(out, os.DirFS(chartDir(t, chart))); err != nil {
		t.Fatal(err)
	}
	gw := filepath.Join(out, "files", "gateway-api")
	if err := os.RemoveAll(gw); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(gw, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	chartYAML := filepath.Join(out, "Chart.yaml")
	data, _ := os.ReadFile(chartYAML)
	data = regexp.MustCompile(`(?m)^version: .*$`).ReplaceAll(data, []byte("version: 0.0.0-previous"))
	data = regexp.MustCompile(`(?m)^(\s*gateway-api\.sigs\.k8s\.io/bundle-version:) .*$`).ReplaceAll(data, []byte("$1 "+bundleOf(t, dir)))
	if err := os.WriteFile(chartYAML, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if chart == hubChart {
		f := filepath.Join(out, "files", "crds", "tenancy.gatehouse.dev_tenants.yaml")
		data, _ := os.ReadFile(f)
		var crd map[string]any
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatal(err)
		}
		versions, _, _ := unstructured.NestedSlice(crd, "spec", "versions")
		for _, v := range versions {
			unstructured.RemoveNestedField(v.(map[string]any), "schema", "openAPIV3Schema", "properties", "spec", "properties", "limits")
		}
		if err := unstructured.SetNestedSlice(crd, versions, "spec", "versions"); err != nil {
			t.Fatal(err)
		}
		data, _ = yaml.Marshal(crd)
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func readAll(t *testing.T, dir string) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n---\n")
		b.Write(data)
	}
	return b.String()
}

// wantBundle checks that every stored Gateway API CRD is of version.
func wantBundle(t *testing.T, c client.Client, version string) {
	t.Helper()
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := c.List(context.Background(), &crds); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, crd := range crds.Items {
		if crd.Spec.Group != "gateway.networking.k8s.io" {
			continue
		}
		n++
		if got := crd.Annotations["gateway.networking.k8s.io/bundle-version"]; got != version {
			t.Errorf("stored CRD %s is of Gateway API %s, want %s", crd.Name, got, version)
		}
	}
	if n == 0 {
		t.Errorf("no Gateway API CRDs stored")
	}
}

func schemaOf(t *testing.T, c client.Client, name string) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	var crd apiextensionsv1.CustomResourceDefinition
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, &crd); err != nil {
		t.Fatal(err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			return *v.Schema.OpenAPIV3Schema
		}
	}
	t.Fatalf("CRD %s has no storage version", name)
	return apiextensionsv1.JSONSchemaProps{}
}

func httpRouteHasRetry(t *testing.T, c client.Client) bool {
	s := schemaOf(t, c, "httproutes.gateway.networking.k8s.io")
	_, ok := s.Properties["spec"].Properties["rules"].Items.Schema.Properties["retry"]
	return ok
}

func tenantHasLimits(t *testing.T, c client.Client) bool {
	s := schemaOf(t, c, "tenants.tenancy.gatehouse.dev")
	_, ok := s.Properties["spec"].Properties["limits"]
	return ok
}

// wantHubAccess asks the API server, as the hub's ServiceAccount, for what
// the hub does in that cluster.
func wantHubAccess(t *testing.T, cfg *rest.Config, chart string) {
	t.Helper()
	type access struct {
		namespace, group, resource, verb, name string
		allowed                                bool
	}
	var user, namespace string
	var checks []access
	if chart == hubChart {
		namespace, user = hubNamespace, "gh-gatehouse"
		// What join does on the hub for member-1: bind the chart's
		// certificates role in that member's certificate namespace only.
		bindCertificates(t, cfg, join.Options{Cluster: "member-1", HubNamespace: hubNamespace, HubServiceAccount: user, HubCertificatesRole: user + "-certificates"})
		checks = []access{
			{hubNamespace, "", "secrets", "watch", "", true},
			{hubNamespace, "", "secrets", "update", "gatehouse-webhook-ca", true},
			{hubNamespace, "", "secrets", "update", "member-1", false}, // would redirect a member
			{hubNamespace, "coordination.k8s.io", "leases", "update", "gatehouse-hub", true},
			{"", "tenancy.gatehouse.dev", "tenants", "watch", "", true},
			{"", "policy.gatehouse.dev", "routepolicies/status", "update", "", true},
			{"gatehouse-member-1", "cert-manager.io", "certificates", "create", "", true},
			{"gatehouse-member-1", "", "secrets", "get", "", true},
			{"gatehouse-member-2", "", "secrets", "get", "", false}, // a member not joined here
			{"default", "", "secrets", "get", "", false},
			{hubNamespace, "", "secrets", "delete", "member-1", false},
			{"", "", "namespaces", "create", "", true},
			{"kube-system", "", "secrets", "list", "", false},
		}
	} else {
		namespace, user = memberNamespace, "gatehouse-hub"
		checks = []access{
			{"", "gateway.networking.k8s.io", "httproutes", "watch", "", true},
			{"team-a", "gateway.networking.k8s.io", "httproutes/status", "update", "", true},
			{"", "gateway.networking.k8s.io", "gatewayclasses/status", "update", "", true},
			{"", "gateway.networking.k8s.io", "httproutes", "update", "", false},
			{"", "discovery.k8s.io", "endpointslices", "list", "", true},
			{"", "authentication.k8s.io", "tokenreviews", "create", "", true},
			{"", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch", hub.WebhookConfigurationName, true},
			{"", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch", "someone-elses", false},
			{"infra", "apps", "deployments", "create", "", true},
			{"infra", "", "serviceaccounts", "patch", hub.ProxyServiceAccount("shared"), true},
			{"infra", "gateway.networking.k8s.io", "gateways/finalizers", "update", "shared", true},
		}
	}
	c := newClient(t, cfg)
	for _, a := range checks {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + namespace + ":" + user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Namespace: a.namespace, Group: a.group, Resource: strings.Split(a.resource, "/")[0],
				Subresource: after(a.resource, "/"), Verb: a.verb, Name: a.name},
		}}
		if err := c.Create(context.Background(), sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != a.allowed {
			t.Errorf("%s may %s %s/%s %q in namespace %q: %v, want %v (%s)", user, a.verb, a.group, a.resource, a.name, a.namespace,
				sar.Status.Allowed, a.allowed, sar.Status.Reason)
		}
	}
}

// bindCertificates applies, as join does, the hub's objects for a member.
func bindCertificates(t *testing.T, cfg *rest.Config, o join.Options) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(cfg)
	opts := metav1.ApplyOptions{FieldManager: join.FieldManager, Force: true}
	for _, obj := range join.HubObjects(o) {
		var err error
		switch x := obj.(type) {
		case *corev1ac.NamespaceApplyConfiguration:
			_, err = cs.CoreV1().Namespaces().Apply(context.Background(), x, opts)
		case *rbacv1ac.RoleBindingApplyConfiguration:
			_, err = cs.RbacV1().RoleBindings(*x.Namespace).Apply(context.Background(), x, opts)
		default:
			t.Fatalf("join.HubObjects: unexpected %T", obj)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func after(s, sep string) string {
	_, a, _ := strings.Cut(s, sep)
	return a
}

// wantReleaseFits: Helm keeps a release (chart files, CRDs included, and
// the rendered manifest) in one Secret, which may hold 1 MiB. Fail well
// before a bigger Gateway API bundle makes installs fail.
func wantReleaseFits(t *testing.T, c client.Client, namespace, release string, revision int) {
	t.Helper()
	var s corev1.Secret
	name := fmt.Sprintf("sh.helm.release.v1.%s.v%d", release, revision)
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		t.Fatalf("release Secret: %v", err)
	}
	size := len(s.Data["release"])
	t.Logf("release Secret %s holds %d bytes (%.0f%% of 1 MiB)", name, size, float64(size)*100/(1<<20))
	if size > 900<<10 {
		t.Errorf("release Secret %s holds %d bytes: close to the 1 MiB limit of a Secret", name, size)
	}
}
