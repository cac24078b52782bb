package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
}

// Proxy serves route tables. Apply swaps in a new version: the listeners it
// needs are bound first, then the compiled config is published with one
// atomic store, then listeners no longer needed are drained. Requests in
// flight finish on the config they started with.
type Proxy struct {
	opts        Options
	cfg         atomic.Pointer[config]
	transports  transports
	rp          *httputil.ReverseProxy
	metrics     *metrics
	log         *slog.Logger
	accessLog   *slog.Logger
	mirrorSlots slots

	mu      sync.Mutex // serializes Apply and Close
	servers map[uint32]*portServer
	version string
	closed  bool
}

type portServer struct {
	port  uint32
	https bool
	ln    net.Listener
	srv   *http.Server
	done  chan struct{}
}

// New returns a proxy that serves nothing until the first Apply.
func New(opts Options) *Proxy {
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	p := &Proxy{opts: opts, log: opts.Log, accessLog: opts.AccessLog, servers: map[uint32]*portServer{}}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.metrics = newMetrics(opts.Registry)
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

// Ready reports whether a table has been applied.
func (p *Proxy) Ready() bool { return p.cfg.Load() != nil }

// Apply compiles and serves a new version of the tables. When it returns an
// error nothing changed: the previous version keeps serving.
func (p *Proxy) Apply(version string, tables []*routetable.RouteTable, keyPairs map[string]*routetable.KeyPair) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("proxy is shutting down")
	}
	cfg, err := compile(tables, keyPairs)
	if err != nil {
		p.metrics.applyErrors.Inc()
		return err
	}
	// Bind what is new before anything changes, so that a port that cannot
	// be bound leaves the old version serving.
	var bound []*portServer
	for port, pc := range cfg.ports {
		if s, ok := p.servers[port]; ok && s.https == pc.https {
			continue
		}
		if s, ok := p.servers[port]; ok && s.https != pc.https {
			p.closeBound(bound)
			p.metrics.applyErrors.Inc()
			return fmt.Errorf("port %d changes between HTTP and HTTPS: remove the listener in one version and add it in the next", port)
		}
		s, err := p.bind(port, pc.https)
		if err != nil {
			p.closeBound(bound)
			p.metrics.applyErrors.Inc()
			return err
		}
		bound = append(bound, s)
	}
	// Keep connection pools of backends reached the same way.
	for _, b := range cfg.backends {
		b.transport, b.upgrade = p.transports.get(b)
	}
	p.cfg.Store(cfg)
	for _, s := range bound {
		p.servers[s.port] = s
		go p.run(s)
	}
	for port, s := range p.servers {
		if _, ok := cfg.ports[port]; !ok {
			delete(p.servers, port)
			go p.drain(s)
		}
	}
	p.version = version
	p.metrics.applied(version)
	p.log.Info("route tables applied", "version", version, "tables", len(tables), "ports", len(cfg.ports), "backends", len(cfg.backends))
	return nil
}

func (p *Proxy) bind(port uint32, https bool) (*portServer, error) {
	addr := net.JoinHostPort(p.opts.BindAddress, strconv.Itoa(int(port)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("binding listener port %d: %w", port, err)
	}
	s := &portServer{port: port, https: https, ln: ln, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, port) }),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if https {
		protocols.SetHTTP2(true)
		s.srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"h2", "http/1.1"},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return p.certificate(port, hello) },
		}
	} else {
		// Cleartext HTTP/2 with prior knowledge, for gRPC clients.
		protocols.SetUnencryptedHTTP2(true)
	}
	s.srv.Protocols = &protocols
	return s, nil
}

func (p *Proxy) run(s *portServer) {
	defer close(s.done)
	var err error
	if s.https {
		err = s.srv.ServeTLS(s.ln, "", "")
	} else {
		err = s.srv.Serve(s.ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		p.log.Error("listener stopped", "port", s.port, "error", err)
	}
}

func (p *Proxy) closeBound(ss []*portServer) {
	for _, s := range ss {
		s.ln.Close()
	}
}

// drain stops accepting on a listener and lets its requests finish.
func (p *Proxy) drain(s *portServer) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.DrainTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		p.log.Warn("listener did not drain in time", "port", s.port, "error", err)
		s.srv.Close()
	}
}

// certificate chooses the key pair for a handshake: the listener that owns
// the SNI on this port, then its first certificate valid for the name.
func (p *Proxy) certificate(port uint32, hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cfg := p.cfg.Load()
	if cfg == nil || cfg.ports[port] == nil {
		return nil, errors.New("no listener on this port")
	}
	name := strings.ToLower(hello.ServerName)
	l, ok := cfg.ports[port].hosts.lookup(name)
	if !ok || len(l.certs) == 0 {
		return nil, fmt.Errorf("no listener for %q", name)
	}
	for _, c := range l.certs {
		if hello.SupportsCertificate(c) == nil {
			return c, nil
		}
	}
	return l.certs[0], nil
}

// Close stops every listener after letting requests finish, within ctx.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	servers := p.servers
	p.servers = map[uint32]*portServer{}
	p.mu.Unlock()
	var errs []error
	for _, s := range servers {
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			s.srv.Close()
		}
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
