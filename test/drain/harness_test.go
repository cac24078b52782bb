// Package drain holds the proxy to its promise on SIGTERM: taken out of
// service under load, it fails no request. Two real gatehouse-proxy
// processes serve one route table in front of a real backend; clients
// spread over the proxies that an endpoints loop sees ready, as a
// Service's endpoints would be, and one proxy gets SIGTERM mid-run.
package drain

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// buildProxy builds the gatehouse-proxy binary the test runs.
func buildProxy(t *testing.T) string {
	t.Helper()
	bins, err := env.BuildCommands(t.TempDir(), "gatehouse-proxy")
	if err != nil {
		t.Fatalf("the test runs the real binary; fix the build first: %v", err)
	}
	return bins["gatehouse-proxy"]
}

// backend answers / at once, /slow after holding the request for at least
// its hold time and until release is closed, and /ws with an upgrade
// that sends back what it receives.
type backend struct {
	addr     string
	hold     time.Duration
	release  chan struct{}
	slowSeen atomic.Int64
}

func startBackend(t *testing.T, hold time.Duration) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String(), hold: hold, release: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/slow":
		b.slowSeen.Add(1)
		select {
		case <-time.After(b.hold):
		case <-r.Context().Done():
			return
		}
		select {
		case <-b.release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "slow done")
	case "/ws":
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		w.WriteHeader(http.StatusSwitchingProtocols)
		if conn, buf, err := http.NewResponseController(w).Hijack(); err == nil {
			_, _ = io.Copy(conn, buf)
			conn.Close()
		}
	default:
		fmt.Fprint(w, "ok")
	}
}

// table serves every path of port to the backend.
func (b *backend) table(t *testing.T, port int) *routetable.RouteTable {
	t.Helper()
	host, p, _ := net.SplitHostPort(b.addr)
	bp, _ := strconv.Atoi(p)
	return &routetable.RouteTable{
		Gateway: "drain/gw",
		Listeners: []*routetable.Listener{{Name: "http", Port: uint32(port), Protocol: routetable.Protocol_HTTP,
			VirtualHosts: []*routetable.VirtualHost{{Domain: "*", Routes: []*routetable.Route{{
				Source: &routetable.RouteSource{Kind: "HTTPRoute", Namespace: "drain", Name: "all"},
				Match:  &routetable.RouteMatch{Path: &routetable.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routetable.Route_Route{Route: &routetable.RouteAction{
					Backends: []*routetable.WeightedBackend{{Backend: "app", Weight: 1}},
				}},
			}}}}}},
		Backends: []*routetable.Backend{{Name: "app", Protocol: routetable.AppProtocol_HTTP1,
			Endpoints: []*routetable.Endpoint{{Address: host, Port: uint32(bp)}}}},
	}
}

// proxyProcess is a running gatehouse-proxy.
type proxyProcess struct {
	name   string
	addr   string // listener host:port
	admin  string
	cmd    *exec.Cmd
	logf   string
	done   chan struct{}
	exited atomic.Pointer[time.Time]
}

// startProxy runs the gatehouse-proxy binary on ip serving the table
// file, and kills it (by PID) if it still runs when the test ends.
func startProxy(t *testing.T, binary, name, ip string, port int, tableFile string, args ...string) *proxyProcess {
	t.Helper()
	p := &proxyProcess{name: name, addr: net.JoinHostPort(ip, strconv.Itoa(port)), admin: freeAddr(t, "127.0.0.1"),
		logf: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	out, err := os.Create(p.logf)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(binary, append([]string{"--table", tableFile, "--bind-address", ip, "--admin-address", p.admin}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		now := time.Now()
		p.exited.Store(&now)
		out.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.alive() {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			data, _ := os.ReadFile(p.logf)
			t.Logf("%s log:\n%s", name, data)
		}
	})
	return p
}

func (p *proxyProcess) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ready asks /readyz, as a kubelet's readiness probe does.
func (p *proxyProcess) ready(c *http.Client) bool {
	resp, err := c.Get("http://" + p.admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// accepts reports whether the proxy's listener takes a connection.
func (p *proxyProcess) accepts() bool {
	c, err := net.DialTimeout("tcp", p.addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// endpoints plays the endpoints controller: it polls each proxy's /readyz
// every period and lists the ready ones, which clients pick from.
type endpoints struct {
	mu    sync.Mutex
	ready []*proxyProcess
	// dropped is when each proxy was first seen not ready after it was.
	dropped map[*proxyProcess]time.Time
	next    atomic.Uint64
}

func watchEndpoints(proxies []*proxyProcess, period time.Duration, stop <-chan struct{}) *endpoints {
	e := &endpoints{dropped: map[*proxyProcess]time.Time{}}
	probe := &http.Client{Timeout: period}
	go func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			var ready []*proxyProcess
			for _, p := range proxies {
				if p.ready(probe) {
					ready = append(ready, p)
				}
			}
			e.update(ready)
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	return e
}

func (e *endpoints) update(ready []*proxyProcess) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.ready {
		if _, seen := e.dropped[p]; !seen && !slices.Contains(ready, p) {
			e.dropped[p] = time.Now()
		}
	}
	e.ready = ready
}

// droppedAt is when p left the endpoints; zero while it has not.
func (e *endpoints) droppedAt(p *proxyProcess) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped[p]
}

// pick spreads requests over the ready proxies in turn.
func (e *endpoints) pick() *proxyProcess {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.ready) == 0 {
		return nil
	}
	return e.ready[e.next.Add(1)%uint64(len(e.ready))]
}

func (e *endpoints) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.ready)
}

// upgraded is a WebSocket-style connection through a proxy.
type upgraded struct {
	c  net.Conn
	br *bufio.Reader
}

func dialUpgrade(t *testing.T, p *proxyProcess) *upgraded {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through %s: %v %v", p.name, resp, err)
	}
	return &upgraded{c: c, br: br}
}

// echo sends a message and reads its echo.
func (u *upgraded) echo(msg string) error {
	if _, err := fmt.Fprintf(u.c, "%s\n", msg); err != nil {
		return err
	}
	line, err := u.br.ReadString('\n')
	if err != nil {
		return err
	}
	if line != msg+"\n" {
		return fmt.Errorf("echoed %q, want %q", line, msg)
	}
	return nil
}

// freeAddr is a host:port on ip that nothing listens on right now.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("finding a free port on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freePortOn is a port free on every ip.
func freePortOn(t *testing.T, ips ...string) int {
	t.Helper()
	for range 20 {
		_, p, _ := net.SplitHostPort(freeAddr(t, ips[0]))
		ok := true
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			n, _ := strconv.Atoi(p)
			return n
		}
	}
	t.Fatalf("no port free on all of %v", ips)
	return 0
}

func writeTable(t *testing.T, tbl *routetable.RouteTable) string {
	t.Helper()
	data, err := protojson.Marshal(tbl)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "table.json")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
