package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"sync"
	"syscall"
	"time"
)

// h1Transport is a lean HTTP/1.1 client for plaintext backends: the request
// is written and the response read on the calling goroutine, over pooled
// keep-alive connections, without the two goroutines per connection and the
// channel hand-offs of http.Transport. Upgrades, HTTP/2 and TLS backends use
// http.Transport.
//
// A pooled connection is shared by every route that points at the backend,
// whichever tenant owns it, so a connection goes back to the pool only when
// its state is certain: the whole request written, exactly one final
// response read to its end, not a byte more received, and nothing received
// while the request was still being written. Anything else closes it.
type h1Transport struct {
	dialer   net.Dialer
	mu       sync.Mutex
	idle     map[string][]*h1Conn
	maxIdle  int
	idleTime time.Duration
}

type h1Conn struct {
	c     net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	addr  string
	used  time.Time
	fresh bool
	// writes counts the writes of the current request; early records that
	// the backend sent something before the last of them.
	writes int
	early  bool
	// deadlined: a deadline may be set on c that rdl and wdl do not
	// know of (the net/http path sets its own).
	deadlined bool
	// rdl and wdl are the read and write deadlines the fast path set.
	rdl, wdl time.Time
	// flushFirst: the next read first writes what bw holds, then waits
	// for the answer (flushThenRead).
	flushFirst bool
	peeker
}

// maxInterim bounds the interim (1xx) responses read before the final one,
// as http.Transport does.
const maxInterim = 5

func newH1Transport() *h1Transport {
	return &h1Transport{
		dialer:   net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		idle:     map[string][]*h1Conn{},
		maxIdle:  1024,
		idleTime: 90 * time.Second,
	}
}

var (
	// errStale marks a failure on a reused connection before any response
	// byte: the backend had closed it, and the request can go again on a
	// new one.
	errStale = errors.New("idle connection closed by the backend")
	// errUnaskedSwitch is a 101 to a request that asked for no upgrade:
	// passing it on would give the client a raw tunnel to the backend.
	errUnaskedSwitch = errors.New("backend answered 101 Switching Protocols to a request that asked for no upgrade; the backend must answer such requests with a final status")
)

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, nil)
}

// roundTrip sends req; headerWait, when not nil, says once the request is
// written how long the backend has to start its response
// (errNoResponseInTime after that; zero is no bound).
func (t *h1Transport) roundTrip(req *http.Request, headerWait func() time.Duration) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		get := t.get
		if attempt > 0 {
			// Going again after a pooled connection turned out closed by
			// the backend (errStale): on a new one, as another pooled
			// connection may have been closed at the same moment.
			get = t.dial
		}
		hc, err := get(req.Context(), req.URL.Host)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(hc, req, headerWait)
		if errors.Is(err, errStale) && attempt == 0 && (req.Body == nil || req.Body == http.NoBody) {
			continue
		}
		return resp, err
	}
}

func (t *h1Transport) exchange(hc *h1Conn, req *http.Request, headerWait func() time.Duration) (*http.Response, error) {
	ctx := req.Context()
	deadline, _ := ctx.Deadline()
	hc.c.SetDeadline(deadline)
	hc.deadlined = true
	// Cancellation (client gone, timeouts) interrupts blocked I/O.
	stop := context.AfterFunc(ctx, func() { hc.c.SetDeadline(time.Unix(1, 0)) })
	hc.writes, hc.early = 0, false
	err := req.Write(hc.bw)
	if err == nil {
		err = hc.bw.Flush()
	}
	if err != nil {
		stop()
		hc.c.Close()
		return nil, t.failed(ctx, hc, err, false)
	}
	bounded := false
	if headerWait != nil {
		if w := headerWait(); w > 0 {
			if hd := time.Now().Add(w); deadline.IsZero() || hd.Before(deadline) {
				hc.c.SetReadDeadline(hd)
				bounded = true
			}
		}
	}
	resp, interim, err := readFinal(hc.br, req)
	if err != nil {
		stop()
		hc.c.Close()
		if interim && ctx.Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, err
		}
		return nil, t.failed(ctx, hc, err, bounded)
	}
	if bounded {
		// The body streams for as long as it flows. A cancellation that
		// came meanwhile has set its deadline already, so set it again.
		hc.c.SetReadDeadline(deadline)
		if ctx.Err() != nil {
			hc.c.SetDeadline(time.Unix(1, 0))
		}
	}
	reuse := !resp.Close && !req.Close && !hc.early && framedForReuse(req, resp)
	resp.Body = &h1Body{rc: resp.Body, t: t, hc: hc, reuse: reuse, stop: stop}
	return resp, nil
}

// readFinal reads interim responses up to the final one, relaying those
// the client may see (relayInterim) through the request's trace, as
// http.Transport does.
// interim reports whether any came before a failure.
func readFinal(br *bufio.Reader, req *http.Request) (resp *http.Response, interim bool, err error) {
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, n > 0, err
		}
		code := resp.StatusCode
		switch {
		case code == http.StatusSwitchingProtocols:
			// Upgrades go through http.Transport, never here.
			return nil, true, errUnaskedSwitch
		case code >= 200:
			return resp, n > 0, nil
		case n == maxInterim:
			return nil, true, fmt.Errorf("backend sent more than %d interim (1xx) responses before its answer; it must send a final response", maxInterim)
		}
		if !relayInterim(req, code) {
			continue
		}
		if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, true, err
			}
		}
	}
}

// framedForReuse reports whether the response's end is where its framing
// says: a body of known length or chunked. A response to HEAD, a 204 and a
// 304 carry no body whatever their headers say, and a backend that sends
// one anyway would hand its bytes to the next request: their connections
// are not reused.
func framedForReuse(req *http.Request, resp *http.Response) bool {
	if req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		return false
	}
	return resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0
}

// failed says why an exchange failed: the context ended, the backend was
// later than the header bound, a pooled connection was stale, or err.
func (t *h1Transport) failed(ctx context.Context, hc *h1Conn, err error, bounded bool) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if bounded {
			return errNoResponseInTime
		}
		// The context's deadline, reached on the socket a moment before
		// the context's own timer.
		return context.DeadlineExceeded
	}
	return t.stale(hc, err)
}

func (t *h1Transport) stale(hc *h1Conn, err error) error {
	if !hc.fresh && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
		return errStale
	}
	return err
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// get borrows an idle connection to addr, or dials one. A borrowed
// connection that has anything to read (bytes nobody asked for, or the
// backend's close) is closed and the next one tried.
func (t *h1Transport) get(ctx context.Context, addr string) (*h1Conn, error) {
	for {
		hc := t.popIdle(addr)
		if hc == nil {
			break
		}
		// A deadline an exchange left behind may have passed: clear it, or
		// the check below fails on it.
		if hc.deadlined {
			hc.c.SetDeadline(time.Time{})
			hc.rdl, hc.wdl, hc.deadlined = time.Time{}, time.Time{}, false
		} else if !hc.rdl.IsZero() && time.Now().After(hc.rdl) {
			hc.c.SetReadDeadline(time.Time{})
			hc.rdl = time.Time{}
		}
		if hc.br.Buffered() == 0 && !hc.readable() {
			hc.fresh = false
			return hc, nil
		}
		hc.c.Close()
	}
	return t.dial(ctx, addr)
}

// dial opens a new connection to a backend.
func (t *h1Transport) dial(ctx context.Context, addr string) (*h1Conn, error) {
	c, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	hc := &h1Conn{c: c, addr: addr, fresh: true}
	hc.br = bufio.NewReaderSize(upstreamReader{hc}, 16<<10)
	hc.bw = bufio.NewWriterSize(watchedWriter{hc}, 8<<10)
	if sc, ok := c.(syscall.Conn); ok {
		hc.peeker.init(sc)
	}
	return hc, nil
}

// setReadDeadline and setWriteDeadline set a deadline when it is not
// set already.
func (hc *h1Conn) setReadDeadline(t time.Time) {
	if !t.Equal(hc.rdl) {
		hc.c.SetReadDeadline(t)
		hc.rdl = t
	}
}

func (hc *h1Conn) setWriteDeadline(t time.Time) {
	if !t.Equal(hc.wdl) {
		hc.c.SetWriteDeadline(t)
		hc.wdl = t
	}
}

// popIdle takes the most recently used idle connection to addr that has
// not idled too long.
func (t *h1Transport) popIdle(addr string) *h1Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	for list := t.idle[addr]; len(list) > 0; list = t.idle[addr] {
		hc := list[len(list)-1]
		t.idle[addr] = list[:len(list)-1]
		if time.Since(hc.used) < t.idleTime {
			return hc
		}
		hc.c.Close()
	}
	return nil
}

func (t *h1Transport) put(hc *h1Conn) {
	hc.used = time.Now()
	t.mu.Lock()
	if len(t.idle[hc.addr]) < t.maxIdle {
		t.idle[hc.addr] = append(t.idle[hc.addr], hc)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	hc.c.Close()
}

// upstreamReader reads a backend connection: an ordinary read, or, once
// after flushFirst is set, the request's write and the wait for its
// answer as one (flushThenRead).
type upstreamReader struct{ hc *h1Conn }

func (r upstreamReader) Read(b []byte) (int, error) {
	hc := r.hc
	if hc.flushFirst {
		hc.flushFirst = false
		return hc.flushThenRead(b)
	}
	return hc.c.Read(b)
}

// watchedWriter writes a request to its connection, noting a response that
// arrives before the request's last write: the backend answered without
// reading the whole body, and may read the rest as a request of its own.
type watchedWriter struct{ hc *h1Conn }

func (w watchedWriter) Write(p []byte) (int, error) {
	hc := w.hc
	if hc.writes > 0 && !hc.early && hc.readable() {
		hc.early = true
	}
	hc.writes++
	return hc.c.Write(p)
}

// h1Body returns its connection to the pool once the body was read to the
// end, and closes it otherwise.
type h1Body struct {
	rc    io.ReadCloser
	t     *h1Transport
	hc    *h1Conn
	reuse bool
	eof   bool
	stop  func() bool
	done  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.rc.Close()
	cancelled := !b.stop() // the context fired: the deadline is poisoned
	if b.reuse && b.eof && !cancelled && b.hc.br.Buffered() == 0 {
		b.t.put(b.hc)
	} else {
		b.hc.c.Close()
	}
	return err
}
