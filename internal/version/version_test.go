package version

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestGet(t *testing.T) {
	plain := &debug.BuildInfo{GoVersion: "go1.27.2", Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "3895aaa0123456789abcdef0123456789abcdef0"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		name               string
		stamped, stampedRv string
		bi                 *debug.BuildInfo
		want               Info
		short              string
	}{
		{name: "stamped by the Makefile", stamped: "v0.2.0-3-g3895aaa", stampedRv: "3895aaa0123456789abcdef0123456789abcdef0", bi: plain,
			want:  Info{Version: "v0.2.0-3-g3895aaa", Revision: "3895aaa0123456789abcdef0123456789abcdef0", GoVersion: "go1.27.2"},
			short: "v0.2.0-3-g3895aaa"},
		{name: "plain go build in a checkout", bi: plain,
			want:  Info{Version: Devel, Revision: "3895aaa0123456789abcdef0123456789abcdef0", Modified: true, GoVersion: "go1.27.2"},
			short: "devel-3895aaa01234-dirty"},
		{name: "plain go build outside git", bi: &debug.BuildInfo{GoVersion: "go1.27.2"},
			want: Info{Version: Devel, GoVersion: "go1.27.2"}, short: Devel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := get(tc.stamped, tc.stampedRv, tc.bi)
			got.Platform = ""
			if got != tc.want {
				t.Errorf("get = %+v, want %+v", got, tc.want)
			}
			if s := got.Short(); s != tc.short {
				t.Errorf("Short = %q, want %q", s, tc.short)
			}
		})
	}
}

func TestLineNamesProgramVersionAndRevision(t *testing.T) {
	i := Info{Version: "v0.2.0", Revision: "3895aaa", GoVersion: "go1.27.2", Platform: "linux/arm64"}
	if got, want := i.Line("gatehouse-proxy"), "gatehouse-proxy v0.2.0 (revision 3895aaa, go1.27.2, linux/arm64)"; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
	i = Info{Version: Devel, GoVersion: "go1.27.2", Platform: "linux/amd64"}
	if got := i.Line("gatehouse"); !strings.Contains(got, "gatehouse devel (revision unknown") {
		t.Errorf("Line of an unknown revision = %q", got)
	}
}

func TestFlagPrintsAndExits(t *testing.T) {
	var out bytes.Buffer
	code := -1
	f := &printFlag{program: "gatehousectl", out: &out, exit: func(c int) { code = c }}
	if err := f.Set("false"); err != nil || code != -1 || out.Len() != 0 {
		t.Fatalf("--version=false: err %v, exit %d, output %q; want nothing to happen", err, code, out.String())
	}
	if err := f.Set("true"); err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.HasPrefix(out.String(), "gatehousectl "+Get().Version+" ") {
		t.Errorf("--version: exit %d, output %q", code, out.String())
	}
	if err := f.Set("yes please"); err == nil {
		t.Error("--version=yes please was accepted")
	}
}

func TestReportedIsBounded(t *testing.T) {
	for in, want := range map[string]string{
		"":                          Unknown,
		"v0.2.0-3-g3895aaa-dirty":   "v0.2.0-3-g3895aaa-dirty",
		"v1 on 3 replicas, v2 on 1": "v1_on_3_replicas__v2_on_1",
		"v1\n\x00é":                 "v1____",
		strings.Repeat("x", 1000):   strings.Repeat("x", MaxReported),
	} {
		if got := Reported(in); got != want {
			t.Errorf("Reported(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReplicasReadBackFromMessage(t *testing.T) {
	r := Replicas{"v0.2.0": 2, "v0.1.0": 1, Reported("weird, version"): 1}
	msg := r.InMessage("served by the Gateway's proxies (4 connected)")
	if want := "served by the Gateway's proxies (4 connected); proxy versions: v0.1.0 on 1 replica, v0.2.0 on 2 replicas, weird__version on 1 replica"; msg != want {
		t.Errorf("InMessage = %q\nwant        %q", msg, want)
	}
	got := FromMessage(msg)
	if len(got) != 3 || got["v0.2.0"] != 2 || got["v0.1.0"] != 1 || got["weird__version"] != 1 {
		t.Errorf("FromMessage = %v", got)
	}
	// Written again, the phrase replaces the earlier one.
	again := Replicas{"v0.2.0": 3}.InMessage(msg)
	if want := "served by the Gateway's proxies (4 connected); proxy versions: v0.2.0 on 3 replicas"; again != want {
		t.Errorf("InMessage over an earlier phrase = %q", again)
	}
	if back := Replicas(nil).InMessage(again); back != "served by the Gateway's proxies (4 connected)" {
		t.Errorf("InMessage without replicas = %q", back)
	}
	if FromMessage("served by the Gateway's proxies (1 connected)") != nil {
		t.Error("FromMessage found versions in a message without any")
	}
}

func TestCollectorExportsBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || families[0].GetName() != "gatehouse_build_info" || len(families[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one gatehouse_build_info series", families)
	}
	m := families[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	i := Get()
	if m.GetGauge().GetValue() != 1 || labels["version"] != i.Version || labels["revision"] != i.Revision || labels["goversion"] != i.GoVersion || len(labels) != 3 {
		t.Errorf("gatehouse_build_info = %v %v, want 1 with version %q, revision %q, goversion %q", labels, m.GetGauge().GetValue(), i.Version, i.Revision, i.GoVersion)
	}
}
