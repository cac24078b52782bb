package charts_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestHubLifecycleRenders: with leader election (the default) an update
// rolls a Ready standby in before an old replica goes, the Services that
// carry traffic select the elected hub's role label, and evictions take one
// replica at a time; without it one replica at most is replaced by
// Recreate, so that two active hubs never run side by side.
func TestHubLifecycleRenders(t *testing.T) {
	hub := func(args ...string) rendering {
		return rendering{name: "hub " + strings.Join(args, " "), chart: hubChart, namespace: hubNamespace, args: args}
	}
	t.Run("defaults", func(t *testing.T) {
		objs := hub().render(t)
		dep := find(t, objs, "Deployment", "test-gatehouse")
		wantArgs(t, args(t, dep, "hub"), "--leader-elect=true", "--leader-elect-lease-duration=15s", "--leader-elect-renew-deadline=10s",
			"--leader-elect-retry-period=1s", "--pod-name=$(POD_NAME)")
		strategy, _, _ := unstructured.NestedMap(dep.Object, "spec", "strategy")
		rolling, _ := strategy["rollingUpdate"].(map[string]any)
		if strategy["type"] != "RollingUpdate" || rolling["maxSurge"] != int64(1) || rolling["maxUnavailable"] != int64(0) {
			t.Errorf("strategy %v, want RollingUpdate with maxSurge 1 and maxUnavailable 0", strategy)
		}
		if !podNameFromDownwardAPI(dep) {
			t.Errorf("the hub container has no POD_NAME from metadata.name")
		}
		for _, name := range []string{"test-gatehouse-push", "test-gatehouse-webhook"} {
			if sel := serviceSelector(find(t, objs, "Service", name)); sel["gatehouse.dev/role"] != "active" {
				t.Errorf("Service %s selects %v: standbys would get its traffic", name, sel)
			}
		}
		if sel := serviceSelector(find(t, objs, "Service", "test-gatehouse-metrics")); sel["gatehouse.dev/role"] != nil {
			t.Errorf("the metrics Service selects %v: standbys would not be scraped", sel)
		}
		if role := find(t, objs, "Role", "test-gatehouse"); !grants(role, "", "pods", "patch") || !grants(role, "", "pods", "list") {
			t.Errorf("hub Role cannot label its Pod: %v", role.Object["rules"])
		}
		if n := len(ofKind(objs, "PodDisruptionBudget")); n != 0 {
			t.Errorf("one replica renders %d PodDisruptionBudgets: a drain would wait on it", n)
		}
	})
	t.Run("two replicas", func(t *testing.T) {
		pdb := find(t, hub("--set", "replicas=2").render(t), "PodDisruptionBudget", "test-gatehouse")
		spec, _, _ := unstructured.NestedMap(pdb.Object, "spec")
		if spec["maxUnavailable"] != int64(1) || spec["minAvailable"] != nil {
			t.Errorf("PodDisruptionBudget spec %v, want maxUnavailable 1", spec)
		}
	})
	t.Run("minAvailable instead", func(t *testing.T) {
		pdb := find(t, hub("--set", "replicas=3", "--set", "podDisruptionBudget.minAvailable=2").render(t), "PodDisruptionBudget", "test-gatehouse")
		spec, _, _ := unstructured.NestedMap(pdb.Object, "spec")
		if spec["minAvailable"] != int64(2) || spec["maxUnavailable"] != nil {
			t.Errorf("PodDisruptionBudget spec %v, want minAvailable 2 alone", spec)
		}
	})
	t.Run("without leader election", func(t *testing.T) {
		dep := find(t, hub("--set", "leaderElection.enabled=false").render(t), "Deployment", "test-gatehouse")
		if typ, _, _ := unstructured.NestedString(dep.Object, "spec", "strategy", "type"); typ != "Recreate" {
			t.Errorf("strategy %q without leader election, want Recreate", typ)
		}
		a := args(t, dep, "hub")
		wantArgs(t, a, "--leader-elect=false")
		refuseArgs(t, a, "--leader-elect-lease-duration")
	})
	for _, c := range []struct {
		name string
		set  []string
		want string
	}{
		{"two replicas without leader election", []string{"replicas=2", "leaderElection.enabled=false"}, "set leaderElection.enabled=true, or replicas: 1"},
		{"a budget that allows no eviction", []string{"replicas=2", "podDisruptionBudget.minAvailable=2"}, "allows no eviction, so every node drain would block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"template", "test", chartDir(t, hubChart), "--namespace", hubNamespace}
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			out, err := runHelm(t, args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("helm template --set %v: got %v, want a failure saying %q\n%s", c.set, err, c.want, out)
			}
		})
	}
}

func serviceSelector(svc *unstructured.Unstructured) map[string]any {
	sel, _, _ := unstructured.NestedMap(svc.Object, "spec", "selector")
	return sel
}

func podNameFromDownwardAPI(dep *unstructured.Unstructured) bool {
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	for _, c := range cs {
		env, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
		for _, e := range env {
			path, _, _ := unstructured.NestedString(e.(map[string]any), "valueFrom", "fieldRef", "fieldPath")
			if e.(map[string]any)["name"] == "POD_NAME" && path == "metadata.name" {
				return true
			}
		}
	}
	return false
}
