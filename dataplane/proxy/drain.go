package proxy

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// Taking a proxy out of service without failing a request. When a pod is
// deleted, Kubernetes removes it from the Service's endpoints while it
// signals the process; load balancers and kube-proxy on other nodes learn
// of it seconds later. Until then clients keep arriving, so the proxy:
//
//  1. fails readiness and, for the drain delay, keeps accepting and serving
//     while asking every client to go elsewhere: responses on HTTP/1.1
//     carry Connection: close, HTTP/2 connections get GOAWAY (net/http
//     sends one for a response carrying Connection: close);
//  2. closes its listeners and idle connections, and lets the requests in
//     flight and the upgraded connections (WebSocket and the like) finish,
//     within the drain timeout;
//  3. cuts what is left when the timeout is over.
//
// The only cost on the request path is one atomic load.

// Draining reports whether the proxy is leaving service: Drain or Close
// was called.
func (p *Proxy) Draining() bool { return p.draining.Load() }

// Drain takes the proxy out of service in the phases above and returns
// once no connection is left: nil if every one finished, an error saying
// what was cut otherwise. Cancelling ctx skips the rest of the delay and
// cuts every connection at once.
func (p *Proxy) Drain(ctx context.Context, delay, timeout time.Duration) error {
	start := time.Now()
	p.draining.Store(true)
	p.log.Info("draining: /readyz fails; listeners keep serving for the drain delay and ask every client to reconnect elsewhere",
		"phase", "delay", "drainDelay", delay, "drainTimeout", timeout)
	select {
	case <-time.After(delay):
	case <-ctx.Done():
	}
	p.log.Info("drain delay over: listeners and idle connections closed; waiting for requests and upgraded connections in flight",
		"phase", "close", "drainTimeout", timeout, "upgraded", p.tunnels.Load())
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := p.Close(cctx)
	if err != nil {
		why := fmt.Sprintf("the drain timeout (%s) was over: raise --drain-timeout if requests this long are expected", timeout)
		if ctx.Err() != nil {
			why = "the drain was cut short"
		}
		p.log.Warn("drained with connections cut: "+why, "phase", "done", "after", time.Since(start).Round(time.Millisecond), "error", err)
		return fmt.Errorf("%s: %w", why, err)
	}
	p.log.Info("drained: every request and upgraded connection finished", "phase", "done", "after", time.Since(start).Round(time.Millisecond))
	return nil
}

// askToLeave makes a response end its connection: an HTTP/1.x connection
// closes after it, an HTTP/2 connection gets GOAWAY. An upgrade is let
// through: its response must say Connection: Upgrade, and the connection
// it becomes is waited for apart.
func askToLeave(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.Header.Get("Upgrade") != "" {
		return
	}
	w.Header().Set("Connection", "close")
}

// waitTunnels waits until no upgraded connection is relayed, or ctx ends.
// http.Server forgets a connection once it is hijacked, so its Shutdown
// does not wait for these.
func waitTunnels(ctx context.Context, n *atomic.Int64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n.Load() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%d upgraded connections still open: %w", n.Load(), ctx.Err())
		}
	}
	return nil
}
