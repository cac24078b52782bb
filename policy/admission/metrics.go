package admission

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var denialsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "gatehouse_admission_denials_total",
	Help: "Objects the admission webhook refused, by member cluster and reason.",
}, []string{"cluster", "reason"})

func init() { metrics.Registry.MustRegister(denialsTotal) }
