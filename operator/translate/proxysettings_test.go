package translate_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// settingsCase translates a class whose parameters hold class and a
// Gateway whose parametersRef ConfigMap holds gateway (none when nil).
type settingsCase struct {
	name           string
	class, gateway map[string]string
	// check looks at the Gateway's effective settings; classProblem and
	// gatewayProblem are parts of the GatewayClass's or the Gateway's
	// Accepted=False message, when one is expected.
	check                        func(translate.ProxySettings) bool
	classProblem, gatewayProblem string
}

func (c settingsCase) run(t *testing.T) {
	t.Helper()
	class := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse", Generation: 1},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName,
			ParametersRef: &gwv1.ParametersReference{Kind: "ConfigMap", Name: "class", Namespace: ptrTo(gwv1.Namespace("gatehouse-system"))}}}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "infra", Generation: 1},
		Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}
	cms := []*corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "class", Namespace: "gatehouse-system"}, Data: c.class}}
	if c.gateway != nil {
		gw.Spec.Infrastructure = &gwv1.GatewayInfrastructure{ParametersRef: &gwv1.LocalParametersReference{Kind: "ConfigMap", Name: "proxies"}}
		cms = append(cms, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "proxies", Namespace: "infra"}, Data: c.gateway})
	}
	out := translate.Translate(translate.Input{GatewayClasses: []*gwv1.GatewayClass{class}, Gateways: []*gwv1.Gateway{gw}, ConfigMaps: cms})
	classAccepted := out.GatewayClasses["gatehouse"].Conditions[0]
	if c.classProblem != "" {
		if classAccepted.Status != metav1.ConditionFalse || classAccepted.Reason != string(gwv1.GatewayClassReasonInvalidParameters) ||
			!strings.Contains(classAccepted.Message, c.classProblem) {
			t.Fatalf("GatewayClass Accepted: %s %s %q; want False InvalidParameters saying %q", classAccepted.Status, classAccepted.Reason, classAccepted.Message, c.classProblem)
		}
		return
	}
	if classAccepted.Status != metav1.ConditionTrue {
		t.Fatalf("GatewayClass not accepted: %s", classAccepted.Message)
	}
	key := types.NamespacedName{Namespace: "infra", Name: "shared"}
	accepted := out.Gateways[key].Conditions[0]
	settings, served := out.ProxySettings[key]
	if c.gatewayProblem != "" {
		if accepted.Status != metav1.ConditionFalse || accepted.Reason != string(gwv1.GatewayReasonInvalidParameters) ||
			!strings.Contains(accepted.Message, c.gatewayProblem) || served {
			t.Fatalf("Gateway Accepted: %s %s %q (settings given: %v); want False InvalidParameters saying %q and no settings",
				accepted.Status, accepted.Reason, accepted.Message, served, c.gatewayProblem)
		}
		return
	}
	if accepted.Status != metav1.ConditionTrue || !served {
		t.Fatalf("Gateway Accepted: %s %s %q; want True with settings", accepted.Status, accepted.Reason, accepted.Message)
	}
	if !c.check(settings) {
		t.Fatalf("settings %+v", settings)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestProxySettingsEachKey(t *testing.T) {
	quantity := func(r corev1.ResourceList, name corev1.ResourceName, want string) bool {
		q, ok := r[name]
		return ok && q.Cmp(resource.MustParse(want)) == 0
	}
	cases := []settingsCase{
		{name: "nothing set: every field empty, for the hub's defaults", class: map[string]string{},
			check: func(s translate.ProxySettings) bool {
				return s.Replicas == nil && s.Resources == nil && s.TopologySpreadConstraints == nil && s.MaxUnavailable == nil && s.ServiceType == ""
			}},
		{name: "replicas", class: map[string]string{"replicas": " 4 "},
			check: func(s translate.ProxySettings) bool { return *s.Replicas == 4 }},
		{name: "replicas not a number", class: map[string]string{"replicas": "two"}, classProblem: `data[replicas]: Invalid value: "two": must be a whole number from 1 to 10`},
		{name: "replicas zero", class: map[string]string{"replicas": "0"}, classProblem: "from 1 to 10"},
		{name: "replicas above the class's own maximum", class: map[string]string{"replicas": "12", "maxReplicas": "11"}, classProblem: "from 1 to 11"},
		{name: "maxReplicas not a number", class: map[string]string{"maxReplicas": "many"}, classProblem: `data[maxReplicas]: Invalid value: "many"`},
		{name: "resources", class: map[string]string{"resources": "requests: {cpu: 250m, memory: 256Mi}\nlimits: {memory: 1Gi}"},
			check: func(s translate.ProxySettings) bool {
				return quantity(s.Resources.Requests, corev1.ResourceCPU, "250m") && quantity(s.Resources.Limits, corev1.ResourceMemory, "1Gi")
			}},
		{name: "resources not YAML of resources", class: map[string]string{"resources": "cpu: 1"}, classProblem: "data[resources]: Invalid value: is not a container's resources"},
		{name: "resources with a request above the limit", class: map[string]string{"resources": "{requests: {memory: 1Gi}, limits: {memory: 512Mi}}"},
			classProblem: `data[resources].requests[memory]: Invalid value: "1Gi": must not exceed the memory limit 512Mi`},
		{name: "resources other than cpu, memory, ephemeral storage", class: map[string]string{"resources": "{limits: {nvidia.com/gpu: 1}}"},
			classProblem: `data[resources].limits[nvidia.com/gpu]: Unsupported value: "nvidia.com/gpu"`},
		{name: "resources with a zero limit", class: map[string]string{"resources": "{limits: {memory: 0}}"}, classProblem: "must be more than 0"},
		{name: "resources claiming devices", class: map[string]string{"resources": "{claims: [{name: gpu}]}"}, classProblem: "data[resources].claims: Forbidden"},
		{name: "nodeSelector", class: map[string]string{"nodeSelector": "{kubernetes.io/os: linux, pool: edge}"},
			check: func(s translate.ProxySettings) bool {
				return s.NodeSelector["pool"] == "edge" && len(s.NodeSelector) == 2
			}},
		{name: "nodeSelector with a bad key", class: map[string]string{"nodeSelector": "{'bad key': x}"}, classProblem: "data[nodeSelector]"},
		{name: "tolerations", class: map[string]string{"tolerations": "[{key: dedicated, operator: Equal, value: ingress, effect: NoSchedule}]"},
			check: func(s translate.ProxySettings) bool {
				return len(s.Tolerations) == 1 && s.Tolerations[0].Value == "ingress"
			}},
		{name: "toleration with a bad operator", class: map[string]string{"tolerations": "[{key: a, operator: Maybe}]"}, classProblem: `data[tolerations][0].operator: Unsupported value: "Maybe"`},
		{name: "toleration seconds without NoExecute", class: map[string]string{"tolerations": "[{key: a, operator: Exists, effect: NoSchedule, tolerationSeconds: 5}]"},
			classProblem: "tolerationSeconds applies only to effect NoExecute"},
		{name: "affinity", class: map[string]string{"affinity": "{nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [edge]}]}]}}}"},
			check: func(s translate.ProxySettings) bool { return s.Affinity != nil && s.Affinity.NodeAffinity != nil }},
		{name: "affinity with a misspelt field", class: map[string]string{"affinity": "{nodeAfinity: {}}"}, classProblem: `unknown field "nodeAfinity"`},
		{name: "affinity In without values", class: map[string]string{"affinity": "{nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In}]}]}}}"},
			classProblem: "matchExpressions[0].values: Required value: operator In needs at least one value"},
		{name: "pod anti-affinity without a topology key", class: map[string]string{"affinity": "{podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 100, podAffinityTerm: {labelSelector: {matchLabels: {a: b}}}}]}}"},
			classProblem: "podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey"},
		{name: "topologySpreadConstraints", class: map[string]string{"topologySpreadConstraints": "[{maxSkew: 2, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule}]"},
			check: func(s translate.ProxySettings) bool {
				return len(s.TopologySpreadConstraints) == 1 && s.TopologySpreadConstraints[0].MaxSkew == 2
			}},
		{name: "topologySpreadConstraints empty turns the default off", class: map[string]string{"topologySpreadConstraints": "[]"},
			check: func(s translate.ProxySettings) bool {
				return s.TopologySpreadConstraints != nil && len(s.TopologySpreadConstraints) == 0
			}},
		{name: "topologySpreadConstraints bad", class: map[string]string{"topologySpreadConstraints": "[{maxSkew: 0, topologyKey: zone, whenUnsatisfiable: Never}]"},
			classProblem: `data[topologySpreadConstraints][0].maxSkew: Invalid value: 0: must be at least 1; data[topologySpreadConstraints][0].whenUnsatisfiable: Unsupported value: "Never"`},
		{name: "imagePullSecrets", class: map[string]string{"imagePullSecrets": "[{name: registry}]"},
			check: func(s translate.ProxySettings) bool {
				return slices.Equal(s.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "registry"}})
			}},
		{name: "imagePullSecrets as plain names", class: map[string]string{"imagePullSecrets": "[registry]"}, classProblem: "write YAML such as [{name: registry-credentials}]"},
		{name: "imagePullSecrets bad name", class: map[string]string{"imagePullSecrets": "[{name: Registry_1}]"}, classProblem: `data[imagePullSecrets][0].name: Invalid value: "Registry_1"`},
		{name: "podAnnotations and podLabels", class: map[string]string{"podAnnotations": "{example.com/owner: web}", "podLabels": "{team: web}"},
			check: func(s translate.ProxySettings) bool {
				return s.PodAnnotations["example.com/owner"] == "web" && s.PodLabels["team"] == "web"
			}},
		{name: "the class may set Kubernetes' annotations", class: map[string]string{"podAnnotations": "{cluster-autoscaler.kubernetes.io/safe-to-evict: 'true'}"},
			check: func(s translate.ProxySettings) bool { return len(s.PodAnnotations) == 1 }},
		{name: "no pod label of Gatehouse's domain, even from the class", class: map[string]string{"podLabels": "{gatehouse.dev/gateway: other}"},
			classProblem: "data[podLabels][gatehouse.dev/gateway]: Forbidden: the gatehouse.dev domain is Gatehouse's own"},
		{name: "service settings", class: map[string]string{"serviceType": "NodePort", "externalTrafficPolicy": "Local", "serviceAnnotations": "{service.beta.kubernetes.io/aws-load-balancer-internal: 'true'}"},
			check: func(s translate.ProxySettings) bool {
				return s.ServiceType == corev1.ServiceTypeNodePort && s.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && len(s.ServiceAnnotations) == 1
			}},
		{name: "serviceType unknown", class: map[string]string{"serviceType": "External"}, classProblem: `data[serviceType]: Unsupported value: "External": supported values: "LoadBalancer", "NodePort", "ClusterIP"`},
		{name: "externalTrafficPolicy unknown", class: map[string]string{"externalTrafficPolicy": "local"}, classProblem: `data[externalTrafficPolicy]: Unsupported value: "local"`},
		{name: "podDisruptionBudget", class: map[string]string{"podDisruptionBudget": "{maxUnavailable: 2}"},
			check: func(s translate.ProxySettings) bool { return *s.MaxUnavailable == intstr.FromInt32(2) }},
		{name: "podDisruptionBudget as a percentage", class: map[string]string{"podDisruptionBudget": "maxUnavailable: 25%"},
			check: func(s translate.ProxySettings) bool { return *s.MaxUnavailable == intstr.FromString("25%") }},
		{name: "podDisruptionBudget that blocks drains", class: map[string]string{"podDisruptionBudget": "{maxUnavailable: 0}"}, classProblem: "would block every node drain"},
		{name: "podDisruptionBudget minAvailable is not offered", class: map[string]string{"podDisruptionBudget": "{minAvailable: 1}"}, classProblem: `unknown field "minAvailable"`},
		{name: "podDisruptionBudget bad percentage", class: map[string]string{"podDisruptionBudget": "{maxUnavailable: 0%}"}, classProblem: "a percentage from 1% to 100%"},
		{name: "every bad key is reported at once", class: map[string]string{"replicas": "x", "serviceType": "y"}, classProblem: `such as "3"; data[serviceType]: Unsupported value: "y"`},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

func TestGatewayOverridesItsClass(t *testing.T) {
	class := map[string]string{"replicas": "2", "maxReplicas": "6", "nodeSelector": "{pool: edge}", "resources": "{requests: {cpu: 100m}}",
		"tolerations": "[{key: dedicated, operator: Exists}]"}
	cases := []settingsCase{
		{name: "the Gateway's keys replace the class's, the rest stay", class: class,
			gateway: map[string]string{"replicas": "5", "resources": "{requests: {memory: 1Gi}}"},
			check: func(s translate.ProxySettings) bool {
				_, cpu := s.Resources.Requests[corev1.ResourceCPU]
				return *s.Replicas == 5 && !cpu && s.NodeSelector["pool"] == "edge" && len(s.Tolerations) == 1
			}},
		{name: "an empty ConfigMap changes nothing", class: class, gateway: map[string]string{},
			check: func(s translate.ProxySettings) bool { return *s.Replicas == 2 && s.NodeSelector["pool"] == "edge" }},
		{name: "a Gateway asks for more than the class's maxReplicas", class: class, gateway: map[string]string{"replicas": "7"},
			gatewayProblem: `data[replicas]: Invalid value: "7": must be a whole number from 1 to 6`},
		{name: "a Gateway may not tolerate taints", class: class, gateway: map[string]string{"tolerations": "[{operator: Exists}]"},
			gatewayProblem: "data[tolerations]: Forbidden: set in the GatewayClass's parameters only"},
		{name: "a Gateway may not set class-wide keys", class: class, gateway: map[string]string{"mode": "external", "requestTimeout": "1h"},
			gatewayProblem: "data[mode]: Forbidden"},
		{name: "a Gateway may not set AppArmor through an annotation", class: class,
			gateway:        map[string]string{"podAnnotations": "{container.apparmor.security.beta.kubernetes.io/proxy: unconfined}"},
			gatewayProblem: "a Gateway may not set keys in the kubernetes.io and k8s.io domains"},
		{name: "a Gateway may not label its pods into Kubernetes' domains", class: class,
			gateway:        map[string]string{"podLabels": "{node-role.kubernetes.io/ingress: ''}"},
			gatewayProblem: "data[podLabels][node-role.kubernetes.io/ingress]: Forbidden"},
		{name: "a Gateway may annotate its Service for the cloud", class: class,
			gateway: map[string]string{"serviceAnnotations": "{service.beta.kubernetes.io/aws-load-balancer-scheme: internal}"},
			check:   func(s translate.ProxySettings) bool { return len(s.ServiceAnnotations) == 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

// TestProxySettingKeysSurviveTheCache: the hub's member caches keep only
// ConfigMapKeys of a ConfigMap; every key of a class's parameters must be
// among them, or a class's setting would vanish on its way to translate.
func TestProxySettingKeysSurviveTheCache(t *testing.T) {
	for _, k := range append(slices.Clone(translate.ProxySettingKeys), "requestTimeout", "maxPendingRequestsPerBackend") {
		if !slices.Contains(translate.ConfigMapKeys, k) {
			t.Errorf("ConfigMapKeys lacks %q: the hub's caches drop it", k)
		}
	}
}

func TestReservedKey(t *testing.T) {
	for key, want := range map[string]bool{
		"kubernetes.io/os": true, "container.apparmor.security.beta.kubernetes.io/proxy": true, "k8s.io/x": true, "sub.k8s.io/x": true,
		"gatehouse.dev/gateway": true, "team": false, "example.com/kubernetes.io": false, "notkubernetes.io/x": false,
	} {
		if got := translate.ReservedKey(key); got != want {
			t.Errorf("ReservedKey(%q) = %v, want %v", key, got, want)
		}
	}
}
