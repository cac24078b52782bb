package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus series. Codes are counted by class so
// that the hot path does one array index, not a label lookup.
type metrics struct {
	requests        [6]prometheus.Counter // 1xx … 5xx, and 499 for clients gone
	byRoute         *prometheus.CounterVec
	routeCounters   sync.Map // routeKey → prometheus.Counter
	duration        prometheus.Histogram
	upstreamErrors  prometheus.Counter
	mirrorErrors    prometheus.Counter
	applyErrors     prometheus.Counter
	notServed       prometheus.Gauge
	routesNotServed prometheus.Gauge
	appliedAt       prometheus.Gauge
	version         *prometheus.GaugeVec

	// backendOverflow counts requests answered 503 by a backend's
	// circuit breaker, by backend.
	backendOverflow *prometheus.CounterVec
	// abusiveConns counts client connections closed for abuse the server
	// does not end by itself (HTTP/2 rapid reset).
	abusiveConns prometheus.Counter
	// regexOverBudget counts requests a regex match was refused to, past
	// routetable.MaxRegexWork.
	regexOverBudget prometheus.Counter
	// stream are the series of stream listeners (stream_metrics.go).
	stream *streamMetrics
}

func newMetrics(reg prometheus.Registerer) *metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_proxy_requests_total", Help: "Requests served, by status class.",
	}, []string{"code"})
	m := &metrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_proxy_request_duration_seconds", Help: "Time from request to response written.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		upstreamErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_proxy_upstream_errors_total", Help: "Requests whose backend could not answer."}),
		mirrorErrors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_proxy_mirror_errors_total", Help: "Mirrored requests that failed."}),
		applyErrors:     prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_proxy_apply_errors_total", Help: "Route table versions that could not be applied."}),
		notServed:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "gatehouse_proxy_listeners_not_served", Help: "Listeners of the applied version that are not served (a port held by something else, a key pair that does not load)."}),
		routesNotServed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gatehouse_proxy_routes_not_served", Help: "Route objects of the applied version left out because they do not compile (the other routes are served)."}),
		appliedAt:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "gatehouse_proxy_applied_timestamp_seconds", Help: "When the serving version was applied."}),
		version:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gatehouse_proxy_applied_version", Help: "1 for the version being served."}, []string{"version"}),
	}
	m.backendOverflow = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_proxy_backend_overflow_total", Help: "Requests answered 503 because their backend's connections and queue were full (its circuit breaker), by backend.",
	}, []string{"backend"})
	m.abusiveConns = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_proxy_abusive_connections_closed_total", Help: "Client connections closed because the client cancelled most HTTP/2 streams as soon as it opened them (rapid reset, CVE-2023-44487).",
	})
	m.regexOverBudget = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_proxy_regex_over_budget_total", Help: "Requests whose route matching reached the regex work bound (bytes matched times program size); the regex that would have passed it did not match.",
	})
	m.byRoute = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_proxy_route_requests_total", Help: "Requests that matched a route, by route, backend and status class.",
	}, []string{"route", "backend", "code"})
	for i, class := range codeClasses {
		m.requests[i] = requests.WithLabelValues(class)
	}
	m.stream = newStreamMetrics()
	if reg != nil {
		reg.MustRegister(requests, m.byRoute, m.duration, m.upstreamErrors, m.mirrorErrors, m.applyErrors, m.notServed, m.routesNotServed, m.appliedAt, m.version, m.backendOverflow, m.abusiveConns, m.regexOverBudget)
		reg.MustRegister(m.stream.collectors()...)
	}
	return m
}

var codeClasses = [6]string{"1xx", "2xx", "3xx", "4xx", "5xx", "499"}

type routeKey struct {
	route, backend string
	class          int
}

func classOf(code int) int {
	if code == 499 {
		return 5
	}
	if i := code/100 - 1; i >= 0 && i < 5 {
		return i
	}
	return -1
}

func (m *metrics) observe(code int, d time.Duration, route, backend string) {
	if i := m.count(code, d); i >= 0 && route != "" {
		m.routeCounter(route, backend, i).Inc()
	}
}

// count counts a request by status class and duration, and returns its
// class (-1: not counted).
func (m *metrics) count(code int, d time.Duration) int {
	i := classOf(code)
	if i >= 0 {
		m.requests[i].Inc()
		m.duration.Observe(d.Seconds())
	}
	return i
}

func (m *metrics) routeCounter(route, backend string, class int) prometheus.Counter {
	k := routeKey{route, backend, class}
	c, ok := m.routeCounters.Load(k)
	if !ok {
		c, _ = m.routeCounters.LoadOrStore(k, m.byRoute.WithLabelValues(route, backend, codeClasses[class]))
	}
	return c.(prometheus.Counter)
}

// shareCounters caches a route backend's counters by status class, so
// that counting a request looks nothing up.
type shareCounters [6]atomic.Pointer[prometheus.Counter]

// observeShare is observe for a request a route's share served.
func (m *metrics) observeShare(code int, d time.Duration, route string, s *weighted) {
	i := m.count(code, d)
	if i < 0 || route == "" {
		return
	}
	backend := ""
	if s.backend != nil {
		backend = s.backend.name
	}
	if s.counters == nil {
		m.routeCounter(route, backend, i).Inc()
		return
	}
	c := s.counters[i].Load()
	if c == nil {
		rc := m.routeCounter(route, backend, i)
		c = &rc
		s.counters[i].Store(c)
	}
	(*c).Inc()
}

func (m *metrics) applied(version string) {
	m.version.Reset()
	m.version.WithLabelValues(version).Set(1)
	m.appliedAt.Set(float64(time.Now().UnixNano()) / 1e9)
}
