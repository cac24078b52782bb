// Package charts tests the Helm charts in charts/: that they lint with
// their values schemas, render what the binaries expect, are accepted by a
// real kube-apiserver (server-side dry run) and upgrade their CRDs through
// a real `helm upgrade`. Helm is bin/helm, built by `make tools`.
package charts_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

const (
	hubChart    = "gatehouse"
	memberChart = "gatehouse-member"

	hubNamespace    = env.HubNamespace
	memberNamespace = "gatehouse-member"

	// gatewayClassAPI is what a cluster with the Gateway API CRDs reports;
	// the member chart renders its GatewayClass only then.
	gatewayClassAPI = "gateway.networking.k8s.io/v1/GatewayClass"
	// monitoringAPI is the Prometheus Operator's: the charts render their
	// ServiceMonitor, PodMonitor and PrometheusRule only where it is served.
	monitoringAPI = "monitoring.coreos.com/v1"
)

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := env.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func chartDir(t testing.TB, chart string) string {
	return filepath.Join(repoRoot(t), "charts", chart)
}

func testdata(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "test", "charts", "testdata", name)
}

// helmBinary is bin/helm (or $GATEHOUSE_BIN_DIR/helm). Without it the test
// fails, telling how to build it; with -short it is skipped instead.
func helmBinary(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GATEHOUSE_BIN_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "bin")
	}
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err != nil {
		if testing.Short() {
			t.Skipf("%s is missing (-short): run 'make tools' to build it", bin)
		}
		t.Fatalf("%s is missing: run 'make tools' to build it", bin)
	}
	return bin
}

// runHelm runs helm with its own, empty configuration, cache and data
// directories, and returns what it printed on stdout; err carries stderr.
func runHelm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String() + "\n" + stdout.String()))
	}
	return stdout.String(), nil
}

// rendering is one `helm template` of a chart.
type rendering struct {
	name, chart, namespace string
	valuesFile             string
	args                   []string
}

func (r rendering) render(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "test", chartDir(t, r.chart), "--namespace", r.namespace}
	if r.valuesFile != "" {
		args = append(args, "--values", testdata(t, r.valuesFile))
	}
	out, err := runHelm(t, append(args, r.args...)...)
	if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatalf("rendered manifests of %s: %v", r.name, err)
	}
	return objs
}

// renderings are every way the tests render the charts: defaults, and
// every optional part on.
func renderings() []rendering {
	return []rendering{
		{name: "hub defaults", chart: hubChart, namespace: hubNamespace},
		{name: "hub all", chart: hubChart, namespace: hubNamespace, valuesFile: "gatehouse-all.yaml",
			args: []string{"--api-versions", monitoringAPI + "/ServiceMonitor", "--api-versions", monitoringAPI + "/PrometheusRule"}},
		{name: "member defaults", chart: memberChart, namespace: memberNamespace, args: []string{"--api-versions", gatewayClassAPI}},
		{name: "member all", chart: memberChart, namespace: memberNamespace, valuesFile: "gatehouse-member-all.yaml",
			args: []string{"--api-versions", gatewayClassAPI, "--api-versions", monitoringAPI + "/PodMonitor"}},
	}
}

func decode(manifests string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if s := string(bytes.TrimSpace(data)); s == "null" || s == "{}" {
			continue
		}
		// Numbers decode as int64, as the API machinery decodes them.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	var have []string
	for _, o := range objs {
		have = append(have, o.GetKind()+"/"+o.GetName())
	}
	t.Fatalf("no %s %q rendered; have %v", kind, name, have)
	return nil
}

func TestLint(t *testing.T) {
	for _, c := range []struct{ chart, values string }{
		{hubChart, ""},
		{hubChart, "gatehouse-all.yaml"},
		{memberChart, ""},
		{memberChart, "gatehouse-member-all.yaml"},
	} {
		t.Run(c.chart+" "+c.values, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir(t, c.chart)}
			if c.values != "" {
				args = append(args, "--values", testdata(t, c.values))
			}
			if out, err := runHelm(t, args...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// TestBadValuesFail: the values schemas catch wrong types, unknown keys
// and values outside their set (`helm lint` fails, and so does every
// install), and the templates refuse combinations that cannot work; each
// failure names the value to fix.
func TestBadValuesFail(t *testing.T) {
	for _, c := range []struct {
		name, chart string
		set         []string
		want        string
		// schema: the values schema catches it, so `helm lint` fails too;
		// otherwise only rendering (helm template, install, upgrade) does.
		schema bool
	}{
		{"replicas not a number", hubChart, []string{"replicas=two"}, "at '/replicas': got string, want integer", true},
		{"unknown top-level key", hubChart, []string{"replica=2"}, "additional properties 'replica' not allowed", true},
		{"misspelt nested key", hubChart, []string{"webhook.certmanager.enabled=true"}, "additional properties 'certmanager' not allowed", true},
		{"failure policy outside its set", hubChart, []string{"webhook.failurePolicy=Retry"}, "/webhook/failurePolicy", true},
		{"duration without unit", hubChart, []string{"hub.debounce=50"}, "/hub/debounce", true},
		{"webhook URL not https", hubChart, []string{"webhook.url=http://hub.example.test"}, "/webhook/url", true},
		{"class mode outside its set", memberChart, []string{"gatewayClass.parameters.mode=hybrid"}, "/gatewayClass/parameters/mode", true},
		{"unknown member key", memberChart, []string{"proxyFleet.hubAdress=hub:18000"}, "additional properties 'hubAdress' not allowed", true},
		{"gateway without ports", memberChart, []string{"proxyFleet.gateways[0].namespace=infra", "proxyFleet.gateways[0].name=shared"}, "missing property 'ports'", true},
		{"port protocol outside its set", memberChart, []string{"proxyFleet.gateways[0].namespace=infra", "proxyFleet.gateways[0].name=shared",
			"proxyFleet.gateways[0].ports[0].name=sctp", "proxyFleet.gateways[0].ports[0].port=9000", "proxyFleet.gateways[0].ports[0].protocol=SCTP"}, "/proxyFleet/gateways/0/ports/0/protocol", true},
		{"managed proxies without a push address", hubChart, []string{"managedProxies.enabled=true"}, "set push.externalAddress", false},
		{"fleet without a hub address", memberChart, []string{"proxyFleet.enabled=true", "gatewayClass.parameters.mode=external", "proxyFleet.cluster=member-1"}, "proxyFleet.hubAddress", false},
		{"fleet without the hub's CA bundle", memberChart, []string{"proxyFleet.enabled=true", "gatewayClass.parameters.mode=external", "proxyFleet.cluster=member-1", "proxyFleet.hubAddress=hub:18000"}, "proxyFleet.hubCABundle", false},
		{"Gateway API CRDs mode outside its set", hubChart, []string{"crds.gatewayAPI=adopt"}, "/crds/gatewayAPI", true},
		{"fleet of a managed-mode class", memberChart, []string{"proxyFleet.enabled=true", "proxyFleet.hubAddress=hub:18000", "proxyFleet.cluster=member-1"}, "set gatewayClass.parameters.mode=external", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var set []string
			for _, s := range c.set {
				set = append(set, "--set", s)
			}
			commands := [][]string{{"template", "test", chartDir(t, c.chart), "--namespace", "test"}}
			if c.schema {
				commands = append(commands, []string{"lint", chartDir(t, c.chart)})
			}
			for _, cmd := range commands {
				out, err := runHelm(t, append(cmd, set...)...)
				if err == nil {
					t.Fatalf("helm %s accepted --set %v:\n%s", cmd[0], c.set, out)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Fatalf("helm %s failed without saying %q:\n%v", cmd[0], c.want, err)
				}
			}
		})
	}
}

// TestDashboard: the dashboard ConfigMap carries files/dashboard.json once
// the chart has it, and enabling it before then fails with a reason.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t, hubChart), "files", "dashboard.json"))
	args := []string{"template", "test", chartDir(t, hubChart), "--namespace", hubNamespace, "--set", "dashboard.enabled=true",
		"--show-only", "templates/dashboard.yaml"}
	out, herr := runHelm(t, args...)
	if errors.Is(err, os.ErrNotExist) {
		if herr == nil || !strings.Contains(herr.Error(), "no files/dashboard.json") {
			t.Fatalf("dashboard.enabled without files/dashboard.json: want a failure naming the file, got %v\n%s", herr, out)
		}
		return
	}
	if herr != nil {
		t.Fatal(herr)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	cm := find(t, objs, "ConfigMap", "test-gatehouse-dashboard")
	got, _, _ := unstructured.NestedString(cm.Object, "data", "gatehouse.json")
	if got != strings.TrimRight(string(data), "\n") {
		t.Fatalf("dashboard ConfigMap does not hold files/dashboard.json")
	}
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Fatalf("dashboard ConfigMap labels %v lack grafana_dashboard=1", cm.GetLabels())
	}
}

// args returns the arguments of the named container of a Deployment.
func args(t testing.TB, dep *unstructured.Unstructured, container string) []string {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	for _, c := range cs {
		m := c.(map[string]any)
		if m["name"] != container {
			continue
		}
		var out []string
		for _, a := range m["args"].([]any) {
			out = append(out, a.(string))
		}
		return out
	}
	t.Fatalf("Deployment %s has no container %q", dep.GetName(), container)
	return nil
}

func wantArgs(t testing.TB, have []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(have, w) {
			t.Errorf("args %v lack %s", have, w)
		}
	}
}

func refuseArgs(t testing.TB, have []string, prefixes ...string) {
	t.Helper()
	for _, a := range have {
		for _, p := range prefixes {
			if strings.HasPrefix(a, p) {
				t.Errorf("args %v have %s", have, a)
			}
		}
	}
}
