package hub

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// LabelGateway marks the objects the hub creates for a Gateway.
const LabelGateway = "gatehouse.dev/gateway"

// Provisioning says how managed-mode proxies are created in members.
type Provisioning struct {
	// Image of gatehouse-proxy.
	Image string
	// XDSAddress is where proxies in member clusters reach the hub.
	XDSAddress string
	Replicas   int32
	// CABundle returns the PEM certificates that sign the push server's
	// certificate; the hub writes them beside each managed proxy.
	CABundle func() []byte
}

// PushCABundleName is the ConfigMap (key ca.crt) in the hub namespace
// holding the CA bundle proxies verify the push server with, for whoever
// installs proxies; each managed-mode proxy gets a copy of its own
// (proxyCABundle).
const PushCABundleName = "gatehouse-push-ca"

// proxyCABundle names a Gateway's copy of the push CA bundle. Each Gateway
// has its own, owned by it: one shared by the Gateways of a namespace would
// go with whichever Gateway owned it.
func proxyCABundle(gateway string) string {
	name := ProxyServiceAccount(gateway)
	if len(name) > 249 {
		name = strings.TrimRight(name[:249], "-.")
	}
	return name + "-ca"
}

// Where a managed proxy finds its push credentials.
const (
	proxyTokenDir     = "/var/run/secrets/gatehouse"
	proxyTokenSeconds = 3600
)

// provision creates or updates, for each accepted Gateway of a managed-mode
// class, its proxies' ServiceAccount, Deployment and LoadBalancer Service in
// the member, all owned by the Gateway so that they go with it. It returns
// the addresses each Service's load balancer was given.
// Proxies it refuses to provision (refusedNamespace, claiming) are returned
// with the reason, for the Gateway's status.
func (w *worker) provision(ctx context.Context, in translate.Input, out translate.Output) (map[types.NamespacedName][]gwv1.GatewayStatusAddress, map[types.NamespacedName]string, error) {
	p := w.hub.opts.Provisioning
	addrs, refusals := map[types.NamespacedName][]gwv1.GatewayStatusAddress{}, map[types.NamespacedName]string{}
	if p.Image == "" {
		return addrs, refusals, nil
	}
	var errs []error
	for _, gw := range in.Gateways {
		k := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
		params, ok := out.Parameters[string(gw.Spec.GatewayClassName)]
		if !ok || params.Mode != translate.ModeManaged || out.Tables[k] == nil {
			continue
		}
		if why := refusedNamespace(gw.Namespace, w.hub.opts.Namespace); why != "" {
			refusals[k] = why
			continue
		}
		a, err := w.provisionGateway(ctx, gw, p, params)
		if why, ok := refused(err); ok {
			refusals[k] = why
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("provisioning proxies of Gateway %s: %w", k, err))
			continue
		}
		addrs[k] = a
	}
	return addrs, refusals, errors.Join(errs...)
}

func (w *worker) provisionGateway(ctx context.Context, gw *gwv1.Gateway, p Provisioning, params translate.ClassParameters) ([]gwv1.GatewayStatusAddress, error) {
	c := claiming{w.cl.GetClient()}
	name := ProxyServiceAccount(gw.Name)
	labels, annotations := infrastructure(gw)
	selector := map[string]string{LabelGateway: gw.Name}
	owned := func(obj client.Object) {
		obj.SetLabels(merge(obj.GetLabels(), labels, selector))
		obj.SetAnnotations(merge(obj.GetAnnotations(), annotations))
		_ = controllerutil.SetControllerReference(gw, obj, c.Scheme())
	}

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: gw.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, sa, func() error { owned(sa); return nil }); err != nil {
		return nil, err
	}

	if p.CABundle == nil || len(p.CABundle()) == 0 {
		return nil, fmt.Errorf("the push server's CA bundle is not loaded yet")
	}
	ca := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: proxyCABundle(gw.Name), Namespace: gw.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, ca, func() error {
		owned(ca)
		ca.Data = map[string]string{"ca.crt": string(p.CABundle())}
		return nil
	}); err != nil {
		return nil, err
	}

	var ports []corev1.ServicePort
	var containerPorts []corev1.ContainerPort
	seen := map[int32]bool{}
	for _, l := range gw.Spec.Listeners {
		if seen[l.Port] {
			continue
		}
		seen[l.Port] = true
		ports = append(ports, corev1.ServicePort{Name: fmt.Sprintf("port-%d", l.Port), Port: l.Port, TargetPort: intstr.FromInt32(l.Port), Protocol: corev1.ProtocolTCP})
		containerPorts = append(containerPorts, corev1.ContainerPort{ContainerPort: l.Port, Protocol: corev1.ProtocolTCP})
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].Port < ports[j].Port })

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: gw.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, dep, func() error {
		owned(dep)
		dep.Spec.Replicas = ptr.To(max(p.Replicas, 1))
		dep.Spec.Selector = &metav1.LabelSelector{MatchLabels: selector}
		dep.Spec.Template.Labels = merge(dep.Spec.Template.Labels, labels, selector)
		dep.Spec.Template.Annotations = merge(dep.Spec.Template.Annotations, annotations)
		dep.Spec.Template.Spec.ServiceAccountName = name
		dep.Spec.Template.Spec.SecurityContext = proxyPodSecurity()
		dep.Spec.Template.Spec.Containers = []corev1.Container{{
			Name:  "proxy",
			Image: p.Image,
			Args: []string{
				"--xds-address", p.XDSAddress, "--cluster", w.name, "--gateway", gw.Namespace + "/" + gw.Name,
				"--token-file", proxyTokenDir + "/token", "--xds-ca-file", proxyTokenDir + "/ca.crt",
				"--cache-dir", "/var/cache/gatehouse", "--admin-address", params.AdminAddress(),
			},
			Ports:           containerPorts,
			SecurityContext: proxySecurity(),
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/readyz", Port: intstr.FromInt32(params.ProxyAdminPort())}}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "cache", MountPath: "/var/cache/gatehouse"},
				{Name: "push", MountPath: proxyTokenDir, ReadOnly: true},
			},
		}}
		dep.Spec.Template.Spec.AutomountServiceAccountToken = ptr.To(false)
		dep.Spec.Template.Spec.Volumes = []corev1.Volume{
			{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			pushVolume(proxyCABundle(gw.Name)),
		}
		return nil
	}); err != nil {
		return nil, err
	}

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: gw.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, svc, func() error {
		owned(svc)
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		svc.Spec.Selector = selector
		svc.Spec.Ports = ports
		return nil
	}); err != nil {
		return nil, err
	}
	var out []gwv1.GatewayStatusAddress
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		switch {
		case ing.IP != "":
			if _, err := netip.ParseAddr(ing.IP); err == nil {
				out = append(out, gwv1.GatewayStatusAddress{Type: ptr.To(gwv1.IPAddressType), Value: ing.IP})
			}
		case ing.Hostname != "":
			out = append(out, gwv1.GatewayStatusAddress{Type: ptr.To(gwv1.HostnameAddressType), Value: ing.Hostname})
		}
	}
	return out, nil
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

// infrastructure are the labels and annotations spec.infrastructure asks
// every object of the Gateway's proxies to carry.
func infrastructure(gw *gwv1.Gateway) (map[string]string, map[string]string) {
	labels, annotations := map[string]string{}, map[string]string{}
	if inf := gw.Spec.Infrastructure; inf != nil {
		for k, v := range inf.Labels {
			labels[string(k)] = string(v)
		}
		for k, v := range inf.Annotations {
			annotations[string(k)] = string(v)
		}
	}
	return labels, annotations
}

func merge(into map[string]string, from ...map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	for _, m := range from {
		maps.Copy(into, m)
	}
	return into
}

// proxyPodSecurity and proxySecurity meet the restricted Pod Security
// Standard, as the member chart's proxies do: non-root, no privilege
// escalation, no capabilities, the runtime's seccomp profile, a read-only
// root filesystem (the cache is an emptyDir). Listeners below 1024 bind
// through the namespaced sysctl, which the standard allows, not through a
// capability.
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
