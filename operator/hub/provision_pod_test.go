package hub

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

func testProxyPod(settings translate.ProxySettings) proxyPod {
	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "infra"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{
			{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
			{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType},
			{Name: "http-other", Port: 80, Protocol: gwv1.HTTPProtocolType},
		}},
	}
	return proxyPod{gateway: gw, cluster: "eu-west", image: "registry.example/gatehouse-proxy:1", xds: "hub.example:18000",
		params: translate.ClassParameters{Mode: translate.ModeManaged}, settings: settings}
}

// restricted evaluates a pod spec against the restricted Pod Security
// Standard, as the PodSecurity admission plugin of a namespace labelled
// pod-security.kubernetes.io/enforce=restricted would.
func restricted(t *testing.T, meta metav1.ObjectMeta, spec corev1.PodSpec) []string {
	t.Helper()
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var forbidden []string
	for _, r := range eval.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &meta, &spec) {
		if !r.Allowed {
			forbidden = append(forbidden, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	return forbidden
}

func TestProxyPodPassesRestrictedPodSecurity(t *testing.T) {
	for name, settings := range map[string]translate.ProxySettings{
		"defaults": {},
		"every setting": {
			Replicas: ptr.To[int32](3), NodeSelector: map[string]string{"pool": "edge"},
			Tolerations:      []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
			PodAnnotations:   map[string]string{"example.com/team": "web"}, PodLabels: map[string]string{"team": "web"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			tpl := testProxyPod(settings).template()
			if forbidden := restricted(t, tpl.ObjectMeta, tpl.Spec); len(forbidden) > 0 {
				t.Fatalf("restricted Pod Security forbids the proxies' pod: %s", strings.Join(forbidden, "; "))
			}
		})
	}
	// The check can fail: the pod the hub made before had no container
	// security context of its own, as a bare container has none.
	tpl := testProxyPod(translate.ProxySettings{}).template()
	tpl.Spec.Containers[0].SecurityContext = nil
	if len(restricted(t, tpl.ObjectMeta, tpl.Spec)) == 0 {
		t.Fatal("a container without a security context passed as restricted: the evaluator is not checking")
	}
}

func TestProxyPodDefaults(t *testing.T) {
	p := testProxyPod(translate.ProxySettings{})
	dep := p.deploymentSpec()
	if *dep.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *dep.Replicas)
	}
	if ru := dep.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge.String() != "25%" {
		t.Errorf("rollout %+v: want maxUnavailable 0 and a surge", dep.Strategy)
	}
	spec := dep.Template.Spec
	if *spec.TerminationGracePeriodSeconds != 60 {
		t.Errorf("terminationGracePeriodSeconds %d, want 60", *spec.TerminationGracePeriodSeconds)
	}
	c := spec.Containers[0]
	if pre := c.Lifecycle.PreStop; pre == nil || pre.Sleep == nil || pre.Sleep.Seconds != 5 {
		t.Errorf("preStop %+v, want a 5 s sleep", c.Lifecycle.PreStop)
	}
	for _, arg := range []string{"--drain-delay=5s", "--drain-timeout=45s"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q lack %s", c.Args, arg)
		}
	}
	if req, lim := c.Resources.Requests, c.Resources.Limits; req.Cpu().String() != "100m" || req.Memory().String() != "128Mi" || lim.Memory().String() != "512Mi" {
		t.Errorf("resources %+v", c.Resources)
	}
	for what, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port != intstr.FromString("admin") {
			t.Errorf("%s probe %+v: want an HTTP GET on the port named admin", what, probe)
		}
	}
	want := []corev1.ContainerPort{{Name: "port-80", ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {Name: "port-443", ContainerPort: 443, Protocol: corev1.ProtocolTCP},
		{Name: "admin", ContainerPort: translate.DefaultAdminPort, Protocol: corev1.ProtocolTCP}}
	if !slices.Equal(c.Ports, want) {
		t.Errorf("ports %+v, want %+v", c.Ports, want)
	}
	if !slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasSuffix(a, ":9901") && strings.HasPrefix(a, "0.0.0.0") }) {
		t.Errorf("args %q: the admin server must answer the kubelet on all addresses", c.Args)
	}
	keys := map[string]corev1.UnsatisfiableConstraintAction{}
	for _, tsc := range spec.TopologySpreadConstraints {
		keys[tsc.TopologyKey] = tsc.WhenUnsatisfiable
		if tsc.LabelSelector.MatchLabels[LabelGateway] != "shared" {
			t.Errorf("spread %s counts pods %v, not the Gateway's", tsc.TopologyKey, tsc.LabelSelector)
		}
	}
	if keys[corev1.LabelHostname] != corev1.ScheduleAnyway || keys[corev1.LabelTopologyZone] != corev1.ScheduleAnyway {
		t.Errorf("spread %v: want nodes and zones, ScheduleAnyway", keys)
	}
	if pdb := p.disruptionBudget(); pdb.MaxUnavailable.IntValue() != 1 || pdb.Selector.MatchLabels[LabelGateway] != "shared" {
		t.Errorf("disruption budget %+v", pdb)
	}
}

func TestProxyPodFollowsSettings(t *testing.T) {
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
	tsc := []corev1.TopologySpreadConstraint{{MaxSkew: 2, TopologyKey: "rack", WhenUnsatisfiable: corev1.DoNotSchedule}}
	p := testProxyPod(translate.ProxySettings{
		Replicas: ptr.To[int32](3), Resources: &res, NodeSelector: map[string]string{"pool": "edge"},
		Affinity:                  &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}},
		TopologySpreadConstraints: tsc, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
		PodLabels: map[string]string{"team": "web"}, PodAnnotations: map[string]string{"example.com/team": "web"},
		MaxUnavailable: ptr.To(intstr.FromString("50%")),
	})
	dep := p.deploymentSpec()
	spec := dep.Template.Spec
	switch {
	case *dep.Replicas != 3:
		t.Errorf("replicas %d", *dep.Replicas)
	case spec.Containers[0].Resources.Requests.Memory().String() != "1Gi" || spec.Containers[0].Resources.Limits != nil:
		t.Errorf("resources %+v: the settings' replace the defaults whole", spec.Containers[0].Resources)
	case spec.NodeSelector["pool"] != "edge" || spec.Affinity == nil || spec.ImagePullSecrets[0].Name != "registry":
		t.Errorf("scheduling %+v", spec)
	case len(spec.TopologySpreadConstraints) != 1 || spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels[LabelGateway] != "shared":
		t.Errorf("spread %+v: the settings' replace the defaults, counting the Gateway's pods", spec.TopologySpreadConstraints)
	case dep.Template.Labels["team"] != "web" || dep.Template.Annotations["example.com/team"] != "web":
		t.Errorf("pod metadata %+v", dep.Template.ObjectMeta)
	case p.disruptionBudget().MaxUnavailable.String() != "50%":
		t.Errorf("disruption budget %+v", p.disruptionBudget())
	}
	if tsc[0].LabelSelector != nil {
		t.Error("filling in the spread's selector changed the settings, which other Gateways share")
	}
}

// TestProxyPodMetadataCannotEscape: what a Gateway writes in
// spec.infrastructure reaches its pods except in the domains reserved for
// the cluster (AppArmor and seccomp overrides live there), and no setting
// moves the pods out of their Gateway's selector.
func TestProxyPodMetadataCannotEscape(t *testing.T) {
	p := testProxyPod(translate.ProxySettings{PodLabels: map[string]string{"team": "web"}})
	p.gateway.Spec.Infrastructure = &gwv1.GatewayInfrastructure{
		Labels: map[gwv1.LabelKey]gwv1.LabelValue{"gatehouse.dev/gateway": "other", "app": "shop"},
		Annotations: map[gwv1.AnnotationKey]gwv1.AnnotationValue{
			"container.apparmor.security.beta.kubernetes.io/proxy": "unconfined", "example.com/owner": "web"},
	}
	tpl := p.template()
	if tpl.Labels[LabelGateway] != "shared" || tpl.Labels[gwv1.GatewayNameLabelKey] != "shared" || tpl.Labels["app"] != "shop" || tpl.Labels["team"] != "web" {
		t.Errorf("pod labels %v", tpl.Labels)
	}
	if _, ok := tpl.Annotations["container.apparmor.security.beta.kubernetes.io/proxy"]; ok || tpl.Annotations["example.com/owner"] != "web" {
		t.Errorf("pod annotations %v", tpl.Annotations)
	}
}

func TestProxyService(t *testing.T) {
	cases := []struct {
		name     string
		settings translate.ProxySettings
		had      corev1.ServiceSpec
		check    func(corev1.ServiceSpec) bool
	}{
		{"a LoadBalancer by default, keeping its node ports", translate.ProxySettings{},
			corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, NodePort: 31080}}},
			func(s corev1.ServiceSpec) bool {
				return s.Type == corev1.ServiceTypeLoadBalancer && s.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyCluster &&
					len(s.Ports) == 2 && s.Ports[0].NodePort == 31080 && s.Ports[0].Name == "port-80"
			}},
		{"Local traffic policy", translate.ProxySettings{ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal}, corev1.ServiceSpec{},
			func(s corev1.ServiceSpec) bool {
				return s.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
			}},
		{"a ClusterIP Service has no node ports and no external policy",
			translate.ProxySettings{ServiceType: corev1.ServiceTypeClusterIP, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal},
			corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal, Ports: []corev1.ServicePort{{Port: 80, NodePort: 31080}}},
			func(s corev1.ServiceSpec) bool {
				return s.Type == corev1.ServiceTypeClusterIP && s.ExternalTrafficPolicy == "" && s.Ports[0].NodePort == 0
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := &corev1.Service{Spec: c.had}
			testProxyPod(c.settings).setServiceSpec(svc)
			if !c.check(svc.Spec) {
				t.Fatalf("Service %+v", svc.Spec)
			}
		})
	}
}

// TestProxyServiceTransportsAndStaticAddress: a UDP listener's port is a
// UDP port of the Service and of the pod (a TCP listener of the same
// number keeps its TCP port beside it), and a LoadBalancer Service asks its
// load balancer for the first IP address of spec.addresses.
func TestProxyServiceTransportsAndStaticAddress(t *testing.T) {
	p := testProxyPod(translate.ProxySettings{})
	p.gateway.Spec.Listeners = []gwv1.Listener{
		{Name: "dns", Port: 53, Protocol: gwv1.UDPProtocolType},
		{Name: "dns-tcp", Port: 53, Protocol: gwv1.TCPProtocolType},
		{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
	}
	p.gateway.Spec.Addresses = []gwv1.GatewaySpecAddress{
		{Type: ptr.To(gwv1.HostnameAddressType), Value: "gw.example.test"}, {Value: "192.0.2.10"}, {Value: "192.0.2.11"},
	}
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
		Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolTCP, NodePort: 31053}}}}
	p.setServiceSpec(svc)
	want := []corev1.ServicePort{
		{Name: "port-53", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolTCP, NodePort: 31053},
		{Name: "port-53-udp", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP},
		{Name: "port-80", Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP},
	}
	if !equality.Semantic.DeepEqual(svc.Spec.Ports, want) {
		t.Errorf("Service ports %+v, want %+v", svc.Spec.Ports, want)
	}
	if svc.Spec.LoadBalancerIP != "192.0.2.10" {
		t.Errorf("spec.loadBalancerIP %q, want the first IP address of spec.addresses", svc.Spec.LoadBalancerIP)
	}
	ports := p.container().Ports
	if len(ports) != 4 || ports[1].Name != "port-53-udp" || ports[1].Protocol != corev1.ProtocolUDP || ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("container ports %+v", ports)
	}

	p.settings.ServiceType = corev1.ServiceTypeClusterIP
	p.setServiceSpec(svc)
	if svc.Spec.LoadBalancerIP != "" {
		t.Errorf("a ClusterIP Service asks for load balancer IP %q", svc.Spec.LoadBalancerIP)
	}
}

// TestProxyServiceName: a Gateway's proxies' Service has a name the API
// server takes (a DNS label: 63 characters, no dots) whatever the
// Gateway's name, the plain one where that is a label already, and two
// Gateways cut to the same prefix have Services of their own.
func TestProxyServiceName(t *testing.T) {
	if got := proxyServiceName("web"); got != "gatehouse-proxy-web" {
		t.Errorf("proxyServiceName(web) = %q", got)
	}
	long := "http-listener-isolation-with-hostname-intersection"
	names := map[string]bool{}
	for _, gw := range []string{long, long + "-2", "web.example.test", "web-example-test", strings.Repeat("a", 253)} {
		name := proxyServiceName(gw)
		if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
			t.Errorf("Gateway %s: Service name %q: %v", gw, name, errs)
		}
		if !strings.HasPrefix(name, "gatehouse-proxy-") || names[name] {
			t.Errorf("Gateway %s: Service name %q is not its own", gw, name)
		}
		names[name] = true
	}
}
