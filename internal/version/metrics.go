package version

import "github.com/prometheus/client_golang/prometheus"

// Collector exports gatehouse_build_info{version,revision,goversion} = 1,
// the Prometheus convention for telling from /metrics which build a
// process runs: join it onto other series, or count the versions of a
// fleet during a rollout.
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_build_info",
		Help: "Always 1; the labels name the build of this process.",
		ConstLabels: prometheus.Labels{
			"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion,
		},
	})
	g.Set(1)
	return g
}
