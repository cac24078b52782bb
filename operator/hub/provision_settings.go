package hub

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// What managed proxies get where neither the class nor the Gateway says
// (docs/managed-proxies.md lists them beside the keys that change them).
const (
	// DefaultProxyReplicas: two, so that a rollout, a drain or a node
	// failure leaves one serving.
	DefaultProxyReplicas int32 = 2
	// proxyGracePeriod covers the drain: the preStop pause, then the
	// proxy's own drain delay and timeout, with room to spare.
	proxyGracePeriod int64 = 60
	// proxyPreStopSeconds keeps the pod serving while its endpoint is
	// removed from Services and load balancers, before SIGTERM.
	proxyPreStopSeconds int64 = 5
	// proxyCacheDir holds the last applied tables (an emptyDir).
	proxyCacheDir = "/var/cache/gatehouse"
)

// proxyDrainArgs: on SIGTERM the proxy fails /readyz and keeps its
// listeners open for the delay, then lets requests in flight finish within
// the timeout; together with the preStop pause they end well inside
// proxyGracePeriod.
var proxyDrainArgs = []string{"--drain-delay=5s", "--drain-timeout=45s"}

// defaultProxyResources: requests that let a proxy serve a few thousand
// requests a second, and a memory limit so that a leak costs a restart of
// one pod, not the node.
func defaultProxyResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
}

// replicas is how many proxies a Gateway's settings ask for.
func replicas(s translate.ProxySettings) int32 {
	if s.Replicas != nil {
		return *s.Replicas
	}
	return DefaultProxyReplicas
}

// maxUnavailable is the proxies' disruption budget: one pod at a time by
// default. With one replica that lets a drain take the Gateway down, which
// is what one replica means; the docs say to run two or more.
func maxUnavailable(s translate.ProxySettings) intstr.IntOrString {
	if s.MaxUnavailable != nil {
		return *s.MaxUnavailable
	}
	return intstr.FromInt32(1)
}

// topologySpread spreads a Gateway's proxies over nodes and zones where it
// can (ScheduleAnyway: a single-node or single-zone cluster still runs
// them all), counting only the pods of the current rollout. A constraint a
// class or Gateway wrote without a labelSelector gets the proxies'.
func topologySpread(s translate.ProxySettings, selector map[string]string) []corev1.TopologySpreadConstraint {
	sel := &metav1.LabelSelector{MatchLabels: selector}
	if s.TopologySpreadConstraints != nil {
		out := make([]corev1.TopologySpreadConstraint, len(s.TopologySpreadConstraints))
		for i, c := range s.TopologySpreadConstraints {
			if c.LabelSelector == nil {
				c.LabelSelector = sel
			}
			out[i] = c
		}
		return out
	}
	spread := func(key string) corev1.TopologySpreadConstraint {
		return corev1.TopologySpreadConstraint{MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector: sel, MatchLabelKeys: []string{appsv1.DefaultDeploymentUniqueLabelKey}}
	}
	return []corev1.TopologySpreadConstraint{spread(corev1.LabelHostname), spread(corev1.LabelTopologyZone)}
}

// podMetadata are the labels and annotations of a Gateway's proxy pods:
// spec.infrastructure's (as on every object of the Gateway), then the
// settings' own, then the hub's labels, which nothing overrides. Keys of
// spec.infrastructure in the domains a Gateway may not use on pods
// (translate.ReservedKey: AppArmor and seccomp overrides live there) stay
// on the Deployment, Service and ServiceAccount but not on the pods.
func podMetadata(gw *gwv1.Gateway, s translate.ProxySettings, selector map[string]string) (map[string]string, map[string]string) {
	infraLabels, infraAnnotations := infrastructure(gw)
	labels := merge(unreserved(infraLabels), s.PodLabels, selector, gatewayNameLabel(gw))
	annotations := merge(unreserved(infraAnnotations), s.PodAnnotations)
	return labels, annotations
}

func unreserved(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if !translate.ReservedKey(k) {
			out[k] = v
		}
	}
	return out
}

// gatewayNameLabel is the label the Gateway API gives every object made
// for a Gateway, so that tools find them by the Gateway's name.
func gatewayNameLabel(gw *gwv1.Gateway) map[string]string {
	return map[string]string{gwv1.GatewayNameLabelKey: gw.Name}
}
