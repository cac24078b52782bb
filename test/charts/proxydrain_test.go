package charts_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// renderFleet renders the member chart's proxy fleet (every optional part
// on) with sets, and returns the Deployment of Gateway infra/shared.
func renderFleet(t *testing.T, set ...string) (*unstructured.Unstructured, error) {
	t.Helper()
	args := []string{"template", "test", chartDir(t, memberChart), "--namespace", memberNamespace,
		"--values", testdata(t, "gatehouse-member-all.yaml"), "--api-versions", gatewayClassAPI,
		"--show-only", "templates/proxy-fleet.yaml"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := runHelm(t, args...)
	if err != nil {
		return nil, err
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	return find(t, objs, "Deployment", "gatehouse-proxy-shared"), nil
}

// The proxy pods drain: a preStop sleep while endpoints drop them, the
// drain flags, readiness and liveness on the named admin port, and a grace
// period that covers it all.
func TestProxyFleetDrains(t *testing.T) {
	for _, c := range []struct {
		name      string
		set       []string
		preStop   int64 // 0: no hook
		grace     int64
		delay     string
		timeout   string
		drainSecs int64
	}{
		{name: "defaults", preStop: 5, grace: 60, delay: "5s", timeout: "45s", drainSecs: 55},
		{name: "longer drain", set: []string{"proxyFleet.drainDelay=1500ms", "proxyFleet.drainTimeout=1m30s", "proxyFleet.terminationGracePeriodSeconds=97"},
			preStop: 5, grace: 97, delay: "1500ms", timeout: "1m30s", drainSecs: 97},
		{name: "no preStop hook", set: []string{"proxyFleet.preStopSleepSeconds=0"}, grace: 60, delay: "5s", timeout: "45s", drainSecs: 50},
		// The values of a release of an older chart (helm upgrade
		// --reuse-values) lack the new settings.
		{name: "values of an older release", set: []string{"proxyFleet.preStopSleepSeconds=null", "proxyFleet.drainDelay=null"},
			preStop: 5, grace: 60, delay: "5s", timeout: "45s", drainSecs: 55},
	} {
		t.Run(c.name, func(t *testing.T) {
			dep, err := renderFleet(t, c.set...)
			if err != nil {
				t.Fatal(err)
			}
			wantArgs(t, args(t, dep, "proxy"), "--drain-delay="+c.delay, "--drain-timeout="+c.timeout)
			grace, _, _ := unstructured.NestedInt64(dep.Object, "spec", "template", "spec", "terminationGracePeriodSeconds")
			if grace != c.grace || grace < c.drainSecs {
				t.Errorf("terminationGracePeriodSeconds %d; want %d, covering the %d seconds of the drain", grace, c.grace, c.drainSecs)
			}
			proxy := container(t, dep, "proxy")
			sleep, found, _ := unstructured.NestedInt64(proxy, "lifecycle", "preStop", "sleep", "seconds")
			if sleep != c.preStop || found != (c.preStop > 0) {
				t.Errorf("preStop sleep %d (hook there: %v); want %d", sleep, found, c.preStop)
			}
			if _, found, _ := unstructured.NestedMap(proxy, "lifecycle"); found && c.preStop == 0 {
				t.Errorf("lifecycle %v; want none without a preStop sleep", proxy["lifecycle"])
			}
			for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
				p, _, _ := unstructured.NestedString(proxy, probe, "httpGet", "path")
				port, _, _ := unstructured.NestedString(proxy, probe, "httpGet", "port")
				if p != path || port != "admin" {
					t.Errorf("%s on %s port %q; want %s on the port named admin", probe, p, port, path)
				}
			}
		})
	}
}

// A grace period shorter than the drain is refused with the sum and the
// fix, before the kubelet would kill requests in flight.
func TestProxyFleetGraceCoversTheDrain(t *testing.T) {
	for _, c := range []struct {
		name string
		set  []string
		want string
	}{
		{"the old default grace", []string{"proxyFleet.terminationGracePeriodSeconds=45"}, "preStopSleepSeconds 5 + drainDelay 5s + drainTimeout 45s = 55 seconds"},
		{"a longer timeout", []string{"proxyFleet.drainTimeout=1m30s"}, "raise it to at least 100"},
		{"fractions round up", []string{"proxyFleet.drainDelay=1500ms", "proxyFleet.terminationGracePeriodSeconds=51"}, "raise it to at least 52"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := renderFleet(t, c.set...)
			if err == nil || !strings.Contains(err.Error(), "proxyFleet.terminationGracePeriodSeconds") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("helm template --set %v: %v; want a failure naming proxyFleet.terminationGracePeriodSeconds and %q", c.set, err, c.want)
			}
		})
	}
}

// container is the named container of a Deployment's pod template.
func container(t *testing.T, dep *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	for _, c := range cs {
		if m := c.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("Deployment %s has no container %q", dep.GetName(), name)
	return nil
}
