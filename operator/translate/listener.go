package translate

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const (
	kindHTTPRoute = "HTTPRoute"
	kindGRPCRoute = "GRPCRoute"
)

// listener is one listener of a Gateway or of a ListenerSet attached to it.
type listener struct {
	gw       *gateway
	set      *listenerSet // nil for the Gateway's own listeners
	name     gwv1.SectionName
	port     int32
	protocol gwv1.ProtocolType
	hostname string // "" for any
	tls      *gwv1.ListenerTLSConfig

	from     gwv1.FromNamespaces
	selector labels.Selector
	kinds    []gwv1.RouteGroupKind // the supported ones among those asked for

	// problems found while validating; empty when the listener is fine.
	unsupported  string // Accepted=False UnsupportedProtocol
	reserved     string // Accepted=False PortUnavailable: the proxies bind this port themselves
	invalidKinds string // ResolvedRefs=False InvalidRouteKinds
	certReason   gwv1.ListenerConditionReason
	certMessage  string
	conflict     gwv1.ListenerConditionReason
	conflictWith string
	certificates []string

	conds    conditions
	attached int32
	// routes attached to this listener, with their intersected hostnames.
	routes []*attachment
}

func (t *translator) newListener(gw *gateway, ls *listenerSet, name gwv1.SectionName, port gwv1.PortNumber, protocol gwv1.ProtocolType,
	hostname *gwv1.Hostname, tls *gwv1.ListenerTLSConfig, allowed *gwv1.AllowedRoutes) *listener {
	l := &listener{gw: gw, set: ls, name: name, port: port, protocol: protocol, tls: tls, from: gwv1.NamespacesFromSame}
	if hostname != nil {
		l.hostname = strings.ToLower(string(*hostname))
	}
	if allowed != nil && allowed.Namespaces != nil && allowed.Namespaces.From != nil {
		l.from = *allowed.Namespaces.From
		if l.from == gwv1.NamespacesFromSelector {
			l.selector = selectorFor(allowed.Namespaces.Selector)
		}
	}
	var asked []gwv1.RouteGroupKind
	if allowed != nil {
		asked = allowed.Kinds
	}
	switch protocol {
	case gwv1.HTTPProtocolType, gwv1.HTTPSProtocolType:
	default:
		l.unsupported = fmt.Sprintf("protocol %q is not supported: Gatehouse serves HTTP and HTTPS listeners", protocol)
		if len(asked) > 0 {
			l.invalidKinds = fmt.Sprintf("no route kind can attach to a %s listener in Gatehouse", protocol)
		}
		return l
	}
	l.kinds, l.invalidKinds = supportedKinds(asked)
	l.reserved = t.out.Parameters[string(gw.obj.Spec.GatewayClassName)].reservedPort(port)
	if protocol == gwv1.HTTPSProtocolType && tls != nil && tls.Mode != nil && *tls.Mode != gwv1.TLSModeTerminate {
		l.unsupported = fmt.Sprintf("TLS mode %q is not supported on an HTTPS listener: use Terminate", *tls.Mode)
	}
	return l
}

// supportedKinds keeps the route kinds a HTTP or HTTPS listener can serve and
// describes the ones it cannot. No kinds asked means all supported kinds.
func supportedKinds(asked []gwv1.RouteGroupKind) ([]gwv1.RouteGroupKind, string) {
	group := gwv1.Group(gwv1.GroupName)
	if len(asked) == 0 {
		return []gwv1.RouteGroupKind{{Group: &group, Kind: kindHTTPRoute}, {Group: &group, Kind: kindGRPCRoute}}, ""
	}
	var ok []gwv1.RouteGroupKind
	var bad []string
	for _, k := range asked {
		g := gwv1.GroupName
		if k.Group != nil {
			g = string(*k.Group)
		}
		if g == gwv1.GroupName && (k.Kind == kindHTTPRoute || k.Kind == kindGRPCRoute) {
			ok = append(ok, gwv1.RouteGroupKind{Group: &group, Kind: k.Kind})
			continue
		}
		bad = append(bad, fmt.Sprintf("%s/%s", g, k.Kind))
	}
	if len(bad) == 0 {
		return ok, ""
	}
	return ok, fmt.Sprintf("route kinds %s are not supported on this listener: use HTTPRoute or GRPCRoute", strings.Join(bad, ", "))
}

// listenerCertificates resolves an HTTPS listener's certificates, once
// conflicts are settled. Only a listener that will be served (accepted, of
// an accepted Gateway) asks the issuing source: issuing is an effect, a
// Certificate on the hub and a key pair in the proxies, and a listener that
// lost a conflict must not get a key for a hostname another one serves.
// Other listeners still have their certificateRefs checked, for status.
func (t *translator) listenerCertificates(l *listener) {
	if l.protocol != gwv1.HTTPSProtocolType {
		return
	}
	if served := l.accepted() && l.gw.accepted; !served && (l.tls == nil || len(l.tls.CertificateRefs) == 0) {
		return
	}
	req := ListenerCertificateRequest{Gateway: l.gw.obj, Listener: l.name, Hostname: l.hostname, TLS: l.tls, Parameters: t.out.Parameters[string(l.gw.obj.Spec.GatewayClassName)]}
	if l.set != nil {
		req.ListenerSet = l.set.obj
	}
	res := t.certs.ListenerCertificates(req)
	l.certificates = res.KeyPairs
	l.certReason, l.certMessage = res.Reason, res.Message
}

// settleConflicts marks listeners that share a port in a way that cannot be
// told apart: different protocols, or the same hostname. Within one Gateway or
// one ListenerSet no listener wins: all indistinct ones are conflicted. Across
// them, precedence decides: the Gateway's own listeners, then ListenerSets
// oldest first; only the later listener is conflicted.
func settleConflicts(ls []*listener) {
	lost := map[*listener]bool{} // conflicted by a listener of higher precedence
	for i, l := range ls {
		for _, prev := range ls[:i] {
			if lost[prev] || prev.port != l.port {
				continue
			}
			reason := gwv1.ListenerConditionReason("")
			switch {
			case prev.protocol != l.protocol:
				reason = gwv1.ListenerReasonProtocolConflict
			case prev.hostname == l.hostname:
				reason = gwv1.ListenerReasonHostnameConflict
			default:
				continue
			}
			if prev.set == l.set {
				prev.markConflict(reason, l)
				l.markConflict(reason, prev)
				continue
			}
			l.markConflict(reason, prev)
			lost[l] = true
			break
		}
	}
}

func (l *listener) markConflict(reason gwv1.ListenerConditionReason, with *listener) {
	if l.conflict != "" {
		return
	}
	l.conflict = reason
	switch reason {
	case gwv1.ListenerReasonProtocolConflict:
		l.conflictWith = fmt.Sprintf("listener %s uses port %d with protocol %s", with.ref(), l.port, with.protocol)
	default:
		host := l.hostname
		if host == "" {
			host = "any hostname"
		}
		l.conflictWith = fmt.Sprintf("listener %s also serves %s on port %d", with.ref(), host, l.port)
	}
}

// ref names the listener for messages.
func (l *listener) ref() string {
	if l.set != nil {
		return fmt.Sprintf("%q of ListenerSet %s", l.name, l.set.key)
	}
	return fmt.Sprintf("%q", l.name)
}

// accepted reports whether routes may attach: the listener is supported and
// distinct. Its references may still be broken.
func (l *listener) accepted() bool {
	return l.unsupported == "" && l.conflict == "" && l.reserved == ""
}

// usable reports whether the listener is served: accepted, with its
// certificates resolved.
func (l *listener) usable() bool {
	return l.accepted() && l.certReason == ""
}

// finish computes the listener's conditions once conflicts are settled.
func (l *listener) finish() {
	gen := l.gw.obj.Generation
	if l.set != nil {
		gen = l.set.obj.Generation
	}
	accepted, conflicted := string(gwv1.ListenerConditionAccepted), string(gwv1.ListenerConditionConflicted)
	resolved, programmed := string(gwv1.ListenerConditionResolvedRefs), string(gwv1.ListenerConditionProgrammed)
	switch {
	case l.reserved != "":
		l.conds.set(accepted, false, string(ReasonPortReserved), l.reserved, gen)
	case l.conflict != "":
		l.conds.set(accepted, false, string(l.conflict), l.conflictWith+": change the port or hostname", gen)
	case l.unsupported != "":
		l.conds.set(accepted, false, string(gwv1.ListenerReasonUnsupportedProtocol), l.unsupported, gen)
	default:
		l.conds.set(accepted, true, string(gwv1.ListenerReasonAccepted), "listener is accepted", gen)
	}
	if l.conflict != "" {
		l.conds.set(conflicted, true, string(l.conflict), l.conflictWith+": change the port or hostname", gen)
	} else {
		l.conds.set(conflicted, false, string(gwv1.ListenerReasonNoConflicts), "no conflicts", gen)
	}
	switch {
	case l.certReason != "":
		l.conds.set(resolved, false, string(l.certReason), l.certMessage, gen)
	case l.invalidKinds != "":
		l.conds.set(resolved, false, string(gwv1.ListenerReasonInvalidRouteKinds), l.invalidKinds, gen)
	default:
		l.conds.set(resolved, true, string(gwv1.ListenerReasonResolvedRefs), "all references resolved", gen)
	}
	switch {
	case l.usable():
		l.conds.set(programmed, true, string(gwv1.ListenerReasonProgrammed), "listener is in the route table", gen)
	case l.conflict != "":
		l.conds.set(programmed, false, string(l.conflict), "listener is conflicted and not served", gen)
	default:
		l.conds.set(programmed, false, string(gwv1.ListenerReasonInvalid), "listener is not served: see its other conditions", gen)
	}
}

func (l *listener) status() gwv1.ListenerStatus {
	kinds := l.kinds
	if l.unsupported != "" {
		kinds = []gwv1.RouteGroupKind{}
	}
	return gwv1.ListenerStatus{
		Name:           l.name,
		SupportedKinds: kinds,
		AttachedRoutes: l.attached,
		Conditions:     l.conds,
	}
}

// allowsNamespace applies allowedRoutes.namespaces to a route's namespace.
func (l *listener) allowsNamespace(t *translator, ns string) bool {
	owner := l.gw.obj.Namespace
	if l.set != nil {
		owner = l.set.obj.Namespace
	}
	switch l.from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return ns == owner
	case gwv1.NamespacesFromSelector:
		return l.selector != nil && l.selector.Matches(t.namespaceLabels(ns))
	}
	return false
}

func (l *listener) allowsKind(kind string) bool {
	for _, k := range l.kinds {
		if string(k.Kind) == kind {
			return true
		}
	}
	return false
}
