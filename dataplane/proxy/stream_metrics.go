package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// streamMetrics are the series of stream listeners, by route and backend
// as the HTTP routes' are.
type streamMetrics struct {
	accepted *prometheus.CounterVec
	active   *prometheus.GaugeVec
	refusals *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	grams    *prometheus.CounterVec
	dropped  *prometheus.CounterVec

	// seen are the label values series were made for, which retain
	// prunes.
	mu   sync.Mutex
	seen map[string]map[string]bool // label name → values
}

// Directions of bytes and datagrams, from the client's side.
var directions = [2]string{"from_client", "to_client"}

func newStreamMetrics() *streamMetrics {
	return &streamMetrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_stream_connections_total", Help: "Connections of TCP and TLS listeners relayed to a backend, and sessions of UDP listeners opened, by route and backend.",
		}, []string{"route", "backend"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_proxy_stream_connections_active", Help: "Connections of TCP and TLS listeners relayed now, and sessions of UDP listeners open, by route and backend.",
		}, []string{"route", "backend"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_stream_refused_total", Help: "Connections of TCP and TLS listeners closed without being relayed, by listener, route (empty without one) and reason: no_route, limit (the listener's maximum of connections), backend (invalid, without endpoints or unreachable), handshake (no ClientHello, or a failed TLS handshake).",
		}, []string{"listener", "route", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_stream_bytes_total", Help: "Bytes relayed by TCP, TLS and UDP listeners, by route, backend and direction (from_client, to_client).",
		}, []string{"route", "backend", "direction"}),
		grams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_udp_datagrams_total", Help: "Datagrams relayed by UDP listeners, by route, backend and direction (from_client, to_client).",
		}, []string{"route", "backend", "direction"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_udp_datagrams_dropped_total", Help: "Datagrams of UDP clients without a session that could not open one, by listener, route (empty without one) and reason: no_route, limit (the listener's maximum of sessions), backend.",
		}, []string{"listener", "route", "reason"}),
		seen: map[string]map[string]bool{},
	}
}

func (m *streamMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.accepted, m.active, m.refusals, m.bytes, m.grams, m.dropped}
}

// note records label values series were made for.
func (m *streamMetrics) note(labels ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i+1 < len(labels); i += 2 {
		if m.seen[labels[i]] == nil {
			m.seen[labels[i]] = map[string]bool{}
		}
		m.seen[labels[i]][labels[i+1]] = true
	}
}

// streamListenerLabels are the listener labels of the tables' stream
// listeners.
func streamListenerLabels(tables []*routetable.RouteTable) func(string) bool {
	out := map[string]bool{}
	for _, t := range tables {
		for _, l := range t.Listeners {
			if len(l.StreamRoutes) > 0 || l.Protocol > routetable.Protocol_HTTPS {
				out[t.Gateway+"/"+l.Name] = true
			}
		}
	}
	return func(name string) bool { return out[name] }
}

// shareMetrics are the series of one route's share, looked up once per
// connection or session.
type shareMetrics struct {
	active prometheus.Gauge
	bytes  [2]prometheus.Counter
	grams  [2]prometheus.Counter
}

// opened counts a connection or session relayed by route to backend.
func (m *streamMetrics) opened(route, backend string) *shareMetrics {
	m.note("route", route, "backend", backend)
	m.accepted.WithLabelValues(route, backend).Inc()
	s := &shareMetrics{active: m.active.WithLabelValues(route, backend)}
	for d, dir := range directions {
		s.bytes[d] = m.bytes.WithLabelValues(route, backend, dir)
		s.grams[d] = m.grams.WithLabelValues(route, backend, dir)
	}
	s.active.Inc()
	return s
}

func (s *shareMetrics) closed() { s.active.Dec() }

// refused counts a connection closed without being relayed.
func (m *streamMetrics) refused(listener, route, why string) {
	m.note("listener", listener, "route", route)
	m.refusals.WithLabelValues(listener, route, why).Inc()
}

// drop counts a datagram that could not open a session.
func (m *streamMetrics) drop(listener, route, why string) {
	m.note("listener", listener, "route", route)
	m.dropped.WithLabelValues(listener, route, why).Inc()
}

// retain drops the series of listeners, routes and backends the applied
// tables no longer have (keep says which are kept). A connection still
// open on the previous version counts on into series no longer exported.
func (m *streamMetrics) retain(keep map[string]func(string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for label, values := range m.seen {
		for v := range values {
			if v == "" || keep[label](v) {
				continue
			}
			delete(values, v)
			for _, c := range m.collectors() {
				c.(interface {
					DeletePartialMatch(prometheus.Labels) int
				}).DeletePartialMatch(prometheus.Labels{label: v})
			}
		}
	}
}
