package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// front serves one port with one set of server settings. It reads each
// connection's requests itself (fast.go): an HTTP/1.1 request the fast
// path can take is served there, without net/http. At the first request
// it cannot take (HTTP/2, an upgrade, a redirect, an error to answer,
// anything outside the strict subset package wire reads), the connection
// goes, with the bytes read so far and nothing written, to the port's
// http.Server, which serves it from then on exactly as before.
type front struct {
	p        *Proxy
	port     uint32
	https    bool
	settings serverSettings
	srv      *http.Server
	hand     *handoffListener
	tls      *tls.Config

	mu sync.Mutex
	ln net.Listener
	// sock is the port's socket, which relayed connections (stream.go)
	// are drained with.
	sock   *portListener
	conns  map[*fastConn]struct{}
	closed atomic.Bool
}

func (p *Proxy) newFront(port uint32, https bool, settings serverSettings) *front {
	f := &front{p: p, port: port, https: https, settings: settings, conns: map[*fastConn]struct{}{}}
	f.srv = p.newServer(port, https, settings)
	f.hand = newHandoffListener()
	if https {
		f.tls = f.srv.TLSConfig.Clone()
	}
	return f
}

// serve accepts from ln until it is closed.
func (f *front) serve(ln net.Listener) error {
	f.mu.Lock()
	f.ln = ln
	if v, ok := ln.(*listenerView); ok {
		f.sock = v.pl
	}
	f.mu.Unlock()
	f.hand.addr = ln.Addr()
	go func() {
		if err := f.srv.Serve(f.hand); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.p.log.Error("listener stopped", "port", f.port, "error", err)
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.closed.Load() || errors.Is(err, net.ErrClosed) {
				return http.ErrServerClosed
			}
			return err
		}
		// A connection accepted as the port's server is being replaced
		// is served all the same, as http.Server does: its response asks
		// the client to reconnect.
		if !f.p.takeStream(f, c) {
			f.serveHTTP(c)
		}
	}
}

// serveHTTP serves a connection's requests.
func (f *front) serveHTTP(c net.Conn) {
	fc := newFastConn(f, c)
	f.track(fc, true)
	go fc.serve()
}

// track adds or removes a connection.
func (f *front) track(fc *fastConn, add bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if add {
		f.conns[fc] = struct{}{}
	} else {
		delete(f.conns, fc)
	}
}

// stopAccepting closes the view this front accepts from.
func (f *front) stopAccepting() {
	f.closed.Store(true)
	f.mu.Lock()
	ln := f.ln
	f.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Shutdown stops accepting, closes idle connections and waits for the
// others to finish their request, as http.Server.Shutdown does.
func (f *front) Shutdown(ctx context.Context) error {
	f.stopAccepting()
	srvDone := make(chan error, 1)
	go func() { srvDone <- f.srv.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		n := len(f.conns)
		for fc := range f.conns {
			fc.closeIfIdle()
		}
		f.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			<-srvDone
			return ctx.Err()
		}
	}
	return <-srvDone
}

// Close closes every connection now.
func (f *front) Close() error {
	f.stopAccepting()
	f.mu.Lock()
	for fc := range f.conns {
		fc.c.Close()
	}
	f.mu.Unlock()
	return f.srv.Close()
}

// handoff gives a connection to the http.Server; pending are bytes read
// from it that the server must read first.
func (f *front) handoff(c net.Conn, pending []byte, state *tls.ConnectionState) {
	if len(pending) > 0 {
		c = &replayConn{Conn: c, pending: append([]byte(nil), pending...), state: state}
	}
	if !f.hand.give(c) {
		c.Close()
	}
}

// handoffListener is what a port's http.Server accepts from: the
// connections the fast path gave up.
type handoffListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func newHandoffListener() *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (h *handoffListener) give(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoffListener) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoffListener) Addr() net.Addr { return h.addr }

// replayConn is a connection handed off after the fast path read from it:
// its reads return the bytes read so far first. state is the TLS state
// of the connection it wraps, which http.Server cannot see through it.
type replayConn struct {
	net.Conn
	pending []byte
	state   *tls.ConnectionState
}

func (r *replayConn) Read(b []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(b, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	return r.Conn.Read(b)
}

type tlsStateKey struct{}

// connContext is the servers' ConnContext: stream counts, and the TLS
// state of a handed-off TLS connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	ctx = countStreams(ctx, c)
	if rc, ok := c.(*replayConn); ok && rc.state != nil {
		ctx = context.WithValue(ctx, tlsStateKey{}, rc.state)
	}
	return ctx
}

// handedOffTLS restores r.TLS for a request of a handed-off TLS
// connection.
func handedOffTLS(r *http.Request) {
	if r.TLS == nil {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
			r.TLS = st
		}
	}
}
