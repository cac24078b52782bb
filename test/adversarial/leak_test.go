package adversarial

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// interimBackend answers every request with its own X-Request-Id, header
// and body, and before the answer sends interim responses chosen by the
// id: none, 100 Continue (asked for or not), 103 Early Hints, or both, at
// times in a segment of their own. A request that arrives with Expect is
// answered with the id "expect-forwarded".
func interimBackend(t testing.TB) *rawBackend {
	return startRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		bw := bufio.NewWriter(c)
		for {
			sr, err := readRequest(br)
			if err != nil {
				return
			}
			id := sr.req.Header.Get("X-Request-Id")
			if sr.req.Header.Get("Expect") != "" {
				id = "expect-forwarded"
			}
			h := fnv.New32a()
			io.WriteString(h, id)
			n := h.Sum32()
			switch n % 4 {
			case 1:
				bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			case 2:
				bw.WriteString("HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n")
			case 3:
				bw.WriteString("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </app.js>; rel=preload\r\n\r\n")
			}
			if n%16 >= 14 {
				bw.Flush() // the interim responses in a segment of their own
			}
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", id, len(id), id)
			if bw.Flush() != nil {
				return
			}
		}
	})
}

// TestCrossTenantLeak is the leak issue 15 is about: two tenants' routes
// (two hostnames on one table) point at one shared Service; clients of
// both send 100,000 requests concurrently, with Expect: 100-continue from
// clients and 100/103 from the backend mixed in. Every response must
// carry the id of its own request. Before the fix, a 1xx was read as the
// final response and the real one left for the next request on the pooled
// backend connection, whichever tenant it came from.
func TestCrossTenantLeak(t *testing.T) {
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	runCases(t, "backend", []adversarialCase{{"cross-tenant-leak",
		fmt.Sprintf("every response carries its own request's id (%d,%03d requests, 2 tenants, 1 shared Service)", total/1000, total%1000),
		func(t *testing.T) {
			be := interimBackend(t)
			port := freePort(t)
			const shared = "shared/api:80"
			tenantRoute := func(tenant string) *routetable.Route {
				r := prefixRoute("app", "/", shared)
				r.Source.Namespace = tenant
				return r
			}
			// A plain Service port: the hub sends HTTP1, served by the lean
			// HTTP/1.1 transport whose pooled connections both tenants share.
			backend := backendAt(t, shared, be.addr)
			backend.Protocol = routetable.AppProtocol_HTTP1
			startProxy(t, proxyOptions{}, table([]*routetable.Listener{
				httpListener("http", port, "", vhost("a.tenant.example", tenantRoute("tenant-a")), vhost("b.tenant.example", tenantRoute("tenant-b"))),
			}, backend))

			const workersPerTenant = 16
			perWorker := total / (2 * workersPerTenant)
			var (
				wg       sync.WaitGroup
				sent     atomic.Int64
				failures atomic.Int64
				crossed  atomic.Int64 // responses naming another request
				expects  atomic.Int64
			)
			began := time.Now()
			for _, tenant := range []string{"a", "b"} {
				tr := &http.Transport{MaxIdleConnsPerHost: workersPerTenant, ExpectContinueTimeout: 10 * time.Second}
				t.Cleanup(tr.CloseIdleConnections)
				client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				for w := range workersPerTenant {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range perWorker {
							id := fmt.Sprintf("%s-%d-%d", tenant, w, i)
							// Every third request uploads a body with Expect:
							// 100-continue, as curl does for large uploads.
							withExpect := i%3 == 0
							if withExpect {
								expects.Add(1)
							}
							sent.Add(1)
							if other, err := leakProbe(client, port, tenant+".tenant.example", id, withExpect); err != nil {
								if other {
									crossed.Add(1)
								}
								if failures.Add(1) <= 10 {
									t.Errorf("tenant %s: %v", tenant, err)
								}
							}
						}
					}()
				}
			}
			wg.Wait()
			t.Logf("%d requests (%d with Expect: 100-continue) from %d clients of two tenants in %s; %d did not get their own response, %d of them got another request's",
				sent.Load(), expects.Load(), 2*workersPerTenant, time.Since(began).Round(time.Millisecond), failures.Load(), crossed.Load())
			if n := failures.Load(); n > 0 {
				t.Fatalf("%d of %d requests did not get their own response", n, sent.Load())
			}
		}}})
}

// leakProbe sends one request and checks that its response is its own;
// other says the response named another request.
func leakProbe(client *http.Client, port uint32, host, id string, withExpect bool) (other bool, err error) {
	method, body := "GET", io.Reader(nil)
	if withExpect {
		method, body = "POST", strings.NewReader("upload of "+id)
	}
	req, err := http.NewRequest(method, "http://"+listenerAddr(port)+"/orders", body)
	if err != nil {
		return false, err
	}
	req.Host = host
	req.Header.Set("X-Request-Id", id)
	if withExpect {
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("request %s: %v", id, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, fmt.Errorf("request %s: reading the response: %v", id, err)
	}
	if got := resp.Header.Get("X-Request-Id"); resp.StatusCode != http.StatusOK || got != id || string(data) != id {
		return got != "" && got != id, fmt.Errorf("request %s got status %d, X-Request-Id %q, body %q", id, resp.StatusCode, resp.Header.Get("X-Request-Id"), data)
	}
	return false, nil
}
