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
	passPhase = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_hub_pass_phase_seconds", Help: "Time of each phase of a pass over one cluster: read (the snapshot of its cache), translate, push, provision, status (compute and write); acknowledged: a status pass after a proxy's acknowledgement (read and write, nothing translated).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
	}, []string{"phase"})
	statusWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_hub_status_writes_total", Help: "Status writes to members, by kind of object and result: ok, conflict (the object changed since the hub read it; written again by a later pass), error.",
	}, []string{"kind", "result"})
	routesCompiled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_hub_routes_translated_total", Help: "Routes (HTTPRoutes and GRPCRoutes) a pass compiled (how=\"compiled\") or took as the previous pass compiled them (how=\"reused\"): the route and what it is compiled against were unchanged.",
	}, []string{"how"})
	propagation = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gatehouse_hub_propagation_seconds", Help: "Time from the hub observing a change in a member to the proxies of an affected Gateway acknowledging the table that carries it.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
	ackLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gatehouse_hub_ack_lag_seconds", Help: "Time from publishing a table to a proxy acknowledging it.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
)

// Per-member and per-Gateway gauges. They are filled from the hub's state
// when Prometheus scrapes (see fleetCollector), so a member that leaves, a
// Gateway that goes or a member Secret deleted takes its series along.
var (
	clusterEngaged = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_hub_cluster_engaged",
		Help: "1 for a member cluster the hub works on; 0 for one whose kubeconfig Secret is in the hub namespace but that the hub could not engage (unreachable API server, refused kubeconfig or name).",
	}, []string{"cluster"})
	clusterLastSyncSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_hub_cluster_last_sync_success_timestamp_seconds",
		Help: "When a pass over the member cluster (read, translate, push, write status) last succeeded, in Unix seconds.",
	}, []string{"cluster"})
	clusterLastSyncFailure = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_hub_cluster_last_sync_failure_timestamp_seconds",
		Help: "When a pass over the member cluster last failed, in Unix seconds (write conflicts, which are retried at once, do not count).",
	}, []string{"cluster"})
	memberTokenExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_hub_member_token_expiry_timestamp_seconds",
		Help: "When the token in the member's kubeconfig Secret expires (its gatehouse.dev/token-expires annotation), in Unix seconds.",
	}, []string{"cluster"})
	gatewayProxies = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_hub_gateway_proxies",
		Help: "Proxy replicas of the Gateway connected to the push server; one series per Gateway the hub publishes a route table for.",
	}, []string{"cluster", "gateway"})
	gatewayRejected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_hub_gateway_rejected",
		Help: "1 while a connected proxy of the Gateway rejects (NACKs) what the hub pushed and has not acknowledged a version since; 0 otherwise.",
	}, []string{"cluster", "gateway"})
	proxyReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_hub_proxy_replicas",
		Help: "Proxy replicas of the Gateway connected to the push server, by the version they report (at most 64 bytes of it; \"unknown\" for proxies that report none).",
	}, []string{"cluster", "gateway", "version"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(clustersEngaged, syncDuration, passPhase, tablesPushed, ackLag, propagation, routesCompiled, statusWrites,
		&fleetCollector{vecs: []*prometheus.GaugeVec{clusterEngaged, clusterLastSyncSuccess, clusterLastSyncFailure, memberTokenExpiry, gatewayProxies, gatewayRejected, proxyReplicas}})
}
