package admission

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var denialsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "gatehouse_admission_denials_total",
	Help: "Objects the admission webhook refused, by member cluster and reason.",
}, []string{"cluster", "reason"})

var unauthenticatedTotal = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "gatehouse_admission_unauthenticated_total",
	Help: "Calls to the admission webhook refused because their path did not carry the token of the member it names.",
})

func init() { metrics.Registry.MustRegister(denialsTotal, unauthenticatedTotal) }
