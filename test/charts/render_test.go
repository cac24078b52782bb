package charts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/operator/hub"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// TestBundledCRDs: the charts carry exactly the Gateway API standard CRDs
// of the version go.mod pins (`make generate` copies them), and Chart.yaml
// says which version that is.
func TestBundledCRDs(t *testing.T) {
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", "sigs.k8s.io/gateway-api")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("locating sigs.k8s.io/gateway-api: %v", err)
	}
	dir, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	upstream := filepath.Join(dir, "config", "crd", "standard")
	want, err := filepath.Glob(filepath.Join(upstream, "*.yaml"))
	if err != nil || len(want) == 0 {
		t.Fatalf("no CRDs in %s: %v", upstream, err)
	}
	for _, chart := range []string{hubChart, memberChart} {
		t.Run(chart, func(t *testing.T) {
			bundled := filepath.Join(chartDir(t, chart), "files", "gateway-api")
			have, _ := filepath.Glob(filepath.Join(bundled, "*.yaml"))
			if len(have) != len(want) {
				t.Fatalf("%s has %d files, %s has %d: run 'make generate'", bundled, len(have), upstream, len(want))
			}
			for _, w := range want {
				a, _ := os.ReadFile(w)
				b, err := os.ReadFile(filepath.Join(bundled, filepath.Base(w)))
				if err != nil || !bytes.Equal(a, b) {
					t.Errorf("%s differs from %s %s: run 'make generate'", filepath.Base(w), "sigs.k8s.io/gateway-api", version)
				}
			}
			var meta struct {
				Annotations map[string]string `json:"annotations"`
			}
			data, _ := os.ReadFile(filepath.Join(chartDir(t, chart), "Chart.yaml"))
			if err := yaml.Unmarshal(data, &meta); err != nil {
				t.Fatal(err)
			}
			if got := meta.Annotations["gateway-api.sigs.k8s.io/bundle-version"]; got != version {
				t.Errorf("Chart.yaml says Gateway API %s, go.mod pins %s", got, version)
			}
		})
	}
}

// TestGatewayAPITemplateShared: both charts decide about the Gateway API
// CRDs with the same template, so that the two never disagree.
func TestGatewayAPITemplateShared(t *testing.T) {
	a, err := os.ReadFile(filepath.Join(chartDir(t, hubChart), "templates", "_gatewayapi.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(chartDir(t, memberChart), "templates", "_gatewayapi.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("charts/%s/templates/_gatewayapi.tpl and charts/%s/templates/_gatewayapi.tpl differ: edit one, copy it to the other", hubChart, memberChart)
	}
}

// TestCRDsRenderForUpgrade: every CRD is a template (so `helm upgrade`
// applies it), kept on uninstall, and unchanged from its file.
func TestCRDsRenderForUpgrade(t *testing.T) {
	for _, r := range renderings() {
		if !strings.HasSuffix(r.name, "defaults") {
			continue
		}
		t.Run(r.chart, func(t *testing.T) {
			objs := r.render(t)
			dirs := []string{"gateway-api"}
			if r.chart == hubChart {
				dirs = append(dirs, "crds")
			}
			files := map[string]map[string]any{}
			for _, d := range dirs {
				paths, _ := filepath.Glob(filepath.Join(chartDir(t, r.chart), "files", d, "*.yaml"))
				for _, p := range paths {
					data, _ := os.ReadFile(p)
					docs, err := decode(string(data))
					if err != nil {
						t.Fatal(err)
					}
					for _, o := range docs {
						if o.GetKind() == "CustomResourceDefinition" {
							files[o.GetName()] = o.Object["spec"].(map[string]any)
						}
					}
				}
			}
			crds := ofKind(objs, "CustomResourceDefinition")
			if len(crds) != len(files) {
				t.Fatalf("rendered %d CRDs, the chart's files hold %d", len(crds), len(files))
			}
			for _, crd := range crds {
				if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
					t.Errorf("CRD %s lacks helm.sh/resource-policy: keep", crd.GetName())
				}
				spec, ok := files[crd.GetName()]
				if !ok {
					t.Errorf("CRD %s is in no file of the chart", crd.GetName())
					continue
				}
				a, _ := yaml.Marshal(spec)
				b, _ := yaml.Marshal(crd.Object["spec"])
				if !bytes.Equal(a, b) {
					t.Errorf("CRD %s: the rendered spec differs from its file", crd.GetName())
				}
			}
			safeUpgrades, guards := 0, 0
			for _, p := range append(ofKind(objs, "ValidatingAdmissionPolicy"), ofKind(objs, "ValidatingAdmissionPolicyBinding")...) {
				switch {
				case strings.HasPrefix(p.GetName(), "safe-upgrades."):
					safeUpgrades++
				case strings.HasPrefix(p.GetName(), "gatehouse-gateway-api-crds."):
					guards++
				}
				// They act on the whole cluster: they must go with the release.
				if p.GetAnnotations()["helm.sh/resource-policy"] == "keep" {
					t.Errorf("%s %s is kept on helm uninstall", p.GetKind(), p.GetName())
				}
			}
			if safeUpgrades != 0 || guards != 2 {
				t.Errorf("rendered %d safe-upgrades and %d downgrade guard objects, want none and a policy and a binding", safeUpgrades, guards)
			}
		})
	}
	t.Run("skip", func(t *testing.T) {
		r := rendering{name: "member without Gateway API CRDs", chart: memberChart, namespace: memberNamespace,
			args: []string{"--set", "crds.gatewayAPI=skip"}}
		objs := r.render(t)
		if n := len(ofKind(objs, "CustomResourceDefinition")); n != 0 {
			t.Errorf("crds.gatewayAPI=skip rendered %d CRDs", n)
		}
		for _, p := range ofKind(objs, "ValidatingAdmissionPolicy") {
			if strings.Contains(p.GetName(), "gateway") {
				t.Errorf("crds.gatewayAPI=skip rendered the policy %s", p.GetName())
			}
		}
	})
	t.Run("with the safe-upgrades policy", func(t *testing.T) {
		r := rendering{name: "hub with safe-upgrades", chart: hubChart, namespace: hubNamespace,
			args: []string{"--set", "crds.safeUpgradesPolicy=true"}}
		objs := r.render(t)
		for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
			if o := find(t, objs, kind, "safe-upgrades.gateway.networking.k8s.io"); o.GetAnnotations()["helm.sh/resource-policy"] == "keep" {
				t.Errorf("%s %s is kept on helm uninstall", kind, o.GetName())
			}
		}
		find(t, objs, "ValidatingAdmissionPolicy", "gatehouse-gateway-api-crds."+hubNamespace+".test")
	})
	t.Run("off", func(t *testing.T) {
		r := rendering{name: "hub without CRDs", chart: hubChart, namespace: hubNamespace,
			args: []string{"--set", "crds.install=false", "--set", "crds.gatewayAPI=false"}}
		if n := len(ofKind(r.render(t), "CustomResourceDefinition")); n != 0 {
			t.Fatalf("crds.install=false, crds.gatewayAPI=false rendered %d CRDs", n)
		}
	})
}

func TestHubChartRenders(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		objs := renderings()[0].render(t)
		dep := find(t, objs, "Deployment", "test-gatehouse")
		a := args(t, dep, "hub")
		wantArgs(t, a, "--namespace="+hubNamespace, "--leader-elect=true", "--health-address=:8081", "--metrics-address=:8080",
			"--webhook-address=:9443", "--xds-address=:18000", "--certificates=true",
			"--xds-hosts=test-gatehouse-push,test-gatehouse-push."+hubNamespace+",test-gatehouse-push."+hubNamespace+".svc")
		refuseArgs(t, a, "--proxy-image", "--webhook-cert-dir", "--webhook-url", "--proxy-auth")
		for _, kind := range []string{"PodDisruptionBudget", "ServiceMonitor", "Certificate", "Issuer", "ConfigMap"} {
			if n := len(ofKind(objs, kind)); n != 0 {
				t.Errorf("defaults render %d %s", n, kind)
			}
		}
		pod, _, _ := unstructured.NestedMap(dep.Object, "spec", "template", "spec")
		if pod["securityContext"].(map[string]any)["runAsNonRoot"] != true {
			t.Errorf("pod does not run as non-root: %v", pod["securityContext"])
		}
		c := pod["containers"].([]any)[0].(map[string]any)
		if c["securityContext"].(map[string]any)["readOnlyRootFilesystem"] != true {
			t.Errorf("root filesystem is writable: %v", c["securityContext"])
		}
		probe, _, _ := unstructured.NestedString(c, "readinessProbe", "httpGet", "path")
		if probe != "/readyz" {
			t.Errorf("readiness probe path %q", probe)
		}
		svc := find(t, objs, "Service", "test-gatehouse-webhook")
		port := svc.Object["spec"].(map[string]any)["ports"].([]any)[0].(map[string]any)
		if port["port"] != int64(443) || port["targetPort"] != "webhook" {
			t.Errorf("webhook Service port %v, want 443 to the webhook port", port)
		}
		cr := find(t, objs, "ClusterRole", "test-gatehouse")
		if !grants(cr, "tenancy.gatehouse.dev", "tenants/status", "update") || !grants(cr, "cert-manager.io", "certificates", "create") {
			t.Errorf("hub ClusterRole lacks Tenant status or Certificate rights: %v", cr.Object["rules"])
		}
		role := find(t, objs, "Role", "test-gatehouse")
		if !grants(role, "", "secrets", "list") || !grants(role, "coordination.k8s.io", "leases", "update") {
			t.Errorf("hub Role lacks Secrets or Leases: %v", role.Object["rules"])
		}
	})

	t.Run("all", func(t *testing.T) {
		objs := renderings()[1].render(t)
		dep := find(t, objs, "Deployment", "test-gatehouse")
		a := args(t, dep, "hub")
		wantArgs(t, a, "--leader-elect=true", "--proxy-image=registry.example.test/example/gatehouse-proxy:test", "--proxy-xds-address=hub.example.test:18000",
			"--webhook-url=https://hub.example.test:9443", "--webhook-failure-policy=Fail", "--webhook-hosts=webhook.example.test,192.0.2.10",
			"--unassigned-namespaces=deny", "--debounce=100ms")
		find(t, objs, "PodDisruptionBudget", "test-gatehouse")
		if svc := find(t, objs, "Service", "test-gatehouse-push"); svc.Object["spec"].(map[string]any)["type"] != "LoadBalancer" {
			t.Errorf("push Service type %v", svc.Object["spec"].(map[string]any)["type"])
		}

		// The serving certificate: its Secret is mounted where --webhook-cert-dir points.
		cert := find(t, objs, "Certificate", "test-gatehouse-webhook")
		secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
		dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		ips, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "ipAddresses")
		for _, n := range []string{"test-gatehouse-webhook." + hubNamespace + ".svc", "webhook.example.test", "hub.example.test"} {
			if !slices.Contains(dns, n) {
				t.Errorf("serving certificate dnsNames %v lack %s", dns, n)
			}
		}
		if !slices.Equal(ips, []string{"192.0.2.10"}) {
			t.Errorf("serving certificate ipAddresses %v", ips)
		}
		var certDir string
		for _, x := range a {
			if v, ok := strings.CutPrefix(x, "--webhook-cert-dir="); ok {
				certDir = v
			}
		}
		if mountedSecret(dep, certDir) != secret {
			t.Errorf("--webhook-cert-dir=%s does not hold Secret %s", certDir, secret)
		}
		issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
		find(t, objs, "Issuer", issuer)

		// The ServiceMonitor scrapes the metrics Service, and only it.
		sm := find(t, objs, "ServiceMonitor", "test-gatehouse")
		sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		var selected []string
		for _, svc := range ofKind(objs, "Service") {
			if matches(sel, svc.GetLabels()) {
				selected = append(selected, svc.GetName())
			}
		}
		if !slices.Equal(selected, []string{"test-gatehouse-metrics"}) {
			t.Errorf("ServiceMonitor selects Services %v, want the metrics Service", selected)
		}
		if find(t, objs, "ClusterRole", "test-gatehouse-application-developer").GetLabels()["rbac.authorization.k8s.io/aggregate-to-edit"] != "true" {
			t.Errorf("application developer role is not aggregated to edit")
		}
	})
}

func TestMemberChartRenders(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		objs := renderings()[2].render(t)
		sa := find(t, objs, "ServiceAccount", "gatehouse-hub")
		if sa.GetNamespace() != memberNamespace {
			t.Errorf("hub ServiceAccount in namespace %q", sa.GetNamespace())
		}
		gc := find(t, objs, "GatewayClass", "gatehouse")
		if got, _, _ := unstructured.NestedString(gc.Object, "spec", "controllerName"); got != string(translate.ControllerName) {
			t.Errorf("GatewayClass controllerName %q, the hub serves %q", got, translate.ControllerName)
		}
		ref, _, _ := unstructured.NestedStringMap(gc.Object, "spec", "parametersRef")
		cm := find(t, objs, "ConfigMap", ref["name"])
		if ref["kind"] != "ConfigMap" || ref["group"] != "" || ref["namespace"] != cm.GetNamespace() {
			t.Errorf("parametersRef %v does not name ConfigMap %s/%s", ref, cm.GetNamespace(), cm.GetName())
		}
		if mode, _, _ := unstructured.NestedString(cm.Object, "data", "mode"); mode != translate.ModeManaged {
			t.Errorf("class mode %q", mode)
		}

		cr := find(t, objs, "ClusterRole", "test-gatehouse-member-hub")
		for _, g := range []struct{ group, resource, verb string }{
			{"gateway.networking.k8s.io", "httproutes", "watch"},
			{"gateway.networking.k8s.io", "httproutes/status", "update"},
			{"gateway.networking.k8s.io", "gatewayclasses/status", "update"},
			{"gateway.networking.k8s.io", "listenersets/status", "update"},
			{"discovery.k8s.io", "endpointslices", "list"},
			{"", "secrets", "watch"},
			{"", "configmaps", "list"},
			{"", "events", "create"},
			{"authentication.k8s.io", "tokenreviews", "create"},
			{"apps", "deployments", "create"},
			{"", "serviceaccounts", "patch"},
		} {
			if !grants(cr, g.group, g.resource, g.verb) {
				t.Errorf("the hub's ClusterRole does not grant %s %s/%s", g.verb, g.group, g.resource)
			}
		}
		if !grantsNamed(cr, "admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch", hub.WebhookConfigurationName) {
			t.Errorf("the hub may not patch ValidatingWebhookConfiguration %s", hub.WebhookConfigurationName)
		}
		crb := find(t, objs, "ClusterRoleBinding", "test-gatehouse-member-hub")
		subj := crb.Object["subjects"].([]any)[0].(map[string]any)
		if subj["name"] != "gatehouse-hub" || subj["namespace"] != memberNamespace {
			t.Errorf("ClusterRoleBinding subject %v", subj)
		}
	})

	t.Run("first install", func(t *testing.T) {
		// Without the GatewayClass API (the install that creates the
		// CRDs), Helm could not create the class: it waits for the next upgrade.
		r := rendering{name: "member first install", chart: memberChart, namespace: memberNamespace}
		objs := r.render(t)
		if n := len(ofKind(objs, "GatewayClass")); n != 0 {
			t.Errorf("rendered %d GatewayClasses without the GatewayClass API", n)
		}
		find(t, objs, "ConfigMap", "gatehouse-parameters")
	})

	t.Run("all", func(t *testing.T) {
		objs := renderings()[3].render(t)
		cm := find(t, objs, "ConfigMap", "shared-external-parameters")
		data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
		want := map[string]string{"mode": translate.ModeExternal, "addresses": "192.0.2.1,proxy.example.test", "clusterIssuer": "ca",
			"adminPort": strconv.Itoa(int(translate.DefaultAdminPort))}
		if !equalMaps(data, want) {
			t.Errorf("class parameters %v, want %v", data, want)
		}
		tok := find(t, objs, "Secret", "hub-identity-token")
		if tok.Object["type"] != "kubernetes.io/service-account-token" || tok.GetAnnotations()["kubernetes.io/service-account.name"] != "hub-identity" {
			t.Errorf("token Secret %v", tok.Object)
		}
		for _, gw := range []struct{ namespace, name string }{{"infra", "shared"}, {"team-a", "internal"}} {
			name := hub.ProxyServiceAccount(gw.name)
			sa := find(t, objs, "ServiceAccount", name)
			dep := find(t, objs, "Deployment", name)
			if sa.GetNamespace() != gw.namespace || dep.GetNamespace() != gw.namespace {
				t.Errorf("proxies of %s/%s in namespaces %q and %q", gw.namespace, gw.name, sa.GetNamespace(), dep.GetNamespace())
			}
			if got, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName"); got != name {
				t.Errorf("proxies of %s/%s run as %q, the hub accepts %q", gw.namespace, gw.name, got, name)
			}
			wantArgs(t, args(t, dep, "proxy"), "--cluster=member-1", "--gateway="+gw.namespace+"/"+gw.name,
				"--xds-address=hub.example.test:18000", "--token-file=/var/run/secrets/gatehouse/token", "--xds-ca-file=/var/run/secrets/gatehouse/ca.crt")
			checkHubCredentials(t, objs, dep, name)
			svc := find(t, objs, "Service", name)
			sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
			labels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
			if !matches(sel, labels) {
				t.Errorf("Service %s selects %v, the proxies are %v", name, sel, labels)
			}
		}
		find(t, objs, "PodDisruptionBudget", hub.ProxyServiceAccount("shared"))
		// A UDP listener's port is a UDP port of the Service and the
		// proxies, beside the TCP port of the same number.
		shared := hub.ProxyServiceAccount("shared")
		svcPorts, _, _ := unstructured.NestedSlice(find(t, objs, "Service", shared).Object, "spec", "ports")
		containers, _, _ := unstructured.NestedSlice(find(t, objs, "Deployment", shared).Object, "spec", "template", "spec", "containers")
		for what, ports := range map[string][]any{"Service": svcPorts, "container": containers[0].(map[string]any)["ports"].([]any)} {
			protocols := map[string]any{}
			for _, p := range ports {
				p := p.(map[string]any)
				protocols[p["name"].(string)] = p["protocol"]
			}
			if protocols["dns"] != "TCP" || protocols["dns-udp"] != "UDP" {
				t.Errorf("%s ports of %s: protocols %v, want dns TCP and dns-udp UDP", what, shared, protocols)
			}
		}
		wantArgs(t, args(t, find(t, objs, "Deployment", hub.ProxyServiceAccount("shared")), "proxy"), "--advertise-address=192.0.2.1", "--access-log")
	})
}

// checkHubCredentials: the proxies present a projected token for the hub's
// audience, not the API server's token, and verify the hub with the CA
// bundle the values gave.
func checkHubCredentials(t *testing.T, objs []*unstructured.Unstructured, dep *unstructured.Unstructured, name string) {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(dep.Object, "spec", "template", "spec")
	if spec["automountServiceAccountToken"] != false {
		t.Errorf("%s mounts the API server's token", name)
	}
	var audience, caMap string
	for _, v := range spec["volumes"].([]any) {
		sources, _, _ := unstructured.NestedSlice(v.(map[string]any), "projected", "sources")
		for _, s := range sources {
			if a, ok, _ := unstructured.NestedString(s.(map[string]any), "serviceAccountToken", "audience"); ok {
				audience = a
			}
			if n, ok, _ := unstructured.NestedString(s.(map[string]any), "configMap", "name"); ok {
				caMap = n
			}
		}
	}
	if audience != hub.ProxyTokenAudience {
		t.Errorf("%s's projected token is for audience %q, the hub accepts %q", name, audience, hub.ProxyTokenAudience)
	}
	cm := find(t, objs, "ConfigMap", caMap)
	if ca, _, _ := unstructured.NestedString(cm.Object, "data", "ca.crt"); !strings.Contains(ca, "BEGIN CERTIFICATE") {
		t.Errorf("%s's CA bundle ConfigMap %s holds %q", name, caMap, ca)
	}
}

func mountedSecret(dep *unstructured.Unstructured, path string) string {
	spec, _, _ := unstructured.NestedMap(dep.Object, "spec", "template", "spec")
	var volume string
	for _, m := range spec["containers"].([]any)[0].(map[string]any)["volumeMounts"].([]any) {
		if m.(map[string]any)["mountPath"] == path {
			volume, _ = m.(map[string]any)["name"].(string)
		}
	}
	for _, v := range spec["volumes"].([]any) {
		if v.(map[string]any)["name"] == volume {
			name, _, _ := unstructured.NestedString(v.(map[string]any), "secret", "secretName")
			return name
		}
	}
	return ""
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// grants says whether a rendered Role or ClusterRole allows verb on
// group/resource for any name.
func grants(role *unstructured.Unstructured, group, resource, verb string) bool {
	return grantsNamed(role, group, resource, verb, "")
}

func grantsNamed(role *unstructured.Unstructured, group, resource, verb, name string) bool {
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		m := r.(map[string]any)
		names := stringList(m["resourceNames"])
		if contains(stringList(m["apiGroups"]), group) && contains(stringList(m["resources"]), resource) && contains(stringList(m["verbs"]), verb) &&
			(len(names) == 0 || (name != "" && slices.Contains(names, name))) {
			return true
		}
	}
	return false
}

func stringList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func contains(l []string, s string) bool {
	return slices.Contains(l, s) || slices.Contains(l, "*")
}
