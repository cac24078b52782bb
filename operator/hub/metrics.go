package hub

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Hub metrics, served with controller-runtime's on the manager's /metrics.
var (
	clustersEngaged = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_hub_clusters", Help: "Member clusters the hub works on.",
	})
	syncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_hub_cluster_sync_seconds", Help: "Time to read, translate, push and write status for one cluster.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"result"})
	tablesPushed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_hub_tables_pushed_total", Help: "Route tables published because their content changed.",
	})
	ackLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gatehouse_hub_ack_lag_seconds", Help: "Time from publishing a table to a proxy acknowledging it.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(clustersEngaged, syncDuration, tablesPushed, ackLag)
}
