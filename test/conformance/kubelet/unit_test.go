package kubelet

import (
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for in, want := range map[string]string{
		"plain":          "plain",
		"$(A)-$(B)":      "1-two",
		"$(MISSING)":     "$(MISSING)",
		"$$(A)":          "$(A)",
		"cost $5":        "cost $5",
		"open $(A":       "open $(A",
		"trailing $":     "trailing $",
		"$(A)$(A)$$$(B)": "11$two",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImageBaseName(t *testing.T) {
	for in, want := range map[string]string{
		"registry.k8s.io/gateway-api/conformance/echo-basic:v0.1.0": "echo-basic",
		"echo-basic":                          "echo-basic",
		"localhost:5000/echo-basic":           "echo-basic",
		"gcr.io/x/echo-advanced@sha256:abcd":  "echo-advanced",
		"gcr.io/x/echo-advanced:v1@sha256:ab": "echo-advanced",
	} {
		if got := imageBaseName(in); got != want {
			t.Errorf("imageBaseName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIPPool(t *testing.T) {
	p, err := newIPPool("10.244.0.0/23")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for range 508 { // 512 minus .0 and .255 of both /24s
		a, err := p.allocate(netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if b := a.As4()[3]; b == 0 || b == 255 || seen[a] {
			t.Fatalf("allocated %s (seen before: %v)", a, seen[a])
		}
		seen[a] = true
	}
	if _, err := p.allocate(netip.Addr{}); err == nil {
		t.Fatal("allocated from an exhausted pool")
	}
	p.release(netip.MustParseAddr("10.244.1.7"))
	if a, _ := p.allocate(netip.MustParseAddr("10.244.1.7")); a != netip.MustParseAddr("10.244.1.7") {
		t.Errorf("preferred free address not given: %s", a)
	}
	if _, err := newIPPool("10.244.254.1/32"); err == nil {
		t.Error("accepted a /32 pool")
	}
}

func TestWriteLogs(t *testing.T) {
	base := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	entries := []logEntry{
		{time: base, stream: "stdout", line: "one"},
		{time: base.Add(2 * time.Second), stream: "stderr", line: "two"},
		{time: base.Add(3 * time.Second), stream: "stdout", line: "thr", partial: true},
		{time: base.Add(3 * time.Second), stream: "stdout", line: "ee"},
	}
	for query, want := range map[string]string{
		"":                                      "one\ntwo\nthree\n",
		"sinceTime=2025-01-01T10:00:01Z":        "two\nthree\n",
		"tailLines=1":                           "ee\n",
		"stream=Stderr":                         "two\n",
		"limitBytes=6":                          "one\ntw",
		"timestamps=true&tailLines=1":           "2025-01-01T10:00:03Z ee\n",
		"sinceTime=2025-01-01T11:00:00Z":        "",
		"follow=true&stream=Stdout&tailLines=2": "three\n",
	} {
		q, _ := url.ParseQuery(query)
		o, err := parseLogOptions(q, base)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		var b strings.Builder
		if err := writeLogs(&b, entries, o); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("%q: got %q, want %q", query, b.String(), want)
		}
	}
	for _, bad := range []string{"sinceTime=yesterday", "tailLines=-1", "limitBytes=0", "stream=Both"} {
		q, _ := url.ParseQuery(bad)
		if _, err := parseLogOptions(q, base); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestPodPhase(t *testing.T) {
	running := corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	waiting := corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}
	crashed := corev1.ContainerStatus{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
	}
	ok := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}
	failed := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}}
	for _, c := range []struct {
		statuses []corev1.ContainerStatus
		policy   corev1.RestartPolicy
		want     corev1.PodPhase
	}{
		{[]corev1.ContainerStatus{running, waiting}, corev1.RestartPolicyAlways, corev1.PodPending},
		{[]corev1.ContainerStatus{running, crashed}, corev1.RestartPolicyAlways, corev1.PodRunning},
		{[]corev1.ContainerStatus{ok, running}, corev1.RestartPolicyNever, corev1.PodRunning},
		{[]corev1.ContainerStatus{ok, ok}, corev1.RestartPolicyNever, corev1.PodSucceeded},
		{[]corev1.ContainerStatus{ok, failed}, corev1.RestartPolicyNever, corev1.PodFailed},
		{[]corev1.ContainerStatus{failed}, corev1.RestartPolicyOnFailure, corev1.PodRunning},
		{[]corev1.ContainerStatus{ok}, corev1.RestartPolicyOnFailure, corev1.PodSucceeded},
	} {
		if got := podPhase(c.statuses, c.policy); got != c.want {
			t.Errorf("podPhase(%+v, %s) = %s, want %s", c.statuses, c.policy, got, c.want)
		}
	}
}

func TestOverlaysFor(t *testing.T) {
	scratch := t.TempDir()
	mounts := []mountSpec{
		{target: "/etc/a-missing-dir/x"},
		{target: "/etc/another-missing"},
		{target: "/etc/another-missing/nested"}, // inside the volume above
		{target: "/etc"},                        // exists
	}
	got, err := overlaysFor(mounts, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "/etc" {
		t.Errorf("overlays = %v, want [/etc]", got)
	}
	if _, err := overlaysFor([]mountSpec{{target: "/no-such-top-level-dir"}}, scratch); err == nil {
		t.Error("accepted a new top-level directory")
	}
	if _, err := overlaysFor([]mountSpec{{target: filepath.Join(filepath.Dir(scratch), "missing")}}, scratch); err == nil {
		t.Error("accepted an overlay over the state directory")
	}
}
