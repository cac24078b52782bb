package hub

import (
	"cmp"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// setServiceSpec makes svc the Gateway's proxies' Service, keeping what
// the API server allocated (cluster IP, node ports). Annotations the
// settings name are added to the Service's own.
func (p proxyPod) setServiceSpec(svc *corev1.Service) {
	s := p.settings
	svc.Annotations = merge(svc.Annotations, s.ServiceAnnotations)
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	if s.ServiceType != "" {
		svc.Spec.Type = s.ServiceType
	}
	// Only Services reachable from outside the cluster have an external
	// traffic policy.
	svc.Spec.ExternalTrafficPolicy = ""
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		if s.ExternalTrafficPolicy != "" {
			svc.Spec.ExternalTrafficPolicy = s.ExternalTrafficPolicy
		}
	}
	// A LoadBalancer Service asks its load balancer for the Gateway's
	// static address, the first IP address of spec.addresses, in
	// spec.loadBalancerIP: the field load balancer controllers (clouds',
	// MetalLB, kube-vip) read. Whether it was given shows in the
	// Service's status, which the Gateway's follows (managedAddresses).
	svc.Spec.LoadBalancerIP = ""
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		svc.Spec.LoadBalancerIP = staticIP(p.gateway)
	}
	svc.Spec.Selector = p.selector()
	ports := make([]corev1.ServicePort, 0, len(p.gateway.Spec.Listeners))
	for _, l := range listenerPorts(p.gateway) {
		sp := corev1.ServicePort{Name: l.name(), Port: l.port, TargetPort: intstr.FromInt32(l.port), Protocol: l.protocol}
		for _, had := range svc.Spec.Ports {
			if had.Port == l.port && cmp.Or(had.Protocol, corev1.ProtocolTCP) == l.protocol && svc.Spec.Type != corev1.ServiceTypeClusterIP {
				sp.NodePort = had.NodePort
			}
		}
		ports = append(ports, sp)
	}
	svc.Spec.Ports = ports
}

// staticIP is the first IP address spec.addresses names, or "".
func staticIP(gw *gwv1.Gateway) string {
	for _, a := range gw.Spec.Addresses {
		if (a.Type == nil || *a.Type == gwv1.IPAddressType) && a.Value != "" {
			if ip, err := netip.ParseAddr(a.Value); err == nil {
				return ip.String()
			}
		}
	}
	return ""
}

// disruptionBudget lets voluntary disruptions (drains, evictions) take the
// settings' maxUnavailable proxies at a time. A pod that is not ready may
// always be evicted, so that a broken proxy never blocks a drain.
func (p proxyPod) disruptionBudget() policyv1.PodDisruptionBudgetSpec {
	return policyv1.PodDisruptionBudgetSpec{
		MaxUnavailable:             ptr.To(maxUnavailable(p.settings)),
		Selector:                   &metav1.LabelSelector{MatchLabels: p.selector()},
		UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
	}
}

// serviceAddresses are where clients reach a Gateway's proxies, for its
// status: the addresses the Service's load balancer was given, or a
// ClusterIP Service's cluster IP.
func serviceAddresses(svc *corev1.Service) []gwv1.GatewayStatusAddress {
	var out []gwv1.GatewayStatusAddress
	if svc.Spec.Type == corev1.ServiceTypeClusterIP {
		if _, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
			out = append(out, gwv1.GatewayStatusAddress{Type: ptr.To(gwv1.IPAddressType), Value: svc.Spec.ClusterIP})
		}
	}
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
	return out
}
