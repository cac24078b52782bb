package charts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/internal/version"
	_ "github.com/gatehouse-dev/gatehouse/operator/hub" // registers the hub's metrics
	"github.com/gatehouse-dev/gatehouse/policy/admission"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The dashboard tests check charts/gatehouse/files/dashboard.json against
// the code: every query parses, and every metric and label it names is one
// the hub or the proxy exports. TestDashboard (charts_test.go) checks that
// the chart ships the file.

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasourceRef           `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) (dashboard, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t, hubChart), "files", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if dec.More() {
		t.Fatal("dashboard.json: data after the dashboard object")
	}
	return d, data
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// query is one PromQL expression of the dashboard and where it is.
// labelsOnly: a template variable's series, read for label values only.
type query struct {
	where, expr string
	labelsOnly  bool
}

func queries(t *testing.T, d dashboard) []query {
	t.Helper()
	var out []query
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out = append(out, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr, false})
		}
	}
	return out
}

// TestDashboardJSON checks the dashboard's structure: identity, unique panel
// ids, panels on the grid, every query on the datasource variable.
func TestDashboardJSON(t *testing.T) {
	d, data := readDashboard(t)
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	if d.UID != "gatehouse-overview" || d.Title != "Gatehouse" {
		t.Errorf("uid %q, title %q: want gatehouse-overview, Gatehouse", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a current one", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		if _, dup := vars[v.Name]; dup {
			t.Errorf("template variable %q defined twice", v.Name)
		}
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no datasource template variable")
	}
	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if p.ID <= 0 {
			t.Errorf("panel %q has no id", p.Title)
		}
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %d %q: grid position %+v off the 24-column grid", p.ID, p.Title, g)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no queries", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] {
				t.Errorf("panel %d %q: refId %q twice", p.ID, p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %d %q target %s has no expression", p.ID, p.Title, tg.RefID)
			}
		}
		for _, ds := range append([]*datasourceRef{p.Datasource}, targetDatasources(p)...) {
			if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
				t.Errorf("panel %d %q: datasource %+v, want the prometheus ${datasource} variable", p.ID, p.Title, ds)
			}
		}
	}
	if len(ids) == 0 {
		t.Fatal("dashboard has no panels")
	}
	for i, a := range d.Panels {
		for _, b := range d.Panels[i+1:] {
			ga, gb := a.GridPos, b.GridPos
			if ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H {
				t.Errorf("panels %d %q and %d %q overlap", a.ID, a.Title, b.ID, b.Title)
			}
		}
	}
}

func targetDatasources(p panel) []*datasourceRef {
	var out []*datasourceRef
	for _, tg := range p.Targets {
		out = append(out, tg.Datasource)
	}
	return out
}

// TestDashboardQueries parses every query of the dashboard, its panels' and
// its template variables', and checks each metric against what the hub and
// the proxy export: the name exists, histograms are read through their
// _bucket/_sum/_count series, counters only through rate/irate/increase,
// label matchers and groupings name labels the metrics have, and a metric
// filtered by $hub_job or $proxy_job comes from that process.
func TestDashboardQueries(t *testing.T) {
	d, _ := readDashboard(t)
	inv := exportedMetrics(t)
	defined := map[string]bool{}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
	}

	qs := queries(t, d)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := v.Definition
		var obj struct{ Query string }
		if json.Unmarshal(v.Query, &obj) == nil && obj.Query != "" {
			q = obj.Query
		} else if s, err := strconv.Unquote(string(v.Query)); err == nil && s != "" {
			q = s
		}
		m := regexp.MustCompile(`^\s*label_values\(\s*(?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`).FindStringSubmatch(q)
		if m == nil || m[1] == "" {
			t.Errorf("variable %q: query %q is not label_values(<selector>, <label>)", v.Name, q)
			continue
		}
		if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			t.Errorf("variable %q: datasource %+v, want ${datasource}", v.Name, v.Datasource)
		}
		// The label must be one the selector's metric has: check it as
		// a grouping label of the selector.
		qs = append(qs, query{fmt.Sprintf("variable %q", v.Name), fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), true})
	}

	used := map[string]bool{}
	for _, q := range qs {
		for _, ref := range variableRefs(q.expr) {
			if !defined[ref] && !strings.HasPrefix(ref, "__") {
				t.Errorf("%s: $%s is not a template variable of the dashboard", q.where, ref)
			}
		}
		info, err := parsePromQL(q.expr)
		if err != nil {
			t.Errorf("%s: %v\n\t%s", q.where, err, q.expr)
			continue
		}
		for _, msg := range inv.check(info, q.labelsOnly) {
			t.Errorf("%s: %s\n\t%s", q.where, msg, q.expr)
		}
		for _, s := range info.selectors {
			used[s.name] = true
		}
	}
	t.Logf("%d queries, %d series names: %s", len(qs), len(used), strings.Join(slices.Sorted(maps.Keys(used)), ", "))
}

// TestDashboardQueryChecker: the checks above reject what they should.
func TestDashboardQueryChecker(t *testing.T) {
	inv := exportedMetrics(t)
	for _, c := range []struct{ expr, want string }{
		{`sum by (le) (rate(gatehouse_hub_ack_lag_seconds_bucket{job=~"$hub_job"}[$__rate_interval]))`, ""},
		{`histogram_quantile(0.9, sum without (instance) (rate(gatehouse_proxy_request_duration_seconds_bucket[5m]))) > bool 0.5`, ""},
		{`-sum(rate(gatehouse_proxy_xds_nacks_total[1h30m] offset 5m)) / on() group_left vector(2) ^ 2`, ""},
		{`topk(5, sum by (route) (increase(gatehouse_proxy_route_requests_total{code!~"2xx|3xx"}[$__range])))`, ""},
		{`max_over_time(go_goroutines[10m:1m])`, ""},
		{`sum(rate(gatehouse_hub_tables_pushed_total[5m])`, `want )`},
		{`sum(rate(gatehouse_hub_tables_pushed_total{job=~"$hub_job}[5m]))`, `unterminated string`},
		{`rate(gatehouse_hub_tables_pushed_total)`, `is a instant vector, want a range vector`},
		{`rate(gatehouse_hub_tables_pushed_total[5m])[5m]`, `plain selector`},
		{`sum(gatehouse_hub_tables_pushed_total[5m])`, `aggregates a range vector`},
		{`histogram_quantile(gatehouse_hub_clusters, 0.9)`, `argument 1 of histogram_quantile`},
		{`quantile_over_time(0.9, go_goroutines[5m]) and 1`, `needs instant vectors on both sides`},
		{`rated(gatehouse_hub_tables_pushed_total[5m])`, `unknown function`},
		{`sum(rate(gatehouse_hub_tables_pushed_total[$gateway]))`, `template variable outside a string`},
		{`gatehouse_hub_clusters{cluster=~"(a"}`, `missing closing )`},
		{`label_replace(go_goroutines, "a-b", "$1", "job", "(.*)")`, `bad destination label`},
		{`gatehouse_hub_no_such_seconds_bucket`, `not exported`},
		{`rate(gatehouse_hub_ack_lag_seconds[5m])`, `is a histogram`},
		{`gatehouse_proxy_xds_nacks_total`, `only grows`},
		{`rate(go_goroutines[5m])`, `not a counter`},
		{`gatehouse_hub_clusters{gateway="a"}`, `has no label "gateway"`},
		{`sum by (tenant) (rate(gatehouse_proxy_route_requests_total[5m]))`, `grouping by "tenant"`},
		{`sum by (route_namespace) (label_replace(rate(gatehouse_proxy_route_requests_total[5m]), "route_namespace", "$1", "route", "[^ ]+ ([^/]+)/.*"))`, ""},
		{`rate(gatehouse_proxy_requests_total{code="6xx"}[5m])`, `the exporter gives code only`},
		{`rate(gatehouse_proxy_requests_total{job=~"$hub_job"}[5m])`, `the hub does not export it`},
		{`gatehouse_hub_clusters{job=~"$proxy_job"}`, `the proxy does not export it`},
	} {
		info, err := parsePromQL(c.expr)
		var msgs []string
		if err != nil {
			msgs = append(msgs, err.Error())
		} else {
			msgs = inv.check(info, false)
		}
		got := strings.Join(msgs, "; ")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s:\n\tgot  %q\n\twant %q", c.expr, got, c.want)
		}
	}
}

// TestDashboardMetricsDocumented: docs/observability.md lists every
// gatehouse_ metric the code exports, and every one the dashboard uses.
func TestDashboardMetricsDocumented(t *testing.T) {
	inv := exportedMetrics(t)
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(inv.metrics)) {
		if !strings.HasPrefix(name, "gatehouse_") {
			continue
		}
		m := inv.metrics[name]
		t.Logf("%s %v %v (%s)", name, m.typ, slices.Sorted(maps.Keys(m.labels)), strings.Join(slices.Sorted(maps.Keys(m.processes)), ", "))
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/observability.md does not list %s", name)
		}
	}
	// The alert rules' expressions.
	rules := regexp.MustCompile(`(?m)^\s*expr:\s*(.+?)\s*$`).FindAllStringSubmatch(string(doc), -1)
	if len(rules) < 3 {
		t.Errorf("docs/observability.md: %d alert rule expressions, want at least 3", len(rules))
	}
	for _, r := range rules {
		info, err := parsePromQL(r[1])
		if err != nil {
			t.Errorf("docs/observability.md: %v\n\t%s", err, r[1])
			continue
		}
		for _, msg := range inv.check(info, false) {
			t.Errorf("docs/observability.md: %s\n\t%s", msg, r[1])
		}
	}
}

// variableRefs are the Grafana variables ($name, ${name}, ${name:format})
// an expression uses; $1 and the like (label_replace) are not variables.
func variableRefs(expr string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\$(?:\{([A-Za-z_]\w*)(?::\w+)?\}|([A-Za-z_]\w*))`).FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1]+m[2])
	}
	return out
}

// ---- what the code exports

type metric struct {
	name      string
	typ       dto.MetricType // -1: not known
	labels    map[string]bool
	values    map[string]map[string]bool // label values seen in samples
	processes map[string]bool            // "hub", "proxy"
}

type inventory struct{ metrics map[string]*metric }

var exported = sync.OnceValues(collectExported)

func exportedMetrics(t *testing.T) inventory {
	t.Helper()
	inv, err := exported()
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// collectExported starts the exporters the two binaries wire up, as far as
// that is cheap, and reads their registries:
//
//   - the hub (cmd/gatehouse) serves controller-runtime's registry, which
//     operator/hub and policy/admission register into when imported, and
//     the webhook server's request metrics once a webhook is registered at
//     admission.PathPrefix, as cmd/gatehouse does;
//   - the proxy (cmd/gatehouse-proxy) serves a registry of its own with the
//     Go and process collectors, proxy.New's metrics and the xDS client's,
//     which it registers when it runs.
//
// Names and label names come from the collectors' descriptors, so that
// vectors without a child yet count too; metric types come from collected
// samples or, failing that, from the Go declaration in this repository.
func collectExported() (inventory, error) {
	inv := inventory{metrics: map[string]*metric{}}
	root, err := env.RepoRoot()
	if err != nil {
		return inv, err
	}
	if err := mainWiresUp(root); err != nil {
		return inv, err
	}

	// Hub: a request through the instrumented webhook mux gives the
	// webhook metrics their children.
	srv := webhook.NewServer(webhook.Options{})
	srv.Register(admission.PathPrefix, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.WebhookMux().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, admission.PathPrefix+"member", nil))
	// cmd/gatehouse registers the build's gauge itself.
	ctrlmetrics.Registry.MustRegister(version.Collector())
	hubReg, ok := ctrlmetrics.Registry.(prometheus.Collector)
	if !ok {
		return inv, fmt.Errorf("controller-runtime's registry %T cannot be described", ctrlmetrics.Registry)
	}
	if err := inv.add("hub", hubReg); err != nil {
		return inv, err
	}

	// Proxy.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), version.Collector())
	p := proxy.New(proxy.Options{Registry: reg, BindAddress: "127.0.0.1"})
	if err := p.Apply("v1", nil, nil); err != nil {
		return inv, fmt.Errorf("applying an empty table set: %w", err)
	}
	_ = p.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run registers its counters, then returns at once
	(&xds.Client{Registry: reg, NodeID: "member/infra/shared"}).Run(ctx)
	if err := inv.add("proxy", reg); err != nil {
		return inv, err
	}

	// Types of vectors that have no child yet, from their declarations.
	declared, err := declaredMetrics(root)
	if err != nil {
		return inv, err
	}
	for name, typ := range declared {
		m := inv.metrics[name]
		if m == nil {
			return inv, fmt.Errorf("%s is declared in the Go sources, but no exporter the test starts registers it: wire it up in collectExported", name)
		}
		if m.typ == -1 {
			m.typ = typ
		} else if m.typ != typ {
			return inv, fmt.Errorf("%s: collected as %v, declared as %v", name, m.typ, typ)
		}
	}
	for _, m := range inv.metrics {
		if m.typ == -1 && strings.HasSuffix(m.name, "_total") {
			m.typ = dto.MetricType_COUNTER // the naming convention
		}
	}
	return inv, nil
}

// descPattern reads a Desc's String(), the only way to get its name and
// label names; if client_golang changes the format, add fails rather than
// missing metrics.
var descPattern = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: .*, variableLabels: \{([^{}]*)\}\}$`)

func (inv inventory) add(process string, c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc)
	go func() { c.Describe(descs); close(descs) }()
	for d := range descs {
		if d.Err() != nil {
			continue
		}
		m := descPattern.FindStringSubmatch(d.String())
		if m == nil {
			return fmt.Errorf("cannot read the descriptor %s", d)
		}
		name, err := strconv.Unquote(m[1])
		if err != nil {
			return err
		}
		labels := map[string]bool{}
		for l := range strings.SplitSeq(m[2], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(l), "c("), ")"); l != "" {
				labels[l] = true
			}
		}
		inv.entry(name, process, labels)
	}
	samples := make(chan prometheus.Metric)
	go func() { c.Collect(samples); close(samples) }()
	var errs []error
	for s := range samples {
		var pb dto.Metric
		if err := s.Write(&pb); err != nil {
			errs = append(errs, err)
			continue
		}
		m := descPattern.FindStringSubmatch(s.Desc().String())
		if m == nil {
			continue
		}
		name, _ := strconv.Unquote(m[1])
		e := inv.entry(name, process, nil)
		switch {
		case pb.Counter != nil:
			e.typ = dto.MetricType_COUNTER
		case pb.Gauge != nil:
			e.typ = dto.MetricType_GAUGE
		case pb.Histogram != nil:
			e.typ = dto.MetricType_HISTOGRAM
		case pb.Summary != nil:
			e.typ = dto.MetricType_SUMMARY
		case pb.Untyped != nil:
			e.typ = dto.MetricType_UNTYPED
		}
		for _, lp := range pb.Label {
			e.labels[lp.GetName()] = true // const labels too
			if e.values[lp.GetName()] == nil {
				e.values[lp.GetName()] = map[string]bool{}
			}
			e.values[lp.GetName()][lp.GetValue()] = true
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("collecting %s metrics: %v", process, errs)
	}
	return nil
}

func (inv inventory) entry(name, process string, labels map[string]bool) *metric {
	m := inv.metrics[name]
	if m == nil {
		m = &metric{name: name, typ: -1, labels: map[string]bool{}, values: map[string]map[string]bool{}, processes: map[string]bool{}}
		inv.metrics[name] = m
	}
	m.processes[process] = true
	maps.Copy(m.labels, labels)
	return m
}

// declaredMetrics reads the metric declarations of the repository's Go
// code: prometheus.New<Type>[Vec](prometheus.<Type>Opts{Name: "…"}).
func declaredMetrics(root string) (map[string]dto.MetricType, error) {
	decl := regexp.MustCompile(`prometheus\.New(Counter|Gauge|Histogram|Summary)(?:Vec)?\(\s*prometheus\.(?:Counter|Gauge|Histogram|Summary)Opts\{\s*Name:\s*"([^"]+)"`)
	types := map[string]dto.MetricType{"Counter": dto.MetricType_COUNTER, "Gauge": dto.MetricType_GAUGE,
		"Histogram": dto.MetricType_HISTOGRAM, "Summary": dto.MetricType_SUMMARY}
	out := map[string]dto.MetricType{}
	for _, dir := range []string{"operator", "dataplane", "policy", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
				out[m[2]] = types[m[1]]
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("found no metric declarations in the Go sources")
	}
	return out, nil
}

// mainWiresUp checks that the binaries still wire up the exporters
// collectExported starts in their place.
func mainWiresUp(root string) error {
	for file, wants := range map[string][]string{
		"cmd/gatehouse/main.go": {`"github.com/gatehouse-dev/gatehouse/operator/hub"`, `"github.com/gatehouse-dev/gatehouse/policy/admission"`,
			"srv.Register(admission.PathPrefix,", "metricsserver.Options{", "ctrlmetrics.Registry.MustRegister(version.Collector())"},
		"cmd/gatehouse-proxy/main.go": {"collectors.NewGoCollector()", "collectors.NewProcessCollector(", "version.Collector()", "Registry: reg", "proxy.New(", "xds.Client{"},
	} {
		src, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			return err
		}
		for _, w := range wants {
			if !strings.Contains(string(src), w) {
				return fmt.Errorf("%s no longer has %q: update collectExported to wire up what the binary exports", file, w)
			}
		}
	}
	return nil
}

// targetLabels are attached by Prometheus to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// check compares one parsed expression with the inventory.
func (inv inventory) check(q *promqlInfo, labelsOnly bool) []string {
	return inv.checkWithTargetLabels(q, labelsOnly, targetLabels)
}

// checkWithTargetLabels is check where the scrape adds the target labels given.
func (inv inventory) checkWithTargetLabels(q *promqlInfo, labelsOnly bool, targetLabels map[string]bool) []string {
	var msgs []string
	available := maps.Clone(targetLabels)
	maps.Copy(available, q.produced)
	for _, s := range q.selectors {
		m, suffix := inv.lookup(s.name)
		if m == nil {
			msgs = append(msgs, fmt.Sprintf("%s is not exported by the hub or the proxy", s.name))
			continue
		}
		own := maps.Clone(m.labels)
		if suffix == "_bucket" {
			own["le"] = true
		}
		if m.typ == dto.MetricType_SUMMARY && suffix == "" {
			own["quantile"] = true
		}
		maps.Copy(available, own)
		counterLike := m.typ == dto.MetricType_COUNTER || suffix != ""
		switch {
		case m.typ == -1:
			msgs = append(msgs, fmt.Sprintf("%s: type not known; declare it as prometheus.New<Type>(prometheus.<Type>Opts{Name: …})", s.name))
		case m.typ == dto.MetricType_HISTOGRAM && suffix == "":
			msgs = append(msgs, fmt.Sprintf("%s is a histogram: read %[1]s_bucket, _sum or _count", s.name))
		case labelsOnly:
		case counterLike && !s.rated:
			msgs = append(msgs, fmt.Sprintf("%s only grows: read it through rate, irate or increase", s.name))
		case !counterLike && s.rated:
			msgs = append(msgs, fmt.Sprintf("%s is a %v, not a counter: rate and increase make no sense of it", s.name, m.typ))
		}
		for _, mt := range s.matchers {
			if mt.label == "__name__" {
				continue
			}
			if !own[mt.label] && !targetLabels[mt.label] {
				msgs = append(msgs, fmt.Sprintf("%s has no label %q (it has %v)", s.name, mt.label, slices.Sorted(maps.Keys(m.labels))))
				continue
			}
			if vals := m.values[mt.label]; mt.op == "=" && len(vals) > 0 && !vals[mt.value] {
				msgs = append(msgs, fmt.Sprintf("%s{%s=%q}: the exporter gives %s only %v", s.name, mt.label, mt.value, mt.label, slices.Sorted(maps.Keys(vals))))
			}
			if mt.label == "job" {
				hub, px := strings.Contains(mt.value, "$hub_job"), strings.Contains(mt.value, "$proxy_job")
				if hub && !px && !m.processes["hub"] {
					msgs = append(msgs, fmt.Sprintf("%s is filtered by $hub_job but the hub does not export it", s.name))
				}
				if px && !hub && !m.processes["proxy"] {
					msgs = append(msgs, fmt.Sprintf("%s is filtered by $proxy_job but the proxy does not export it", s.name))
				}
			}
		}
	}
	for _, l := range q.grouping {
		if !available[l] {
			msgs = append(msgs, fmt.Sprintf("grouping by %q, a label none of the expression's metrics has", l))
		}
	}
	return msgs
}

// lookup finds a series name's metric: the name itself, or a histogram's or
// summary's _bucket, _sum or _count.
func (inv inventory) lookup(name string) (*metric, string) {
	if m := inv.metrics[name]; m != nil {
		return m, ""
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		m := inv.metrics[base]
		if m != nil && (m.typ == dto.MetricType_HISTOGRAM || m.typ == -1 ||
			(m.typ == dto.MetricType_SUMMARY && suffix != "_bucket")) {
			return m, suffix
		}
	}
	return nil, ""
}

// ---- a PromQL parser
//
// github.com/prometheus/prometheus is not a dependency of this module, so
// this is a small recursive-descent parser of PromQL: the whole expression
// grammar (binary operators with their precedence and bool/on/ignoring/
// group_left/group_right, aggregations with by/without before or after the
// arguments, function calls, selectors with matchers, ranges, subqueries,
// offset and @), with value types checked (a range vector only where a
// function takes one, scalars and strings where they belong), a table of
// functions and their argument types, and regular expressions compiled.
// Grafana's $__rate_interval, $__interval and $__range stand for a
// duration; other Grafana variables may only appear inside strings.

type valueType int

const (
	tScalar valueType = iota
	tString
	tVector
	tMatrix
)

func (v valueType) String() string {
	return [...]string{"scalar", "string", "instant vector", "range vector"}[v]
}

type matcher struct{ label, op, value string }

type selector struct {
	name     string
	matchers []matcher
	rated    bool // the argument of rate, irate or increase
}

type promqlInfo struct {
	selectors []*selector
	grouping  []string        // labels of by, without, on, ignoring, group_left/right
	produced  map[string]bool // labels label_replace/label_join write
}

type token struct {
	kind string // "ident", "number", "duration", "string", or the operator itself
	text string
	pos  int
}

var (
	durationToken = regexp.MustCompile(`^(?:[0-9]+(?:ms|[smhdwy]))+`)
	numberToken   = regexp.MustCompile(`^(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)`)
	grafanaVar    = regexp.MustCompile(`\$(?:\{[A-Za-z_]\w*(?::\w+)?\}|[A-Za-z_]\w*)`)
)

var durationVars = regexp.MustCompile(`\$(?:__rate_interval|__interval|__range|\{(?:__rate_interval|__interval|__range)\})\b`)

func lex(expr string) ([]token, error) {
	src := durationVars.ReplaceAllString(expr, "5m")
	var toks []token
	inRange := false
	isIdent := func(r byte, first bool) bool {
		return r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (!first && r >= '0' && r <= '9')
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ':' && inRange: // [range:step]
			toks = append(toks, token{":", ":", i})
			i++
		case isIdent(c, true):
			j := i
			for j < len(src) && isIdent(src[j], false) {
				j++
			}
			toks = append(toks, token{"ident", src[i:j], i})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			glued := func(j int) bool { return j < len(src) && src[j] != ':' && isIdent(src[j], false) }
			if m := durationToken.FindString(src[i:]); m != "" && !glued(i+len(m)) {
				toks = append(toks, token{"duration", m, i})
				i += len(m)
				continue
			}
			m := numberToken.FindString(src[i:])
			if glued(i + len(m)) {
				return nil, fmt.Errorf("bad number at %d: %q", i, src[i:min(len(src), i+len(m)+1)])
			}
			toks = append(toks, token{"number", m, i})
			i += len(m)
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			raw := src[i : j+1]
			var s string
			var err error
			switch c {
			case '`':
				s = raw[1 : len(raw)-1]
			case '\'':
				s, err = strconv.Unquote(`"` + strings.ReplaceAll(strings.ReplaceAll(raw[1:len(raw)-1], `\'`, `'`), `"`, `\"`) + `"`)
			default:
				s, err = strconv.Unquote(raw)
			}
			if err != nil {
				return nil, fmt.Errorf("bad string %s: %v", raw, err)
			}
			toks = append(toks, token{"string", s, i})
			i = j + 1
		case c == '$':
			return nil, fmt.Errorf("template variable outside a string at %d: %q", i, src[i:min(len(src), i+20)])
		default:
			op := ""
			for _, o := range []string{"==", "!=", "<=", ">=", "=~", "!~", "(", ")", "{", "}", "[", "]", ",", ":", "=", "<", ">", "+", "-", "*", "/", "%", "^", "@"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("unexpected %q at %d", c, i)
			}
			toks = append(toks, token{op, op, i})
			i += len(op)
			if op == "[" || op == "]" {
				inRange = op == "["
			}
		}
	}
	return append(toks, token{"eof", "", len(src)}), nil
}

// signature is a function's argument types and result.
type signature struct {
	args     []valueType
	optional int  // how many trailing arguments may be left out
	variadic bool // the last argument type repeats
	result   valueType
}

var functions = map[string]signature{}

func init() {
	v, m, s, str := tVector, tMatrix, tScalar, tString
	for _, f := range []string{"rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets",
		"avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
		"stddev_over_time", "stdvar_over_time", "present_over_time", "absent_over_time"} {
		functions[f] = signature{args: []valueType{m}, result: v}
	}
	set := func(name string, result valueType, optional int, variadic bool, args ...valueType) {
		functions[name] = signature{args, optional, variadic, result}
	}
	for _, f := range []string{"abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "absent", "timestamp", "sort", "sort_desc",
		"day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year"} {
		set(f, v, 0, false, v)
	}
	set("quantile_over_time", v, 0, false, s, m)
	set("predict_linear", v, 0, false, m, s)
	set("holt_winters", v, 0, false, m, s, s)
	set("histogram_quantile", v, 0, false, s, v)
	set("label_replace", v, 0, false, v, str, str, str, str)
	set("label_join", v, 0, true, v, str, str, str)
	set("round", v, 1, false, v, s)
	set("clamp", v, 0, false, v, s, s)
	set("clamp_min", v, 0, false, v, s)
	set("clamp_max", v, 0, false, v, s)
	set("time", s, 0, false)
	set("pi", s, 0, false)
	set("vector", v, 0, false, s)
	set("scalar", s, 0, false, v)
}

var aggregations = map[string]valueType{ // -1: no parameter
	"sum": -1, "avg": -1, "min": -1, "max": -1, "count": -1, "group": -1, "stddev": -1, "stdvar": -1,
	"topk": tScalar, "bottomk": tScalar, "limitk": tScalar, "quantile": tScalar, "count_values": tString,
}

var binaryPrecedence = map[string]int{
	"or": 1, "and": 2, "unless": 2,
	"==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
	"+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "atan2": 5, "^": 6,
}

var keywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
	"group_right": true, "bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true}

type parser struct {
	toks []token
	i    int
	info *promqlInfo
}

// node is a parsed (sub)expression: its type and, for a bare selector,
// the selector (a range may follow it, a rate may consume it).
type node struct {
	typ valueType
	sel *selector
}

func parsePromQL(expr string) (*promqlInfo, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, info: &promqlInfo{produced: map[string]bool{}}}
	n, err := p.expr(1)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != "eof" {
		return nil, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
	}
	if n.typ != tVector && n.typ != tScalar {
		return nil, fmt.Errorf("the expression is a %v; a graph needs an instant vector or a scalar", n.typ)
	}
	return p.info, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *parser) expect(kind string) (token, error) {
	t := p.next()
	if t.kind != kind {
		return t, fmt.Errorf("want %s at %d, have %q", kind, t.pos, t.text)
	}
	return t, nil
}

// binaryOp returns the operator at the current token, if any.
func (p *parser) binaryOp() (string, bool) {
	t := p.peek()
	if t.kind == "ident" || t.kind == "==" || t.kind == "!=" || t.kind == "<" || t.kind == "<=" || t.kind == ">" ||
		t.kind == ">=" || t.kind == "+" || t.kind == "-" || t.kind == "*" || t.kind == "/" || t.kind == "%" || t.kind == "^" {
		_, ok := binaryPrecedence[t.text]
		return t.text, ok
	}
	return "", false
}

func (p *parser) expr(minPrec int) (node, error) {
	lhs, err := p.unary()
	if err != nil {
		return lhs, err
	}
	for {
		op, ok := p.binaryOp()
		if !ok || binaryPrecedence[op] < minPrec {
			return lhs, nil
		}
		opTok := p.next()
		prec := binaryPrecedence[op]
		comparison, set := prec == 3, prec <= 2
		isBool, matching := false, false
		if p.peek().kind == "ident" && p.peek().text == "bool" {
			if !comparison {
				return lhs, fmt.Errorf("bool after %s at %d: only comparisons take it", op, opTok.pos)
			}
			p.next()
			isBool = true
		}
		if t := p.peek(); t.kind == "ident" && (t.text == "on" || t.text == "ignoring") {
			p.next()
			if err := p.labelList(); err != nil {
				return lhs, err
			}
			matching = true
			if t := p.peek(); t.kind == "ident" && (t.text == "group_left" || t.text == "group_right") {
				p.next()
				if p.peek().kind == "(" {
					if err := p.labelList(); err != nil {
						return lhs, err
					}
				}
			}
		}
		next := prec + 1
		if op == "^" {
			next = prec // right-associative
		}
		rhs, err := p.expr(next)
		if err != nil {
			return lhs, err
		}
		for _, side := range []node{lhs, rhs} {
			if side.typ != tVector && side.typ != tScalar {
				return lhs, fmt.Errorf("%s at %d applied to a %v", op, opTok.pos, side.typ)
			}
		}
		bothVectors := lhs.typ == tVector && rhs.typ == tVector
		if set && !bothVectors {
			return lhs, fmt.Errorf("%s at %d needs instant vectors on both sides", op, opTok.pos)
		}
		if matching && !bothVectors {
			return lhs, fmt.Errorf("on/ignoring at %d needs instant vectors on both sides", opTok.pos)
		}
		if comparison && lhs.typ == tScalar && rhs.typ == tScalar && !isBool {
			return lhs, fmt.Errorf("comparing scalars at %d needs bool", opTok.pos)
		}
		typ := tScalar
		if lhs.typ == tVector || rhs.typ == tVector {
			typ = tVector
		}
		lhs = node{typ: typ}
	}
}

func (p *parser) unary() (node, error) {
	if t := p.peek(); t.kind == "-" || t.kind == "+" {
		p.next()
		n, err := p.expr(binaryPrecedence["^"]) // -a^b is -(a^b)
		if err != nil {
			return n, err
		}
		if n.typ != tVector && n.typ != tScalar {
			return n, fmt.Errorf("unary %s at %d applied to a %v", t.text, t.pos, n.typ)
		}
		return node{typ: n.typ}, nil
	}
	n, err := p.primary()
	if err != nil {
		return n, err
	}
	return p.postfix(n)
}

func (p *parser) postfix(n node) (node, error) {
	for {
		t := p.peek()
		switch {
		case t.kind == "[":
			p.next()
			if _, err := p.expect("duration"); err != nil {
				return n, err
			}
			if p.peek().kind == ":" { // subquery
				p.next()
				if p.peek().kind == "duration" {
					p.next()
				}
				if n.typ != tVector {
					return n, fmt.Errorf("subquery at %d of a %v", t.pos, n.typ)
				}
				n = node{typ: tMatrix}
			} else {
				if n.sel == nil || n.typ != tVector {
					return n, fmt.Errorf("a range at %d needs a plain selector before it", t.pos)
				}
				n = node{typ: tMatrix, sel: n.sel}
			}
			if _, err := p.expect("]"); err != nil {
				return n, err
			}
		case t.kind == "ident" && t.text == "offset":
			p.next()
			if p.peek().kind == "-" {
				p.next()
			}
			if _, err := p.expect("duration"); err != nil {
				return n, err
			}
		case t.kind == "@":
			p.next()
			switch u := p.next(); {
			case u.kind == "number":
			case u.kind == "ident" && (u.text == "start" || u.text == "end"):
				if _, err := p.expect("("); err != nil {
					return n, err
				}
				if _, err := p.expect(")"); err != nil {
					return n, err
				}
			default:
				return n, fmt.Errorf("bad @ modifier at %d", u.pos)
			}
		default:
			return n, nil
		}
	}
}

func (p *parser) primary() (node, error) {
	t := p.next()
	switch t.kind {
	case "number":
		return node{typ: tScalar}, nil
	case "string":
		return node{typ: tString}, nil
	case "(":
		n, err := p.expr(1)
		if err != nil {
			return n, err
		}
		_, err = p.expect(")")
		return node{typ: n.typ}, err // parentheses end a plain selector
	case "{":
		p.i--
		return p.selector("")
	case "ident":
	default:
		return node{}, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
	}
	switch name := t.text; {
	case name == "Inf" || name == "NaN" || name == "inf" || name == "nan":
		return node{typ: tScalar}, nil
	case isAggregation(name) && (p.peek().kind == "(" || p.peek().text == "by" || p.peek().text == "without"):
		return p.aggregation(t)
	case keywords[name]:
		return node{}, fmt.Errorf("unexpected %q at %d", name, t.pos)
	case p.peek().kind == "(":
		return p.call(t)
	default:
		return p.selector(name)
	}
}

func isAggregation(name string) bool { _, ok := aggregations[name]; return ok }

func (p *parser) aggregation(t token) (node, error) {
	grouped := false
	grouping := func() error {
		if u := p.peek(); u.kind == "ident" && (u.text == "by" || u.text == "without") {
			if grouped {
				return fmt.Errorf("%s grouped twice at %d", t.text, u.pos)
			}
			p.next()
			grouped = true
			return p.labelList()
		}
		return nil
	}
	if err := grouping(); err != nil {
		return node{}, err
	}
	if _, err := p.expect("("); err != nil {
		return node{}, err
	}
	if param := aggregations[t.text]; param >= 0 {
		n, err := p.expr(1)
		if err != nil {
			return n, err
		}
		if n.typ != param {
			return n, fmt.Errorf("%s at %d takes a %v parameter, not a %v", t.text, t.pos, param, n.typ)
		}
		if _, err := p.expect(","); err != nil {
			return n, err
		}
	}
	n, err := p.expr(1)
	if err != nil {
		return n, err
	}
	if n.typ != tVector {
		return n, fmt.Errorf("%s at %d aggregates a %v, not an instant vector", t.text, t.pos, n.typ)
	}
	if _, err := p.expect(")"); err != nil {
		return n, err
	}
	if err := grouping(); err != nil {
		return n, err
	}
	return node{typ: tVector}, nil
}

func (p *parser) call(t token) (node, error) {
	f, ok := functions[t.text]
	if !ok {
		return node{}, fmt.Errorf("unknown function %s at %d", t.text, t.pos)
	}
	p.next() // (
	var args []node
	var strs []string
	for p.peek().kind != ")" {
		if len(args) > 0 {
			if _, err := p.expect(","); err != nil {
				return node{}, err
			}
		}
		start := p.i
		n, err := p.expr(1)
		if err != nil {
			return n, err
		}
		args = append(args, n)
		s := ""
		if n.typ == tString && p.i == start+1 {
			s = p.toks[start].text
		}
		strs = append(strs, s)
	}
	p.next() // )
	if len(args) < len(f.args)-f.optional || (!f.variadic && len(args) > len(f.args)) {
		return node{}, fmt.Errorf("%s at %d takes %d arguments, has %d", t.text, t.pos, len(f.args), len(args))
	}
	for i, a := range args {
		want := f.args[min(i, len(f.args)-1)]
		if a.typ != want {
			return node{}, fmt.Errorf("argument %d of %s at %d is a %v, want a %v", i+1, t.text, t.pos, a.typ, want)
		}
	}
	switch t.text {
	case "rate", "irate", "increase":
		if args[0].sel != nil {
			args[0].sel.rated = true
		}
	case "label_replace":
		if !validLabelName(strs[1]) {
			return node{}, fmt.Errorf("label_replace at %d: bad destination label %q", t.pos, strs[1])
		}
		if _, err := regexp.Compile("^(?s:" + strs[4] + ")$"); err != nil {
			return node{}, fmt.Errorf("label_replace at %d: %v", t.pos, err)
		}
		p.info.produced[strs[1]] = true
	case "label_join":
		p.info.produced[strs[1]] = true
	}
	return node{typ: f.result}, nil
}

func (p *parser) selector(name string) (node, error) {
	s := &selector{name: name}
	if p.peek().kind == "{" {
		p.next()
		for p.peek().kind != "}" {
			if len(s.matchers) > 0 {
				if _, err := p.expect(","); err != nil {
					return node{}, err
				}
				if p.peek().kind == "}" {
					break
				}
			}
			l, err := p.expect("ident")
			if err != nil {
				return node{}, err
			}
			op := p.next()
			if op.kind != "=" && op.kind != "!=" && op.kind != "=~" && op.kind != "!~" {
				return node{}, fmt.Errorf("bad matcher operator %q at %d", op.text, op.pos)
			}
			v, err := p.expect("string")
			if err != nil {
				return node{}, err
			}
			if op.kind == "=~" || op.kind == "!~" {
				re := grafanaVar.ReplaceAllString(v.text, "x")
				if _, err := regexp.Compile("^(?s:" + re + ")$"); err != nil {
					return node{}, fmt.Errorf("matcher %s%s%q: %v", l.text, op.text, v.text, err)
				}
			}
			if l.text == "__name__" && op.kind == "=" {
				if s.name != "" {
					return node{}, fmt.Errorf("metric name given twice at %d", l.pos)
				}
				s.name = v.text
			}
			s.matchers = append(s.matchers, matcher{l.text, op.text, v.text})
		}
		p.next() // }
	}
	if s.name == "" {
		return node{}, fmt.Errorf("a selector without a metric name at %d", p.peek().pos)
	}
	p.info.selectors = append(p.info.selectors, s)
	return node{typ: tVector, sel: s}, nil
}

func (p *parser) labelList() error {
	if _, err := p.expect("("); err != nil {
		return err
	}
	for n := 0; p.peek().kind != ")"; n++ {
		if n > 0 {
			if _, err := p.expect(","); err != nil {
				return err
			}
			if p.peek().kind == ")" {
				break
			}
		}
		l, err := p.expect("ident")
		if err != nil {
			return err
		}
		p.info.grouping = append(p.info.grouping, l.text)
	}
	p.next()
	return nil
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func validLabelName(s string) bool { return labelName.MatchString(s) }
