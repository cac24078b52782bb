package admission

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
	"github.com/gatehouse-dev/gatehouse/policy"
)

// Attachments lists the listeners of our Gateways that a route's parentRefs
// select and that the Gateway API lets it attach to (package attach, which
// translate asks too), with the hostnames it would serve on each: what
// status asks the Decider about, so that admission and status decide alike.
// Listener acceptance comes from the status the hub wrote. A ListenerSet's
// parent Gateway is its one attachment. Parents that do not exist yet are
// skipped: status will decide once they do.
func Attachments(ctx context.Context, r client.Reader, controller gwv1.GatewayController, obj client.Object, nsLabels map[string]string) []policy.Attachment {
	if ls, ok := obj.(*gwv1.ListenerSet); ok {
		gw := listenerSetParent(ctx, r, controller, ls)
		if gw == nil {
			return nil
		}
		return []policy.Attachment{{Gateway: gw, Path: field.NewPath("spec", "parentRef")}}
	}
	route, parents, ok := attach.RouteOf(obj)
	if !ok {
		return nil
	}
	var out []policy.Attachment
	for i, p := range parents {
		gw, listeners := parentListeners(ctx, r, controller, obj.GetNamespace(), p)
		if gw == nil {
			continue
		}
		path := field.NewPath("spec", "parentRefs").Index(i)
		for _, c := range attach.Attach(route, p, listeners, nsLabels).Taking() {
			out = append(out, policy.Attachment{Gateway: gw, Listener: c.Listener.Name, Hostnames: c.Hostnames, Path: path})
		}
	}
	return out
}

// parentListeners reads the Gateway a parentRef leads to, when its class is
// ours, and the listeners the parentRef chooses among: the Gateway's, or
// those of a ListenerSet its Gateway accepts.
func parentListeners(ctx context.Context, r client.Reader, controller gwv1.GatewayController, routeNS string, p gwv1.ParentReference) (*gwv1.Gateway, []*attach.Listener) {
	if p.Group != nil && *p.Group != gwv1.GroupName {
		return nil, nil
	}
	key := types.NamespacedName{Namespace: routeNS, Name: string(p.Name)}
	if p.Namespace != nil && *p.Namespace != "" {
		key.Namespace = string(*p.Namespace)
	}
	switch {
	case p.Kind == nil || *p.Kind == "Gateway":
		gw := ourGateway(ctx, r, controller, key)
		if gw == nil {
			return nil, nil
		}
		return gw, attach.GatewayListeners(gw)
	case *p.Kind == "ListenerSet":
		var ls gwv1.ListenerSet
		if r.Get(ctx, key, &ls) != nil {
			return nil, nil
		}
		gw := listenerSetParent(ctx, r, controller, &ls)
		if gw == nil {
			return nil, nil
		}
		return gw, attach.ListenerSetListeners(&ls)
	}
	return nil, nil
}

// listenerSetParent returns a ListenerSet's Gateway when its class is ours.
func listenerSetParent(ctx context.Context, r client.Reader, controller gwv1.GatewayController, ls *gwv1.ListenerSet) *gwv1.Gateway {
	p := ls.Spec.ParentRef
	if (p.Group != nil && *p.Group != gwv1.GroupName) || (p.Kind != nil && *p.Kind != "Gateway") {
		return nil
	}
	key := types.NamespacedName{Namespace: ls.Namespace, Name: string(p.Name)}
	if p.Namespace != nil && *p.Namespace != "" {
		key.Namespace = string(*p.Namespace)
	}
	return ourGateway(ctx, r, controller, key)
}

// ourGateway returns the Gateway when its class is ours.
func ourGateway(ctx context.Context, r client.Reader, controller gwv1.GatewayController, key types.NamespacedName) *gwv1.Gateway {
	var gw gwv1.Gateway
	if r.Get(ctx, key, &gw) != nil {
		return nil
	}
	var gc gwv1.GatewayClass
	if r.Get(ctx, types.NamespacedName{Name: string(gw.Spec.GatewayClassName)}, &gc) != nil || gc.Spec.ControllerName != controller {
		return nil
	}
	return &gw
}
