package drain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	drainDelay   = 1500 * time.Millisecond
	drainTimeout = 10 * time.Second
	// grace is when a kubelet would SIGKILL the proxy: the drain delay
	// and timeout (no preStop hook here).
	grace = drainDelay + drainTimeout
	// probePeriod is how often the endpoints loop asks /readyz.
	probePeriod = 150 * time.Millisecond
	// slowHold is how long the backend holds a long request at least.
	slowHold = 2 * time.Second
	longOnes = 4
)

// SIGTERM to one of two proxies under load fails no request: keep-alive
// and new connections over HTTP/1.1 and HTTP/2 move to the other proxy,
// long requests and an upgraded connection in flight on the drained proxy
// finish after its listeners close, and it exits 0 before the grace.
func TestSIGTERMUnderLoadFailsNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two proxy processes under load (-short)")
	}
	bin := buildProxy(t)
	be := startBackend(t, slowHold)
	port := freePortOn(t, "127.0.0.2", "127.0.0.3")
	tableFile := writeTable(t, be.table(t, port))
	args := []string{"--drain-delay", drainDelay.String(), "--drain-timeout", drainTimeout.String()}
	a := startProxy(t, bin, "proxy-a", "127.0.0.2", port, tableFile, args...)
	b := startProxy(t, bin, "proxy-b", "127.0.0.3", port, tableFile, args...)

	stopEndpoints := make(chan struct{})
	defer close(stopEndpoints)
	eps := watchEndpoints([]*proxyProcess{a, b}, probePeriod, stopEndpoints)
	for deadline := time.Now().Add(30 * time.Second); eps.count() < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the proxies did not both become ready")
		}
	}

	l := startLoad(eps, a)
	defer l.stop()
	time.Sleep(time.Second)

	tunnel := dialUpgrade(t, a)
	if err := tunnel.echo("before"); err != nil {
		t.Fatalf("upgraded connection before SIGTERM: %v", err)
	}
	long := make(chan error, longOnes)
	for range longOnes {
		go func() { long <- getSlow(a) }()
	}
	for deadline := time.Now().Add(10 * time.Second); be.slowSeen.Load() < longOnes; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the long requests did not reach the backend")
		}
	}

	sigterm := time.Now()
	l.markSignal()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The tunnel carries messages all through the drain.
	tunnelErr := make(chan error, 1)
	tunnelStop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-tunnelStop:
				tunnelErr <- nil
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err := tunnel.echo(fmt.Sprintf("during %d", i)); err != nil {
				tunnelErr <- err
				return
			}
		}
	}()

	// Once the endpoints dropped it and the delay is over, the proxy
	// refuses new connections while its long requests and the tunnel
	// still run.
	for a.accepts() {
		if time.Since(sigterm) > grace {
			t.Fatal("the drained proxy still accepts connections after the grace")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !a.alive() {
		t.Fatal("the drained proxy exited with long requests and an upgraded connection in flight")
	}
	close(be.release)
	for range longOnes {
		if err := <-long; err != nil {
			t.Errorf("a long request in flight at SIGTERM: %v", err)
		}
	}
	// With nothing else in flight, the tunnel alone keeps the proxy up.
	time.Sleep(time.Second)
	close(tunnelStop)
	if err := <-tunnelErr; err != nil {
		t.Errorf("the upgraded connection during the drain: %v", err)
	}
	if !a.alive() {
		t.Error("the drained proxy exited while an upgraded connection was open")
	}
	tunnel.c.Close()

	select {
	case <-a.done:
	case <-time.After(time.Until(sigterm.Add(grace))):
		t.Fatalf("the drained proxy still runs at the grace (%s after SIGTERM)", grace)
	}
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the drained proxy exited %d, want 0", code)
	}
	time.Sleep(500 * time.Millisecond)
	l.stop()

	t.Logf("%d requests, %d to %s after SIGTERM; %s exited %s after SIGTERM",
		l.ok.Load()+l.failed.Load(), l.toDrained.Load(), a.name, a.name, a.exited.Load().Sub(sigterm).Round(time.Millisecond))
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed; first: %v", n, n+l.ok.Load(), l.firstFailures())
	}
	if l.ok.Load() < 100 {
		t.Errorf("only %d requests succeeded: the load did not run", l.ok.Load())
	}
	// Clients left: a connection kept to the drained proxy got one more
	// response, which closed it (HTTP/1.1) or came with GOAWAY (HTTP/2;
	// a request may cross the GOAWAY, hence two).
	if conn, n := l.mostAfterDrop(); n > 2 {
		t.Errorf("the connection %s carried %d requests to the drained proxy after the endpoints dropped it: the proxy did not ask its client to leave", conn, n)
	}
	if !b.ready(&http.Client{Timeout: time.Second}) {
		t.Error("the proxy left in service is not ready")
	}
	wantPhases(t, a.logf, "delay", "close", "done")
}

func getSlow(p *proxyProcess) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+"/slow", nil)
	if err != nil {
		return err
	}
	return expect(&http.Client{Timeout: 30 * time.Second}, req, "slow done")
}

// expect sends req and wants 200 with the body want.
func expect(c *http.Client, req *http.Request, want string) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(body) != want {
		return fmt.Errorf("answered %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	return nil
}

// wantPhases: the proxy's log is JSON lines, and its drain logged the
// phases in order.
func wantPhases(t *testing.T, logFile string, want ...string) {
	t.Helper()
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Errorf("a log line is not JSON: %q", line)
			continue
		}
		if ph, ok := rec["phase"].(string); ok {
			got = append(got, ph)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("drain phases logged: %v, want %v", got, want)
	}
}

// load sends requests to the Gateway's address, over keep-alive HTTP/1.1
// connections, a new connection per request, and HTTP/2 with prior
// knowledge (GET and POST alike), until stopped. As through a Service's
// virtual IP, each connection goes to a proxy the endpoints list when it
// is opened, and stays with that proxy until it closes.
type load struct {
	ok, failed atomic.Int64
	// toDrained counts requests sent to the drained proxy after SIGTERM.
	toDrained atomic.Int64
	signalled atomic.Bool
	drained   *proxyProcess
	eps       *endpoints
	mu        sync.Mutex
	failures  []string
	// afterDrop counts, per connection to the drained proxy, the requests
	// it carried that started after the endpoints dropped the proxy.
	afterDrop map[string]int
	done      chan struct{}
	wg        sync.WaitGroup
	once      sync.Once
}

// maxLoad bounds how long the load runs whatever happens.
const maxLoad = 60 * time.Second

func startLoad(eps *endpoints, drained *proxyProcess) *load {
	l := &load{drained: drained, eps: eps, done: make(chan struct{}), afterDrop: map[string]int{}}
	h2 := &http.Protocols{}
	h2.SetUnencryptedHTTP2(true)
	transports := map[string]*http.Transport{
		"keep-alive-1": {},
		"keep-alive-2": {},
		"keep-alive-3": {},
		"new-conn-1":   {DisableKeepAlives: true},
		"new-conn-2":   {DisableKeepAlives: true},
		"h2c-1":        {Protocols: h2},
		"h2c-2":        {Protocols: h2},
	}
	for name, tr := range transports {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			p := eps.pick()
			if p == nil {
				return nil, errors.New("no proxy is ready")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, p.addr)
		}
		l.wg.Add(1)
		go l.run(name, &http.Client{Transport: tr, Timeout: 10 * time.Second})
	}
	go func() {
		select {
		case <-time.After(maxLoad):
			l.stop()
		case <-l.done:
		}
	}()
	return l
}

func (l *load) run(name string, c *http.Client) {
	defer l.wg.Done()
	for i := 0; ; i++ {
		select {
		case <-l.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
		var to, conn string
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			to, conn = i.Conn.RemoteAddr().String(), name+" "+i.Conn.LocalAddr().String()
		}}
		ctx := httptrace.WithClientTrace(context.Background(), trace)
		start := time.Now()
		if err := l.request(ctx, c, i%2 == 1); err != nil {
			l.fail(name, fmt.Sprintf("through %s: %v", to, err))
			continue
		}
		l.ok.Add(1)
		if to == l.drained.addr && l.signalled.Load() {
			l.toDrained.Add(1)
			if d := l.eps.droppedAt(l.drained); !d.IsZero() && start.After(d) {
				l.mu.Lock()
				l.afterDrop[conn]++
				l.mu.Unlock()
			}
		}
	}
}

// request sends GET or POST to the Gateway's address; the transport
// dials a proxy.
func (l *load) request(ctx context.Context, c *http.Client, post bool) error {
	method, payload := http.MethodGet, io.Reader(nil)
	if post {
		method, payload = http.MethodPost, strings.NewReader("payload")
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://gateway.test/", payload)
	if err != nil {
		return err
	}
	return expect(c, req, "ok")
}

func (l *load) fail(name, why string) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 10 {
		l.failures = append(l.failures, name+": "+why)
	}
}

func (l *load) firstFailures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}

func (l *load) markSignal() { l.signalled.Store(true) }

// mostAfterDrop is the most requests one connection carried to the
// drained proxy after the endpoints dropped it.
func (l *load) mostAfterDrop() (conn string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c, k := range l.afterDrop {
		if k > n {
			conn, n = c, k
		}
	}
	return conn, n
}

// stop ends the load and waits for its requests.
func (l *load) stop() {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
}
