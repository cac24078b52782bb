package charts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/operator/hub"
)

// TestChartImages: both charts name the project's own images on ghcr.io
// (what `make images` builds), tagged with the chart's appVersion;
// global.imageRegistry moves every image to another registry and a digest
// pins one. The images' base names stay gatehouse and gatehouse-proxy,
// which is what the fake kubelet of test/conformance maps to binaries.
func TestChartImages(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hubApp, memberApp := appVersion(t, hubChart), appVersion(t, memberChart)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\ndGVzdA==\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	managed := []string{"--set", "managedProxies.enabled=true", "--set", "push.externalAddress=hub.example.test:18000"}
	fleet := []string{"--api-versions", gatewayClassAPI, "--set", "gatewayClass.parameters.mode=external", "--set", "proxyFleet.enabled=true",
		"--set", "proxyFleet.hubAddress=hub.example.test:18000", "--set", "proxyFleet.cluster=member-1", "--set-file", "proxyFleet.hubCABundle=" + ca,
		"--set", "proxyFleet.gateways[0].namespace=infra", "--set", "proxyFleet.gateways[0].name=shared",
		"--set", "proxyFleet.gateways[0].ports[0].name=http", "--set", "proxyFleet.gateways[0].ports[0].port=80"}
	for _, c := range []struct {
		name            string
		r               rendering
		hubImage, proxy string
		fleetProxyImage string
	}{{
		name:     "hub defaults",
		r:        rendering{chart: hubChart, namespace: hubNamespace, args: managed},
		hubImage: "ghcr.io/gatehouse-dev/gatehouse:" + hubApp,
		proxy:    "ghcr.io/gatehouse-dev/gatehouse-proxy:" + hubApp,
	}, {
		name: "hub from a mirror, pinned",
		r: rendering{chart: hubChart, namespace: hubNamespace, args: append([]string{"--set", "global.imageRegistry=mirror.example.test/gatehouse",
			"--set", "image.tag=v9.9.9", "--set", "image.digest=" + digest, "--set", "managedProxies.image.digest=" + digest}, managed...)},
		hubImage: "mirror.example.test/gatehouse/gatehouse-dev/gatehouse:v9.9.9@" + digest,
		proxy:    "mirror.example.test/gatehouse/gatehouse-dev/gatehouse-proxy:" + hubApp + "@" + digest,
	}, {
		name:            "member defaults",
		r:               rendering{chart: memberChart, namespace: memberNamespace, args: fleet},
		fleetProxyImage: "ghcr.io/gatehouse-dev/gatehouse-proxy:" + memberApp,
	}, {
		name: "member from another registry",
		r: rendering{chart: memberChart, namespace: memberNamespace, args: append([]string{"--set", "global.imageRegistry=mirror.example.test",
			"--set", "proxyFleet.image.registry=ignored.example.test", "--set", "proxyFleet.image.digest=" + digest}, fleet...)},
		fleetProxyImage: "mirror.example.test/gatehouse-dev/gatehouse-proxy:" + memberApp + "@" + digest,
	}} {
		t.Run(c.name, func(t *testing.T) {
			objs := c.r.render(t)
			if c.hubImage != "" {
				dep := find(t, objs, "Deployment", "test-gatehouse")
				if got := imageOf(t, dep, "hub"); got != c.hubImage {
					t.Errorf("hub image %q, want %q", got, c.hubImage)
				}
				wantArgs(t, args(t, dep, "hub"), "--proxy-image="+c.proxy)
			}
			if c.fleetProxyImage != "" {
				dep := find(t, objs, "Deployment", hub.ProxyServiceAccount("shared"))
				if got := imageOf(t, dep, "proxy"); got != c.fleetProxyImage {
					t.Errorf("proxy image %q, want %q", got, c.fleetProxyImage)
				}
			}
		})
	}

	t.Run("a registry in the repository is refused", func(t *testing.T) {
		_, err := runHelm(t, "template", "test", chartDir(t, hubChart), "--set", "image.repository=registry.example.test/team/gatehouse")
		if err == nil || !strings.Contains(err.Error(), `set image.registry (or global.imageRegistry) to "registry.example.test" and image.repository to "team/gatehouse"`) {
			t.Errorf("helm template: %v; want a refusal that says where the registry goes", err)
		}
	})
}

func appVersion(t *testing.T, chart string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t, chart), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil || c.AppVersion == "" {
		t.Fatalf("%s/Chart.yaml: appVersion %q (%v)", chart, c.AppVersion, err)
	}
	return c.AppVersion
}

func imageOf(t *testing.T, dep *unstructured.Unstructured, container string) string {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	for _, c := range cs {
		if m := c.(map[string]any); m["name"] == container {
			image, _ := m["image"].(string)
			return image
		}
	}
	t.Fatalf("Deployment %s has no container %q", dep.GetName(), container)
	return ""
}
