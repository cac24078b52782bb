package admission

import (
	"context"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/hostnames"
	"github.com/gatehouse-dev/gatehouse/policy"
)

// attachments lists the listeners of our Gateways that a route's parentRefs
// select and that Gateway API lets it attach to, with the hostnames it
// would serve on each — what translate asks the Decider about, so that
// admission and status decide alike. A ListenerSet's parent Gateway is its
// one attachment. Parents that do not exist yet are skipped: status will
// decide once they do.
func attachments(ctx context.Context, r client.Reader, controller gwv1.GatewayController, obj client.Object, nsLabels map[string]string) []policy.Attachment {
	var parents []gwv1.ParentReference
	var own []string
	kind := ""
	switch o := obj.(type) {
	case *gwv1.HTTPRoute:
		parents, own, kind = o.Spec.ParentRefs, names(o.Spec.Hostnames), "HTTPRoute"
	case *gwv1.GRPCRoute:
		parents, own, kind = o.Spec.ParentRefs, names(o.Spec.Hostnames), "GRPCRoute"
	case *gwv1.ListenerSet:
		p := o.Spec.ParentRef
		if (p.Group != nil && *p.Group != gwv1.GroupName) || (p.Kind != nil && *p.Kind != "Gateway") {
			return nil
		}
		ns := o.Namespace
		if p.Namespace != nil && *p.Namespace != "" {
			ns = string(*p.Namespace)
		}
		gw := ourGateway(ctx, r, controller, types.NamespacedName{Namespace: ns, Name: string(p.Name)})
		if gw == nil {
			return nil
		}
		return []policy.Attachment{{Gateway: gw, Path: field.NewPath("spec", "parentRef")}}
	}
	var out []policy.Attachment
	for i, p := range parents {
		path := field.NewPath("spec", "parentRefs").Index(i)
		if p.Group != nil && *p.Group != gwv1.GroupName {
			continue
		}
		ns := obj.GetNamespace()
		if p.Namespace != nil && *p.Namespace != "" {
			ns = string(*p.Namespace)
		}
		key := types.NamespacedName{Namespace: ns, Name: string(p.Name)}
		var gw *gwv1.Gateway
		var listeners []listener
		switch {
		case p.Kind == nil || *p.Kind == "Gateway":
			if gw = ourGateway(ctx, r, controller, key); gw == nil {
				continue
			}
			for _, l := range gw.Spec.Listeners {
				listeners = append(listeners, listener{l.Name, l.Port, l.Hostname, l.AllowedRoutes, gw.Namespace})
			}
		case *p.Kind == "ListenerSet":
			var ls gwv1.ListenerSet
			if r.Get(ctx, key, &ls) != nil {
				continue
			}
			pns := ls.Namespace
			if ls.Spec.ParentRef.Namespace != nil && *ls.Spec.ParentRef.Namespace != "" {
				pns = string(*ls.Spec.ParentRef.Namespace)
			}
			if gw = ourGateway(ctx, r, controller, types.NamespacedName{Namespace: pns, Name: string(ls.Spec.ParentRef.Name)}); gw == nil {
				continue
			}
			for _, l := range ls.Spec.Listeners {
				listeners = append(listeners, listener{l.Name, l.Port, l.Hostname, l.AllowedRoutes, ls.Namespace})
			}
		default:
			continue
		}
		for _, l := range listeners {
			if p.SectionName != nil && *p.SectionName != l.name || p.Port != nil && *p.Port != l.port {
				continue
			}
			if !l.admits(kind, obj.GetNamespace(), nsLabels) {
				continue
			}
			lh := ""
			if l.hostname != nil {
				lh = string(*l.hostname)
			}
			if hosts := hostnames.Intersect(lh, own); len(hosts) > 0 {
				out = append(out, policy.Attachment{Gateway: gw, Listener: l.name, Hostnames: hosts, Path: path})
			}
		}
	}
	return out
}

type listener struct {
	name     gwv1.SectionName
	port     gwv1.PortNumber
	hostname *gwv1.Hostname
	allowed  *gwv1.AllowedRoutes
	// namespace the listener is declared in ("Same" refers to it).
	namespace string
}

// admits applies the listener's allowedRoutes to a route.
func (l listener) admits(kind, ns string, nsLabels map[string]string) bool {
	if l.allowed == nil {
		return ns == l.namespace
	}
	if len(l.allowed.Kinds) > 0 && !slices.ContainsFunc(l.allowed.Kinds, func(k gwv1.RouteGroupKind) bool {
		return string(k.Kind) == kind && (k.Group == nil || *k.Group == gwv1.GroupName)
	}) {
		return false
	}
	from := gwv1.NamespacesFromSame
	if l.allowed.Namespaces != nil && l.allowed.Namespaces.From != nil {
		from = *l.allowed.Namespaces.From
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSelector:
		if l.allowed.Namespaces.Selector == nil {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(l.allowed.Namespaces.Selector)
		return err == nil && sel.Matches(labels.Set(nsLabels))
	case gwv1.NamespacesFromNone:
		return false
	}
	return ns == l.namespace
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

func names(hs []gwv1.Hostname) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = string(h)
	}
	return out
}
