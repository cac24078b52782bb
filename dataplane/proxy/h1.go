package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// h1Transport is a lean HTTP/1.1 client for plaintext backends: the request
// is written and the response read on the calling goroutine, over pooled
// keep-alive connections, without the two goroutines per connection and the
// channel hand-offs of http.Transport. Upgrades, HTTP/2 and TLS backends use
// http.Transport.
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
}

func newH1Transport() *h1Transport {
	return &h1Transport{
		dialer:   net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		idle:     map[string][]*h1Conn{},
		maxIdle:  1024,
		idleTime: 90 * time.Second,
	}
}

// errStale marks a failure on a reused connection before any response byte:
// the backend had closed it, and the request can go again on a new one.
var errStale = errors.New("idle connection closed by the backend")

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		hc, err := t.get(req.Context(), req.URL.Host)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(hc, req)
		if errors.Is(err, errStale) && attempt == 0 && (req.Body == nil || req.Body == http.NoBody) {
			continue
		}
		return resp, err
	}
}

func (t *h1Transport) exchange(hc *h1Conn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if d, ok := ctx.Deadline(); ok {
		hc.c.SetDeadline(d)
	} else {
		hc.c.SetDeadline(time.Time{})
	}
	// Cancellation (client gone, timeouts) interrupts blocked I/O.
	stop := context.AfterFunc(ctx, func() { hc.c.SetDeadline(time.Unix(1, 0)) })
	if err := req.Write(hc.bw); err != nil {
		stop()
		hc.c.Close()
		return nil, t.stale(hc, err)
	}
	if err := hc.bw.Flush(); err != nil {
		stop()
		hc.c.Close()
		return nil, t.stale(hc, err)
	}
	resp, err := http.ReadResponse(hc.br, req)
	if err != nil {
		stop()
		hc.c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, t.stale(hc, err)
	}
	reuse := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	resp.Body = &h1Body{rc: resp.Body, t: t, hc: hc, reuse: reuse, stop: stop}
	return resp, nil
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

func (t *h1Transport) get(ctx context.Context, addr string) (*h1Conn, error) {
	t.mu.Lock()
	for list := t.idle[addr]; len(list) > 0; list = t.idle[addr] {
		hc := list[len(list)-1]
		t.idle[addr] = list[:len(list)-1]
		if time.Since(hc.used) < t.idleTime {
			t.mu.Unlock()
			hc.fresh = false
			return hc, nil
		}
		hc.c.Close()
	}
	t.mu.Unlock()
	c, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &h1Conn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 8<<10), addr: addr, fresh: true}, nil
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
