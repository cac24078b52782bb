package proxy_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// udpEcho answers each datagram with "name:payload", and remembers the
// addresses datagrams came from.
type udpEcho struct {
	name  string
	conn  net.PacketConn
	mu    sync.Mutex
	peers []string
}

func newUDPEcho(t *testing.T, name string) *udpEcho {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e := &udpEcho{name: name, conn: conn}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			if !strings.Contains(strings.Join(e.peers, " "), from.String()) {
				e.peers = append(e.peers, from.String())
			}
			e.mu.Unlock()
			conn.WriteTo(append([]byte(name+":"), buf[:n]...), from)
		}
	}()
	return e
}

func (e *udpEcho) backend() *rt.Backend {
	return &rt.Backend{Name: e.name, Endpoints: []*rt.Endpoint{{Address: "127.0.0.1", Port: uint32(e.conn.LocalAddr().(*net.UDPAddr).Port)}}}
}

func (e *udpEcho) sources() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.peers)
}

// udpListener is a UDP listener on PORT whose one route goes to backend.
func udpListener(backend string) string {
	return `{"name":"udp","port":PORT,"protocol":"UDP","streamRoutes":[
		{"source":{"kind":"UDPRoute","namespace":"apps","name":"dns"},"backends":[{"backend":"` + backend + `","weight":1}]}]}`
}

// freeUDPPort is a port number free for TCP and for UDP.
func freeUDPPort(t *testing.T) uint32 {
	for range 20 {
		port := freePort(t)
		if c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no port free for TCP and UDP")
	return 0
}

// ask sends a datagram from c and returns the answer, "" if none came
// within wait.
func ask(t *testing.T, c net.Conn, msg string, wait time.Duration) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func dialUDP(t *testing.T, p *proxy.Proxy, port uint32) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", p.UDPAddr(port).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// UDP and TCP listeners may have the same port number: they are served
// on sockets of their own.
func TestUDPRelaysDatagramsBesideTCPOnTheSamePortNumber(t *testing.T) {
	dns, db := newUDPEcho(t, "dns"), newLineBackend(t, "db")
	port := freeUDPPort(t)
	p := start(t, streamTable(t, port, `{"gateway":"infra/gw","listeners":[`+udpListener("dns")+`,
		{"name":"tcp","port":PORT,"protocol":"TCP","streamRoutes":[{"backends":[{"backend":"db","weight":1}]}]}]}`, dns.backend(), db.backend()))
	if n := p.NotServed(); len(n) != 0 {
		t.Fatalf("not served: %v", n)
	}
	c := dialUDP(t, p, port)
	for _, msg := range []string{"one", "two", strings.Repeat("x", 60000)} {
		if got := ask(t, c, msg, 5*time.Second); got != "dns:"+msg {
			t.Errorf("answer %.20q, want dns:%.16s", got, msg)
		}
	}
	if n := dns.sources(); n != 1 {
		t.Errorf("one client's datagrams came from %d sockets, want its session's one", n)
	}
	if got := talk(t, dialPort(t, port), "hi"); got != "db:hi" {
		t.Errorf("the TCP listener on the same port number: %q", got)
	}
}

// A session that passes no datagram for the stream idle timeout ends:
// the client's next datagram starts another, from another socket. One
// that keeps talking keeps its session.
func TestUDPSessionEndsWhenIdle(t *testing.T) {
	dns := newUDPEcho(t, "dns")
	port := freeUDPPort(t)
	tbl := streamTable(t, port, `{"gateway":"infra/gw","listeners":[`+udpListener("dns")+`]}`, dns.backend())
	tbl.Limits = &rt.Limits{StreamIdleTimeout: rt.Millis(400 * time.Millisecond)}
	p := start(t, tbl)
	c := dialUDP(t, p, port)
	for i := range 16 {
		if got := ask(t, c, fmt.Sprint(i), 5*time.Second); got != fmt.Sprintf("dns:%d", i) {
			t.Fatalf("datagram %d: %q", i, got)
		}
		time.Sleep(40 * time.Millisecond)
	}
	if n := dns.sources(); n != 1 {
		t.Fatalf("a session that kept talking came from %d sockets", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for dns.sources() == 1 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		ask(t, c, "later", 5*time.Second)
	}
	if n := dns.sources(); n != 2 {
		t.Errorf("after the session was idle, datagrams came from %d sockets, want a new session's", n)
	}
}

// Sessions beyond the listener's maximum are not started: the new
// client's datagrams are dropped and counted.
func TestUDPSessionLimit(t *testing.T) {
	dns := newUDPEcho(t, "dns")
	port := freeUDPPort(t)
	tbl := streamTable(t, port, `{"gateway":"infra/gw","listeners":[`+udpListener("dns")+`]}`, dns.backend())
	tbl.Limits = &rt.Limits{MaxStreamConnections: 1}
	reg := prometheus.NewRegistry()
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", DrainTimeout: time.Second, Registry: reg})
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, nil); err != nil {
		t.Fatal(err)
	}
	first, second := dialUDP(t, p, port), dialUDP(t, p, port)
	if got := ask(t, first, "a", 5*time.Second); got != "dns:a" {
		t.Fatalf("the first client: %q", got)
	}
	if got := ask(t, second, "b", 300*time.Millisecond); got != "" {
		t.Errorf("the client beyond the limit got %q", got)
	}
	if got := sample(t, reg, "gatehouse_proxy_udp_datagrams_dropped_total", map[string]string{"listener": "infra/gw/udp", "reason": "limit"}); got != 1 {
		t.Errorf("datagrams dropped for the limit: %v, want 1", got)
	}
	if got := ask(t, first, "c", 5*time.Second); got != "dns:c" {
		t.Errorf("the first client after the refusal: %q", got)
	}
}
