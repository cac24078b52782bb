package proxy_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// A backend at its connection limit with a full queue: the requests beyond
// both are answered 503 at once and counted, the others are served when
// the backend catches up.
func TestBackendCircuitBreaker(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	var mu sync.Mutex
	inFlight, most := 0, 0
	slow := newMisbehaving(t, func(c net.Conn, req *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		io.WriteString(c, answerFor(req.Header.Get("X-Request-Id")))
	})
	port := freePort(t)
	tbl := oneRoute(port, slow.backend("ns/slow:80"))
	tbl.Limits = &rt.Limits{MaxConnectionsPerBackend: 4, MaxPendingRequestsPerBackend: 2}
	reg := prometheus.NewRegistry()
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", DrainTimeout: time.Second, Registry: reg})
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	t.Cleanup(free) // first: a failing test still lets the backend answer

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 20}}
	const total = 10
	codes := make(chan int, total)
	var wg sync.WaitGroup
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, got, err := send(client, port, "GET", fmt.Sprint(i), 0, false)
			if err != nil || (code == 200 && got != fmt.Sprint(i)) {
				t.Errorf("request %d: %d %q %v", i, code, got, err)
			}
			codes <- code
		}()
	}
	// 4 in flight + 2 waiting: the other 4 are refused while the backend
	// holds every answer.
	refused := 0
	deadline := time.After(5 * time.Second)
	for refused < total-6 {
		select {
		case code := <-codes:
			if code != http.StatusServiceUnavailable {
				t.Fatalf("got %d while the backend was full, want 503", code)
			}
			refused++
		case <-deadline:
			t.Fatalf("%d requests refused within 5s, want %d at once", refused, total-6)
		}
	}
	free()
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("a request within the limits got %d, want 200", code)
		}
	}
	if most > 4 {
		t.Errorf("the backend saw %d requests at once, the limit is 4", most)
	}
	if n := overflowCount(t, reg, "ns/slow:80"); n != total-6 {
		t.Errorf("gatehouse_proxy_backend_overflow_total{backend=\"ns/slow:80\"} = %v, want %d", n, total-6)
	}
}

func overflowCount(t *testing.T, reg *prometheus.Registry, backend string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "gatehouse_proxy_backend_overflow_total" {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "backend" && l.GetValue() == backend {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
