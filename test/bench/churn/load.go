package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// load is the background traffic of one member: clients on kept-alive
// connections asking for existing routes in turn while the churn runs.
// Every answer must be the backend's 200 "ok".
type load struct {
	requests, failed atomic.Int64
	wg               sync.WaitGroup

	mu      sync.Mutex
	reasons map[string]int
}

// startLoad starts clients sending GETs through the proxy at addr for the
// first hosts initial routes, at rate requests per second in all (0: no
// pause), until ctx ends.
func startLoad(ctx context.Context, addr string, hosts, clients, rate int) *load {
	l := &load{reasons: map[string]int{}}
	var every time.Duration
	if rate > 0 {
		every = time.Duration(clients) * time.Second / time.Duration(rate)
	}
	for i := range clients {
		l.wg.Go(func() { l.client(ctx, addr, hosts, i, every) })
	}
	return l
}

func (l *load) client(ctx context.Context, addr string, hosts, offset int, every time.Duration) {
	c := keepAliveClient(2 * time.Second)
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for i := offset; ctx.Err() == nil; i++ {
		resp, body, err := fetch(ctx, c, addr, initialHost(i%hosts))
		if ctx.Err() != nil {
			return // cut off by the end of the churn, not an answer
		}
		l.requests.Add(1)
		switch {
		case err != nil:
			l.fail(err.Error())
		case resp.StatusCode != http.StatusOK:
			l.fail(fmt.Sprintf("HTTP %d", resp.StatusCode))
		case body != answer:
			l.fail(fmt.Sprintf("body %.40q", body))
		}
		if tick != nil {
			select {
			case <-ctx.Done():
			case <-tick:
			}
		}
	}
}

// fail counts a failed request and keeps a few distinct reasons for the
// report.
func (l *load) fail(reason string) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.reasons[reason]; seen || len(l.reasons) < 5 {
		l.reasons[reason]++
	}
}

func (l *load) wait() { l.wg.Wait() }
