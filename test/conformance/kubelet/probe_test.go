package kubelet

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestProbeThresholds: the verdict turns after successThreshold successes
// or failureThreshold failures in a row, and not before.
func TestProbeThresholds(t *testing.T) {
	var healthy atomic.Bool
	var sinceSwitch atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sinceSwitch.Add(1)
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	addr := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	c := corev1.Container{Ports: []corev1.ContainerPort{{Name: "health", ContainerPort: int32(addr.Port())}}}
	p, err := newProbe(&corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("health")}},
		SuccessThreshold: 2, FailureThreshold: 3}, c)
	if err != nil {
		t.Fatal(err)
	}
	p.period = 5 * time.Millisecond
	type verdict struct {
		ok    bool
		tries int32
		err   error
	}
	verdicts := make(chan verdict, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	healthy.Store(true)
	go p.watch(ctx, target{ip: addr.Addr()}, false, func(ok bool, err error) {
		verdicts <- verdict{ok, sinceSwitch.Swap(0), err}
		healthy.Store(!ok)
	})
	for _, want := range []verdict{{ok: true, tries: 2}, {ok: false, tries: 3}, {ok: true, tries: 2}} {
		select {
		case got := <-verdicts:
			if got.ok != want.ok || got.tries != want.tries {
				t.Fatalf("verdict %v after %d probes, want %v after %d", got.ok, got.tries, want.ok, want.tries)
			}
			if !got.ok && (got.err == nil || !strings.Contains(got.err.Error(), "statuscode: 500")) {
				t.Fatalf("a failing verdict says %v, want the status code", got.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no verdict %v", want.ok)
		}
	}
}

func TestHandlers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound)
		case "/host":
			if r.Host != "probe.example" || r.Header.Get("X-Probe") != "1" {
				w.WriteHeader(http.StatusBadRequest)
			}
		case "/missing":
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	up := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	closed := closedPort(t)
	get := func(path string, headers ...corev1.HTTPHeader) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(int32(up.Port())), HTTPHeaders: headers}}
	}
	tcp := func(port int) corev1.ProbeHandler {
		return corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}}
	}
	for _, c := range []struct {
		name string
		h    corev1.ProbeHandler
		ok   bool
	}{
		{"a redirect is a success, not followed", get("/moved"), true},
		{"Host and headers", get("/host", corev1.HTTPHeader{Name: "Host", Value: "probe.example"}, corev1.HTTPHeader{Name: "X-Probe", Value: "1"}), true},
		{"404", get("/missing"), false},
		{"tcp open", tcp(int(up.Port())), true},
		{"tcp closed", tcp(closed), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := newHandler(c.h, corev1.Container{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := h.run(ctx, target{ip: up.Addr()}); (err == nil) != c.ok {
				t.Fatalf("run: %v, want success %v", err, c.ok)
			}
		})
	}
	t.Run("sleep ends with its context", func(t *testing.T) {
		h, err := newHook(corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 3600}}, corev1.Container{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := h.run(ctx, target{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("sleep after its context ended: %v", err)
		}
	})
}

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestLifecycleRefuses: what the fake kubelet cannot carry out keeps the
// container waiting with a reason, instead of being skipped.
func TestLifecycleRefuses(t *testing.T) {
	grpc := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}}}
	for _, c := range []struct {
		name string
		c    corev1.Container
		want string
	}{
		{"startup probe", corev1.Container{StartupProbe: &corev1.Probe{}}, "startup probes"},
		{"gRPC readiness", corev1.Container{ReadinessProbe: grpc}, "readinessProbe: gRPC probes"},
		{"unknown named port", corev1.Container{LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
			HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("admin")}}}}, `livenessProbe: port "admin" is not a named port`},
		{"tcpSocket hook", corev1.Container{Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{}}}}, "lifecycle.preStop: tcpSocket"},
		{"postStart", corev1.Container{Lifecycle: &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}}}}, "postStart"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := newLifecycle(&corev1.Pod{}, c.c, time.Minute)
			var w *waitingError
			if !errors.As(err, &w) || w.reason != "CreateContainerConfigError" || !strings.Contains(w.message, c.want) {
				t.Fatalf("got %v, want CreateContainerConfigError saying %q", err, c.want)
			}
		})
	}
}

func TestGracePeriod(t *testing.T) {
	for _, c := range []struct {
		seconds *int64
		max     time.Duration
		want    time.Duration
	}{
		{nil, time.Minute, 30 * time.Second},
		{ptr.To[int64](10), time.Minute, 10 * time.Second},
		{ptr.To[int64](60), 5 * time.Second, 5 * time.Second},
		{ptr.To[int64](-1), time.Minute, 0},
	} {
		if got := gracePeriod(c.seconds, c.max); got != c.want {
			t.Errorf("gracePeriod(%v, %v) = %v, want %v", ptr.Deref(c.seconds, -99), c.max, got, c.want)
		}
	}
}
