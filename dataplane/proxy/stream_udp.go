package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// UDP listeners have sockets of their own, beside the TCP ports: a UDP
// listener may have the number of a TCP, TLS or HTTP listener's port.
// Each client address gets a session when its first datagram comes: a
// socket connected to an endpoint of a backend chosen by weight then,
// which carries the client's datagrams there and the endpoint's back,
// until the session passes no datagram for the idle timeout.

// maxDatagram is the largest UDP payload.
const maxDatagram = 64 << 10

// addUDP compiles a UDP listener onto its port's UDP socket: one per
// port, since nothing in a datagram tells two apart.
func (c *config) addUDP(id listenerID, t *routetable.RouteTable, l *routetable.Listener) {
	if prev := c.udp[l.Port]; prev != nil {
		c.failed[id] = fmt.Sprintf("UDP port %d already has UDP listener %s: give this listener another port", l.Port, prev.id.listener)
		return
	}
	if c.udp == nil {
		c.udp = map[uint32]*streamListener{}
	}
	c.udp[l.Port] = c.compileStreamListener(id, t, l)
}

// udpPorts are the proxy's UDP sockets; p.mu guards them.
type udpPorts struct {
	servers map[uint32]*udpServer
	// unbound are the UDP ports of the applied version that could not
	// be bound, with the last error.
	unbound map[uint32]error
}

// applyUDP binds the UDP ports a new config has and the proxy does not,
// and drains those it no longer has; p.mu is held.
func (p *Proxy) applyUDP(cfg *config) {
	if p.udp.servers == nil {
		p.udp.servers = map[uint32]*udpServer{}
	}
	p.udp.unbound = map[uint32]error{}
	for port := range cfg.udp {
		if _, ok := p.udp.servers[port]; ok || p.closed {
			continue
		}
		if err := p.bindUDP(port); err != nil {
			p.udp.unbound[port] = err
		}
	}
	for port, s := range p.udp.servers {
		if _, ok := cfg.udp[port]; !ok {
			delete(p.udp.servers, port)
			go s.drain(p.opts.DrainTimeout)
		}
	}
}

// retryUDP binds the unbound UDP ports again and reports whether what
// NotServed says changed; p.mu is held.
func (p *Proxy) retryUDP() bool {
	changed := false
	for port, prev := range p.udp.unbound {
		if err := p.bindUDP(port); err != nil {
			changed = changed || err.Error() != prev.Error()
			p.udp.unbound[port] = err
			continue
		}
		delete(p.udp.unbound, port)
		changed = true
		p.log.Info("UDP listener port bound on retry: its listener is served", "port", port)
	}
	return changed
}

func (p *Proxy) bindUDP(port uint32) error {
	addr := net.JoinHostPort(p.opts.BindAddress, strconv.Itoa(int(port)))
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("binding UDP listener port %d: %w", port, err)
	}
	s := &udpServer{p: p, port: port, conn: conn.(*net.UDPConn), sessions: map[netip.AddrPort]*udpSession{}, done: make(chan struct{})}
	p.udp.servers[port] = s
	go s.serve()
	go s.expire()
	return nil
}

// UDPAddr is the address a UDP port is bound to, for tests that bind
// port 0.
func (p *Proxy) UDPAddr(port uint32) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.udp.servers[port]; ok {
		return s.conn.LocalAddr()
	}
	return nil
}

// takeUDP gives the UDP sockets up to Close; p.mu is held.
func (p *Proxy) takeUDP() []*udpServer {
	var out []*udpServer
	for _, s := range p.udp.servers {
		out = append(out, s)
	}
	p.udp.servers = map[uint32]*udpServer{}
	return out
}

// closeUDP lets the sessions of servers end within ctx, then closes them.
func closeUDP(ctx context.Context, servers []*udpServer) error {
	var errs []error
	for _, s := range servers {
		s.stopSessions()
	}
	for _, s := range servers {
		if err := s.wait(ctx); err != nil {
			errs = append(errs, err)
		}
		s.close()
	}
	return errors.Join(errs...)
}

// udpServer serves one UDP port.
type udpServer struct {
	p    *Proxy
	port uint32
	conn *net.UDPConn

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
	// draining: no session starts any more.
	draining bool
	closed   atomic.Bool
	done     chan struct{}
}

type udpSession struct {
	s        *udpServer
	client   netip.AddrPort
	up       *net.UDPConn
	l        *streamListener
	route    *streamRoute
	backend  *backend
	endpoint *endpoint
	m        *shareMetrics
	start    time.Time
	// last is when a datagram last passed, in Unix nanoseconds.
	last  atomic.Int64
	grams [2]atomic.Int64
	bytes [2]atomic.Int64
	once  sync.Once
}

func (s *udpServer) serve() {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if sess := s.session(from); sess != nil {
			sess.forward(buf[:n])
		}
	}
}

// session is the client's session, a new one if it has none and one can
// start; nil drops the datagram.
func (s *udpServer) session(from netip.AddrPort) *udpSession {
	s.mu.Lock()
	sess, ok := s.sessions[from]
	draining, count := s.draining, len(s.sessions)
	s.mu.Unlock()
	if ok {
		return sess
	}
	l := s.p.cfg.Load().udp[s.port]
	if l == nil || draining {
		return nil
	}
	drop := func(r *streamRoute, why string) *udpSession {
		route := ""
		if r != nil {
			route = r.name
		}
		s.p.metrics.stream.drop(l.name, route, why)
		return nil
	}
	if l.maxConns > 0 && count >= l.maxConns {
		return drop(nil, refusedLimit)
	}
	r, ok := l.routes.lookup("")
	if !ok {
		return drop(nil, refusedNoRoute)
	}
	b := r.shares.pick()
	if b == nil {
		return drop(r, refusedBackend)
	}
	e := b.pick(nil)
	to, err := netip.ParseAddrPort(e.addr)
	if err != nil {
		return drop(r, refusedBackend)
	}
	up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return drop(r, refusedBackend)
	}
	e.inflight.Add(1)
	sess = &udpSession{s: s, client: from, up: up, l: l, route: r, backend: b, endpoint: e, start: time.Now(),
		m: s.p.metrics.stream.opened(r.name, b.name)}
	sess.last.Store(sess.start.UnixNano())
	s.mu.Lock()
	s.sessions[from] = sess
	s.mu.Unlock()
	go sess.answer()
	return sess
}

// forward sends a client's datagram to the session's endpoint.
func (sess *udpSession) forward(b []byte) {
	if _, err := sess.up.Write(b); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		return
	}
	sess.count(0, len(b))
}

// answer sends the endpoint's datagrams to the client until the session
// ends. An endpoint that refused one (ICMP port unreachable) may listen
// again: the session goes on until it is idle.
func (sess *udpSession) answer() {
	buf := make([]byte, maxDatagram)
	for {
		n, err := sess.up.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			sess.end()
			return
		}
		if _, err := sess.s.conn.WriteToUDPAddrPort(buf[:n], sess.client); err == nil {
			sess.count(1, n)
		}
	}
}

func (sess *udpSession) count(d, n int) {
	sess.grams[d].Add(1)
	sess.bytes[d].Add(int64(n))
	sess.m.grams[d].Inc()
	sess.m.bytes[d].Add(float64(n))
	sess.last.Store(time.Now().UnixNano())
}

// end closes the session, once.
func (sess *udpSession) end() {
	sess.once.Do(func() {
		s := sess.s
		s.mu.Lock()
		if s.sessions[sess.client] == sess {
			delete(s.sessions, sess.client)
		}
		s.mu.Unlock()
		sess.up.Close()
		sess.endpoint.inflight.Add(-1)
		sess.m.closed()
		if log := s.p.accessLog; log != nil {
			log.Info("session", "listener", sess.l.name, "route", sess.route.name, "backend", sess.backend.name, "endpoint", sess.endpoint.addr,
				"client", sess.client.String(), "datagramsIn", sess.grams[0].Load(), "datagramsOut", sess.grams[1].Load(),
				"bytesIn", sess.bytes[0].Load(), "bytesOut", sess.bytes[1].Load(), "duration", time.Since(sess.start))
		}
	})
}

// expire ends the sessions idle for their listener's timeout, looking
// every quarter of the current listener's.
func (s *udpServer) expire() {
	for {
		every := udpIdleDefault / 4
		if l := s.p.cfg.Load().udp[s.port]; l != nil {
			every = max(l.idle/4, time.Millisecond)
		}
		select {
		case <-time.After(every):
		case <-s.done:
			return
		}
		now := time.Now().UnixNano()
		var idle []*udpSession
		s.mu.Lock()
		for _, sess := range s.sessions {
			if now-sess.last.Load() >= int64(sess.l.idle) {
				idle = append(idle, sess)
			}
		}
		s.mu.Unlock()
		for _, sess := range idle {
			sess.end()
		}
	}
}

// stopSessions lets no session start any more.
func (s *udpServer) stopSessions() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

// wait waits until no session is open, or ctx ends.
func (s *udpServer) wait(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := len(s.sessions)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("UDP port %d: %d sessions still open: %w", s.port, n, ctx.Err())
		}
	}
}

// drain lets the sessions of a port no longer served end within timeout,
// then closes its socket and what is left.
func (s *udpServer) drain(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := closeUDP(ctx, []*udpServer{s}); err != nil {
		s.p.log.Warn("UDP sessions did not end within the drain timeout: closed", "port", s.port, "drainTimeout", timeout, "error", err)
	}
}

// close closes the socket and every session.
func (s *udpServer) close() {
	if s.closed.Swap(true) {
		return
	}
	close(s.done)
	s.conn.Close()
	s.mu.Lock()
	var open []*udpSession
	for _, sess := range s.sessions {
		open = append(open, sess)
	}
	s.mu.Unlock()
	for _, sess := range open {
		sess.end()
	}
}
