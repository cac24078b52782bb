package explain

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
)

// Route kinds explain knows.
const (
	KindHTTPRoute = "HTTPRoute"
	KindGRPCRoute = "GRPCRoute"
)

// route is what HTTPRoutes and GRPCRoutes have in common, as explain reads
// them.
type route struct {
	kind       string
	key        types.NamespacedName
	generation int64
	parentRefs []gwv1.ParentReference
	hostnames  []string
	backends   []backendRef
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
	switch kind {
	case KindHTTPRoute:
		var r gwv1.HTTPRoute
		if err := c.Get(ctx, key, &r); err != nil {
			return nil, err
		}
		return fromHTTPRoute(&r), nil
	case KindGRPCRoute:
		var r gwv1.GRPCRoute
		if err := c.Get(ctx, key, &r); err != nil {
			return nil, err
		}
		return fromGRPCRoute(&r), nil
	}
	return nil, fmt.Errorf("unknown route kind %q: use %s or %s", kind, KindHTTPRoute, KindGRPCRoute)
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
