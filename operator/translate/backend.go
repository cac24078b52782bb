package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
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
// routeNS. Backends are built once per translation and shared by routes.
func (t *translator) backend(routeKind, routeNS string, r gwv1.BackendObjectReference, field string, grpc bool) resolvedBackend {
	group, kind := "", "Service"
	if r.Group != nil {
		group = string(*r.Group)
	}
	if r.Kind != nil {
		kind = string(*r.Kind)
	}
	if group != "" || kind != "Service" {
		return resolvedBackend{reason: gwv1.RouteReasonInvalidKind,
			message: fmt.Sprintf("%s: backend kind %s/%s is not supported: refer to a Service", field, orCore(group), kind)}
	}
	ns := routeNS
	if r.Namespace != nil && *r.Namespace != "" {
		ns = string(*r.Namespace)
	}
	svcKey := key(ns, string(r.Name))
	if !t.grants.allowed(ref{gwv1.GroupName, routeKind, routeNS, ""}, ref{"", "Service", ns, string(r.Name)}) {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonRefNotPermitted,
			message: fmt.Sprintf("%s: Service %s is in another namespace and no ReferenceGrant in %q allows %ss from %q to refer to it: add one",
				field, svcKey, ns, routeKind, routeNS)}
	}
	svc := t.services[svcKey]
	if svc == nil {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonBackendNotFound,
			message: fmt.Sprintf("%s: Service %s does not exist", field, svcKey)}
	}
	if r.Port == nil {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonBackendNotFound,
			message: fmt.Sprintf("%s: a port is required for Service %s", field, svcKey)}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonUnsupportedProtocol,
			message: fmt.Sprintf("%s: Service %s is of type ExternalName, which Gatehouse does not route to: use a Service with endpoints", field, svcKey)}
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == *r.Port {
			port = &svc.Spec.Ports[i]
		}
	}
	if port == nil {
		return resolvedBackend{service: svcKey, reason: gwv1.RouteReasonBackendNotFound,
			message: fmt.Sprintf("%s: Service %s has no port %d", field, svcKey, *r.Port)}
	}
	proto := appProtocol(port.AppProtocol)
	name := svcKey.String() + ":" + strconv.Itoa(int(port.Port))
	if grpc && proto == routetable.AppProtocol_HTTP1 {
		// gRPC needs HTTP/2; without TLS that is h2c.
		proto = routetable.AppProtocol_H2C
		name += "@h2c"
	}
	if _, ok := t.backends[name]; !ok {
		t.backends[name] = t.buildBackend(name, svc, port, proto)
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
	b.Tls = t.backendTLS(svc, port)
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
