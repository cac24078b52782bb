package proxy

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Rapid reset (CVE-2023-44487): a client opens HTTP/2 streams and cancels
// them at once, so that each costs the proxy a handler and a backend
// request while the client pays a few bytes. net/http bounds how many
// handlers run at a time but keeps the connection; like Envoy's
// premature-reset check, the proxy closes a connection once it has opened
// at least prematureMinStreams streams and the client cancelled more than
// half of them within prematureLifetime of their start.
const (
	prematureMinStreams = 500
	prematureLifetime   = time.Second
)

// streamCounts are one client connection's stream counts.
type streamCounts struct {
	conn             net.Conn
	total, premature atomic.Int64
	closed           atomic.Bool
}

type streamCountsKey struct{}

// countStreams is the servers' ConnContext: it gives every connection its
// counts.
func countStreams(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, streamCountsKey{}, &streamCounts{conn: c})
}

// countStream records an HTTP/2 stream that was served from start, and
// closes its connection when the client cancels most streams as soon as
// it opens them.
func (p *Proxy) countStream(r *http.Request, start time.Time) {
	sc, _ := r.Context().Value(streamCountsKey{}).(*streamCounts)
	if sc == nil {
		return
	}
	total, premature := sc.total.Add(1), sc.premature.Load()
	if r.Context().Err() != nil && time.Since(start) < prematureLifetime {
		premature = sc.premature.Add(1)
	}
	if total < prematureMinStreams || premature*2 <= total || !sc.closed.CompareAndSwap(false, true) {
		return
	}
	p.metrics.abusiveConns.Inc()
	p.log.Warn("closed an HTTP/2 connection whose client cancels most streams as soon as it opens them (rapid reset, CVE-2023-44487); a real client doing this must reuse its streams instead",
		"remote", sc.conn.RemoteAddr().String(), "streams", total, "cancelled", premature)
	sc.conn.Close()
}
