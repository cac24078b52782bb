package main

import (
	"context"
	"io"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// keepAliveClient keeps its connections to the proxy open between requests,
// so that a probe every millisecond measures the proxy, not new connections.
func keepAliveClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
}

// fetch sends GET / for host through the proxy at addr and reads the whole
// answer.
func fetch(ctx context.Context, c *http.Client, addr, host string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return nil, "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	return resp, string(body), nil
}

// verdict is what one answer to a probe says about a change: it shows
// (done), or the answer fits neither the state before nor after it (bad).
type verdict struct{ done, bad bool }

// expect judges an answer (nil when the request failed): done when it has
// the status want (with the backend's answer when that is 200) and, when
// header is not empty, x-churn: header; neither done nor bad when it has the
// status the route gave before the change.
func expect(resp *http.Response, body string, want int, header string, before int) verdict {
	switch {
	case resp == nil:
		return verdict{bad: true}
	case resp.StatusCode == http.StatusOK && body != answer:
		return verdict{bad: true}
	case resp.StatusCode == want && (header == "" || resp.Header.Get("x-churn") == header):
		return verdict{done: true}
	case resp.StatusCode == before:
		return verdict{}
	}
	return verdict{bad: true}
}

// probeUntil asks the proxy for host every poll until check says the
// change shows or the change's time is up, and returns how long after
// start the answer came, whether it came, and the bad answers before it.
func (ch *churner) probeUntil(ctx context.Context, start time.Time, host string, check func(*http.Response, string) verdict) (time.Duration, bool, int) {
	deadline := start.Add(ch.timeout)
	bad := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, body, _ := fetch(ctx, ch.probe, ch.g.Address, host)
		v := check(resp, body)
		if v.done {
			return time.Since(start), true, bad
		}
		if v.bad {
			bad++
		}
		time.Sleep(ch.poll)
	}
	return 0, false, bad
}

// routeWatch watches one route by name: one object's events instead of
// listing thousands of routes every few milliseconds.
type routeWatch struct{ w watch.Interface }

func (ch *churner) watch(ctx context.Context, name string) (*routeWatch, error) {
	w, err := ch.watcher.Watch(ctx, &gwv1.HTTPRouteList{}, client.InNamespace(tenant), client.MatchingFields{"metadata.name": name})
	if err != nil {
		return nil, err
	}
	return &routeWatch{w: w}, nil
}

// programmedAt delivers the time the route was first seen Programmed at
// generation (or later), or closes without a value at the deadline.
func (rw *routeWatch) programmedAt(deadline time.Time, generation int64) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		defer close(out)
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		for {
			select {
			case <-timer.C:
				return
			case ev, ok := <-rw.w.ResultChan():
				if !ok {
					return
				}
				if r, isRoute := ev.Object.(*gwv1.HTTPRoute); isRoute && r.Generation >= generation && programmed(r) {
					out <- time.Now()
					return
				}
			}
		}
	}()
	return out
}

func (rw *routeWatch) stop() { rw.w.Stop() }
