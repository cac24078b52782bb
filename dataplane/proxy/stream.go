package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// Stream listeners (TCP, TLS, UDP) relay bytes, not requests: a
// connection is routed once, when it opens, to an endpoint of one of its
// route's backends, and keeps that endpoint until it closes. A new table
// applies to new connections only; the ones open finish where they
// started.

// Defaults of Limits.stream_idle_timeout, by protocol.
const (
	streamIdleDefault = time.Hour
	udpIdleDefault    = 60 * time.Second
)

// streamDialTimeout bounds one attempt to connect to an endpoint, and
// streamDialAttempts the endpoints tried for one connection.
const (
	streamDialTimeout  = 5 * time.Second
	streamDialAttempts = 3
)

// streamListener is a TCP, TLS or UDP listener, compiled.
type streamListener struct {
	id listenerID
	// name is "gateway/listener", for logs and metrics.
	name     string
	protocol routetable.Protocol
	// routes: TLS listeners by SNI; TCP and UDP listeners hold their one
	// route as the catch-all.
	routes hostIndex[*streamRoute]
	// passthrough: the TLS session goes to the backend undecrypted;
	// otherwise terminate serves the handshake (TLS listeners).
	passthrough bool
	terminate   *tls.Config
	idle        time.Duration
	maxConns    int
}

// streamRoute is a TLSRoute, TCPRoute or UDPRoute rule: shares of its
// connections by backend.
type streamRoute struct {
	// name is the route object, "Kind namespace/name", for metrics.
	name   string
	shares action
}

// compileStreamListener compiles a stream listener's routes; a route that
// does not compile is left out and recorded in c.badRoutes.
func (c *config) compileStreamListener(id listenerID, t *routetable.RouteTable, l *routetable.Listener) *streamListener {
	sl := &streamListener{id: id, name: t.Gateway + "/" + l.Name, protocol: l.Protocol,
		passthrough: l.GetTls().GetPassthrough(), idle: c.limits.stream.idle, maxConns: c.limits.stream.maxConns}
	if sl.idle <= 0 {
		sl.idle = streamIdleDefault
		if l.Protocol == routetable.Protocol_UDP {
			sl.idle = udpIdleDefault
		}
	}
	for i, sr := range l.StreamRoutes {
		r, err := compileStreamRoute(sr, c.backends)
		if err != nil {
			name := fmt.Sprintf("listener %s stream route %d", l.Name, i)
			if sr.Source != nil {
				name = sr.Source.ObjectKey()
			}
			c.routeNotServed(routeID{table: id.table, route: name}, fmt.Sprintf("%s: %v", describe(sr.Source), err))
			continue
		}
		sl.routes.add(sr.Domain, r)
	}
	return sl
}

func compileStreamRoute(sr *routetable.StreamRoute, backends map[string]*backend) (*streamRoute, error) {
	r := &streamRoute{}
	if s := sr.Source; s != nil {
		r.name = routeLabel(s)
	}
	for _, wb := range sr.Backends {
		w := weighted{weight: wb.Weight}
		if wb.Backend != "" {
			b, ok := backends[wb.Backend]
			if !ok {
				return nil, fmt.Errorf("backend %s is not in the table", wb.Backend)
			}
			w.backend = b
		}
		r.shares.backends = append(r.shares.backends, w)
		r.shares.totalWeight += w.weight
	}
	return r, nil
}

// addTCP compiles a TCP listener onto its port: one per port, since
// nothing in a TCP connection tells two apart.
func (c *config) addTCP(pc *portConfig, id listenerID, t *routetable.RouteTable, l *routetable.Listener) {
	if pc.tcp != nil {
		c.failed[id] = fmt.Sprintf("port %d already has TCP listener %s: give this listener another port", l.Port, pc.tcp.id.listener)
		return
	}
	pc.tcp = c.compileStreamListener(id, t, l)
	pc.listeners = append(pc.listeners, id)
}

// takeStream takes a connection accepted on a port whose connections are
// not HTTP's, and reports whether it did.
func (p *Proxy) takeStream(f *front, c net.Conn) bool {
	cfg := p.cfg.Load()
	if cfg == nil || cfg.ports[f.port] == nil {
		return false
	}
	switch pc := cfg.ports[f.port]; {
	case pc.tcp != nil:
		go p.relayStream(f, c, nil, pc.tcp, "")
	case pc.sniff:
		go p.serveTLS(f, c)
	default:
		return false
	}
	return true
}

// Why a connection was refused, as metrics name it.
const (
	refusedNoRoute = "no_route"
	refusedLimit   = "limit"
	refusedBackend = "backend"
)

// relayStream relays a client connection to its route's backend, for
// the route that serves sni on l (TCP: l's one route). pending are bytes
// read from the client already, which the backend gets first.
func (p *Proxy) relayStream(f *front, client net.Conn, pending []byte, l *streamListener, sni string) {
	start := time.Now()
	sc := &streamConn{client: client, sock: f.sock, listener: l.id}
	if !p.streams.add(sc, l.maxConns) {
		p.refuse(sc, l, nil, refusedLimit, start)
		return
	}
	defer p.streams.remove(sc)
	r, ok := l.routes.lookup(sni)
	if !ok {
		p.refuse(sc, l, nil, refusedNoRoute, start)
		return
	}
	b := r.shares.pick()
	if b == nil {
		p.refuse(sc, l, r, refusedBackend, start)
		return
	}
	ctx, cancel := context.WithTimeout(p.base, streamDialTimeout)
	up, e, err := p.dialStream(ctx, b, l.terminate != nil)
	cancel()
	if err != nil {
		p.log.Debug("stream backend unreachable", "listener", l.name, "route", r.name, "backend", b.name, "error", err)
		p.refuse(sc, l, r, refusedBackend, start)
		return
	}
	defer e.inflight.Add(-1)
	if !sc.connected(up) {
		return // cut while connecting
	}
	if len(pending) > 0 {
		if _, err := up.Write(pending); err != nil {
			sc.close()
			return
		}
	}
	m := p.metrics.stream.opened(r.name, b.name)
	rl := &relay{conns: [2]net.Conn{client, up}, idle: l.idle, counters: m.bytes}
	rl.run()
	m.closed()
	if p.accessLog != nil {
		p.accessLog.Info("connection", "listener", l.name, "route", r.name, "backend", b.name, "endpoint", e.addr,
			"client", client.RemoteAddr().String(), "sni", sni, "bytesIn", rl.total(0), "bytesOut", rl.total(1),
			"duration", time.Since(start))
	}
}

// refuse closes a connection that is not relayed, and counts why.
func (p *Proxy) refuse(sc *streamConn, l *streamListener, r *streamRoute, why string, start time.Time) {
	sc.close()
	route := ""
	if r != nil {
		route = r.name
	}
	p.metrics.stream.refused(l.name, route, why)
	if p.accessLog != nil {
		p.accessLog.Info("connection", "listener", l.name, "route", route, "refused", why,
			"client", sc.client.RemoteAddr().String(), "duration", time.Since(start))
	}
}

// pick chooses a share by weight, and returns its backend if it can take
// a connection: nil for an invalid share or a backend without endpoints,
// whose connections are closed at once.
func (a *action) pick() *backend {
	if a.totalWeight == 0 {
		return nil
	}
	if b := pickShare(a).backend; b != nil && len(b.endpoints) > 0 {
		return b
	}
	return nil
}

var streamDialer = net.Dialer{Timeout: streamDialTimeout, KeepAlive: 30 * time.Second}

// dialStream connects to an endpoint of b, spreading connections over
// them and skipping the ones that refuse, within streamDialAttempts. The
// endpoint returned counts the connection in flight until the caller
// releases it. With originate, a backend that has TLS is reached over it.
func (p *Proxy) dialStream(ctx context.Context, b *backend, originate bool) (net.Conn, *endpoint, error) {
	var tried []*endpoint
	var errs []error
	for range min(len(b.endpoints), streamDialAttempts) {
		var last *endpoint
		if len(tried) > 0 {
			last = tried[len(tried)-1]
		}
		e := b.pick(last)
		if slices.Contains(tried, e) {
			for _, o := range b.endpoints {
				if !slices.Contains(tried, o) {
					e = o
					break
				}
			}
		}
		tried = append(tried, e)
		c, err := streamDialer.DialContext(ctx, "tcp", e.addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if originate && b.tls != nil {
			tc := tls.Client(c, b.tls)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				errs = append(errs, fmt.Errorf("TLS to %s: %w", e.addr, err))
				continue
			}
			c = tc
		}
		e.inflight.Add(1)
		return c, e, nil
	}
	return nil, nil, errors.Join(errs...)
}
