package explain

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/referencegrant"
)

// checkEndpoints reports whether a Service has ready endpoints; it does not
// decide ResolvedRefs.
const checkEndpoints = "endpoints"

// backendReasons checks each distinct backendRef of the route: a Service
// that exists, with the port, allowed by a ReferenceGrant when it is in
// another namespace, with ready endpoints.
func (in *inspection) backendReasons() []Reason {
	if len(in.r.backends) == 0 {
		return []Reason{ok(checkBackend, "the route has no backendRefs")}
	}
	var rs []Reason
	seen := map[string]bool{}
	for _, b := range in.r.backends {
		group, kind := "", "Service"
		if b.ref.Group != nil {
			group = string(*b.ref.Group)
		}
		if b.ref.Kind != nil {
			kind = string(*b.ref.Kind)
		}
		ns := in.r.key.Namespace
		if b.ref.Namespace != nil && *b.ref.Namespace != "" {
			ns = string(*b.ref.Namespace)
		}
		svc := types.NamespacedName{Namespace: ns, Name: string(b.ref.Name)}
		id := fmt.Sprintf("%s/%s/%s/%v", group, kind, svc, b.ref.Port)
		if seen[id] {
			continue
		}
		seen[id] = true
		if group != "" || kind != "Service" {
			rs = append(rs, problem(checkBackend, "refer to a Service in "+b.path,
				"%s: %s is not supported: Gatehouse routes to Services only", b.path, groupKind(group, kind)))
			continue
		}
		if ns != in.r.key.Namespace {
			rs = append(rs, in.grantReason(b, svc))
		}
		rs = append(rs, in.serviceReasons(b, svc)...)
	}
	return rs
}

func groupKind(group, kind string) string {
	if group == "" {
		return kind
	}
	return kind + "." + group
}

// grantReason: is there a ReferenceGrant in the Service's namespace that
// lets the route refer to it? If not, say exactly which one to create.
func (in *inspection) grantReason(b backendRef, svc types.NamespacedName) Reason {
	from := referencegrant.Ref{Group: gwv1.GroupName, Kind: in.r.kind, Namespace: in.r.key.Namespace}
	to := referencegrant.Ref{Kind: "Service", Namespace: svc.Namespace, Name: svc.Name}
	index, err := in.grants(svc.Namespace)
	if err != nil {
		return problem(checkReferenceGrant, "make sure you may read ReferenceGrants there (RBAC) and run explain again",
			"%s: Service %s is in another namespace, and the ReferenceGrants of namespace %q could not be read: %v", b.path, svc, svc.Namespace, err)
	}
	if index.Allowed(from, to) {
		return ok(checkReferenceGrant, "%s: Service %s is in another namespace, and a ReferenceGrant in namespace %q allows %ss from namespace %q to refer to it",
			b.path, svc, svc.Namespace, in.r.kind, in.r.key.Namespace)
	}
	return problem(checkReferenceGrant,
		fmt.Sprintf("create a ReferenceGrant in namespace %q (its owner must) allowing from group %s, kind %s, namespace %q to kind Service, name %q: "+
			"spec: {from: [{group: %s, kind: %s, namespace: %s}], to: [{group: \"\", kind: Service, name: %s}]}; or move the Service next to the route",
			svc.Namespace, gwv1.GroupName, in.r.kind, in.r.key.Namespace, svc.Name, gwv1.GroupName, in.r.kind, in.r.key.Namespace, svc.Name),
		"%s: Service %s is in another namespace, and no ReferenceGrant in namespace %q allows %ss from namespace %q to refer to it (RefNotPermitted)",
		b.path, svc, svc.Namespace, in.r.kind, in.r.key.Namespace)
}

// grants indexes the ReferenceGrants of a namespace, v1 and v1beta1.
func (in *inspection) grants(namespace string) (*referencegrant.Index, error) {
	var v1 gwv1.ReferenceGrantList
	var v1beta1 gwv1beta1.ReferenceGrantList
	errV1 := in.c.List(in.ctx, &v1, client.InNamespace(namespace))
	errBeta := in.c.List(in.ctx, &v1beta1, client.InNamespace(namespace))
	if errV1 != nil && errBeta != nil {
		return nil, errV1
	}
	var a []*gwv1.ReferenceGrant
	for i := range v1.Items {
		a = append(a, &v1.Items[i])
	}
	var b []*gwv1beta1.ReferenceGrant
	for i := range v1beta1.Items {
		b = append(b, &v1beta1.Items[i])
	}
	return referencegrant.New(a, b), nil
}

// serviceReasons: the Service exists, has the port, and has endpoints.
func (in *inspection) serviceReasons(b backendRef, key types.NamespacedName) []Reason {
	var svc corev1.Service
	if err := in.c.Get(in.ctx, key, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			return []Reason{problem(checkBackend, fmt.Sprintf("create Service %s, or correct %s.name and .namespace", key, b.path),
				"%s: Service %s does not exist (BackendNotFound)", b.path, key)}
		}
		return []Reason{problem(checkBackend, "make sure you may read Services there (RBAC) and run explain again",
			"%s: could not read Service %s: %v", b.path, key, err)}
	}
	var ports []string
	var port *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprint(p.Port))
		if b.ref.Port != nil && p.Port == *b.ref.Port {
			port = &svc.Spec.Ports[i]
		}
	}
	have := strings.Join(ports, ", ")
	if have == "" {
		have = "none"
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return []Reason{problem(checkBackend, "refer to a Service with endpoints (not of type ExternalName)",
			"%s: Service %s is of type ExternalName, which Gatehouse does not route to", b.path, key)}
	case b.ref.Port == nil:
		return []Reason{problem(checkBackend, fmt.Sprintf("set %s.port to a port of the Service (%s)", b.path, have),
			"%s: no port given for Service %s: a port is required", b.path, key)}
	case port == nil:
		return []Reason{problem(checkBackend, fmt.Sprintf("set %s.port to a port of the Service (%s)", b.path, have),
			"%s: Service %s has no port %d (its ports: %s)", b.path, key, *b.ref.Port, have)}
	}
	return []Reason{ok(checkBackend, "%s: Service %s exists with port %d", b.path, key, port.Port), in.endpointsReason(b, key, port)}
}

// endpointsReason counts the ready endpoints of a Service port.
func (in *inspection) endpointsReason(b backendRef, key types.NamespacedName, port *corev1.ServicePort) Reason {
	var list discoveryv1.EndpointSliceList
	if err := in.c.List(in.ctx, &list, client.InNamespace(key.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: key.Name}); err != nil {
		return ok(checkEndpoints, "%s: the endpoints of Service %s could not be read: %v", b.path, key, err)
	}
	ready := 0
	for _, s := range list.Items {
		if !slicePort(s, port) {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				ready += len(e.Addresses)
			}
		}
	}
	if ready == 0 {
		return problem(checkEndpoints, fmt.Sprintf("make sure ready pods back Service %s (its selector matches them, their readiness probes pass)", key),
			"%s: Service %s has no ready endpoint for port %d: traffic routed to it fails", b.path, key, port.Port)
	}
	return ok(checkEndpoints, "%s: Service %s has %d ready endpoint(s)", b.path, key, ready)
}

// slicePort reports whether an EndpointSlice serves the Service port.
func slicePort(s discoveryv1.EndpointSlice, port *corev1.ServicePort) bool {
	if len(s.Ports) == 0 {
		return true
	}
	for _, p := range s.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name == port.Name {
			return true
		}
	}
	return false
}
