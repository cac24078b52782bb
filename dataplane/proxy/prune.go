package proxy

import (
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// What the proxy keeps across table versions — connection pools and the
// series of its metrics — follows the applied version: a backend, an
// endpoint or a route that is gone takes its share along, so that route
// and endpoint churn over a long uptime does not grow the proxy.

// forget drops what the applied config no longer needs (called by Apply,
// after the config is stored).
func (p *Proxy) forget(cfg *config, tables []*routetable.RouteTable) {
	p.transports.retain(cfg.backends)
	routes := routeLabels(tables)
	p.metrics.retain(routes, cfg.backends)
	p.metrics.stream.retain(map[string]func(string) bool{
		"route": func(r string) bool { return routes[r] }, "listener": streamListenerLabels(tables),
		"backend": func(b string) bool { _, ok := cfg.backends[b]; return ok },
	})
}

// retain drops the pools no backend reaches any more (a backend TLS
// setting or protocol changed, a backend removed), closing their idle
// connections, and in the pools it keeps closes the idle connections to
// endpoints no backend names.
func (ts *transports) retain(backends map[string]*backend) {
	keys, addrs := map[string]bool{}, make(map[string]bool, len(backends))
	for _, b := range backends {
		keys[b.transportKey], keys["lean|"+b.transportKey] = true, true
		for _, e := range b.endpoints {
			addrs[e.addr] = true
		}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for k, t := range ts.m {
		switch t := t.(type) {
		case *h1Transport:
			keep := addrs
			if !keys[k] {
				keep = nil
			}
			t.retain(keep)
		case *http.Transport:
			if !keys[k] {
				t.CloseIdleConnections()
			}
		}
		if !keys[k] {
			delete(ts.m, k)
		}
	}
}

// retain closes the idle connections to addresses not in addrs, and those
// idle longer than idleTime.
func (t *h1Transport) retain(addrs map[string]bool) {
	var closing []*h1Conn
	t.mu.Lock()
	now := time.Now()
	for addr, list := range t.idle {
		list = slices.DeleteFunc(list, func(hc *h1Conn) bool {
			if addrs[addr] && now.Sub(hc.used) < t.idleTime {
				return false
			}
			closing = append(closing, hc)
			return true
		})
		if len(list) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = list
		}
	}
	t.mu.Unlock()
	for _, hc := range closing {
		hc.c.Close()
	}
}

// retain drops the per-route series of routes the applied tables no longer
// have, and of backends no longer in them. A request still in flight on
// the previous version may bring a series back; the next version drops it.
func (m *metrics) retain(routes map[string]bool, backends map[string]*backend) {
	m.routeCounters.Range(func(k, _ any) bool {
		rk := k.(routeKey)
		if _, ok := backends[rk.backend]; routes[rk.route] && (ok || rk.backend == "") {
			return true
		}
		m.routeCounters.Delete(k)
		m.byRoute.DeleteLabelValues(rk.route, rk.backend, codeClasses[rk.class])
		return true
	})
}

// routeLabel is the route label of a route's series: its object without
// the generation, so that its counts carry over its changes.
func routeLabel(s *routetable.RouteSource) string { return s.Kind + " " + s.Namespace + "/" + s.Name }

func routeLabels(tables []*routetable.RouteTable) map[string]bool {
	n := 0
	for _, t := range tables {
		for _, l := range t.Listeners {
			n += len(l.VirtualHosts) + len(l.StreamRoutes)
		}
	}
	out := make(map[string]bool, n)
	for _, t := range tables {
		for _, l := range t.Listeners {
			for _, vh := range l.VirtualHosts {
				for _, r := range vh.Routes {
					if s := r.Source; s != nil {
						out[routeLabel(s)] = true
					}
				}
			}
			for _, r := range l.StreamRoutes {
				if s := r.Source; s != nil {
					out[routeLabel(s)] = true
				}
			}
		}
	}
	return out
}
