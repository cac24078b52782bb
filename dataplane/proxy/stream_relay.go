package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// relayChunk is how many bytes a direction moves between two counts: on
// Linux a TCP to TCP copy is a splice, the bytes never come into the
// proxy, and the copy returns only at the end of a chunk.
const relayChunk = 1 << 20

// relay copies bytes both ways between a client and a backend until both
// have sent their end (each end is passed on as it comes: a half-closed
// connection goes on the other way), either fails, or no byte passed
// for idle.
//
// A copy that splices cannot tell when its bytes passed, so idleness is
// asked, not watched: every quarter of idle a check makes each direction
// return from its copy (a read deadline now) and say whether it moved a
// byte. A connection is closed at the first check at least idle after
// the last one that saw a byte: between idle and one and a half idle
// after its last byte.
type relay struct {
	// conns: client, backend. Direction d reads conns[d], writes the other.
	conns [2]net.Conn
	idle  time.Duration
	// counters count the bytes of each direction, client to backend and
	// backend to client, as they pass.
	counters [2]prometheus.Counter

	mu sync.Mutex
	// last is when a check or a chunk last saw bytes.
	last     time.Time
	checking bool
	reported [2]bool
	done     [2]bool
	closed   bool
	timer    *time.Timer
	bytes    [2]int64
}

func (r *relay) run() {
	r.last = time.Now()
	r.mu.Lock()
	r.timer = time.AfterFunc(r.interval(), r.check)
	r.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { r.pipe(1) })
	r.pipe(0)
	wg.Wait()
	r.mu.Lock()
	r.closed = true
	r.timer.Stop()
	r.mu.Unlock()
	r.conns[0].Close()
	r.conns[1].Close()
}

// interval is the time between two checks.
func (r *relay) interval() time.Duration { return max(r.idle/4, time.Millisecond) }

func (r *relay) pipe(d int) {
	src, dst := r.conns[d], r.conns[1-d]
	for {
		lr := io.LimitedReader{R: src, N: relayChunk}
		n, err := io.Copy(dst, &lr)
		if n > 0 {
			r.count(d, n)
		}
		switch {
		case err == nil && lr.N == 0:
			// A whole chunk: go on.
		case err == nil:
			// The source sent its end: pass it on.
			closeWrite(dst)
			r.finish(d)
			return
		case errors.Is(err, os.ErrDeadlineExceeded) && r.checked(d):
		default:
			r.abort()
			return
		}
	}
}

// count counts n bytes of direction d.
func (r *relay) count(d int, n int64) {
	r.counters[d].Add(float64(n))
	r.mu.Lock()
	r.bytes[d] += n
	r.last = time.Now()
	r.mu.Unlock()
}

// check asks both directions whether bytes passed since the last check.
func (r *relay) check() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.checking = true
	now := time.Now()
	for d := range 2 {
		r.reported[d] = false
		if !r.done[d] {
			r.conns[d].SetReadDeadline(now)
		}
	}
	r.settle()
}

// checked is direction d's answer to a check; false when the timeout was
// not a check's, or the check closed the connection.
func (r *relay) checked(d int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checking || r.reported[d] || r.closed {
		return false
	}
	r.conns[d].SetReadDeadline(time.Time{})
	r.reported[d] = true
	r.settle()
	return !r.closed
}

// settle ends a check once every direction still open has answered: the
// connection is closed if no byte passed for idle, checked again later
// otherwise. r.mu is held.
func (r *relay) settle() {
	if !r.checking {
		return
	}
	for d := range 2 {
		if !r.done[d] && !r.reported[d] {
			return
		}
	}
	r.checking = false
	if r.done[0] && r.done[1] {
		return
	}
	if time.Since(r.last) >= r.idle {
		r.closed = true
		// Closing makes both copies return; run closes again, harmlessly.
		go r.conns[0].Close()
		go r.conns[1].Close()
		return
	}
	r.timer.Reset(r.interval())
}

// finish records that direction d passed its end on.
func (r *relay) finish(d int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done[d] = true
	r.settle()
}

// abort closes both sides: a read or a write failed, or a check found
// the connection idle.
func (r *relay) abort() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.conns[0].Close()
	r.conns[1].Close()
}

// total is what direction d moved.
func (r *relay) total(d int) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes[d]
}

// closeWrite passes a direction's end on: TCP FIN, and before it TLS
// close_notify on a TLS connection.
func closeWrite(c net.Conn) {
	for {
		switch cc := c.(type) {
		case *tls.Conn:
			_ = cc.CloseWrite()
			c = cc.NetConn()
			continue
		case *replayConn:
			c = cc.Conn
			continue
		case interface{ CloseWrite() error }:
			_ = cc.CloseWrite()
		}
		return
	}
}
