package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/operator/members"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestObservability runs the hub and a proxy as in production and checks
// what an operator watches: the hub's metrics name the member and its
// Gateway — engaged, last synced, token expiry, proxies connected — and
// drop them when the member leaves; and every line either process writes
// is a JSON object, whichever library wrote it (the certificate authority
// through the default slog logger, a failed TLS handshake through Go's log
// package; internal/jsonlog's test covers klog and gRPC).
func TestObservability(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse", "gatehouse-proxy")
	fleet, err := env.Start(ctx, env.Options{Members: 1, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	hubClient, err := client.New(fleet.Hub.Config, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	logs := &lines{t: t}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	webhookAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hub, err := env.StartProcess("hub", bins["gatehouse"], []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", xdsAddr,
		"--metrics-address", metricsAddr, "--health-address", "0", "--webhook-address", webhookAddr, "--leader-elect",
		"--debounce", "20ms", "--startup-grace", "1s"}, logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Stop(10 * time.Second) })
	m, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{{Namespace: "shop", Hostname: "a.apps.example.test", Answer: "member-1"}},
		env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: xdsAddr, CAFile: pushCA(t, ctx, fleet), CacheDir: t.TempDir(), Log: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	// The member's token expires in 5 days, as `gatehousectl join` notes.
	expires := time.Now().Add(5 * 24 * time.Hour).UTC().Truncate(time.Second)
	var secret corev1.Secret
	key := client.ObjectKey{Namespace: env.HubNamespace, Name: fleet.Members[0].Name}
	if err := hubClient.Get(ctx, key, &secret); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(secret.DeepCopy())
	secret.Annotations = map[string]string{members.AnnotationTokenExpires: expires.Format(time.RFC3339)}
	if err := hubClient.Patch(ctx, &secret, patch); err != nil {
		t.Fatal(err)
	}

	member := fleet.Members[0].Name
	want := []string{
		fmt.Sprintf(`gatehouse_hub_cluster_engaged{cluster=%q} 1`, member),
		fmt.Sprintf(`gatehouse_hub_gateway_proxies{cluster=%q,gateway="infra/shared"} 1`, member),
		fmt.Sprintf(`gatehouse_hub_gateway_rejected{cluster=%q,gateway="infra/shared"} 0`, member),
		fmt.Sprintf(`gatehouse_hub_member_token_expiry_timestamp_seconds{cluster=%q} %s`, member, promFloat(expires.Unix())),
		fmt.Sprintf(`gatehouse_hub_cluster_last_sync_success_timestamp_seconds{cluster=%q} `, member),
	}
	waitFor(t, 90*time.Second, "the hub's metrics of member-1 and its Gateway", func() bool {
		return hasAll(scrape(metricsAddr), want)
	})

	// A client that is no API server: the webhook's TLS handshake fails and
	// net/http says so through Go's log package.
	if conn, err := net.Dial("tcp", webhookAddr); err == nil {
		_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		_, _ = io.Copy(io.Discard, conn)
		_ = conn.Close()
	}

	// The member leaves: every series naming it goes.
	if err := hubClient.Delete(ctx, &secret); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the series of member-1 to go", func() bool {
		out := scrape(metricsAddr)
		return out != "" && !strings.Contains(out, fmt.Sprintf(`cluster=%q`, member))
	})

	_ = m.Proxy.Stop(10 * time.Second)
	_ = hub.Stop(10 * time.Second)
	logs.wantAllJSON(t, []string{"hub", "member-1/proxy"}, "created CA", "TLS handshake error")
}

func scrape(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func hasAll(s string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// promFloat writes a whole number of seconds as the Prometheus text
// format does.
func promFloat(v int64) string {
	return strconv.FormatFloat(float64(v), 'g', -1, 64)
}

// lines collects what processes write (StartProcess puts "[name] " before
// each line) and shows it in the test log.
type lines struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	return testLog{l.t}.Write(p)
}

// wantAllJSON checks that every line is a JSON object with a level and a
// message, that each process wrote some, and that lines with each of the
// message fragments given were among them.
func (l *lines) wantAllJSON(t *testing.T, processes []string, sources ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	n := 0
	s := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		line := s.Text()
		if name, rest, ok := strings.Cut(line, "] "); ok && strings.HasPrefix(line, "[") {
			seen["["+name[1:]+"]"] = true
			line = rest
		}
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil || entry["level"] == nil || entry["msg"] == nil {
			t.Errorf("not a JSON log line: %s", s.Text())
			continue
		}
		n++
		for _, src := range sources {
			if strings.Contains(fmt.Sprint(entry["msg"]), src) {
				seen[src] = true
			}
		}
	}
	for _, p := range processes {
		if !seen["["+p+"]"] {
			t.Errorf("%s wrote no log line", p)
		}
	}
	for _, src := range sources {
		if !seen[src] {
			t.Errorf("no log line from %q: the test did not exercise that logger", src)
		}
	}
	t.Logf("%d JSON log lines", n)
}
