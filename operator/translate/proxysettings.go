package translate

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ProxySettings shape the proxies the hub creates for a managed-mode
// Gateway: what its class's parameters say, overridden key by key by the
// ConfigMap the Gateway's spec.infrastructure.parametersRef names. A nil or
// empty field was not set; the hub fills in its default (docs/managed-proxies.md
// lists each key, its default and who may set it).
type ProxySettings struct {
	Replicas                  *int32
	Resources                 *corev1.ResourceRequirements
	NodeSelector              map[string]string
	Tolerations               []corev1.Toleration
	Affinity                  *corev1.Affinity
	TopologySpreadConstraints []corev1.TopologySpreadConstraint
	ImagePullSecrets          []corev1.LocalObjectReference
	PodAnnotations            map[string]string
	PodLabels                 map[string]string
	ServiceType               corev1.ServiceType
	ServiceAnnotations        map[string]string
	ExternalTrafficPolicy     corev1.ServiceExternalTrafficPolicy
	// MaxUnavailable is the proxies' PodDisruptionBudget's.
	MaxUnavailable *intstr.IntOrString
}

// DefaultMaxReplicas bounds the replicas a Gateway's own parameters may ask
// for, unless the class's maxReplicas says otherwise.
const DefaultMaxReplicas int32 = 10

// overriddenBy is s with every field o sets replaced by o's: a Gateway's
// value replaces its class's whole (a Gateway's resources replace the
// class's requests and limits together), so that what a Gateway's
// ConfigMap says is what its proxies get.
func (s ProxySettings) overriddenBy(o ProxySettings) ProxySettings {
	override(&s.Replicas, o.Replicas, o.Replicas != nil)
	override(&s.Resources, o.Resources, o.Resources != nil)
	override(&s.NodeSelector, o.NodeSelector, o.NodeSelector != nil)
	override(&s.Tolerations, o.Tolerations, o.Tolerations != nil)
	override(&s.Affinity, o.Affinity, o.Affinity != nil)
	override(&s.TopologySpreadConstraints, o.TopologySpreadConstraints, o.TopologySpreadConstraints != nil)
	override(&s.ImagePullSecrets, o.ImagePullSecrets, o.ImagePullSecrets != nil)
	override(&s.PodAnnotations, o.PodAnnotations, o.PodAnnotations != nil)
	override(&s.PodLabels, o.PodLabels, o.PodLabels != nil)
	override(&s.ServiceType, o.ServiceType, o.ServiceType != "")
	override(&s.ServiceAnnotations, o.ServiceAnnotations, o.ServiceAnnotations != nil)
	override(&s.ExternalTrafficPolicy, o.ExternalTrafficPolicy, o.ExternalTrafficPolicy != "")
	override(&s.MaxUnavailable, o.MaxUnavailable, o.MaxUnavailable != nil)
	return s
}

func override[T any](field *T, value T, set bool) {
	if set {
		*field = value
	}
}

// gatewayProxySettings are the settings of a Gateway's proxies: its
// class's, overridden by the ConfigMap its spec.infrastructure.parametersRef
// names in its namespace. A reference that is not to a ConfigMap, one that
// does not exist, and a bad value are what the Gateway API calls invalid
// parameters; the message says what to change.
func (t *translator) gatewayProxySettings(g *gwv1.Gateway) (ProxySettings, string) {
	class := t.out.Parameters[string(g.Spec.GatewayClassName)]
	if g.Spec.Infrastructure == nil || g.Spec.Infrastructure.ParametersRef == nil {
		return class.Proxy, ""
	}
	ref := g.Spec.Infrastructure.ParametersRef
	at := "spec.infrastructure.parametersRef"
	if ref.Group != "" || ref.Kind != "ConfigMap" {
		return class.Proxy, fmt.Sprintf("%s: %s/%s is not supported: refer to a ConfigMap (group \"\", kind ConfigMap) in namespace %s", at, orCore(string(ref.Group)), ref.Kind, g.Namespace)
	}
	cm := t.configMaps[key(g.Namespace, ref.Name)]
	if cm == nil {
		return class.Proxy, fmt.Sprintf("%s: ConfigMap %s/%s does not exist: create it, or remove the reference", at, g.Namespace, ref.Name)
	}
	if why := tooLarge(cm); why != "" {
		return class.Proxy, fmt.Sprintf("%s: ConfigMap %s/%s %s: keep only the proxy settings in it", at, g.Namespace, ref.Name, why)
	}
	own, errs := parseProxySettings(cm, scopeGateway, class.maxReplicas())
	if len(errs) > 0 {
		return class.Proxy, fmt.Sprintf("%s: ConfigMap %s/%s: %s", at, g.Namespace, ref.Name, joinErrors(errs))
	}
	return class.Proxy.overriddenBy(own), ""
}

// maxReplicas is the most replicas a Gateway of the class may ask for.
func (p ClassParameters) maxReplicas() int32 {
	if p.MaxReplicas > 0 {
		return p.MaxReplicas
	}
	return DefaultMaxReplicas
}

func joinErrors(errs field.ErrorList) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}
