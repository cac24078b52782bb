package charts_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// operatorTargetLabels: a Prometheus Operator adds these to every target of
// a ServiceMonitor, besides job and instance; the PrometheusRule scopes
// its selectors by namespace.
var operatorTargetLabels = map[string]bool{"job": true, "instance": true, "namespace": true, "service": true, "pod": true, "container": true, "endpoint": true}

// wantAlerts are the alerts the chart's PrometheusRule must have: the
// failures an operator has to hear of (docs/operators.md says what each
// means and what to do).
var wantAlerts = []string{"GatehouseHubAbsent", "GatehouseMemberUnreachable", "GatehouseMemberNotSyncing", "GatehouseMemberTokenExpiring",
	"GatehouseGatewayWithoutProxies", "GatehouseGatewayRejectingTables", "GatehousePropagationSlow", "GatehouseAckLagHigh"}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// TestPrometheusRule renders the hub chart's PrometheusRule and checks
// every alert: the expression parses, every series it reads is one the
// hub or the proxy exports (histograms through _bucket/_sum/_count, with
// the labels the metrics have), it has a severity, a summary and a
// description, and docs/operators.md explains it.
func TestPrometheusRule(t *testing.T) {
	inv := exportedMetrics(t)
	r := rendering{name: "hub with alerts", chart: hubChart, namespace: hubNamespace,
		args: []string{"--set", "prometheusRule.enabled=true", "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"}}
	rule := find(t, r.render(t), "PrometheusRule", "test-gatehouse")
	var spec struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	convertJSON(t, rule.Object["spec"], &spec)
	guide, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "operators.md"))
	if err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	for _, g := range spec.Groups {
		for _, a := range g.Rules {
			if a.Alert == "" || seen[a.Alert] {
				t.Errorf("group %s: alert name %q empty or repeated", g.Name, a.Alert)
			}
			seen[a.Alert] = true
			info, err := parsePromQL(a.Expr)
			if err != nil {
				t.Errorf("%s: %v\n\t%s", a.Alert, err, a.Expr)
				continue
			}
			for _, msg := range inv.checkWithTargetLabels(info, false, operatorTargetLabels) {
				t.Errorf("%s: %s\n\t%s", a.Alert, msg, a.Expr)
			}
			for _, s := range info.selectors {
				if !slices.ContainsFunc(s.matchers, func(m matcher) bool { return m.label == "namespace" && m.value == hubNamespace }) {
					t.Errorf("%s: %s is not scoped to the release's namespace: another hub's series would count", a.Alert, s.name)
				}
			}
			if a.For != "" {
				if _, err := time.ParseDuration(a.For); err != nil {
					t.Errorf("%s: for %q: %v", a.Alert, a.For, err)
				}
			}
			if sev := a.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", a.Alert, sev)
			}
			if strings.TrimSpace(a.Annotations["summary"]) == "" || strings.TrimSpace(a.Annotations["description"]) == "" {
				t.Errorf("%s: a summary and a description are what the person paged reads first", a.Alert)
			}
			if !strings.Contains(string(guide), a.Alert) {
				t.Errorf("%s: docs/operators.md does not say what it means and what to do", a.Alert)
			}
		}
	}
	for _, a := range wantAlerts {
		if !seen[a] {
			t.Errorf("the PrometheusRule has no alert %s; it has %v", a, slices.Sorted(maps.Keys(seen)))
		}
	}
}

// TestPrometheusRuleChecker: the rule check rejects what it should.
func TestPrometheusRuleChecker(t *testing.T) {
	inv := exportedMetrics(t)
	for _, c := range []struct{ expr, want string }{
		{`gatehouse_hub_cluster_engaged{namespace="gatehouse-system"} == 0`, ""},
		{`gatehouse_hub_cluster_engaged{tenant="a"} == 0`, `has no label "tenant"`},
		{`gatehouse_hub_member_token_expiry_seconds - time() < 86400`, "not exported"},
		{`histogram_quantile(0.99, sum by (le) (rate(gatehouse_hub_ack_lag_seconds_bucket[10m]))) > 5`, ""},
		{`gatehouse_hub_ack_lag_seconds > 5`, "is a histogram"},
		{`absent(gatehouse_hub_clusters{namespace="x"}`, "want ,"},
	} {
		info, err := parsePromQL(c.expr)
		var msgs []string
		if err != nil {
			msgs = append(msgs, err.Error())
		} else {
			msgs = inv.checkWithTargetLabels(info, false, operatorTargetLabels)
		}
		got := strings.Join(msgs, "; ")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s:\n\tgot  %q\n\twant %q", c.expr, got, c.want)
		}
	}
}
