package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// maxReplayBody is the largest request body kept to retry or mirror a
// request; larger bodies are streamed once and never replayed.
const maxReplayBody = 64 << 10

// decision carries what routing decided for one request into the reverse
// proxy's hooks.
type decision struct {
	action  *action
	share   *weighted
	host    string
	path    string
	origin  string
	body    []byte
	hasBody bool
	// endpoint is the endpoint of the last attempt, for metrics.
	endpoint *endpoint
	limits   requestLimits
	// tunnel: the backend switched protocols; the proxy counts the
	// connection as upgraded until the reverse proxy is done with it.
	tunnel bool
}

type decisionKey struct{}

var (
	errNoEndpoint    = errors.New("no ready endpoint")
	errInvalidShare  = errors.New("backend is invalid")
	errUpstreamRetry = errors.New("upstream failed after retries")
)

// serve routes one request received on a port.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, port uint32) {
	start := time.Now()
	if p.draining.Load() {
		askToLeave(w, r)
	}
	cfg := p.cfg.Load()
	var served servedBy
	code := p.route(w, r, cfg, port, &served)
	if r.ProtoMajor == 2 {
		p.countStream(r, start)
	}
	p.metrics.observe(code, time.Since(start), served.route, served.backend)
	if p.accessLog != nil {
		p.accessLog.Info("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "code", code, "duration", time.Since(start))
	}
}

// vhostFor finds the virtual host of a request for host (lower-case,
// without port) on port, received over TLS when state is not nil. A code
// other than 0 is the answer instead, with its body.
func (cfg *config) vhostFor(port uint32, host string, state *tls.ConnectionState) (*vhost, int, string) {
	pc := cfg.ports[port]
	if pc == nil {
		return nil, http.StatusNotFound, ""
	}
	l, ok := pc.hosts.lookup(host)
	if pc.https && state != nil {
		// The listener whose certificate the handshake presented (by SNI;
		// without SNI, the catch-all's) must be the one that owns the Host.
		sni := strings.ToLower(state.ServerName)
		sl, sok := pc.hosts.lookup(sni)
		if sok && ok && sl != l {
			return nil, http.StatusMisdirectedRequest, "misdirected request: the Host belongs to another listener"
		}
		if sok && !ok {
			return nil, http.StatusNotFound, ""
		}
		l, ok = sl, sok
	}
	if !ok {
		return nil, http.StatusNotFound, ""
	}
	if l.notServed != "" {
		return nil, http.StatusServiceUnavailable, "this listener is not served"
	}
	if !l.client.admits(state) {
		// The handshake verified no certificate against the CAs the
		// listener trusts now: a new connection's handshake will.
		return nil, http.StatusMisdirectedRequest, "this connection's client certificate was not verified against the CAs this listener trusts now: connect again"
	}
	vh, ok := l.vhosts.lookup(host)
	if !ok {
		return nil, http.StatusNotFound, ""
	}
	return vh, 0, ""
}

// servedBy names the route and backend that served a request, for metrics.
type servedBy struct{ route, backend string }

// statusRecorder remembers the final status code written; interim (1xx)
// responses relayed before it do not count.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (p *Proxy) route(w http.ResponseWriter, r *http.Request, cfg *config, port uint32, served *servedBy) int {
	if cfg == nil {
		return respond(w, http.StatusServiceUnavailable, "no route table applied yet")
	}
	if code := cfg.limits.refuse(w, r); code != 0 {
		return code
	}
	if code := screen(w, r); code != 0 {
		return code
	}
	host := hostOnly(r.Host)
	vh, code, msg := cfg.vhostFor(port, host, r.TLS)
	if code != 0 {
		return respond(w, code, msg)
	}
	path := routingPath(r.URL)
	req := request{path: path, method: r.Method, header: r.Header, rawQ: r.URL.RawQuery}
	rt := p.matchRoute(vh, &req, host)
	if rt == nil {
		return respond(w, http.StatusNotFound, "")
	}
	a := rt.action
	served.route = rt.name
	if a.cors != nil && isPreflight(r) {
		a.cors.preflight(w, r)
		return http.StatusNoContent
	}
	switch {
	case a.redirect != nil:
		r.URL.Path = path
		w.Header().Set("Location", redirectLocation(a.redirect, r, host, port, rt.prefix))
		code := int(a.redirect.StatusCode)
		if code == 0 {
			code = http.StatusFound
		}
		w.WriteHeader(code)
		return code
	case a.direct != nil:
		a.respHeaders.apply(w.Header())
		return respond(w, int(a.direct.Status), a.direct.Body)
	}
	return p.forward(w, r, cfg.limits, a, rt, path, served)
}

// matchRoute is the route of vh that q matches, nil when none.
func (p *Proxy) matchRoute(vh *vhost, q *request, host string) *route {
	rt := vh.match(q)
	if q.overBudget {
		p.metrics.regexOverBudget.Inc()
		p.log.Debug("a regex match was refused: the request's matching reached its bound", "host", host, "path", q.path, "work", q.regexWork, "bound", routetable.MaxRegexWork)
	}
	return rt
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, lim *limits, a *action, rt *route, path string, served *servedBy) int {
	start := time.Now()
	share := pickShare(a)
	if share.backend != nil {
		served.backend = share.backend.name
	}
	if share.backend == nil {
		return respond(w, http.StatusInternalServerError, "the backend of this route is invalid")
	}
	pathRW, hostRW := a.pathRewrite, a.hostRewrite
	if share.pathRewrite != nil {
		pathRW = share.pathRewrite
	}
	if share.hostRewrite != "" {
		hostRW = share.hostRewrite
	}
	d := &decision{action: a, share: share, host: r.Host, path: rewritePath(path, pathRW, rt.prefix), origin: r.Header.Get("Origin")}
	if hostRW != "" {
		d.host = hostRW
	}
	lim.resolve(&d.limits, a, w, r, start)
	if (a.retry != nil || len(a.mirrors) > 0 || len(share.backend.endpoints) > 1) && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength >= 0 && r.ContentLength <= maxReplayBody {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxReplayBody+1))
			if err != nil {
				if d.limits.slowBody(w) {
					return respond(w, http.StatusRequestTimeout, errBodyTooSlow.Error())
				}
				return respond(w, http.StatusBadRequest, "reading the request body failed")
			}
			d.body, d.hasBody = body, true
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
	} else if r.Body == nil || r.Body == http.NoBody {
		d.hasBody = true
	}
	for i := range a.mirrors {
		p.mirror(r, &a.mirrors[i], d)
	}
	ctx := context.WithValue(r.Context(), decisionKey{}, d)
	if d.limits.request > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.limits.request)
		defer cancel()
	}
	rec := recorders.Get().(*statusRecorder)
	rec.ResponseWriter, rec.code = w, 0
	p.rp.ServeHTTP(rec, r.WithContext(ctx))
	if d.tunnel {
		p.tunnels.Add(-1)
	}
	code := rec.code
	rec.ResponseWriter = nil
	recorders.Put(rec)
	return code
}

var recorders = sync.Pool{New: func() any { return &statusRecorder{} }}

func pickShare(a *action) *weighted {
	if len(a.backends) == 1 {
		return &a.backends[0]
	}
	n := rand.Uint32N(a.totalWeight)
	for i := range a.backends {
		if n < a.backends[i].weight {
			return &a.backends[i]
		}
		n -= a.backends[i].weight
	}
	return &a.backends[len(a.backends)-1]
}

func respond(w http.ResponseWriter, code int, body string) int {
	if body != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(code)
	if body != "" {
		_, _ = io.WriteString(w, body+"\n")
	}
	return code
}

// hostOnly lower-cases the Host and drops its port.
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// newReverseProxy builds the one reverse proxy every forwarded request goes
// through; per-request choices travel in the request's context.
func (p *Proxy) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			d := pr.In.Context().Value(decisionKey{}).(*decision)
			pr.Out.URL.Scheme = "http"
			if d.share.backend.tls != nil {
				pr.Out.URL.Scheme = "https"
			}
			pr.Out.URL.Host = d.share.backend.name // replaced by the endpoint per attempt
			setPath(pr.Out.URL, d.path)
			pr.Out.Host = d.host
			pr.SetXForwarded()
			d.action.reqHeaders.apply(pr.Out.Header)
			d.share.reqHeaders.apply(pr.Out.Header)
			// The proxy answers 100-continue itself when it reads the body.
			pr.Out.Header.Del("Expect")
		},
		Transport: &upstream{p: p},
		ModifyResponse: func(resp *http.Response) error {
			d := resp.Request.Context().Value(decisionKey{}).(*decision)
			d.action.respHeaders.apply(resp.Header)
			d.share.respHeaders.apply(resp.Header)
			if d.action.cors != nil {
				d.action.cors.decorate(resp.Header, d.origin)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			code := http.StatusBadGateway
			switch {
			case r.Context().Value(decisionKey{}).(*decision).limits.slowBody(w):
				code = http.StatusRequestTimeout
			case errors.Is(err, context.DeadlineExceeded):
				code = http.StatusGatewayTimeout
			case errors.Is(err, errNoEndpoint), errors.Is(err, errOverflow):
				code = http.StatusServiceUnavailable
			case errors.Is(err, context.Canceled):
				code = 499 // the client went away
			}
			p.metrics.upstreamErrors.Inc()
			if p.log != nil && code != 499 {
				p.log.Debug("upstream error", "host", r.Host, "path", r.URL.Path, "error", err)
			}
			w.WriteHeader(code)
		},
		// Responses without a length (gRPC, streams) and event streams are
		// flushed as they come anyway; the rest is written in one go.
		FlushInterval: 0,
		BufferPool:    copyBuffers{},
	}
}

// copyBuffers recycles the buffers that copy response bodies.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyBufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(&b) }

// upstream sends a request to an endpoint of the chosen backend, retrying on
// connection errors and on the route's retry codes.
type upstream struct{ p *Proxy }

func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	d := req.Context().Value(decisionKey{}).(*decision)
	b := d.share.backend
	if err := b.breaker.acquire(req.Context()); err != nil {
		return nil, err
	}
	resp, cancel, err := u.attempts(req, d)
	if err != nil {
		b.breaker.release()
		return nil, err
	}
	body := &upstreamBody{ReadCloser: resp.Body, cancel: cancel, breaker: b.breaker}
	resp.Body = body
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, nil
	}
	// A 101 answers only an upgrade; its body is the tunnel
	// httputil.ReverseProxy writes to.
	w, ok := body.ReadCloser.(io.Writer)
	if req.Header.Get("Upgrade") == "" || !ok {
		body.Close()
		return nil, errUnaskedSwitch
	}
	resp.Body = tunnelBody{body, w}
	d.tunnel = true
	u.p.tunnels.Add(1)
	return resp, nil
}

// upstreamBody is a response body that, once closed, ends its attempt's
// timeout and gives its backend connection slot back.
type upstreamBody struct {
	io.ReadCloser
	cancel  context.CancelFunc // nil without a backend timeout
	breaker *breaker
	done    atomic.Bool
}

func (u *upstreamBody) Close() error {
	err := u.ReadCloser.Close()
	if u.done.CompareAndSwap(false, true) {
		if u.cancel != nil {
			u.cancel()
		}
		u.breaker.release()
	}
	return err
}

// tunnelBody is the upstreamBody of a 101.
type tunnelBody struct {
	*upstreamBody
	w io.Writer
}

func (t tunnelBody) Write(p []byte) (int, error) { return t.w.Write(p) }

// attempts tries endpoints until one answers or retries run out. cancel,
// when not nil, ends the answer's backend timeout.
func (u *upstream) attempts(req *http.Request, d *decision) (*http.Response, context.CancelFunc, error) {
	b := d.share.backend
	t := b.transport
	if req.Header.Get("Upgrade") != "" {
		t = b.upgrade
	}
	if _, lean := t.(*h1Transport); !lean {
		req = filterInterim(req)
	}
	a := d.action
	retries := 0
	if a.retry != nil {
		retries = a.retry.attempts
	}
	var prev *endpoint
	connRetries := 2 // a refused connection sent nothing: always safe to retry
	for attempt := 0; ; attempt++ {
		ep := b.pick(prev)
		if ep == nil {
			return nil, nil, errNoEndpoint
		}
		out := req
		if attempt > 0 {
			out = req.Clone(req.Context())
			if d.body != nil {
				out.Body = io.NopCloser(bytes.NewReader(d.body))
			}
		}
		out.URL.Host = ep.addr
		ctx, cancel := out.Context(), context.CancelFunc(nil)
		if d.limits.backend > 0 {
			ctx, cancel = context.WithTimeout(ctx, d.limits.backend)
			out = out.WithContext(ctx)
		}
		ep.inflight.Add(1)
		resp, err := d.limits.roundTrip(t, out)
		ep.inflight.Add(-1)
		d.endpoint = ep
		replayable := d.hasBody
		switch {
		case err != nil && isConnectError(err) && connRetries > 0 && replayable:
			connRetries--
		case err != nil && a.retry != nil && retries > 0 && replayable && req.Context().Err() == nil:
			retries--
		case err == nil && a.retry != nil && a.retry.codes[resp.StatusCode] && retries > 0 && replayable:
			retries--
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		default:
			if err != nil {
				if cancel != nil {
					cancel()
				}
				return nil, nil, err
			}
			return resp, cancel, nil
		}
		if cancel != nil {
			cancel()
		}
		prev = ep
		if a.retry != nil && a.retry.backoff > 0 {
			select {
			case <-time.After(a.retry.backoff):
			case <-req.Context().Done():
				return nil, nil, req.Context().Err()
			}
		}
	}
}

func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// mirror sends a copy of the request, without waiting, to a fraction of the
// traffic's mirror backend. Its answer is discarded.
func (p *Proxy) mirror(r *http.Request, m *mirror, d *decision) {
	if m.numerator < m.denominator && rand.Uint32N(m.denominator) >= m.numerator {
		return
	}
	if !d.hasBody {
		return // a streamed body cannot be sent twice
	}
	ep := m.backend.pick(nil)
	if ep == nil {
		return
	}
	if !p.mirrorSlots.TryAcquire() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", ep.addr
	if m.backend.tls != nil {
		out.URL.Scheme = "https"
	}
	setPath(out.URL, d.path)
	out.Host = d.host
	d.action.reqHeaders.apply(out.Header)
	out.Header.Del("Expect")
	if d.body != nil {
		out.Body = io.NopCloser(bytes.NewReader(d.body))
	} else {
		out.Body = http.NoBody
	}
	t := m.backend.transport
	go func() {
		defer p.mirrorSlots.Release()
		defer cancel()
		resp, err := t.RoundTrip(out)
		if err != nil {
			p.metrics.mirrorErrors.Inc()
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
}

// slots bounds concurrent work such as mirrored requests.
type slots struct{ n, max atomic.Int64 }

func (s *slots) TryAcquire() bool {
	if s.n.Add(1) > s.max.Load() {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *slots) Release() { s.n.Add(-1) }
