package xds_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

const tableName = "member-1/infra/shared"

// TestPushToARealProxy runs gatehouse-proxy as a process against an
// in-test push server and real HTTP backends, through the life of a proxy:
// first table, a change under load, a table it cannot apply, the hub going
// away, and a restart from its cache while the hub is still away.
func TestPushToARealProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs gatehouse-proxy")
	}
	bin := buildProxy(t)
	v1, v2 := backend(t, "v1"), backend(t, "v2")
	listenPort := freePort(t)

	hub := startHub(t)
	proxyArgs := []string{
		"--xds-address", hub.addr, "--cluster", "member-1", "--gateway", "infra/shared",
		"--cache-dir", t.TempDir(), "--bind-address", "127.0.0.1", "--xds-ca-file", hub.caFile,
		"--admin-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--drain-timeout", "2s",
	}
	proxy := startProcess(t, bin, proxyArgs...)

	h1 := hub.set(t, routeTo(listenPort, v1))
	waitFor(t, 10*time.Second, "table v1 served", func() bool { return get(listenPort) == "v1" })
	waitFor(t, 5*time.Second, "v1 acknowledged", func() bool { return hub.srv.Status(tableName).Acked[tableName] == h1 })

	t.Run("a new version under load drops nothing", func(t *testing.T) {
		load := startLoad(listenPort, 4)
		time.Sleep(300 * time.Millisecond)
		pushed := time.Now()
		h2 := hub.set(t, routeTo(listenPort, v2))
		waitFor(t, 5*time.Second, "table v2 served", func() bool { return get(listenPort) == "v2" })
		took := time.Since(pushed)
		time.Sleep(300 * time.Millisecond)
		ok, failed, firstErr := load.stop()
		t.Logf("v2 served %v after the push; %d requests during the change, %d failed", took.Round(time.Millisecond), ok+failed, failed)
		if failed != 0 {
			t.Errorf("%d of %d requests failed during the change; first: %v", failed, ok+failed, firstErr)
		}
		if ok < 50 {
			t.Errorf("only %d requests ran during the change: the load loop did not load", ok)
		}
		if took > time.Second {
			t.Errorf("v2 took %v to be served", took)
		}
		waitFor(t, 5*time.Second, "v2 acknowledged", func() bool { return hub.srv.Status(tableName).Acked[tableName] == h2 })
	})

	t.Run("a listener whose port is taken costs only that listener", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		busy := uint32(taken.Addr().(*net.TCPAddr).Port)
		tbl := routeTo(listenPort, v1)
		tbl.Listeners = append(tbl.Listeners, &rt.Listener{Name: "extra", Port: busy, Protocol: rt.Protocol_HTTP, VirtualHosts: tbl.Listeners[0].VirtualHosts})
		h := hub.set(t, tbl)
		waitFor(t, 5*time.Second, "the version acknowledged, with the listener not served", func() bool {
			r := hub.srv.Status(tableName).Replicas
			return len(r) == 1 && r[0].Acked[tableName] == h && strings.Contains(r[0].NotServed[tableName]["extra"], fmt.Sprintf("binding listener port %d", busy))
		})
		if n := hub.srv.Status(tableName).Nack; n != nil {
			t.Errorf("the version was rejected: %s", n.Message)
		}
		if got := get(listenPort); got != "v1" {
			t.Errorf("the other listener serves %q, want the new version's v1", got)
		}
		taken.Close()
		waitFor(t, 15*time.Second, "the freed port bound and reported", func() bool {
			r := hub.srv.Status(tableName).Replicas
			return len(r) == 1 && len(r[0].NotServed) == 0 && get(busy) == "v1"
		})
	})

	t.Run("a route that does not compile costs only that route", func(t *testing.T) {
		// Go compiles this expression alone but not anchored: a hub that
		// checked it alone once let it through to every proxy.
		deep := strings.Repeat("(", 999) + "a" + strings.Repeat(")", 999)
		tbl := routeTo(listenPort, v1)
		vh := tbl.Listeners[0].VirtualHosts[0]
		vh.Routes = append([]*rt.Route{{
			Match:  &rt.RouteMatch{Path: &rt.RouteMatch_Prefix{Prefix: "/"}, Headers: []*rt.HeaderMatcher{{Name: "X-Tenant", Value: &rt.HeaderMatcher_Regex{Regex: deep}}}},
			Action: vh.Routes[0].Action,
			Source: &rt.RouteSource{Kind: "HTTPRoute", Namespace: "tenant-a", Name: "deep", Generation: 4},
		}}, vh.Routes...)
		h := hub.set(t, tbl)
		waitFor(t, 5*time.Second, "the version acknowledged, with the route not served", func() bool {
			r := hub.srv.Status(tableName).Replicas
			return len(r) == 1 && r[0].Acked[tableName] == h &&
				strings.Contains(r[0].RoutesNotServed[tableName]["HTTPRoute/tenant-a/deep@4"], "is 1999 bytes long and at most 1024 are allowed")
		})
		if n := hub.srv.Status(tableName).Nack; n != nil {
			t.Errorf("the version was rejected: %s", n.Message)
		}
		if got := get(listenPort); got != "v1" {
			t.Errorf("the other route serves %q, want v1", got)
		}
	})

	t.Run("a table that cannot be applied is rejected and the old one serves", func(t *testing.T) {
		bad := routeTo(listenPort, v2)
		bad.Backends[0].Endpoints[0].Address = "not-an-address"
		hub.set(t, bad)
		waitFor(t, 5*time.Second, "the rejection recorded", func() bool {
			n := hub.srv.Status(tableName).Nack
			return n != nil && strings.Contains(n.Message, "not-an-address")
		})
		if got := get(listenPort); got != "v1" {
			t.Errorf("after the rejection the proxy serves %q, want v1", got)
		}
	})

	t.Run("the hub going away changes nothing", func(t *testing.T) {
		hub.stop()
		load := startLoad(listenPort, 2)
		time.Sleep(time.Second)
		ok, failed, firstErr := load.stop()
		if failed != 0 || ok == 0 {
			t.Errorf("with the hub gone: %d ok, %d failed (%v)", ok, failed, firstErr)
		}
	})

	t.Run("a restarted proxy serves its cache before the hub answers", func(t *testing.T) {
		proxy.stop(t)
		if get(listenPort) != "" {
			t.Fatal("the old proxy still answers")
		}
		startProcess(t, bin, proxyArgs...)
		waitFor(t, 10*time.Second, "cached table served", func() bool { return get(listenPort) == "v1" })
	})
}

type hubServer struct {
	srv  *xds.Server
	g    *grpc.Server
	addr string
	// caFile verifies the server's certificate: the channel is TLS, as in
	// production.
	caFile string
}

func startHub(t *testing.T) *hubServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveHub(t, ln, xds.NewServer(t.Context(), nil, nil))
}

func serveHub(t *testing.T, ln net.Listener, srv *xds.Server) *hubServer {
	cert, caFile := testCA(t)
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	h := &hubServer{srv: srv, g: grpc.NewServer(xds.ServerOptions(creds)...), addr: ln.Addr().String(), caFile: caFile}
	h.srv.Register(h.g)
	go func() { _ = h.g.Serve(ln) }()
	t.Cleanup(h.stop)
	return h
}

func (h *hubServer) stop() { h.g.Stop() }

func (h *hubServer) set(t *testing.T, table *rt.RouteTable) string {
	t.Helper()
	hash, err := h.srv.SetTable(table)
	if err != nil {
		t.Fatal(err)
	}
	return hash
}

func routeTo(port uint32, b *httptest.Server) *rt.RouteTable {
	host, p, _ := net.SplitHostPort(strings.TrimPrefix(b.URL, "http://"))
	bp, _ := strconv.Atoi(p)
	return &rt.RouteTable{
		Name: tableName, Gateway: "infra/shared",
		Listeners: []*rt.Listener{{Name: "http", Port: port, Protocol: rt.Protocol_HTTP, VirtualHosts: []*rt.VirtualHost{{
			Domain: "*",
			Routes: []*rt.Route{{
				Match:  &rt.RouteMatch{Path: &rt.RouteMatch_Prefix{Prefix: "/"}},
				Action: &rt.Route_Route{Route: &rt.RouteAction{Backends: []*rt.WeightedBackend{{Backend: "echo", Weight: 1}}}},
			}},
		}}}},
		Backends: []*rt.Backend{{Name: "echo", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{{Address: host, Port: uint32(bp)}}}},
	}
}

func backend(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(s.Close)
	return s
}

var client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// get returns the body of GET / on the listener, or "" on any failure.
func get(port uint32) string {
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// startLoad sends requests from n workers until stopped, bounded to 60s.
func startLoad(port uint32, n int) *load {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	l := &load{cancel: cancel}
	for range n {
		l.wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, err)
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

func (l *load) stop() (ok, failed int64, first any) {
	l.cancel()
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.firstErr.Load()
}

type process struct{ cmd *exec.Cmd }

func startProcess(t *testing.T, bin string, args ...string) *process {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd}
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("proxy log:\n%s", out)
		}
	})
	return p
}

func (p *process) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Error("the proxy did not stop within 10s of SIGTERM")
	}
}

func buildProxy(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "gatehouse-proxy")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/gatehouse-dev/gatehouse/cmd/gatehouse-proxy").CombinedOutput()
	if err != nil {
		t.Fatalf("building gatehouse-proxy: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) uint32 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
