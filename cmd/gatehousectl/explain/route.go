package explain

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
)

// Route kinds explain knows.
const (
	KindHTTPRoute = attach.KindHTTPRoute
	KindGRPCRoute = attach.KindGRPCRoute
	KindTLSRoute  = attach.KindTLSRoute
	KindTCPRoute  = attach.KindTCPRoute
	KindUDPRoute  = attach.KindUDPRoute
)

// Kinds lists the route kinds explain knows, for usage messages.
var Kinds = []string{KindHTTPRoute, KindGRPCRoute, KindTLSRoute, KindTCPRoute, KindUDPRoute}

// unknownKind is the error of a kind explain does not know.
func unknownKind(kind string) error {
	return fmt.Errorf("unknown route kind %q: use one of %s", kind, strings.Join(Kinds, ", "))
}

// route is what routes of every kind have in common, as explain reads
// them.
type route struct {
	kind       string
	key        types.NamespacedName
	generation int64
	parentRefs []gwv1.ParentReference
	// hostnames are spec.hostnames, lower case: request hostnames, or a
	// TLSRoute's SNI names; TCPRoutes and UDPRoutes have none.
	hostnames []string
	backends  []backendRef
	// filters names the filters the route uses, by field path.
	filters []string
	parents []gwv1.RouteParentStatus
}

// backendRef is one backendRef of a rule, with its field path.
type backendRef struct {
	path string
	ref  gwv1.BackendObjectReference
}

// getRoute reads a route of kind from a member cluster.
func getRoute(ctx context.Context, c client.Client, kind string, key types.NamespacedName) (*route, error) {
	var obj client.Object
	switch kind {
	case KindHTTPRoute:
		obj = &gwv1.HTTPRoute{}
	case KindGRPCRoute:
		obj = &gwv1.GRPCRoute{}
	case KindTLSRoute:
		obj = &gwv1.TLSRoute{}
	case KindTCPRoute:
		obj = &gwv1.TCPRoute{}
	case KindUDPRoute:
		obj = &gwv1.UDPRoute{}
	default:
		return nil, unknownKind(kind)
	}
	if err := c.Get(ctx, key, obj); err != nil {
		return nil, err
	}
	switch r := obj.(type) {
	case *gwv1.HTTPRoute:
		return fromHTTPRoute(r), nil
	case *gwv1.GRPCRoute:
		return fromGRPCRoute(r), nil
	case *gwv1.TLSRoute:
		return fromStreamRoute(kind, r, r.Spec.Hostnames, r.Status.Parents, rulesBackends(r.Spec.Rules, func(x gwv1.TLSRouteRule) []gwv1.BackendRef { return x.BackendRefs })), nil
	case *gwv1.TCPRoute:
		return fromStreamRoute(kind, r, nil, r.Status.Parents, rulesBackends(r.Spec.Rules, func(x gwv1.TCPRouteRule) []gwv1.BackendRef { return x.BackendRefs })), nil
	case *gwv1.UDPRoute:
		return fromStreamRoute(kind, r, nil, r.Status.Parents, rulesBackends(r.Spec.Rules, func(x gwv1.UDPRouteRule) []gwv1.BackendRef { return x.BackendRefs })), nil
	}
	return nil, unknownKind(kind)
}

// fromStreamRoute reads a TLSRoute, TCPRoute or UDPRoute: no filters,
// and each rule's backendRefs (rules[i]) as they are.
func fromStreamRoute(kind string, r client.Object, hostnames []gwv1.Hostname, parents []gwv1.RouteParentStatus, rules [][]gwv1.BackendRef) *route {
	_, refs, _ := attach.RouteOf(r)
	out := &route{kind: kind, key: types.NamespacedName{Namespace: r.GetNamespace(), Name: r.GetName()}, generation: r.GetGeneration(),
		parentRefs: refs, hostnames: attach.Lower(hostnames), parents: parents}
	for i, rule := range rules {
		for j, b := range rule {
			out.backends = append(out.backends, backendRef{path: fmt.Sprintf("spec.rules[%d].backendRefs[%d]", i, j), ref: b.BackendObjectReference})
		}
	}
	return out
}

// rulesBackends lists each rule's backendRefs.
func rulesBackends[R any](rules []R, refs func(R) []gwv1.BackendRef) [][]gwv1.BackendRef {
	out := make([][]gwv1.BackendRef, len(rules))
	for i, r := range rules {
		out[i] = refs(r)
	}
	return out
}

func fromHTTPRoute(r *gwv1.HTTPRoute) *route {
	out := &route{kind: KindHTTPRoute, key: types.NamespacedName{Namespace: r.Namespace, Name: r.Name}, generation: r.Generation,
		parentRefs: r.Spec.ParentRefs, hostnames: attach.Lower(r.Spec.Hostnames), parents: r.Status.Parents}
	for i, rule := range r.Spec.Rules {
		for j, f := range rule.Filters {
			out.filters = append(out.filters, fmt.Sprintf("spec.rules[%d].filters[%d] (%s)", i, j, f.Type))
		}
		for j, b := range rule.BackendRefs {
			path := fmt.Sprintf("spec.rules[%d].backendRefs[%d]", i, j)
			out.backends = append(out.backends, backendRef{path: path, ref: b.BackendObjectReference})
			for k, f := range b.Filters {
				out.filters = append(out.filters, fmt.Sprintf("%s.filters[%d] (%s)", path, k, f.Type))
			}
		}
	}
	return out
}

func fromGRPCRoute(r *gwv1.GRPCRoute) *route {
	out := &route{kind: KindGRPCRoute, key: types.NamespacedName{Namespace: r.Namespace, Name: r.Name}, generation: r.Generation,
		parentRefs: r.Spec.ParentRefs, hostnames: attach.Lower(r.Spec.Hostnames), parents: r.Status.Parents}
	for i, rule := range r.Spec.Rules {
		for j, f := range rule.Filters {
			out.filters = append(out.filters, fmt.Sprintf("spec.rules[%d].filters[%d] (%s)", i, j, f.Type))
		}
		for j, b := range rule.BackendRefs {
			path := fmt.Sprintf("spec.rules[%d].backendRefs[%d]", i, j)
			out.backends = append(out.backends, backendRef{path: path, ref: b.BackendObjectReference})
			for k, f := range b.Filters {
				out.filters = append(out.filters, fmt.Sprintf("%s.filters[%d] (%s)", path, k, f.Type))
			}
		}
	}
	return out
}

// failedShare says what becomes of the share of traffic meant for a
// backendRef that does not resolve.
func (r *route) failedShare() string {
	if attach.Stream(r.kind) {
		return "connections meant for them are closed at once"
	}
	return "requests meant for them fail with HTTP 500"
}

// attachRoute is the route as package attach sees it.
func (r *route) attachRoute() attach.Route {
	return attach.Route{Kind: r.kind, Namespace: r.key.Namespace, Hostnames: r.hostnames}
}

// parentKey is a parentRef with its defaults filled in, for comparing a
// spec entry with a status entry.
type parentKey struct {
	group, kind, namespace, name, section string
	port                                  int32
}

func keyOf(routeNS string, p gwv1.ParentReference) parentKey {
	k := parentKey{group: gwv1.GroupName, kind: "Gateway", namespace: routeNS, name: string(p.Name)}
	if p.Group != nil {
		k.group = string(*p.Group)
	}
	if p.Kind != nil {
		k.kind = string(*p.Kind)
	}
	if p.Namespace != nil && *p.Namespace != "" {
		k.namespace = string(*p.Namespace)
	}
	if p.SectionName != nil {
		k.section = string(*p.SectionName)
	}
	if p.Port != nil {
		k.port = *p.Port
	}
	return k
}

// ours reports whether Gatehouse handles parents of this group and kind.
func (k parentKey) ours() bool {
	return k.group == gwv1.GroupName && (k.kind == "Gateway" || k.kind == "ListenerSet")
}

func (k parentKey) object() types.NamespacedName {
	return types.NamespacedName{Namespace: k.namespace, Name: k.name}
}

// String names the parent as a person writes it: "Gateway infra/shared
// listener http port 8080".
func (k parentKey) String() string {
	s := k.kind + " " + k.namespace + "/" + k.name
	if k.group != gwv1.GroupName {
		s = k.kind + "." + k.group + " " + k.namespace + "/" + k.name
	}
	if k.section != "" {
		s += " listener " + k.section
	}
	if k.port != 0 {
		s += fmt.Sprintf(" port %d", k.port)
	}
	return s
}
