package hub

import (
	"cmp"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// proxyPod is what a Gateway's proxy pods are made from.
type proxyPod struct {
	gateway  *gwv1.Gateway
	cluster  string
	image    string
	xds      string
	params   translate.ClassParameters
	settings translate.ProxySettings
}

// adminPortName names the proxies' admin port (/metrics, /healthz,
// /readyz): the probes and the documented PodMonitor find it by name.
const adminPortName = "admin"

// selector picks a Gateway's proxy pods; it never changes, since a
// Deployment's selector cannot.
func (p proxyPod) selector() map[string]string {
	return map[string]string{LabelGateway: p.gateway.Name}
}

// deploymentSpec is the proxies' Deployment: a rolling update that starts
// a new pod before stopping an old one, so a rollout never lowers the
// number serving.
func (p proxyPod) deploymentSpec() appsv1.DeploymentSpec {
	return appsv1.DeploymentSpec{
		Replicas: ptr.To(replicas(p.settings)),
		Selector: &metav1.LabelSelector{MatchLabels: p.selector()},
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromString("25%")),
		}},
		Template: p.template(),
	}
}

// template is the proxies' pod: restricted by Pod Security, scheduled as
// the settings say, drained before it stops.
func (p proxyPod) template() corev1.PodTemplateSpec {
	labels, annotations := podMetadata(p.gateway, p.settings, p.selector())
	s := p.settings
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			ServiceAccountName: ProxyServiceAccount(p.gateway.Name),
			// The proxy presents a token for the hub's audience only
			// (pushVolume); the API server's own is of no use to it.
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			SecurityContext:               proxyPodSecurity(),
			TerminationGracePeriodSeconds: ptr.To(proxyGracePeriod),
			ImagePullSecrets:              s.ImagePullSecrets,
			NodeSelector:                  s.NodeSelector,
			Tolerations:                   s.Tolerations,
			Affinity:                      s.Affinity,
			TopologySpreadConstraints:     topologySpread(s, p.selector()),
			Containers:                    []corev1.Container{p.container()},
			Volumes: []corev1.Volume{
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				pushVolume(proxyCABundle(p.gateway.Name)),
			},
		},
	}
}

func (p proxyPod) container() corev1.Container {
	resources := defaultProxyResources()
	if p.settings.Resources != nil {
		resources = *p.settings.Resources
	}
	admin := intstr.FromString(adminPortName)
	return corev1.Container{
		Name:  "proxy",
		Image: p.image,
		Args: append([]string{
			"--xds-address", p.xds, "--cluster", p.cluster, "--gateway", p.gateway.Namespace + "/" + p.gateway.Name,
			"--token-file", proxyTokenDir + "/token", "--xds-ca-file", proxyTokenDir + "/ca.crt",
			"--cache-dir", proxyCacheDir, "--admin-address", p.params.AdminAddress(),
		}, proxyDrainArgs...),
		Ports:     p.ports(),
		Resources: resources,
		// Ready once it serves its table; restarted only when the admin
		// server stops answering at all.
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: admin}},
			PeriodSeconds: 2},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: admin}},
			PeriodSeconds: 10, FailureThreshold: 3},
		// Endpoints and load balancers take a moment to stop sending new
		// connections; the pod keeps serving them until then.
		Lifecycle:       &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: proxyPreStopSeconds}}},
		SecurityContext: proxySecurity(),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "cache", MountPath: proxyCacheDir},
			{Name: "push", MountPath: proxyTokenDir, ReadOnly: true},
		},
	}
}

// ports are the listener ports, each named for its number (a listener's
// own name may be too long for a port name), and the admin port.
func (p proxyPod) ports() []corev1.ContainerPort {
	var ports []corev1.ContainerPort
	for _, l := range listenerPorts(p.gateway) {
		ports = append(ports, corev1.ContainerPort{Name: l.name(), ContainerPort: l.port, Protocol: l.protocol})
	}
	return append(ports, corev1.ContainerPort{Name: adminPortName, ContainerPort: p.params.ProxyAdminPort(), Protocol: corev1.ProtocolTCP})
}

// listenerPort is a port the proxies listen on, and over which transport:
// UDP listeners take datagrams, every other listener TCP connections. A
// TCP and a UDP listener may have the same port number.
type listenerPort struct {
	port     int32
	protocol corev1.Protocol
}

// name names the port for its number; a UDP port's name says so, since a
// TCP port may have the same number.
func (l listenerPort) name() string {
	if l.protocol == corev1.ProtocolUDP {
		return fmt.Sprintf("port-%d-udp", l.port)
	}
	return fmt.Sprintf("port-%d", l.port)
}

// listenerPorts are the distinct ports of a Gateway's own listeners, in
// order of number, TCP before UDP.
func listenerPorts(gw *gwv1.Gateway) []listenerPort {
	var ports []listenerPort
	for _, l := range gw.Spec.Listeners {
		protocol := corev1.ProtocolTCP
		if l.Protocol == gwv1.UDPProtocolType {
			protocol = corev1.ProtocolUDP
		}
		ports = append(ports, listenerPort{port: l.Port, protocol: protocol})
	}
	slices.SortFunc(ports, func(a, b listenerPort) int {
		return cmp.Or(cmp.Compare(a.port, b.port), cmp.Compare(a.protocol, b.protocol))
	})
	return slices.Compact(ports)
}

// pushVolume carries what a proxy presents to and verifies the hub with: a
// short-lived ServiceAccount token bound to the pod for audience gatehouse
// (the kubelet renews it), and the push server's CA bundle. The default
// API-server token is not mounted.
func pushVolume(caBundle string) corev1.Volume {
	return corev1.Volume{Name: "push", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: ProxyTokenAudience, ExpirationSeconds: ptr.To[int64](proxyTokenSeconds), Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: caBundle}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		},
	}}}
}

// proxyPodSecurity and proxySecurity meet the restricted Pod Security
// Standard, as the member chart's proxies do: non-root, no privilege
// escalation, no capabilities, the runtime's seccomp profile, a read-only
// root filesystem (the cache is an emptyDir). The proxy binds its
// listeners' own ports, so ports below 1024 open through the namespaced
// sysctl net.ipv4.ip_unprivileged_port_start, which the standard allows
// (it is in the kubelet's safe set), not through a capability.
func proxyPodSecurity() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		Sysctls:        []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}},
	}
}

func proxySecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}
