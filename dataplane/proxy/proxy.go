package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// Options configure a Proxy.
type Options struct {
	// BindAddress is the IP listeners bind to; empty binds all addresses.
	BindAddress string
	// Log receives the proxy's structured logs; AccessLog, when set, one
	// line per request.
	Log       *slog.Logger
	AccessLog *slog.Logger
	// Registry receives the proxy's metrics; nil keeps them unregistered.
	Registry prometheus.Registerer
	// DrainTimeout bounds how long a removed listener lets its requests
	// finish; 30s when zero.
	DrainTimeout time.Duration
	// RetryInterval is how often ports that could not be bound are tried
	// again; 5s when zero.
	RetryInterval time.Duration
	// NoFastPath serves every request through net/http, none on the
	// HTTP/1.1 fast path (fast.go).
	NoFastPath bool
}

// Proxy serves route tables. Apply swaps in a new version: the listeners it
// needs are bound first, then the compiled config is published with one
// atomic store, then listeners no longer needed are drained. Requests in
// flight finish on the config they started with. A listener that cannot be
// served (a port something else holds, a key pair that does not load) costs
// only that listener: NotServed reports it, and ports are bound again
// every RetryInterval until they are free.
type Proxy struct {
	opts        Options
	cfg         atomic.Pointer[config]
	transports  transports
	breakers    breakers
	rp          *httputil.ReverseProxy
	metrics     *metrics
	log         *slog.Logger
	accessLog   *slog.Logger
	mirrorSlots slots

	mu      sync.Mutex // serializes Apply, retries and Close
	servers map[uint32]*portServer
	// unbound are the ports of the applied version that could not be
	// bound, with the last error; retry binds them again.
	unbound map[uint32]error
	retry   *time.Timer
	changed chan struct{}
	version string
	closed  bool

	// draining: the proxy is leaving service (drain.go); tunnels counts
	// the upgraded connections relayed now; base is every request's
	// context, which cut ends when a drain runs out of time.
	draining atomic.Bool
	tunnels  atomic.Int64
	base     context.Context
	cut      context.CancelFunc
	// streams are the TCP and TLS connections relayed now (stream.go);
	// udp, the UDP sockets (stream_udp.go).
	streams streamConns
	udp     udpPorts
}

type portServer struct {
	port  uint32
	kind  portKind
	https bool
	// ln is the port's socket; fr serves a view of it with settings.
	ln       *portListener
	fr       *front
	settings serverSettings
	// released: the port was given up for a listener of the other
	// protocol; its listener was closed on purpose.
	released atomic.Bool
}

// New returns a proxy that serves nothing until the first Apply.
func New(opts Options) *Proxy {
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = 5 * time.Second
	}
	p := &Proxy{opts: opts, log: opts.Log, accessLog: opts.AccessLog, servers: map[uint32]*portServer{},
		unbound: map[uint32]error{}, changed: make(chan struct{}, 1)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.metrics = newMetrics(opts.Registry)
	p.base, p.cut = context.WithCancel(context.Background())
	p.rp = p.newReverseProxy()
	p.mirrorSlots.max.Store(256)
	return p
}

// Version is the version last applied, "" before the first.
func (p *Proxy) Version() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.version
}

// Ready reports whether the proxy should get traffic: a table has been
// applied and it is not draining.
func (p *Proxy) Ready() bool { return p.cfg.Load() != nil && !p.draining.Load() }

// Apply compiles and serves a new version of the tables. When it returns an
// error nothing changed: the previous version keeps serving. Otherwise the
// version is served, except the listeners NotServed lists. What the tables
// share with the version served (the same messages) is not compiled again:
// a caller never modifies a message it has passed to Apply.
func (p *Proxy) Apply(version string, tables []*routetable.RouteTable, keyPairs map[string]*routetable.KeyPair) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg, err := compile(p.cfg.Load(), tables, keyPairs)
	if err != nil {
		p.metrics.applyErrors.Inc()
		return err
	}
	// Bind what is new before the config changes; a port that cannot be
	// bound leaves its listeners out, and the rest is served. Once closed
	// (draining), no port opens again: the connections still open serve
	// the new version, so the hub hears an acknowledgement, not an error.
	var bound []*portServer
	unbound := map[uint32]error{}
	for port, pc := range cfg.ports {
		s, ok := p.servers[port]
		if (ok && s.kind == pc.kind) || p.closed {
			continue
		}
		if ok {
			// From one kind to another: release the port to bind it anew.
			delete(p.servers, port)
			s.released.Store(true)
			s.ln.Close()
			go p.drain(s)
		}
		ns, err := p.bind(port, pc.kind, cfg.limits.server)
		if err != nil {
			unbound[port] = err
			continue
		}
		bound = append(bound, ns)
	}
	// Keep connection pools of backends reached the same way. A backend
	// taken over from the version served has its pools, and requests read
	// them: it is not written again.
	for _, b := range cfg.backends {
		if b.transport == nil {
			b.transport, b.upgrade = p.transports.get(b)
		}
	}
	p.breakers.assign(cfg.backends, !cfg.keptAll, p.metrics, p.log)
	p.cfg.Store(cfg)
	p.forget(cfg, tables)
	for _, s := range p.servers {
		if _, ok := cfg.ports[s.port]; ok && s.settings != cfg.limits.server {
			p.renew(s, cfg.limits.server)
		}
	}
	for _, s := range bound {
		p.servers[s.port] = s
		go p.run(s, s.fr)
	}
	for port, s := range p.servers {
		if _, ok := cfg.ports[port]; !ok {
			delete(p.servers, port)
			go p.drain(s)
		}
	}
	p.unbound = unbound
	p.applyUDP(cfg)
	p.scheduleRetry()
	p.version = version
	p.metrics.applied(version)
	notServed := p.notServed()
	p.metrics.notServed.Set(float64(len(notServed)))
	p.log.Info("route tables applied", "version", version, "tables", len(tables), "ports", len(cfg.ports), "backends", len(cfg.backends), "notServed", len(notServed))
	for id, why := range notServed {
		p.log.Warn("listener not served; the others are", "table", id.table, "listener", id.listener, "error", why)
	}
	p.metrics.routesNotServed.Set(float64(len(cfg.badRoutes)))
	for id, why := range cfg.badRoutes {
		p.log.Warn("route not served: it does not compile; the other routes are served", "table", id.table, "route", id.route, "error", why)
	}
	return nil
}

// RoutesNotServed lists the routes of the applied version left out because
// they do not compile, by table and route object key, with why.
func (p *Proxy) RoutesNotServed() map[string]map[string]string {
	cfg := p.cfg.Load()
	if cfg == nil {
		return nil
	}
	out := map[string]map[string]string{}
	for id, why := range cfg.badRoutes {
		if out[id.table] == nil {
			out[id.table] = map[string]string{}
		}
		out[id.table][id.route] = why
	}
	return out
}

// NotServed lists the listeners of the applied version that are not
// served, by table and listener name, with why and what to do.
func (p *Proxy) NotServed() map[string]map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]map[string]string{}
	for id, why := range p.notServed() {
		if out[id.table] == nil {
			out[id.table] = map[string]string{}
		}
		out[id.table][id.listener] = why
	}
	return out
}

// NotServedChanged receives a value when NotServed changed other than by
// Apply: a port bound on a retry.
func (p *Proxy) NotServedChanged() <-chan struct{} { return p.changed }

func (p *Proxy) notServed() map[listenerID]string {
	cfg := p.cfg.Load()
	if cfg == nil {
		return nil
	}
	out := maps.Clone(cfg.failed)
	for port, err := range p.unbound {
		why := p.bindAdvice(err)
		for _, id := range cfg.ports[port].listeners {
			out[id] = why
		}
	}
	for port, err := range p.udp.unbound {
		out[cfg.udp[port].id] = p.bindAdvice(err)
	}
	return out
}

// bindAdvice says what to do about a port that could not be bound.
func (p *Proxy) bindAdvice(err error) string {
	fix := "something else where the proxy runs holds the port: free it, or move the listener to another port"
	if errors.Is(err, syscall.EACCES) {
		fix = "the proxy may not bind this port: use a port above 1023, or grant the proxy NET_BIND_SERVICE"
	}
	return fmt.Sprintf("%v: %s (the proxy tries again every %s)", err, fix, p.opts.RetryInterval)
}

// scheduleRetry binds the unbound ports again after RetryInterval; p.mu
// is held.
func (p *Proxy) scheduleRetry() {
	if (len(p.unbound) == 0 && len(p.udp.unbound) == 0) || p.retry != nil || p.closed {
		return
	}
	p.retry = time.AfterFunc(p.opts.RetryInterval, p.retryBinds)
}

func (p *Proxy) retryBinds() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retry = nil
	cfg := p.cfg.Load()
	if p.closed || cfg == nil {
		return
	}
	changed := false
	for port, prev := range p.unbound {
		s, err := p.bind(port, cfg.ports[port].kind, cfg.limits.server)
		if err != nil {
			changed = changed || err.Error() != prev.Error()
			p.unbound[port] = err
			continue
		}
		delete(p.unbound, port)
		p.servers[port] = s
		go p.run(s, s.fr)
		changed = true
		p.log.Info("listener port bound on retry: its listeners are served", "port", port)
	}
	changed = p.retryUDP() || changed
	if changed {
		p.metrics.notServed.Set(float64(len(p.notServed())))
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
	p.scheduleRetry()
}

func (p *Proxy) bind(port uint32, kind portKind, settings serverSettings) (*portServer, error) {
	addr := net.JoinHostPort(p.opts.BindAddress, strconv.Itoa(int(port)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("binding listener port %d: %w", port, err)
	}
	s := &portServer{port: port, kind: kind, https: kind == portTLS, ln: newPortListener(ln), settings: settings}
	s.fr = p.newFront(port, s.https, settings)
	return s, nil
}

// newServer is the http.Server of a port with the given settings.
func (p *Proxy) newServer(port uint32, https bool, settings serverSettings) *http.Server {
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handedOffTLS(r)
			p.serve(w, r, port)
		}),
		ReadHeaderTimeout: settings.readHeaderTimeout,
		IdleTimeout:       settings.idleTimeout,
		MaxHeaderBytes:    settings.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ConnContext:       connContext,
		BaseContext:       func(net.Listener) context.Context { return p.base },
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if https {
		protocols.SetHTTP2(true)
		srv.TLSConfig = p.serverTLS(port)
	} else {
		// Cleartext HTTP/2 with prior knowledge, for gRPC clients.
		protocols.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &protocols
	return srv
}

// renew serves a port with new settings: a new server takes the socket's
// next connections while the old one finishes what it holds; p.mu is held.
func (p *Proxy) renew(s *portServer, settings serverSettings) {
	old := s.fr
	s.fr, s.settings = p.newFront(s.port, s.https, settings), settings
	go p.run(s, s.fr)
	go p.shutdown(s.port, old)
}

func (p *Proxy) run(s *portServer, fr *front) {
	err := fr.serve(s.ln.view())
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !s.released.Load() {
		p.log.Error("listener stopped", "port", s.port, "error", err)
	}
}

// drain closes a port and lets its requests and connections finish.
func (p *Proxy) drain(s *portServer) {
	s.ln.Close()
	go p.streams.drain(s.ln, p.opts.DrainTimeout, p.log)
	p.shutdown(s.port, s.fr)
}

// shutdown lets a server's requests finish within the drain timeout.
func (p *Proxy) shutdown(port uint32, srv *front) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		p.log.Warn("listener did not drain in time: its last connections were closed", "port", port, "drainTimeout", p.opts.DrainTimeout, "error", err)
		srv.Close()
	}
}

// Close stops every listener and lets the requests and upgraded
// connections in flight finish, within ctx; then it closes what is left.
func (p *Proxy) Close(ctx context.Context) error {
	p.draining.Store(true)
	p.mu.Lock()
	p.closed = true
	if p.retry != nil {
		p.retry.Stop()
	}
	servers := p.servers
	p.servers = map[uint32]*portServer{}
	udp := p.takeUDP()
	p.mu.Unlock()
	// Every socket first: no port accepts while another one drains.
	for _, s := range servers {
		s.ln.Close()
	}
	done := make(chan error, len(servers))
	for _, s := range servers {
		go func() { done <- s.fr.Shutdown(ctx) }()
	}
	var errs []error
	for range servers {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	if err := waitTunnels(ctx, &p.tunnels); err != nil {
		errs = append(errs, err)
	}
	if err := p.streams.wait(ctx, nil); err != nil {
		errs = append(errs, err)
	}
	if err := closeUDP(ctx, udp); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Ending the requests' context ends the upgraded connections and
		// the backend requests; closing the servers, their connections.
		p.cut()
		for _, s := range servers {
			s.fr.Close()
		}
		p.streams.cut(nil)
	}
	return errors.Join(errs...)
}

// Addr is the address a port is bound to, for tests that bind port 0.
func (p *Proxy) Addr(port uint32) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.servers[port]; ok {
		return s.ln.Addr()
	}
	return nil
}
