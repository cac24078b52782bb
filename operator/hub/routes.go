package hub

import (
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// routeSet is one kind of route of a pass, with what the hub does with
// every kind alike: decide, count and write status.parents.
type routeSet struct {
	kind   string
	routes []client.Object
	// ours are translate's entries of each route's status.parents.
	ours map[types.NamespacedName][]gwv1.RouteParentStatus
	// parents are a route's stored status.parents; setParents replaces
	// them in the object given.
	parents    func(client.Object) []gwv1.RouteParentStatus
	setParents func(client.Object, []gwv1.RouteParentStatus)
}

func newRouteSet[R client.Object](kind string, routes []R, ours map[types.NamespacedName][]gwv1.RouteParentStatus, parents func(R) *[]gwv1.RouteParentStatus) routeSet {
	return routeSet{
		kind: kind, routes: objects(routes), ours: ours,
		parents:    func(o client.Object) []gwv1.RouteParentStatus { return *parents(o.(R)) },
		setParents: func(o client.Object, next []gwv1.RouteParentStatus) { *parents(o.(R)) = next },
	}
}

// withParents is a copy of route r of the set, carrying parents.
func (s routeSet) withParents(r client.Object, parents []gwv1.RouteParentStatus) client.Object {
	c := r.DeepCopyObject().(client.Object)
	s.setParents(c, parents)
	return c
}

// routeSets are the routes of every kind of a pass's input, with their
// statuses in its output (none before translation).
func routeSets(in translate.Input, out translate.Output) []routeSet {
	return []routeSet{
		newRouteSet("HTTPRoute", in.HTTPRoutes, out.HTTPRoutes, func(r *gwv1.HTTPRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }),
		newRouteSet("GRPCRoute", in.GRPCRoutes, out.GRPCRoutes, func(r *gwv1.GRPCRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }),
		newRouteSet("TLSRoute", in.TLSRoutes, out.TLSRoutes, func(r *gwv1.TLSRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }),
		newRouteSet("TCPRoute", in.TCPRoutes, out.TCPRoutes, func(r *gwv1.TCPRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }),
		newRouteSet("UDPRoute", in.UDPRoutes, out.UDPRoutes, func(r *gwv1.UDPRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }),
	}
}

// objects is xs as client.Objects.
func objects[T client.Object](xs []T) []client.Object {
	out := make([]client.Object, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
