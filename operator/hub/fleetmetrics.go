package hub

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/operator/members"
)

// exported is the hub whose members and Gateways /metrics shows: the one
// SetupWithManager wired last. A process runs one hub; tests that build
// several see the last one's.
var exported atomic.Pointer[metricsSource]

type metricsSource struct {
	h *Hub
	// secrets reads the members' kubeconfig Secrets in the hub namespace,
	// from the manager's cache.
	secrets client.Reader
}

// exportMetrics makes h the hub /metrics reports on.
func (h *Hub) exportMetrics(secrets client.Reader) {
	exported.Store(&metricsSource{h: h, secrets: secrets})
}

// syncResults keeps when each cluster's passes last succeeded and failed.
// It is written by the workers and read at scrape time, which prunes the
// clusters no longer engaged.
var syncResults = struct {
	sync.Mutex
	ok, failed map[string]time.Time
}{ok: map[string]time.Time{}, failed: map[string]time.Time{}}

// recordSync notes the outcome of one pass over a cluster.
func recordSync(cluster string, ok bool) {
	syncResults.Lock()
	defer syncResults.Unlock()
	if ok {
		syncResults.ok[cluster] = time.Now()
	} else {
		syncResults.failed[cluster] = time.Now()
	}
}

// fleetCollector fills the per-member and per-Gateway gauges from the
// exported hub each time it is collected. Reading the state at scrape time
// rather than setting gauges as things change means no code path has to
// remember to delete a series.
type fleetCollector struct {
	mu   sync.Mutex // one scrape at a time: the vectors are reset and refilled
	vecs []*prometheus.GaugeVec
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range c.vecs {
		v.Describe(ch)
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.vecs {
		v.Reset()
	}
	if src := exported.Load(); src != nil {
		src.fill()
	}
	for _, v := range c.vecs {
		v.Collect(ch)
	}
}

// secretsReadTimeout bounds a scrape's read of the member Secrets, which
// comes from the cache and is normally instant.
const secretsReadTimeout = 2 * time.Second

func (s *metricsSource) fill() {
	engaged := s.h.engaged()
	for name, w := range engaged {
		clusterEngaged.WithLabelValues(name).Set(1)
		for _, table := range w.publishedTables() {
			st := s.h.push.Status(table)
			gw := strings.TrimPrefix(table, name+"/")
			gatewayProxies.WithLabelValues(name, gw).Set(float64(st.Streams))
			rejected := 0.0
			if st.Nack != nil {
				rejected = 1
			}
			gatewayRejected.WithLabelValues(name, gw).Set(rejected)
			for v, n := range proxyVersions(st) {
				proxyReplicas.WithLabelValues(name, gw, v).Set(float64(n))
			}
		}
	}
	s.fillSyncResults(engaged)
	s.fillMembers(engaged)
}

func (s *metricsSource) fillSyncResults(engaged map[string]*worker) {
	syncResults.Lock()
	defer syncResults.Unlock()
	for _, m := range []map[string]time.Time{syncResults.ok, syncResults.failed} {
		for name := range m {
			if engaged[name] == nil {
				delete(m, name)
			}
		}
	}
	for name, t := range syncResults.ok {
		clusterLastSyncSuccess.WithLabelValues(name).Set(float64(t.UnixNano()) / 1e9)
	}
	for name, t := range syncResults.failed {
		clusterLastSyncFailure.WithLabelValues(name).Set(float64(t.UnixNano()) / 1e9)
	}
}

// fillMembers reports every member Secret: its token's expiry, and as not
// engaged when the hub has no worker for it. A member the hub cannot reach
// is exactly the one whose series must not vanish.
func (s *metricsSource) fillMembers(engaged map[string]*worker) {
	if s.secrets == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), secretsReadTimeout)
	defer cancel()
	var list corev1.SecretList
	if err := s.secrets.List(ctx, &list, client.InNamespace(s.h.opts.Namespace), client.MatchingLabels{ClusterSecretLabel: "true"}); err != nil {
		s.h.opts.Log.Warn("metrics: reading the member Secrets failed; member token expiry is not reported", "error", err)
		return
	}
	for i := range list.Items {
		secret := &list.Items[i]
		if engaged[secret.Name] == nil {
			clusterEngaged.WithLabelValues(secret.Name).Set(0)
		}
		if t, ok := members.TokenExpiry(secret); ok {
			memberTokenExpiry.WithLabelValues(secret.Name).Set(float64(t.Unix()))
		}
	}
}

// engaged copies the clusters the hub works on.
func (h *Hub) engaged() map[string]*worker {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]*worker, len(h.clusters))
	for name, w := range h.clusters {
		out[name] = w
	}
	return out
}

// publishedTables lists the tables the worker published, by the key pairs
// record it keeps under a lock for the push server's authorization.
func (w *worker) publishedTables() []string {
	w.keysMu.Lock()
	defer w.keysMu.Unlock()
	out := make([]string, 0, len(w.keys))
	for table := range w.keys {
		out = append(out, table)
	}
	return out
}
