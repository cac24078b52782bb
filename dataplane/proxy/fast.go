package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy/wire"
	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// The fast path: HTTP/1.1 requests forwarded to plaintext HTTP/1.1
// backends without net/http. Per connection it keeps one read buffer, one
// write buffer and the parsed request; per request it allocates nothing in
// steady state, and it makes the system calls nginx makes: one read of the
// request, one write to the backend, one read of the response, one write
// to the client. Everything else (and every error the proxy answers
// itself) goes to net/http through front.handoff, before a byte of the
// response is written.

// fastInSize is a connection's read buffer: a request head larger than it
// goes to net/http, which applies the limits.
const fastInSize = 8 << 10

// fastOutSize is the write buffer: a response up to this size (head and
// body) goes out in one write.
const fastOutSize = 16 << 10

// fastConn is one client connection on the fast path.
type fastConn struct {
	f     *front
	c     net.Conn
	state *tls.ConnectionState
	// clientIP is the peer's address, for X-Forwarded-For.
	clientIP []byte
	proto    []byte

	in   []byte
	r, w int
	// deadline is the read deadline set last (zero: none).
	deadline time.Time
	first    bool
	idle     atomic.Bool

	req    wire.Request
	resp   wire.Response
	fields []outField
	arena  []byte
	head   []byte
	uri    []byte
	out    []byte
	body   []byte // a request body kept to replay
	clBody lengthReader
	// pending is a whole response not written yet: the read of the next
	// request writes it (fast_linux.go). closing: the connection closes
	// after this response; noDefer: responses are written at once.
	pending []byte
	closing bool
	noDefer bool
	// afterPOST: the last request was a POST (readHead).
	afterPOST bool
	deferred
	// watching is closed when a client watch (awaitResponse) ends;
	// watched is what it read; gone, that the client went away.
	watching chan struct{}
	watched  int
	gone     atomic.Bool
	plan     plan
	up       upstreamUse
	// pl and code are the request relay answers; recorded, that it was
	// counted.
	pl       *plan
	code     int
	recorded bool
}

// outField is a header field on its way out: a view of the request or
// response read, of the route table, or of the connection's arena.
type outField struct{ name, value []byte }

var fastConns = sync.Pool{New: func() any {
	return &fastConn{in: make([]byte, fastInSize), out: make([]byte, 0, fastOutSize)}
}}

func newFastConn(f *front, c net.Conn) *fastConn {
	fc := fastConns.Get().(*fastConn)
	fc.f, fc.c, fc.first, fc.r, fc.w, fc.deadline = f, c, true, 0, 0, time.Time{}
	fc.clientIP = fc.clientIP[:0]
	if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		fc.clientIP = append(fc.clientIP, host...)
	}
	fc.proto = protoHTTP
	fc.noDefer, fc.pending, fc.afterPOST = false, nil, false
	fc.initDeferred(c)
	return fc
}

var (
	protoHTTP  = []byte("http")
	protoHTTPS = []byte("https")
)

// release returns the connection's buffers.
func (fc *fastConn) release() {
	fc.f.track(fc, false)
	fc.f, fc.c, fc.state = nil, nil, nil
	fc.gone.Store(false)
	fc.req, fc.resp = wire.Request{}, wire.Response{}
	clear(fc.fields[:cap(fc.fields)])
	if cap(fc.body) > maxReplayBody+1 {
		fc.body = nil
	}
	fastConns.Put(fc)
}

// closeIfIdle closes a connection that waits for its next request, as
// http.Server.Shutdown does. Exactly one of it and the connection's read
// clears idle: a connection that got its request first serves it.
func (fc *fastConn) closeIfIdle() {
	if fc.idle.CompareAndSwap(true, false) {
		fc.c.Close()
	}
}

func (fc *fastConn) serve() {
	f := fc.f
	if f.https {
		tc := tls.Server(fc.c, f.tls)
		if d := f.settings.readHeaderTimeout; d > 0 {
			tc.SetDeadline(time.Now().Add(d))
		}
		if err := tc.Handshake(); err != nil {
			tc.Close()
			fc.release()
			return
		}
		tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		fc.c, fc.state, fc.proto = tc, &st, protoHTTPS
		if st.NegotiatedProtocol == "h2" {
			c := fc.c
			fc.release()
			f.handoff(c, nil, &st)
			return
		}
	}
	for {
		n, v, err := fc.readHead()
		if err != nil {
			fc.c.Close()
			fc.release()
			return
		}
		keep, handoff := true, v == wire.Other
		if !handoff {
			keep, handoff = fc.serveOne(n)
		}
		if handoff {
			c, pending, st := fc.c, fc.in[fc.r:fc.w], fc.state
			f.handoff(c, pending, st)
			fc.release()
			return
		}
		if !keep {
			fc.c.Close()
			fc.release()
			return
		}
	}
}

// readHead reads until a whole request head is buffered: idle and
// header timeouts as http.Server applies them.
func (fc *fastConn) readHead() (int, wire.Verdict, error) {
	if fc.r == fc.w {
		fc.r, fc.w = 0, 0
	} else if fc.r > len(fc.in)/2 {
		fc.w = copy(fc.in, fc.in[fc.r:fc.w])
		fc.r = 0
	}
	s := fc.f.settings
	if fc.pending != nil {
		pending := fc.pending
		fc.pending = nil
		fc.out = fc.out[:0]
		if fc.w > fc.r {
			// The client sent its next request already: it pipelines,
			// and its responses are written as they come.
			fc.noDefer = true
			if _, err := fc.c.Write(pending); err != nil {
				return 0, 0, err
			}
		} else if err := fc.readAfterWrite(pending); err != nil {
			return 0, 0, err
		}
	}
	// The head must arrive within the header timeout of its first byte;
	// a connection's first wait is that timeout already.
	timed := fc.first
	// After a POST, up to 4 CR or LF bytes before the next request are
	// dropped, as net/http does for old clients (RFC 9112 §2.2).
	crlf := 0
	if fc.afterPOST {
		crlf, fc.afterPOST = 4, false
	}
	for {
		for crlf > 0 && fc.w > fc.r {
			if c := fc.in[fc.r]; c != '\r' && c != '\n' {
				crlf = 0
				break
			}
			fc.r++
			crlf--
		}
		if fc.w > fc.r {
			n, v := fc.req.ParseRequest(fc.in[fc.r:fc.w])
			if v != wire.Incomplete {
				return n, v, nil
			}
			if fc.w == len(fc.in) {
				if fc.r == 0 {
					return 0, wire.Other, nil
				}
				fc.w = copy(fc.in, fc.in[fc.r:fc.w])
				fc.r = 0
			}
			// Part of a head: the rest within the header timeout.
			if !timed {
				fc.setReadDeadline(s.readHeaderTimeout, true)
				timed = true
			}
		} else {
			wait := s.idleTimeout
			if fc.first {
				wait = s.readHeaderTimeout
			}
			fc.setReadDeadline(wait, false)
			fc.idle.Store(true)
			if fc.f.closed.Load() {
				return 0, 0, net.ErrClosed
			}
		}
		n, err := fc.c.Read(fc.in[fc.w:])
		if fc.w == fc.r && !fc.idle.CompareAndSwap(true, false) {
			// Closed while idle by a shutdown.
			return 0, 0, net.ErrClosed
		}
		if n > 0 {
			fc.missedRequest()
		}
		fc.w += n
		if n == 0 && err != nil {
			return 0, 0, err
		}
	}
}

// setReadDeadline bounds the next reads to d from now; zero is none. An
// idle wait moves a deadline only once it is a second out of date, so
// that a busy keep-alive connection does not touch its timer per request.
func (fc *fastConn) setReadDeadline(d time.Duration, exact bool) {
	if d <= 0 {
		if !fc.deadline.IsZero() {
			fc.c.SetReadDeadline(time.Time{})
			fc.deadline = time.Time{}
		}
		return
	}
	want := time.Now().Add(d)
	if !exact && !fc.deadline.IsZero() && want.Sub(fc.deadline) < time.Second && fc.deadline.After(want.Add(-time.Second)) {
		return
	}
	fc.c.SetReadDeadline(want)
	fc.deadline = want
}

// view is b as a string, without copying: for lookups and comparisons
// that do not keep it past the request.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// plan is what the fast path decided for a request.
type plan struct {
	rt     *route
	share  *weighted
	lim    *limits
	t      *h1Transport
	path   string
	outURI []byte
	host   []byte
	start  time.Time
	// deadline bounds the attempt's exchange on the wire (zero: none).
	deadline time.Time
}

// serveOne serves the request whose head is the next n bytes. It reports
// whether the connection goes on, or is for net/http with nothing of the
// request consumed.
func (fc *fastConn) serveOne(n int) (keep, handoff bool) {
	fc.first = false
	pl := &fc.plan
	*pl = plan{start: time.Now()}
	if !fc.planRequest(pl) {
		return false, true
	}
	fc.r += n
	fc.afterPOST = view(fc.req.Method) == "POST"
	return fc.forward(pl), false
}

// planRequest decides whether the fast path serves the request, and how.
func (fc *fastConn) planRequest(pl *plan) bool {
	p := fc.f.p
	req := &fc.req
	cfg := p.cfg.Load()
	if cfg == nil || p.opts.NoFastPath {
		return false
	}
	lim := cfg.limits
	// An empty Host (net/http sends the backend's address instead) goes
	// to net/http.
	if len(req.Target) > lim.maxURI || req.HeaderBytes > lim.maxHeaderBytes || len(req.Host) == 0 || !validHost(view(req.Host)) {
		return false
	}
	host := hostOnly(view(req.Host))
	vh, code, _ := cfg.vhostFor(fc.f.port, host, fc.state)
	if code != 0 {
		return false
	}
	path := view(req.Path)
	if strings.IndexByte(path, '%') >= 0 || strings.Contains(path, "/.") || strings.Contains(path, "//") {
		path = cleanPath(routetable.CanonicalEscapes(path))
	}
	q := request{path: path, method: view(req.Method), fields: req.Fields, rawQ: view(req.Query)}
	rt := p.matchRoute(vh, &q, host)
	if rt == nil {
		return false
	}
	a := rt.action
	if a.redirect != nil || a.direct != nil || a.cors != nil || len(a.mirrors) > 0 {
		return false
	}
	share := pickShare(a)
	if share.backend == nil {
		return false
	}
	t, ok := share.backend.transport.(*h1Transport)
	if !ok {
		return false
	}
	pathRW, hostRW := a.pathRewrite, a.hostRewrite
	if share.pathRewrite != nil {
		pathRW = share.pathRewrite
	}
	if share.hostRewrite != "" {
		hostRW = share.hostRewrite
	}
	pl.rt, pl.share, pl.lim, pl.t, pl.path = rt, share, lim, t, path
	pl.host = req.Host
	if hostRW != "" {
		pl.host = []byte(hostRW)
	}
	out := rewritePath(path, pathRW, rt.prefix)
	if !wire.PlainPath(out) {
		var u url.URL
		setPath(&u, out)
		out = u.EscapedPath()
	}
	pl.outURI = append(fc.uri[:0], out...)
	if req.HasQuery {
		pl.outURI = append(pl.outURI, '?')
		pl.outURI = append(pl.outURI, req.Query...)
	}
	fc.uri = pl.outURI
	return true
}

// forward sends the request to its backend and relays the answer. It
// reports whether the connection goes on.
func (fc *fastConn) forward(pl *plan) bool {
	p := fc.f.p
	a, share := pl.rt.action, pl.share
	b := share.backend
	rl := pl.lim.timeouts(a, pl.start)
	closeAfter := fc.req.Close
	fc.buildFields(pl, a, share)
	// The upstream head, whole, before the body is read: the body's reads
	// may reuse the read buffer the request's fields point into.
	head := fc.upstreamHead(pl)
	bodyLen := fc.req.ContentLength
	var bodyEnd time.Time
	replayable := bodyLen == 0
	fc.body = fc.body[:0]
	if bodyLen > 0 && bodyLen <= maxReplayBody && (a.retry != nil || len(b.endpoints) > 1) {
		if err := fc.readBody(pl, &rl, bodyLen); err != nil {
			return fc.bodyFailed(err, pl)
		}
		bodyEnd, replayable = time.Now(), true
	}
	if err := b.breaker.acquire(p.base); err != nil {
		return fc.fail(pl, err, closeAfter || bodyLen > 0 && !replayable)
	}
	defer b.breaker.release()
	retries := 0
	if a.retry != nil {
		retries = a.retry.attempts
	}
	connRetries := 2
	var prev *endpoint
	streamed := false
	for {
		ep := b.pick(prev)
		if ep == nil {
			return fc.fail(pl, errNoEndpoint, closeAfter || bodyLen > 0 && !replayable && !streamed)
		}
		ep.inflight.Add(1)
		hc, err := fc.exchange(pl, &rl, ep.addr, head, bodyLen, replayable, &bodyEnd, &streamed)
		ep.inflight.Add(-1)
		switch {
		case err != nil && isConnectError(err) && connRetries > 0 && replayable:
			connRetries--
		case err != nil && errors.Is(err, errBodyTooSlow), err != nil && errors.Is(err, errClientBody):
			return fc.bodyFailed(err, pl)
		case err != nil && a.retry != nil && retries > 0 && replayable:
			retries--
		case err == nil && a.retry != nil && a.retry.codes[fc.resp.Status] && retries > 0 && replayable:
			retries--
			fc.discardResponse(pl.t, hc)
		default:
			if err != nil {
				return fc.fail(pl, err, closeAfter || bodyLen > 0 && !streamed && !replayable)
			}
			return fc.relay(pl, hc, closeAfter)
		}
		prev = ep
		if a.retry != nil && a.retry.backoff > 0 {
			time.Sleep(a.retry.backoff)
		}
	}
}

// errClientBody is a client that went away while sending its body.
var errClientBody = errors.New("the client closed the connection while sending the request body")

// readBody reads the whole body into fc.body, at the minimum rate.
func (fc *fastConn) readBody(pl *plan, rl *requestLimits, n int64) error {
	if int64(cap(fc.body)) < n {
		fc.body = make([]byte, 0, max(n, 4<<10))
	}
	fc.body = fc.body[:n]
	got := copy(fc.body, fc.in[fc.r:fc.w])
	fc.r += got
	for int64(got) < n {
		m, err := fc.readClient(pl, int64(got), fc.body[got:])
		got += m
		if err != nil && int64(got) < n {
			return err
		}
	}
	return nil
}

// readClient reads body bytes from the client, held to the minimum rate:
// the deadline is the grace plus a second per rate bytes after done.
func (fc *fastConn) readClient(pl *plan, done int64, b []byte) (int, error) {
	lim := pl.lim
	allowed := lim.bodyTimeout + time.Duration(done/lim.minBodyRate)*time.Second + time.Duration(done%lim.minBodyRate)*time.Second/time.Duration(lim.minBodyRate)
	dl := pl.start.Add(allowed)
	fc.c.SetReadDeadline(dl)
	fc.deadline = dl
	n, err := fc.c.Read(b)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, errBodyTooSlow
		}
		return n, errClientBody
	}
	return n, nil
}

// buildFields lays out the request's fields for the backend: the
// client's, less hop-by-hop and forwarding fields and those net/http
// writes itself; then X-Forwarded-*, then the route's and the backend's
// header filters, as the reverse proxy of the net/http path does.
func (fc *fastConn) buildFields(pl *plan, a *action, share *weighted) {
	fs := fc.fields[:0]
	fc.arena = fc.arena[:0]
	for _, f := range fc.req.Fields {
		if dropForUpstream(f.Name, fc.req.Close) {
			continue
		}
		fs = append(fs, outField{f.Name, f.Value})
	}
	fs = append(fs, outField{hdrXFF, fc.clientIP}, outField{hdrXFHost, fc.req.Host}, outField{hdrXFProto, fc.proto})
	fs = fc.mutate(fs, a.reqHeaders)
	fs = fc.mutate(fs, share.reqHeaders)
	fc.fields = fs
}

var (
	hdrXFF     = []byte("X-Forwarded-For")
	hdrXFHost  = []byte("X-Forwarded-Host")
	hdrXFProto = []byte("X-Forwarded-Proto")
)

// dropForUpstream: fields the request to the backend does not carry from
// the client's.
func dropForUpstream(name []byte, connClose bool) bool {
	switch len(name) {
	case 4:
		return wire.EqualFold(name, "Host")
	case 5:
		return connClose && wire.EqualFold(name, "Close")
	case 9:
		return wire.EqualFold(name, "Forwarded")
	case 10:
		return wire.EqualFold(name, "Connection")
	case 14:
		return wire.EqualFold(name, "Content-Length")
	case 15:
		return wire.EqualFold(name, "X-Forwarded-For")
	case 16:
		return wire.EqualFold(name, "X-Forwarded-Host")
	case 17:
		return wire.EqualFold(name, "X-Forwarded-Proto")
	}
	return false
}

// mutate applies a header filter to fields as mutation.apply does to a
// header map: set, then add (joined with what is there as joiner says),
// then remove.
func (fc *fastConn) mutate(fs []outField, m *mutation) []outField {
	if m == nil {
		return fs
	}
	for i := range m.set {
		h := &m.set[i]
		fs = removeFields(fs, h.name)
		fs = append(fs, outField{unsafe.Slice(unsafe.StringData(h.name), len(h.name)), unsafe.Slice(unsafe.StringData(h.value), len(h.value))})
	}
	for i := range m.add {
		h := &m.add[i]
		sep, join := joiner(h.name)
		start, found := len(fc.arena), false
		for _, f := range fs {
			if join && wire.EqualFold(f.name, h.name) {
				fc.arena = append(fc.arena, f.value...)
				fc.arena = append(fc.arena, sep...)
				found = true
			}
		}
		if !found {
			fs = append(fs, outField{unsafe.Slice(unsafe.StringData(h.name), len(h.name)), unsafe.Slice(unsafe.StringData(h.value), len(h.value))})
			continue
		}
		fc.arena = append(fc.arena, h.value...)
		joined := fc.arena[start:len(fc.arena):len(fc.arena)]
		fs = removeFields(fs, h.name)
		fs = append(fs, outField{unsafe.Slice(unsafe.StringData(h.name), len(h.name)), joined})
	}
	for _, name := range m.remove {
		fs = removeFields(fs, name)
	}
	return fs
}

func removeFields(fs []outField, name string) []outField {
	out := fs[:0]
	for _, f := range fs {
		if !wire.EqualFold(f.name, name) {
			out = append(out, f)
		}
	}
	clear(fs[len(out):])
	return out
}

// writeField reports whether a filtered field goes on the wire: net/http
// writes Host, Content-Length and the framing of a request itself.
func skipOnRequest(name []byte) bool {
	return wire.EqualFold(name, "Host") || wire.EqualFold(name, "Content-Length") ||
		wire.EqualFold(name, "Transfer-Encoding") || wire.EqualFold(name, "Trailer")
}

// upstreamHead writes the request head for the backend into fc.head.
func (fc *fastConn) upstreamHead(pl *plan) []byte {
	h := fc.head[:0]
	h = append(h, fc.req.Method...)
	h = append(h, ' ')
	h = append(h, pl.outURI...)
	h = append(h, " HTTP/1.1\r\nHost: "...)
	h = append(h, pl.host...)
	h = append(h, "\r\n"...)
	userAgent := false
	for _, f := range fc.fields {
		if skipOnRequest(f.name) {
			continue
		}
		if wire.EqualFold(f.name, "User-Agent") {
			// net/http writes the first User-Agent only, and none when
			// that one is empty.
			if userAgent || len(f.value) == 0 {
				userAgent = true
				continue
			}
			userAgent = true
		}
		h = append(h, f.name...)
		h = append(h, ": "...)
		h = append(h, f.value...)
		h = append(h, "\r\n"...)
	}
	if n := fc.req.ContentLength; n > 0 || methodWantsLength(fc.req.Method) {
		h = append(h, "Content-Length: "...)
		h = strconv.AppendInt(h, n, 10)
		h = append(h, "\r\n"...)
	}
	h = append(h, "\r\n"...)
	fc.head = h
	return h
}

// methodWantsLength: net/http sends Content-Length: 0 for these methods.
func methodWantsLength(m []byte) bool {
	s := view(m)
	return s == "POST" || s == "PUT" || s == "PATCH"
}

// exchange sends one attempt and reads the response head into fc.resp,
// or returns the connection with the head of a response the fast parser
// does not take still unread (fc.resp.Status 0).
func (fc *fastConn) exchange(pl *plan, rl *requestLimits, addr string, head []byte, bodyLen int64, replayable bool, bodyEnd *time.Time, streamed *bool) (*h1Conn, error) {
	t := pl.t
	p := fc.f.p
	for try := 0; ; try++ {
		get := t.get
		if try > 0 {
			// Going again after a pooled connection turned out closed by
			// the backend (errStale): on a new one, as another pooled
			// connection may have been closed at the same moment.
			get = t.dial
		}
		hc, err := get(p.base, addr)
		if err != nil {
			return nil, err
		}
		var deadline time.Time
		if rl.request > 0 {
			deadline = pl.start.Add(rl.request)
		}
		if rl.backend > 0 {
			if d := time.Now().Add(rl.backend); deadline.IsZero() || d.Before(deadline) {
				deadline = d
			}
		}
		if hc.deadlined {
			hc.c.SetDeadline(time.Time{})
			hc.rdl, hc.wdl, hc.deadlined = time.Time{}, time.Time{}, false
		}
		hc.setWriteDeadline(deadline)
		pl.deadline = deadline
		hc.writes, hc.early = 0, false
		_, err = hc.bw.Write(head)
		switch {
		case err != nil:
		case bodyLen > 0 && replayable:
			_, err = hc.bw.Write(fc.body)
		case bodyLen > 0:
			*streamed = true
			err = fc.streamBody(pl, hc, bodyLen)
			*bodyEnd = time.Now()
			if err != nil && (errors.Is(err, errBodyTooSlow) || errors.Is(err, errClientBody)) {
				hc.c.Close()
				return nil, err
			}
		}
		if err == nil {
			if hc.writes == 0 {
				// The whole request is in bw: the read that waits for the
				// answer writes it (flushThenRead).
				hc.flushFirst = true
			} else {
				err = hc.bw.Flush()
			}
		}
		bounded := false
		if err == nil {
			bound := deadline
			if w := rl.headerWaitAfter(bodyLen > 0, *bodyEnd); w > 0 {
				if hd := time.Now().Add(w); deadline.IsZero() || hd.Before(deadline) {
					bound, bounded = hd, true
				}
			}
			err = fc.awaitResponse(hc, bound)
		}
		if err != nil {
			hc.c.Close()
			if fc.gone.Load() {
				return nil, errClientGone
			}
			err = fc.upstreamFailed(hc, err, bounded)
			if errors.Is(err, errStale) && try == 0 && replayable {
				continue
			}
			return nil, err
		}
		// The read deadline stays as the wait left it; what reads the body
		// from the network sets pl.deadline first (bodyDeadline).
		return hc, nil
	}
}

// upstreamFailed says why an exchange failed, as h1Transport.failed does.
func (fc *fastConn) upstreamFailed(hc *h1Conn, err error, bounded bool) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if bounded {
			return errNoResponseInTime
		}
		return errDeadline
	}
	return (*h1Transport)(nil).stale(hc, err)
}

// errDeadline is the route's or backend's timeout reached on the wire.
var errDeadline = errors.New("the request or backend timeout was reached: " + os.ErrDeadlineExceeded.Error())

// streamBody copies a body of n bytes from the client to the backend.
func (fc *fastConn) streamBody(pl *plan, hc *h1Conn, n int64) error {
	buffered := min(int64(fc.w-fc.r), n)
	if buffered > 0 {
		if _, err := hc.bw.Write(fc.in[fc.r : fc.r+int(buffered)]); err != nil {
			return err
		}
		fc.r += int(buffered)
	}
	done := buffered
	bp := copyBufferPool.Get().(*[]byte)
	defer copyBufferPool.Put(bp)
	buf := *bp
	for done < n {
		m, err := fc.readClient(pl, done, buf[:min(int64(len(buf)), n-done)])
		if m > 0 {
			if _, werr := hc.bw.Write(buf[:m]); werr != nil {
				return werr
			}
			done += int64(m)
		}
		if err != nil && done < n {
			return err
		}
	}
	return nil
}

// errBadTrailer is a chunked body whose trailer section is not well formed.
var errBadTrailer = errors.New("the backend's chunked body ends with a malformed trailer section")

// readTrailers reads a chunked body's trailer section and appends its
// fields to out.
func readTrailers(br *bufio.Reader, out []byte) ([]byte, error) {
	for range wire.MaxFields + 1 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return nil, errBadTrailer
		}
		if len(line) == 2 {
			return out, nil
		}
		if !wire.ValidField(line[:len(line)-2]) {
			return nil, errBadTrailer
		}
		out = append(out, line...)
	}
	return nil, errBadTrailer
}

// clientWatchAfter is how long the backend may take to start its answer
// before the proxy starts watching the client: a client that goes away
// meanwhile ends the exchange (499), as on the net/http path and in nginx.
// Quicker answers cost no watching at all.
const clientWatchAfter = 50 * time.Millisecond

// errClientGone is a client that closed its connection while its request
// waited for the backend.
var errClientGone = errors.New("the client went away while the backend was answering")

// awaitResponse reads the response head within bound (zero: none),
// watching the client once the backend is slow.
func (fc *fastConn) awaitResponse(hc *h1Conn, bound time.Time) error {
	watchAt := time.Now().Add(clientWatchAfter)
	first := watchAt
	switch {
	case !bound.IsZero() && bound.Before(first):
		first = bound
		hc.setReadDeadline(first)
	case !hc.rdl.IsZero() && !hc.rdl.After(watchAt) && hc.rdl.After(watchAt.Add(-clientWatchAfter/5)):
		// The deadline an earlier exchange set serves: the watch starts
		// a little sooner, and the timer is not touched.
		first = hc.rdl
	default:
		hc.setReadDeadline(first)
	}
	for {
		err := fc.readResponseHead(hc)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || fc.gone.Load() || fc.watching != nil || first.Equal(bound) {
			fc.stopWatching()
			return err
		}
		fc.watchClient(hc)
		first = bound
		hc.setReadDeadline(bound)
	}
}

// watchClient reads from the client while the exchange waits: EOF or an
// error means the client is gone, and the backend's read is cut short.
// Bytes read (a pipelined request) are kept for later.
func (fc *fastConn) watchClient(hc *h1Conn) {
	if fc.w == len(fc.in) {
		return
	}
	done := make(chan struct{})
	fc.watching = done
	go func() {
		defer close(done)
		n, err := fc.c.Read(fc.in[fc.w:])
		fc.watched = n
		if n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			fc.gone.Store(true)
			hc.c.SetReadDeadline(time.Unix(1, 0))
			hc.deadlined = true
		}
	}()
}

// stopWatching ends a client watch and keeps what it read.
func (fc *fastConn) stopWatching() {
	if fc.watching == nil {
		return
	}
	fc.c.SetReadDeadline(time.Unix(1, 0))
	<-fc.watching
	fc.watching = nil
	fc.w += fc.watched
	fc.watched = 0
	// The next read sets its deadline anew.
	fc.deadline = time.Unix(1, 0)
}

// readResponseHead buffers and parses the response head; a head the fast
// parser does not take is left unread, with fc.resp.Status 0.
func (fc *fastConn) readResponseHead(hc *h1Conn) error {
	for size := 1; ; {
		b, err := hc.br.Peek(size)
		if err != nil && len(b) < size {
			if errors.Is(err, bufio.ErrBufferFull) {
				fc.resp.Status = 0
				return nil
			}
			return err
		}
		b, _ = hc.br.Peek(hc.br.Buffered())
		n, v := fc.resp.ParseResponse(b)
		switch v {
		case wire.Complete:
			hc.br.Discard(n)
			return nil
		case wire.Other:
			fc.resp.Status = 0
			return nil
		}
		size = len(b) + 1
	}
}

// discardResponse reads a response to be retried to its end (up to 1 MiB)
// and gives its connection back when it can.
func (fc *fastConn) discardResponse(t *h1Transport, hc *h1Conn) {
	if fc.resp.Status == 0 || fc.resp.Chunked || fc.resp.ContentLength < 0 || fc.resp.ContentLength > 1<<20 {
		hc.c.Close()
		return
	}
	if _, err := hc.br.Discard(int(fc.resp.ContentLength)); err != nil || fc.resp.Close || hc.early || hc.br.Buffered() > 0 {
		hc.c.Close()
		return
	}
	t.put(hc)
}

// fail answers an upstream failure as the reverse proxy's error handler
// does, and reports whether the connection goes on.
func (fc *fastConn) fail(pl *plan, err error, closeAfter bool) bool {
	p := fc.f.p
	if errors.Is(err, errClientGone) {
		p.metrics.upstreamErrors.Inc()
		fc.done(pl, 499)
		return false
	}
	closeAfter = closeAfter || fc.leaving()
	code := http.StatusBadGateway
	switch {
	case errors.Is(err, errNoResponseInTime), errors.Is(err, errDeadline):
		code = http.StatusGatewayTimeout
	case errors.Is(err, errNoEndpoint), errors.Is(err, errOverflow):
		code = http.StatusServiceUnavailable
	}
	p.metrics.upstreamErrors.Inc()
	p.log.Debug("upstream error", "host", string(fc.req.Host), "error", err)
	fc.out = appendStatus(fc.out[:0], code)
	fc.out = append(fc.out, "Date: "...)
	fc.out = append(fc.out, httpDate()...)
	fc.out = append(fc.out, "\r\nContent-Length: 0\r\n"...)
	if closeAfter {
		fc.out = append(fc.out, "Connection: close\r\n"...)
	}
	fc.out = append(fc.out, "\r\n"...)
	fc.done(pl, code)
	_, werr := fc.c.Write(fc.out)
	return werr == nil && !closeAfter
}

// bodyFailed ends a request whose body did not arrive: 408 for a body
// slower than the minimum rate, nothing for a client gone.
func (fc *fastConn) bodyFailed(err error, pl *plan) bool {
	if errors.Is(err, errBodyTooSlow) {
		fc.out = appendStatus(fc.out[:0], http.StatusRequestTimeout)
		fc.out = append(fc.out, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
		fc.out = strconv.AppendInt(fc.out, int64(len(errBodyTooSlow.Error())+1), 10)
		fc.out = append(fc.out, "\r\n\r\n"...)
		fc.out = append(fc.out, errBodyTooSlow.Error()...)
		fc.out = append(fc.out, '\n')
		fc.done(pl, http.StatusRequestTimeout)
		fc.c.Write(fc.out)
		return false
	}
	fc.done(pl, 499)
	return false
}

// leaving reports whether the connection closes after this response: the
// proxy drains, or the port's server is being replaced.
func (fc *fastConn) leaving() bool {
	return fc.f.p.draining.Load() || fc.f.closed.Load()
}

// record records the request relay is answering, once; it is called
// before the response's last write, so that a client that has its
// answer finds it counted.
func (fc *fastConn) record() {
	if !fc.recorded {
		fc.recorded = true
		fc.done(fc.pl, fc.code)
	}
}

// done records a served request.
func (fc *fastConn) done(pl *plan, code int) {
	p := fc.f.p
	d := time.Since(pl.start)
	p.metrics.observeShare(code, d, pl.rt.name, pl.share)
	if p.accessLog != nil {
		p.accessLog.Info("request", "method", string(fc.req.Method), "host", string(pl.host), "path", pl.path, "code", code, "duration", d)
	}
}

// relay writes the response to the client and reports whether the
// connection goes on.
func (fc *fastConn) relay(pl *plan, hc *h1Conn, closeAfter bool) bool {
	fc.pl, fc.code, fc.recorded = pl, fc.resp.Status, false
	closeAfter = closeAfter || fc.leaving()
	fc.closing = closeAfter
	if fc.resp.Status == 0 {
		return fc.relayOther(pl, hc, closeAfter)
	}
	t := pl.t
	resp := &fc.resp
	a, share := pl.rt.action, pl.share
	// Response fields: the backend's, less hop-by-hop ones and framing,
	// then the header filters.
	fs := fc.fields[:0]
	fc.arena = fc.arena[:0]
	hasDate := false
	for _, f := range resp.Fields {
		if wire.IsHopByHop(f.Name) || wire.EqualFold(f.Name, "Content-Length") || resp.Close && wire.EqualFold(f.Name, "Close") {
			continue
		}
		hasDate = hasDate || wire.EqualFold(f.Name, "Date")
		fs = append(fs, outField{f.Name, f.Value})
	}
	fs = fc.mutate(fs, a.respHeaders)
	fs = fc.mutate(fs, share.respHeaders)
	fc.fields = fs
	noBody := resp.Status == http.StatusNoContent || resp.Status == http.StatusNotModified
	length := resp.ContentLength
	if noBody {
		length = 0
	}
	out := appendStatus(fc.out[:0], resp.Status)
	for _, f := range fs {
		out = append(out, f.name...)
		out = append(out, ": "...)
		out = append(out, f.value...)
		out = append(out, "\r\n"...)
	}
	if !hasDate {
		out = append(out, "Date: "...)
		out = append(out, httpDate()...)
		out = append(out, "\r\n"...)
	}
	switch {
	case noBody:
	case length >= 0:
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, length, 10)
		out = append(out, "\r\n"...)
	default:
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	if closeAfter {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	fc.out = out
	fc.up = upstreamUse{t: t, hc: hc, reuse: !resp.Close && !hc.early && !noBody && (length >= 0 || resp.Chunked)}
	var err error
	var complete bool
	if length >= 0 {
		complete, err = fc.copyLength(hc, length)
	} else {
		complete, err = fc.copyChunked(hc, resp.Chunked)
	}
	fc.up.finish(false)
	fc.record()
	return err == nil && complete && !closeAfter
}

// copyLength writes fc.out and then length body bytes from the backend.
// complete says the body was read whole from the backend.
func (fc *fastConn) copyLength(hc *h1Conn, length int64) (complete bool, err error) {
	out := fc.out
	// What the backend sent of the body already goes in the same write as
	// the head.
	if n := int(min(int64(hc.br.Buffered()), length, int64(cap(out)-len(out)))); n > 0 {
		b, _ := hc.br.Peek(n)
		out = append(out, b...)
		hc.br.Discard(n)
		length -= int64(n)
	}
	if length == 0 {
		fc.up.finish(true)
		fc.record()
		if fc.canDefer() {
			// The whole response is in out: the read of the next request
			// writes it (readAfterWrite).
			fc.pending = out
			return true, nil
		}
	}
	if _, err := fc.c.Write(out); err != nil {
		return false, err
	}
	fc.out = out[:0]
	if length == 0 {
		return true, nil
	}
	hc.setReadDeadline(fc.plan.deadline)
	fc.clBody = lengthReader{br: hc.br, left: length}
	bp := copyBufferPool.Get().(*[]byte)
	defer copyBufferPool.Put(bp)
	for fc.clBody.left > 0 {
		n, rerr := fc.clBody.Read(*bp)
		if fc.clBody.left == 0 {
			fc.up.finish(true)
			fc.record()
		}
		if n > 0 {
			if _, werr := fc.c.Write((*bp)[:n]); werr != nil {
				return false, werr
			}
		}
		if rerr != nil {
			return false, rerr
		}
	}
	return true, nil
}

// upstreamUse is the backend connection a response is read from: it goes
// back to its pool once the response was read whole, if it can be reused,
// before the client has the response's last bytes.
type upstreamUse struct {
	t     *h1Transport
	hc    *h1Conn
	reuse bool
}

// finish gives the connection back (complete: the response was read to
// its end) or closes it; only the first call counts.
func (u *upstreamUse) finish(complete bool) {
	if u.hc == nil {
		return
	}
	if complete && u.reuse && u.hc.br.Buffered() == 0 {
		u.t.put(u.hc)
	} else {
		u.hc.c.Close()
	}
	*u = upstreamUse{}
}

// lengthReader reads the next left bytes of a backend connection.
type lengthReader struct {
	br   *bufio.Reader
	left int64
}

func (l *lengthReader) Read(b []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > l.left {
		b = b[:l.left]
	}
	n, err := l.br.Read(b)
	l.left -= int64(n)
	if err == io.EOF && l.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// copyChunked writes fc.out and then the body, re-framed in chunks as it
// comes: a chunked body from its chunks (trailers relayed), a body without
// length until the backend closes.
func (fc *fastConn) copyChunked(hc *h1Conn, chunked bool) (bool, error) {
	if _, err := fc.c.Write(fc.out); err != nil {
		return false, err
	}
	fc.out = fc.out[:0]
	hc.setReadDeadline(fc.plan.deadline)
	var src io.Reader = hc.br
	if chunked {
		src = httputil.NewChunkedReader(hc.br)
	}
	bp := copyBufferPool.Get().(*[]byte)
	defer copyBufferPool.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf[:len(buf)-64])
		if n > 0 {
			out := strconv.AppendInt(fc.out[:0], int64(n), 16)
			out = append(out, "\r\n"...)
			if _, werr := fc.c.Write(out); werr != nil {
				return false, werr
			}
			out = append(buf[:n], "\r\n"...)
			if _, werr := fc.c.Write(out); werr != nil {
				return false, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err
		}
	}
	end := append(fc.out[:0], "0\r\n"...)
	if chunked {
		trailers, err := readTrailers(hc.br, end)
		if err != nil {
			return false, err
		}
		end = trailers
	}
	end = append(end, "\r\n"...)
	// The body ended where its framing says: its chunks, or the
	// backend's close (that connection is not reused).
	fc.up.finish(true)
	fc.record()
	_, err := fc.c.Write(end)
	return true, err
}

// relayOther relays a response the fast parser does not take: net/http
// reads it (interim responses, HTTP/1.0, other codings), and it goes out
// re-framed as on the net/http path.
func (fc *fastConn) relayOther(pl *plan, hc *h1Conn, closeAfter bool) bool {
	hc.setReadDeadline(pl.deadline)
	var resp *http.Response
	for n := 0; ; n++ {
		r, err := http.ReadResponse(hc.br, nil)
		if err != nil {
			hc.c.Close()
			return fc.fail(pl, err, closeAfter)
		}
		code := r.StatusCode
		if code == http.StatusSwitchingProtocols {
			hc.c.Close()
			return fc.fail(pl, errUnaskedSwitch, closeAfter)
		}
		if code >= 200 {
			resp = r
			break
		}
		if n == maxInterim {
			hc.c.Close()
			return fc.fail(pl, errors.New("backend sent too many interim responses"), closeAfter)
		}
		if code == http.StatusContinue {
			continue
		}
		removeHopByHop(r.Header)
		out := appendStatus(fc.out[:0], code)
		out = appendHeader(out, r.Header)
		out = append(out, "\r\n"...)
		if _, err := fc.c.Write(out); err != nil {
			hc.c.Close()
			return false
		}
	}
	removeHopByHop(resp.Header)
	a, share := pl.rt.action, pl.share
	a.respHeaders.apply(resp.Header)
	share.respHeaders.apply(resp.Header)
	resp.Header.Del("Content-Length")
	if resp.Header.Get("Date") == "" {
		resp.Header.Set("Date", string(httpDate()))
	}
	noBody := resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	out := appendStatus(fc.out[:0], resp.StatusCode)
	out = appendHeader(out, resp.Header)
	chunked := false
	switch {
	case noBody:
	case resp.ContentLength >= 0:
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, resp.ContentLength, 10)
		out = append(out, "\r\n"...)
	default:
		chunked = true
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	if closeAfter {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	ok := true
	fc.code = resp.StatusCode
	fc.record()
	if _, err := fc.c.Write(out); err != nil {
		ok = false
	}
	if ok && !noBody {
		if chunked {
			ok = writeChunked(fc.c, resp)
		} else if n, err := io.Copy(fc.c, resp.Body); err != nil || n != resp.ContentLength {
			ok = false
		}
	}
	// A response net/http had to read is never trusted with another
	// request.
	resp.Body.Close()
	hc.c.Close()
	return ok && !closeAfter
}

// writeChunked relays a body of unknown length in chunks, then its
// trailers.
func writeChunked(w io.Writer, resp *http.Response) bool {
	bw := bufio.NewWriter(w)
	cw := httputil.NewChunkedWriter(bw)
	if _, err := io.Copy(flushEach{cw, bw}, resp.Body); err != nil {
		return false
	}
	var end []byte
	end = append(end, "0\r\n"...)
	end = appendHeader(end, resp.Trailer)
	end = append(end, "\r\n"...)
	if _, err := bw.Write(end); err != nil {
		return false
	}
	return bw.Flush() == nil
}

// flushEach flushes after each write: a body without length streams.
type flushEach struct {
	w  io.Writer
	bw *bufio.Writer
}

func (f flushEach) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if err == nil {
		err = f.bw.Flush()
	}
	return n, err
}

// removeHopByHop removes hop-by-hop fields as the reverse proxy does.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		h.Del(f)
	}
}

func appendHeader(out []byte, h http.Header) []byte {
	for name, vs := range h {
		for _, v := range vs {
			out = append(out, name...)
			out = append(out, ": "...)
			out = append(out, strings.Map(dropCRLF, v)...)
			out = append(out, "\r\n"...)
		}
	}
	return out
}

func dropCRLF(r rune) rune {
	if r == '\r' || r == '\n' {
		return ' '
	}
	return r
}

// statusLines are "HTTP/1.1 <code> <text>\r\n" for every code.
var statusLines = func() (t [1000][]byte) {
	for c := 100; c < 1000; c++ {
		text := http.StatusText(c)
		if text == "" {
			text = "status code " + strconv.Itoa(c)
		}
		t[c] = []byte("HTTP/1.1 " + strconv.Itoa(c) + " " + text + "\r\n")
	}
	return t
}()

func appendStatus(out []byte, code int) []byte {
	if code < 100 || code > 999 {
		code = http.StatusBadGateway
	}
	return append(out, statusLines[code]...)
}

// httpDate is the current time as a Date field value, formatted once a
// second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &cachedDate{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

type cachedDate struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[cachedDate]
