package policy

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
	"github.com/gatehouse-dev/gatehouse/tenancy"
)

// RouteKinds are the route kinds the decision knows, as Subject.Kind and a
// RoutePolicy's spec.match.kinds name them; ListenerSet is the one other
// kind decided.
var RouteKinds = []string{attach.KindHTTPRoute, attach.KindGRPCRoute, attach.KindTLSRoute, attach.KindTCPRoute, attach.KindUDPRoute}

// NewObject returns an empty object of kind, one of RouteKinds or
// ListenerSet, to decode into; nil for any other kind.
func NewObject(kind string) client.Object {
	switch kind {
	case attach.KindHTTPRoute:
		return &gwv1.HTTPRoute{}
	case attach.KindGRPCRoute:
		return &gwv1.GRPCRoute{}
	case attach.KindTLSRoute:
		return &gwv1.TLSRoute{}
	case attach.KindTCPRoute:
		return &gwv1.TCPRoute{}
	case attach.KindUDPRoute:
		return &gwv1.UDPRoute{}
	case "ListenerSet":
		return &gwv1.ListenerSet{}
	}
	return nil
}

// isRoute reports whether kind is one of RouteKinds.
func isRoute(kind string) bool {
	for _, k := range RouteKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// hostless reports whether routes of kind have no hostnames of their own:
// a TCPRoute or UDPRoute takes every connection to the listener's port, so
// the listener's hostname, which the Gateway API ignores for these
// protocols, says nothing about what the route serves.
func hostless(kind string) bool {
	return kind == attach.KindTCPRoute || kind == attach.KindUDPRoute
}

// routeHostnames are a route's spec.hostnames, as written: request
// hostnames of an HTTPRoute or GRPCRoute, SNI names of a TLSRoute; none for
// other kinds.
func routeHostnames(o client.Object) []gwv1.Hostname {
	switch r := o.(type) {
	case *gwv1.HTTPRoute:
		return r.Spec.Hostnames
	case *gwv1.GRPCRoute:
		return r.Spec.Hostnames
	case *gwv1.TLSRoute:
		return r.Spec.Hostnames
	}
	return nil
}

// RouteEntry is a route of kind of tenant as its limits count it: its
// hostnames as written. The hub indexes every route so, and admission
// counts the route it is asked about the same way.
func RouteEntry(kind string, o client.Object, tenant string) tenancy.RouteEntry {
	e := tenancy.RouteEntry{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName(), Tenant: tenant, Created: o.GetCreationTimestamp().Time}
	for _, h := range routeHostnames(o) {
		e.Hostnames = append(e.Hostnames, string(h))
	}
	return e
}

// pathRef is one backendRef of a route with its field path.
type pathRef struct {
	path *field.Path
	ref  gwv1.BackendObjectReference
}

// backendRefs lists the backendRefs of every rule of a route.
func backendRefs(o client.Object) []pathRef {
	var rules [][]gwv1.BackendRef
	switch r := o.(type) {
	case *gwv1.HTTPRoute:
		for _, rule := range r.Spec.Rules {
			rules = append(rules, embedded(rule.BackendRefs, func(b gwv1.HTTPBackendRef) gwv1.BackendRef { return b.BackendRef }))
		}
	case *gwv1.GRPCRoute:
		for _, rule := range r.Spec.Rules {
			rules = append(rules, embedded(rule.BackendRefs, func(b gwv1.GRPCBackendRef) gwv1.BackendRef { return b.BackendRef }))
		}
	case *gwv1.TLSRoute:
		for _, rule := range r.Spec.Rules {
			rules = append(rules, rule.BackendRefs)
		}
	case *gwv1.TCPRoute:
		for _, rule := range r.Spec.Rules {
			rules = append(rules, rule.BackendRefs)
		}
	case *gwv1.UDPRoute:
		for _, rule := range r.Spec.Rules {
			rules = append(rules, rule.BackendRefs)
		}
	}
	var out []pathRef
	for i, refs := range rules {
		for j, b := range refs {
			out = append(out, pathRef{field.NewPath("spec", "rules").Index(i).Child("backendRefs").Index(j), b.BackendObjectReference})
		}
	}
	return out
}

// embedded takes the BackendRef each of an HTTPRoute's or GRPCRoute's
// backendRefs embeds.
func embedded[T any](refs []T, of func(T) gwv1.BackendRef) []gwv1.BackendRef {
	out := make([]gwv1.BackendRef, len(refs))
	for i, r := range refs {
		out[i] = of(r)
	}
	return out
}
