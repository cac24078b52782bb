package proxy_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// TestNewServerLimitsDropNoRequest: a version that changes the listeners'
// server settings (header and idle timeouts, header size) starts new
// servers on the same sockets and lets the old ones finish: requests in
// flight across two such changes all succeed, on kept-alive connections
// too, and the new settings hold for new connections.
func TestNewServerLimitsDropNoRequest(t *testing.T) {
	be := newEcho(t, "slow")
	port := freePort(t)
	const js = `{"gateway":"ns/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP","virtualHosts":[{"domain":"*","routes":[
		{"match":{"prefix":"/"},"route":{"backends":[{"backend":"slow","weight":1}]}}]}]}]}`
	version := func(header, idle time.Duration) *rt.RouteTable {
		tbl := table(t, port, js, be)
		tbl.Limits = &rt.Limits{RequestHeaderTimeout: rt.Millis(header), IdleTimeout: rt.Millis(idle)}
		return tbl
	}
	p := start(t, version(10*time.Second, time.Minute))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	url := fmt.Sprintf("http://127.0.0.1:%d/?delay=200ms", port)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// POST: the client does not retry it on a closed connection.
				resp, err := client.Post(url, "text/plain", strings.NewReader("x"))
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.Apply("v2", []*rt.RouteTable{version(500*time.Millisecond, 30*time.Second)}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.Apply("v3", []*rt.RouteTable{version(500*time.Millisecond, 20*time.Second)}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed across the changes (first: %v), %d succeeded; want none failed", failed.Load(), firstErr.Load(), ok.Load())
	}

	// The new header timeout holds: a client that never finishes its
	// headers is closed after 0.5s, not 10s.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("a client with unfinished headers was not closed within 5s under a 0.5s header timeout: %v", err)
	}
}
