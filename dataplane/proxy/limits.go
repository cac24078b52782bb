package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// limits are what the tables' classes allow, resolved with the defaults.
// A proxy serves one Gateway, whose tables share a class; when tables of
// several classes meet in one proxy (table files), the strictest value of
// each limit holds, since listeners and backends are shared.
type limits struct {
	// requestTimeout and backendTimeout bound the wait for the response
	// headers on routes without their own timeouts; maxTimeout caps the
	// routes' own. Zero: none.
	requestTimeout, backendTimeout, maxTimeout time.Duration
	server                                     serverSettings
	// A request body may take bodyTimeout plus one second per minBodyRate
	// bytes.
	bodyTimeout time.Duration
	minBodyRate int64
	maxURI      int
	// maxHeaderBytes counts the header fields as sent: name, ": ", value,
	// CRLF.
	maxHeaderBytes int
	backend        backendLimits
	stream         streamLimits
}

// streamLimits are what bounds the connections of stream listeners.
type streamLimits struct {
	// idle: how long a connection (UDP: session) may pass no byte; zero,
	// the protocol's default (streamIdleDefault).
	idle time.Duration
	// maxConns: connections (UDP: sessions) per listener; zero, none.
	maxConns int
}

// serverSettings are the limits a port's http.Server holds; a version
// that changes them gets new servers on the same sockets.
type serverSettings struct {
	readHeaderTimeout, idleTimeout time.Duration
	maxHeaderBytes                 int
}

// timeoutUnset marks a route timeout the route does not set: the limits'
// default applies.
const timeoutUnset time.Duration = -1

func compileLimits(tables []*routetable.RouteTable) *limits {
	var out *limits
	for _, t := range tables {
		l := limitsOf(t.Limits.WithDefaults())
		if out == nil {
			out = l
			continue
		}
		out.stricter(l)
	}
	if out == nil {
		out = limitsOf(routetable.DefaultLimits())
	}
	return out
}

func limitsOf(l *routetable.Limits) *limits {
	return &limits{
		requestTimeout: l.RequestTimeout.Std(),
		backendTimeout: l.BackendTimeout.Std(),
		maxTimeout:     l.MaxRequestTimeout.Std(),
		server: serverSettings{
			readHeaderTimeout: l.RequestHeaderTimeout.Std(),
			idleTimeout:       l.IdleTimeout.Std(),
			// The server reads twice the two limits before it gives up
			// with 431 on its own, so that the handler can answer 414 or
			// 431 by which limit a request passed.
			maxHeaderBytes: 2 * int(l.MaxRequestHeaderBytes+l.MaxUriLength),
		},
		bodyTimeout:    l.RequestBodyTimeout.Std(),
		minBodyRate:    int64(max(l.MinRequestBodyRate, 1)),
		maxURI:         int(l.MaxUriLength),
		maxHeaderBytes: int(l.MaxRequestHeaderBytes),
		backend:        backendLimits{maxConnections: int(l.MaxConnectionsPerBackend), maxPending: int(l.MaxPendingRequestsPerBackend)},
		stream:         streamLimits{idle: l.StreamIdleTimeout.Std(), maxConns: int(l.MaxStreamConnections)},
	}
}

// stricter lowers l to o where o is stricter; zero timeouts are none.
func (l *limits) stricter(o *limits) {
	lower := func(a *time.Duration, b time.Duration) {
		if b > 0 && (*a == 0 || b < *a) {
			*a = b
		}
	}
	lower(&l.requestTimeout, o.requestTimeout)
	lower(&l.backendTimeout, o.backendTimeout)
	lower(&l.maxTimeout, o.maxTimeout)
	lower(&l.server.readHeaderTimeout, o.server.readHeaderTimeout)
	lower(&l.server.idleTimeout, o.server.idleTimeout)
	lower(&l.bodyTimeout, o.bodyTimeout)
	l.server.maxHeaderBytes = min(l.server.maxHeaderBytes, o.server.maxHeaderBytes)
	l.minBodyRate = max(l.minBodyRate, o.minBodyRate)
	l.maxURI = min(l.maxURI, o.maxURI)
	l.maxHeaderBytes = min(l.maxHeaderBytes, o.maxHeaderBytes)
	l.backend.maxConnections = min(l.backend.maxConnections, o.backend.maxConnections)
	l.backend.maxPending = min(l.backend.maxPending, o.backend.maxPending)
	lower(&l.stream.idle, o.stream.idle)
	if o.stream.maxConns > 0 && (l.stream.maxConns == 0 || o.stream.maxConns < l.stream.maxConns) {
		l.stream.maxConns = o.stream.maxConns
	}
}

// refuse answers a request beyond the URI or header limits, and returns
// its status; 0 lets it through.
func (l *limits) refuse(w http.ResponseWriter, r *http.Request) int {
	if len(r.RequestURI) > l.maxURI {
		w.Header().Set("Connection", "close")
		return respond(w, http.StatusRequestURITooLong, fmt.Sprintf("the request target is longer than %d bytes", l.maxURI))
	}
	size := len("Host: \r\n") + len(r.Host)
	for name, values := range r.Header {
		for _, v := range values {
			size += len(name) + len(v) + len(": \r\n")
		}
	}
	if size > l.maxHeaderBytes {
		w.Header().Set("Connection", "close")
		return respond(w, http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("the request headers are larger than %d bytes", l.maxHeaderBytes))
	}
	return 0
}

// requestLimits are one request's timeouts, resolved from its route and
// the limits.
type requestLimits struct {
	// request and backend are whole-exchange timeouts (the route's own,
	// capped); 0: none.
	request, backend time.Duration
	// headers bounds the wait for the response headers, from the default
	// request timeout, counted as Envoy counts its route timeout: from the
	// end of the request, so that an upload takes as long as it flows.
	// attemptHeaders is the same bound per attempt, from the default
	// backend timeout. Zero: none.
	headers, attemptHeaders time.Duration
	// start is when the request began; body, when it has one, says when
	// it ended.
	start time.Time
	body  *bodyLimiter
}

// resolve sets a request's timeouts from its route's and the limits, and
// holds its body to the minimum rate.
func (l *limits) resolve(rl *requestLimits, a *action, w http.ResponseWriter, r *http.Request, start time.Time) {
	*rl = l.timeouts(a, start)
	if r.Body != nil && r.Body != http.NoBody {
		rl.body = &bodyLimiter{ReadCloser: r.Body, ctl: http.NewResponseController(w), start: start, grace: l.bodyTimeout, rate: l.minBodyRate}
		r.Body = rl.body
	}
}

// timeouts are a request's timeouts from its route's and the limits.
func (l *limits) timeouts(a *action, start time.Time) requestLimits {
	rl := requestLimits{request: l.capped(a.reqTimeout), backend: l.capped(a.beTimeout), start: start}
	if a.reqTimeout == timeoutUnset {
		rl.headers = l.requestTimeout
	}
	if a.beTimeout == timeoutUnset {
		rl.attemptHeaders = l.backendTimeout
	}
	return rl
}

// capped is a route's own timeout within the maximum; unset is none here.
func (l *limits) capped(d time.Duration) time.Duration {
	if d == timeoutUnset {
		return 0
	}
	got, _ := routetable.ClampTimeout(d, l.maxTimeout)
	return got
}

// errNoResponseInTime is a backend that did not start its response within
// the default timeout.
var errNoResponseInTime = fmt.Errorf("the backend sent no response headers within the default timeout: %w", context.DeadlineExceeded)

// roundTrip sends one attempt; without response headers by the default
// deadlines it gives up with errNoResponseInTime. Once the headers are in
// the body streams for as long as it flows: default timeouts never cut a
// download, an event stream or a tunnel.
func (rl *requestLimits) roundTrip(t http.RoundTripper, req *http.Request) (*http.Response, error) {
	if rl.headers <= 0 && rl.attemptHeaders <= 0 {
		return t.RoundTrip(req)
	}
	if h1, ok := t.(*h1Transport); ok {
		// The lean transport writes the whole request before it reads, so
		// the bound is a read deadline on its connection: no timer, context
		// or goroutine per request.
		return h1.roundTrip(req, rl.headerWait)
	}
	ctx, cancel := context.WithCancel(req.Context())
	timer := &headerTimer{cancel: cancel}
	arm := func() { timer.arm(rl.headerWait()) }
	if rl.body != nil {
		rl.body.onEnd(arm)
	} else {
		arm()
	}
	resp, err := t.RoundTrip(req.WithContext(ctx))
	if timer.settle() {
		if resp != nil {
			resp.Body.Close()
		}
		cancel()
		return nil, errNoResponseInTime
	}
	if err != nil {
		cancel()
		return nil, err
	}
	body := cancelBody{ReadCloser: resp.Body, cancel: cancel}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
		// A 101's body is the tunnel the reverse proxy writes to.
		resp.Body = cancelTunnel{body, rw}
	} else {
		resp.Body = body
	}
	return resp, nil
}

// headerWait is how long, from the end of the request, the backend has
// to start its response: the attempt's own bound, within what is left of
// the request's.
func (rl *requestLimits) headerWait() time.Duration {
	var ended time.Time
	if rl.body != nil {
		ended = rl.body.endedAt()
	}
	return rl.headerWaitAfter(rl.body != nil, ended)
}

// headerWaitAfter is headerWait for a request with or without a body,
// which ended at ended.
func (rl *requestLimits) headerWaitAfter(hasBody bool, ended time.Time) time.Duration {
	d := rl.attemptHeaders
	if rl.headers > 0 {
		left := rl.headers
		if hasBody {
			left -= time.Since(ended)
		}
		if d <= 0 || left < d {
			d = max(left, 0)
		}
	}
	return d
}

// headerTimer cancels an attempt whose response headers are late. It is
// armed when the request has been sent whole, which may be after the
// response began (a backend answering early), so settle disarms it for
// good.
type headerTimer struct {
	mu      sync.Mutex
	t       *time.Timer
	cancel  context.CancelFunc
	settled bool
	fired   bool
}

func (h *headerTimer) arm(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.settled && h.t == nil {
		h.t = time.AfterFunc(d, h.fire)
	}
}

func (h *headerTimer) fire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.settled {
		h.fired = true
		h.cancel()
	}
}

// settle disarms the timer and reports whether it fired.
func (h *headerTimer) settle() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settled = true
	if h.t != nil {
		h.t.Stop()
	}
	return h.fired
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

type cancelTunnel struct {
	cancelBody
	w io.Writer
}

func (t cancelTunnel) Write(p []byte) (int, error) { return t.w.Write(p) }

// errBodyTooSlow is a request body that fell behind its minimum rate.
var errBodyTooSlow = errors.New("the request body arrived slower than the minimum rate")

// bodyLimiter holds a request body to a minimum rate, as Apache's
// mod_reqtimeout does (body=20,MinRate=500): the read deadline starts at
// grace and moves one second later per rate bytes received. A client
// trickling bytes falls behind and is cut off; a slow but steady upload
// never is. nginx's client_body_timeout (60s between two reads) and
// Envoy's stream idle timeout (5m) both let a byte a second through.
type bodyLimiter struct {
	io.ReadCloser
	ctl   *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64
	n     int64
	mu    sync.Mutex
	// ended is when the body was read to its end; then is called then.
	ended time.Time
	then  func()
	// tooSlow is set by whoever reads the body (the transport's writer),
	// read by the error handler.
	tooSlow atomic.Bool
}

func (b *bodyLimiter) Read(p []byte) (int, error) {
	allowed := b.grace + time.Duration(b.n/b.rate)*time.Second + time.Duration(b.n%b.rate)*time.Second/time.Duration(b.rate)
	_ = b.ctl.SetReadDeadline(b.start.Add(allowed))
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		// The server reads on in the background to see the client go;
		// a deadline left behind would cancel the request.
		_ = b.ctl.SetReadDeadline(time.Time{})
		b.mu.Lock()
		b.ended = time.Now()
		then := b.then
		b.then = nil
		b.mu.Unlock()
		if then != nil {
			then()
		}
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.tooSlow.Store(true)
		return n, errBodyTooSlow
	}
	return n, err
}

// onEnd calls f once the body has been read to its end: now, if it has.
func (b *bodyLimiter) onEnd(f func()) {
	b.mu.Lock()
	if b.ended.IsZero() {
		b.then = f
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	f()
}

func (b *bodyLimiter) endedAt() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ended
}

// slowBody reports whether a request failed because its body was too
// slow; it then answers 408 and the connection closes.
func (rl *requestLimits) slowBody(w http.ResponseWriter) bool {
	if rl.body == nil || !rl.body.tooSlow.Load() {
		return false
	}
	w.Header().Set("Connection", "close")
	return true
}
