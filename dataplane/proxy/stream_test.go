package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// lineBackend is a TCP backend that answers each line with "name:line",
// and once the client has sent its end, "name:bye", then closes.
type lineBackend struct {
	name  string
	ln    net.Listener
	conns atomic.Int64
}

func newLineBackend(t *testing.T, name string) *lineBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveLines(t, name, ln)
}

// serveLines serves a lineBackend on ln.
func serveLines(t *testing.T, name string, ln net.Listener) *lineBackend {
	b := &lineBackend{name: name, ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			go b.serve(c)
		}
	}()
	return b
}

func (b *lineBackend) serve(c net.Conn) {
	defer c.Close()
	echoLinesAs(c, c, b.name)
}

// echoLinesAs answers each line read from r on w as "name:line", and
// "name:bye" at the end of r.
func echoLinesAs(r io.Reader, w io.Writer, name string) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			fmt.Fprintf(w, "%s:bye\n", name)
			return
		}
		fmt.Fprintf(w, "%s:%s", name, line)
	}
}

func (b *lineBackend) port() uint32 { return uint32(b.ln.Addr().(*net.TCPAddr).Port) }

func (b *lineBackend) backend() *rt.Backend {
	return &rt.Backend{Name: b.name, Endpoints: []*rt.Endpoint{{Address: "127.0.0.1", Port: b.port()}}}
}

// streamTable builds a table from JSON where PORT is port, with backends.
func streamTable(t *testing.T, port uint32, js string, backends ...*rt.Backend) *rt.RouteTable {
	t.Helper()
	tbl := &rt.RouteTable{}
	if err := protojson.Unmarshal([]byte(strings.ReplaceAll(js, "PORT", strconv.Itoa(int(port)))), tbl); err != nil {
		t.Fatalf("table: %v", err)
	}
	tbl.Backends = append(tbl.Backends, backends...)
	return tbl
}

// tcpListener is a table with one TCP listener on PORT whose route's
// shares are backends (JSON).
func tcpListener(shares string) string {
	return `{"gateway":"infra/gw","listeners":[{"name":"tcp","port":PORT,"protocol":"TCP","streamRoutes":[
		{"source":{"kind":"TCPRoute","namespace":"apps","name":"db"},"backends":[` + shares + `]}]}]}`
}

// talk sends line and returns the answer line, "" if the connection
// ended first.
func talk(t *testing.T, c net.Conn, line string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return ""
	}
	got, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n")
}

func dialPort(t *testing.T, port uint32) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedAtOnce reports whether the proxy closed c without a byte.
func closedAtOnce(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	return n == 0 && err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestTCPRelaysBothWaysAndPassesEachEnd(t *testing.T) {
	b := newLineBackend(t, "db")
	port := freePort(t)
	start(t, streamTable(t, port, tcpListener(`{"backend":"db","weight":1}`), b.backend()))
	c := dialPort(t, port)
	for _, line := range []string{"hello", strings.Repeat("x", 100<<10)} {
		if got := talk(t, c, line); got != "db:"+line {
			t.Fatalf("answer %.40q, want db:%.37s", got, line)
		}
	}
	// The client's end reaches the backend, which still answers.
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(c)
	if string(rest) != "db:bye\n" || err != nil {
		t.Errorf("after the client's end: %q, %v; want the backend's last words and its end", rest, err)
	}
}

func TestTCPSharesConnectionsByWeight(t *testing.T) {
	heavy, light := newLineBackend(t, "heavy"), newLineBackend(t, "light")
	port := freePort(t)
	start(t, streamTable(t, port, tcpListener(`{"backend":"heavy","weight":3},{"backend":"light","weight":1}`), heavy.backend(), light.backend()))
	const n = 200
	got := map[string]int{}
	for range n {
		c := dialPort(t, port)
		answer := talk(t, c, "hi")
		got[strings.TrimSuffix(answer, ":hi")]++
		c.Close()
	}
	if got["heavy"]+got["light"] != n || got["heavy"] < n*3/4-40 || got["heavy"] > n*3/4+40 {
		t.Errorf("connections by backend: %v; want %d about 3:1", got, n)
	}
}

func TestTCPSkipsAnEndpointThatRefuses(t *testing.T) {
	b := newLineBackend(t, "db")
	refusing := freePort(t)
	port := freePort(t)
	be := &rt.Backend{Name: "db", Endpoints: []*rt.Endpoint{{Address: "127.0.0.1", Port: refusing}, {Address: "127.0.0.1", Port: b.port()}}}
	start(t, streamTable(t, port, tcpListener(`{"backend":"db","weight":1}`), be))
	for i := range 20 {
		if got := talk(t, dialPort(t, port), "hi"); got != "db:hi" {
			t.Fatalf("connection %d: %q; want the endpoint that accepts", i, got)
		}
	}
}

// A connection given to a share that cannot be served is closed at once,
// as is one on a listener without a route.
func TestTCPConnectionsThatCannotBeServedAreClosed(t *testing.T) {
	b := newLineBackend(t, "db")
	for _, tt := range []struct {
		name, listener string
		backends       []*rt.Backend
	}{
		{"invalid share", tcpListener(`{"weight":1,"invalidReason":"Service apps/db not found"}`), nil},
		{"no endpoints", tcpListener(`{"backend":"empty","weight":1}`), []*rt.Backend{{Name: "empty"}}},
		{"unreachable", tcpListener(`{"backend":"gone","weight":1}`), []*rt.Backend{{Name: "gone", Endpoints: []*rt.Endpoint{{Address: "127.0.0.1", Port: freePort(t)}}}}},
		{"no route", `{"gateway":"infra/gw","listeners":[{"name":"tcp","port":PORT,"protocol":"TCP"}]}`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			start(t, streamTable(t, port, tt.listener, append(tt.backends, b.backend())...))
			if c := dialPort(t, port); !closedAtOnce(c) {
				t.Errorf("the connection was not closed")
			}
		})
	}
	if n := b.conns.Load(); n != 0 {
		t.Errorf("the other backend got %d connections", n)
	}
}

// A TCP listener and an HTTP one cannot share a port: the one that comes
// second is not served and says why.
func TestTCPAndHTTPOnOnePortIsAConflict(t *testing.T) {
	b := newLineBackend(t, "db")
	port := freePort(t)
	p := start(t, streamTable(t, port, `{"gateway":"infra/gw","listeners":[
		{"name":"tcp","port":PORT,"protocol":"TCP","streamRoutes":[{"backends":[{"backend":"db","weight":1}]}]},
		{"name":"web","port":PORT,"protocol":"HTTP"}]}`, b.backend()))
	if why := p.NotServed()["infra/gw"]["web"]; !strings.Contains(why, "used for both TCP and HTTP") {
		t.Errorf("not served: %v; want listener web, for the port's conflict", p.NotServed())
	}
	if got := talk(t, dialPort(t, port), "hi"); got != "db:hi" {
		t.Errorf("the TCP listener: %q", got)
	}
}

func TestStreamConnectionLimitPerListener(t *testing.T) {
	b := newLineBackend(t, "db")
	port := freePort(t)
	tbl := streamTable(t, port, tcpListener(`{"backend":"db","weight":1}`), b.backend())
	tbl.Limits = &rt.Limits{MaxStreamConnections: 2}
	start(t, tbl)
	first, second := dialPort(t, port), dialPort(t, port)
	for _, c := range []net.Conn{first, second} {
		if got := talk(t, c, "hi"); got != "db:hi" {
			t.Fatalf("a connection within the limit: %q", got)
		}
	}
	if c := dialPort(t, port); !closedAtOnce(c) {
		t.Errorf("a connection beyond the limit was not closed")
	}
	first.Close()
	// The slot frees once the proxy has seen the close.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if talk(t, dialPort(t, port), "again") == "db:again" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("no connection served after one within the limit closed")
}

// A connection that passes no byte for the stream idle timeout is closed;
// one that talks is not.
func TestTCPIdleConnectionIsClosed(t *testing.T) {
	b := newLineBackend(t, "db")
	port := freePort(t)
	tbl := streamTable(t, port, tcpListener(`{"backend":"db","weight":1}`), b.backend())
	tbl.Limits = &rt.Limits{StreamIdleTimeout: rt.Millis(300 * time.Millisecond)}
	start(t, tbl)
	quiet, busy := dialPort(t, port), dialPort(t, port)
	if talk(t, quiet, "hi") != "db:hi" {
		t.Fatal("no answer")
	}
	done := make(chan string)
	go func() {
		for i := range 30 {
			if got := talk(t, busy, strconv.Itoa(i)); got != "db:"+strconv.Itoa(i) {
				done <- fmt.Sprintf("the busy connection, line %d: %q", i, got)
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
		done <- ""
	}()
	if !closedAtOnce(quiet) {
		t.Errorf("the idle connection was not closed")
	}
	if msg := <-done; msg != "" {
		t.Error(msg)
	}
}

// sample sums the values of the series of the metric name whose labels
// include want.
func sample(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// A new table applies to new connections: one open before the swap goes
// on with the backend it started with. A port the new table no longer
// has refuses new connections, and its open ones get the drain timeout.
func TestStreamConnectionsDrainOnTableSwap(t *testing.T) {
	old, next := newLineBackend(t, "old"), newLineBackend(t, "new")
	port, gone := freePort(t), freePort(t)
	listeners := func(backend string, withGone bool) string {
		js := `{"name":"tcp","port":PORT,"protocol":"TCP","streamRoutes":[{"backends":[{"backend":"` + backend + `","weight":1}]}]}`
		if withGone {
			js += `,{"name":"gone","port":` + strconv.Itoa(int(gone)) + `,"protocol":"TCP","streamRoutes":[{"backends":[{"backend":"old","weight":1}]}]}`
		}
		return `{"gateway":"infra/gw","listeners":[` + js + `]}`
	}
	p := start(t, streamTable(t, port, listeners("old", true), old.backend(), next.backend()))
	before, onGone := dialPort(t, port), dialPort(t, gone)
	for _, c := range []net.Conn{before, onGone} {
		if got := talk(t, c, "hi"); got != "old:hi" {
			t.Fatalf("before the swap: %q", got)
		}
	}
	if err := p.Apply("v2", []*rt.RouteTable{streamTable(t, port, listeners("new", false), old.backend(), next.backend())}, nil); err != nil {
		t.Fatal(err)
	}
	if got := talk(t, before, "again"); got != "old:again" {
		t.Errorf("a connection open before the swap: %q, want its old backend", got)
	}
	if got := talk(t, dialPort(t, port), "hi"); got != "new:hi" {
		t.Errorf("a connection after the swap: %q, want the new backend", got)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", gone)); err == nil {
		c.Close()
		t.Errorf("the removed port accepts connections")
	}
	if got := talk(t, onGone, "still"); got != "old:still" {
		t.Errorf("a connection of the removed port, within the drain timeout: %q", got)
	}
	// The drain timeout (1s, see start) closes it.
	if !closedAtOnce(onGone) {
		t.Errorf("a connection of the removed port outlived the drain timeout")
	}
	if got := talk(t, before, "last"); got != "old:last" {
		t.Errorf("the connection on the port that stayed: %q", got)
	}
}

// Close waits for relayed connections, within its context.
func TestCloseWaitsForStreamConnections(t *testing.T) {
	b := newLineBackend(t, "db")
	port := freePort(t)
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1"})
	if err := p.Apply("v1", []*rt.RouteTable{streamTable(t, port, tcpListener(`{"backend":"db","weight":1}`), b.backend())}, nil); err != nil {
		t.Fatal(err)
	}
	c := dialPort(t, port)
	if talk(t, c, "hi") != "db:hi" {
		t.Fatal("no answer")
	}
	closed := make(chan error)
	go func() { closed <- p.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a connection open", err)
	case <-time.After(200 * time.Millisecond):
	}
	if got := talk(t, c, "during"); got != "db:during" {
		t.Errorf("the connection while the proxy closes: %q", got)
	}
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(c)
	if err := <-closed; err != nil {
		t.Errorf("Close after the connection ended: %v", err)
	}
}

// Connections are counted by route and backend, refusals by reason, and
// bytes both ways; a closed connection leaves an access log line.
func TestStreamMetricsAndAccessLog(t *testing.T) {
	b := newLineBackend(t, "db")
	port := freePort(t)
	reg := prometheus.NewRegistry()
	var log strings.Builder
	var logMu sync.Mutex
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", Registry: reg,
		AccessLog: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &log}, nil))})
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	tbl := streamTable(t, port, tcpListener(`{"backend":"db","weight":1}`), b.backend())
	tbl.Limits = &rt.Limits{MaxStreamConnections: 1}
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, nil); err != nil {
		t.Fatal(err)
	}
	route := map[string]string{"route": "TCPRoute apps/db", "backend": "db"}
	c := dialPort(t, port)
	if talk(t, c, "hello") != "db:hello" {
		t.Fatal("no answer")
	}
	if !closedAtOnce(dialPort(t, port)) {
		t.Fatal("the connection beyond the limit was relayed")
	}
	if got := sample(t, reg, "gatehouse_proxy_stream_connections_active", route); got != 1 {
		t.Errorf("active: %v, want 1", got)
	}
	if got := sample(t, reg, "gatehouse_proxy_stream_refused_total", map[string]string{"listener": "infra/gw/tcp", "reason": "limit"}); got != 1 {
		t.Errorf("refused for the limit: %v, want 1", got)
	}
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(c)
	deadline := time.Now().Add(5 * time.Second)
	for sample(t, reg, "gatehouse_proxy_stream_connections_active", route) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for name, want := range map[string]float64{
		"gatehouse_proxy_stream_connections_total":  1,
		"gatehouse_proxy_stream_connections_active": 0,
	} {
		if got := sample(t, reg, name, route); got != want {
			t.Errorf("%s%v = %v, want %v", name, route, got, want)
		}
	}
	for dir, want := range map[string]float64{"from_client": float64(len("hello\n")), "to_client": float64(len("db:hello\ndb:bye\n"))} {
		if got := sample(t, reg, "gatehouse_proxy_stream_bytes_total", map[string]string{"route": "TCPRoute apps/db", "direction": dir}); got != want {
			t.Errorf("bytes %s: %v, want %v", dir, got, want)
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(log.String(), `msg=connection listener=infra/gw/tcp route="TCPRoute apps/db" backend=db`) ||
		!strings.Contains(log.String(), "bytesIn=6 bytesOut=16") || !strings.Contains(log.String(), "refused=limit") {
		t.Errorf("access log:\n%s", log.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
