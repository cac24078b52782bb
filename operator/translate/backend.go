package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/referencegrant"
)

// resolvedBackend is a backendRef after resolution: the name of a Backend in
// the table, or why there is none.
type resolvedBackend struct {
	name    string
	service types.NamespacedName
	reason  gwv1.RouteConditionReason
	message string
}

// backend resolves one backendRef of a route of the given kind in namespace
// routeNS. Backends are built once per translation and shared by routes;
// resolutions are cached, as many routes name the same Services.
func (t *translator) backend(routeKind, routeNS string, r gwv1.BackendObjectReference, field fieldPath, grpc bool) resolvedBackend {
	ck := backendKey{routeKind: routeKind, routeNS: routeNS, name: string(r.Name), grpc: grpc}
	if r.Group != nil {
		ck.group = string(*r.Group)
	}
	ck.kind = "Service"
	if r.Kind != nil {
		ck.kind = string(*r.Kind)
	}
	ck.ns = routeNS
	if r.Namespace != nil && *r.Namespace != "" {
		ck.ns = string(*r.Namespace)
	}
	if r.Port != nil {
		ck.port = *r.Port
	}
	t.resolving = append(t.resolving, ck)
	res, ok := t.resolved[ck]
	if !ok {
		res = t.resolveBackend(ck, r.Port != nil)
		t.resolved[ck] = res
	}
	if res.reason != "" {
		res.message = field.String() + ": " + res.message
	}
	return res
}

// backendKey is what resolving a backendRef depends on.
type backendKey struct {
	routeKind, routeNS    string
	group, kind, ns, name string
	port                  int32
	grpc                  bool
}

func (t *translator) resolveBackend(k backendKey, hasPort bool) resolvedBackend {
	if k.group != "" || k.kind != "Service" {
		return resolvedBackend{reason: gwv1.RouteReasonInvalidKind,
			message: fmt.Sprintf("backend kind %s/%s is not supported: refer to a Service", orCore(k.group), k.kind)}
	}
	svcKey := key(k.ns, k.name)
	if !t.grants.Allowed(referencegrant.Ref{Group: gwv1.GroupName, Kind: k.routeKind, Namespace: k.routeNS}, referencegrant.Ref{Kind: "Service", Namespace: k.ns, Name: k.name}) {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonRefNotPermitted,
			message: fmt.Sprintf("Service %s is in another namespace and no ReferenceGrant in %q allows %ss from %q to refer to it: add one",
				svcKey, k.ns, k.routeKind, k.routeNS)}
	}
	svc := t.services[svcKey]
	if svc == nil {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonBackendNotFound,
			message: fmt.Sprintf("Service %s does not exist", svcKey)}
	}
	if why := tooLarge(svc); why != "" {
		return resolvedBackend{service: svcKey, reason: ReasonTooLarge,
			message: fmt.Sprintf("Service %s %s: trim its labels, annotations and ports", svcKey, why)}
	}
	for _, es := range t.slices[svcKey] {
		if why := tooLarge(es); why != "" {
			return resolvedBackend{service: svcKey, reason: ReasonTooLarge,
				message: fmt.Sprintf("EndpointSlice %s/%s of Service %s %s: its endpoints are not known, split them over smaller slices", es.Namespace, es.Name, svcKey, why)}
		}
	}
	if !hasPort {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonBackendNotFound,
			message: fmt.Sprintf("a port is required for Service %s", svcKey)}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonUnsupportedProtocol,
			message: fmt.Sprintf("Service %s is of type ExternalName, which Gatehouse does not route to: use a Service with endpoints", svcKey)}
	}
	// A Service may use one port number for TCP and for UDP (DNS does):
	// UDPRoutes take the UDP one, every other kind the TCP one.
	transport := corev1.ProtocolTCP
	if k.routeKind == kindUDPRoute {
		transport = corev1.ProtocolUDP
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if p := &svc.Spec.Ports[i]; p.Port == k.port && cmp.Or(p.Protocol, corev1.ProtocolTCP) == transport {
			port = p
		}
	}
	if port == nil {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonBackendNotFound,
			message: fmt.Sprintf("Service %s has no %s port %d", svcKey, transport, k.port)}
	}
	tls := t.backendTLS(svc, port)
	proto := appProtocol(port.AppProtocol)
	name := svcKey.String() + ":" + strconv.Itoa(int(port.Port))
	if transport == corev1.ProtocolUDP {
		name += "/udp"
	}
	if k.grpc && proto != routetable.AppProtocol_H2C {
		// gRPC needs HTTP/2: over TLS when a policy asks for it, else h2c.
		proto = routetable.AppProtocol_H2C
		if tls != nil {
			proto = routetable.AppProtocol_H2
		}
		name += "@" + strings.ToLower(proto.String())
	}
	if _, ok := t.backends[name]; !ok {
		b := t.buildBackend(name, svc, port, proto)
		b.Tls = tls
		t.backends[name] = b
	}
	return resolvedBackend{name: name, service: svcKey}
}

func orCore(group string) string {
	if group == "" {
		return "core"
	}
	return group
}

func appProtocol(p *string) routetable.AppProtocol {
	if p == nil {
		return routetable.AppProtocol_HTTP1
	}
	switch *p {
	case "kubernetes.io/h2c":
		return routetable.AppProtocol_H2C
	case "kubernetes.io/ws", "kubernetes.io/wss":
		return routetable.AppProtocol_WEBSOCKET
	}
	return routetable.AppProtocol_HTTP1
}

func (t *translator) buildBackend(name string, svc *corev1.Service, port *corev1.ServicePort, proto routetable.AppProtocol) *routetable.Backend {
	b := &routetable.Backend{Name: name, Protocol: proto}
	seen := map[string]bool{}
	for _, es := range t.slices[key(svc.Namespace, svc.Name)] {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		target, ok := slicePort(es, port)
		if !ok {
			continue
		}
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, addr := range ep.Addresses {
				id := addr + ":" + strconv.Itoa(int(target))
				if seen[id] {
					continue
				}
				seen[id] = true
				e := &routetable.Endpoint{Address: addr, Port: uint32(target)}
				if ep.TargetRef != nil {
					e.Target = ep.TargetRef.Kind + "/" + ep.TargetRef.Name
				}
				b.Endpoints = append(b.Endpoints, e)
			}
		}
	}
	slices.SortFunc(b.Endpoints, func(x, y *routetable.Endpoint) int {
		if c := cmp.Compare(x.Address, y.Address); c != 0 {
			return c
		}
		return cmp.Compare(x.Port, y.Port)
	})
	return b
}

// slicePort finds the EndpointSlice port that carries the Service port: the
// one with the same name (both unnamed for a single-port Service).
func slicePort(es *discoveryv1.EndpointSlice, port *corev1.ServicePort) (int32, bool) {
	for _, p := range es.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name == port.Name && p.Port != nil {
			return *p.Port, true
		}
	}
	return 0, false
}
