// Package attach is the Gateway API's attachment arithmetic: which
// listeners a route's parentRef selects, which of those take the route
// (protocol, allowedRoutes kinds and namespaces, hostnames), and why not.
// Translate's status, the admission webhook and `gatehousectl explain` all
// ask it, so that they cannot disagree.
package attach

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Route kinds, and the listener protocols that serve them.
const (
	KindHTTPRoute = "HTTPRoute"
	KindGRPCRoute = "GRPCRoute"
	KindTLSRoute  = "TLSRoute"
	KindTCPRoute  = "TCPRoute"
	KindUDPRoute  = "UDPRoute"
)

// protocolKinds are the route kinds each listener protocol Gatehouse
// serves takes, in the order supportedKinds lists them.
var protocolKinds = map[gwv1.ProtocolType][]string{
	gwv1.HTTPProtocolType:  {KindHTTPRoute, KindGRPCRoute},
	gwv1.HTTPSProtocolType: {KindHTTPRoute, KindGRPCRoute},
	gwv1.TLSProtocolType:   {KindTLSRoute},
	gwv1.TCPProtocolType:   {KindTCPRoute},
	gwv1.UDPProtocolType:   {KindUDPRoute},
}

// Stream reports whether routes of kind carry connections rather than
// requests: they have no hostnames of their own, except TLSRoute's SNI.
func Stream(kind string) bool {
	return kind == KindTLSRoute || kind == KindTCPRoute || kind == KindUDPRoute
}

// Listener is one listener of a Gateway or of a ListenerSet, compiled once
// for every route that asks about it. Build it with NewListener.
type Listener struct {
	Name     gwv1.SectionName
	Port     gwv1.PortNumber
	Protocol gwv1.ProtocolType
	// Hostname is lower case; "" accepts any.
	Hostname string
	// Namespace is the namespace the listener is declared in, the one
	// allowedRoutes "Same" means; Owner names its Gateway or ListenerSet
	// in messages ("Gateway infra/shared").
	Namespace string
	Owner     string

	// Allowed is allowedRoutes as written, for messages.
	Allowed *gwv1.AllowedRoutes

	// Kinds are the route kinds the listener takes: those asked for that
	// its protocol serves, or all of them when none is asked for.
	Kinds []gwv1.RouteGroupKind
	// InvalidKinds describes the kinds asked for that it cannot take
	// (ResolvedRefs=False InvalidRouteKinds); "" when there are none.
	InvalidKinds string
	// Unsupported says why the listener's protocol or TLS mode is not
	// served (Accepted=False UnsupportedProtocol); "" when it is.
	Unsupported string
	// From and Selector are allowedRoutes.namespaces compiled;
	// InvalidNamespaces says what is wrong with it, "" when nothing is.
	From              gwv1.FromNamespaces
	Selector          labels.Selector
	InvalidNamespaces string
	// NotAccepted says why the listener takes no route for a reason its
	// spec alone does not show (a conflict, a reserved port), as its
	// Accepted condition says; the caller sets it.
	NotAccepted string
}

// NewListener compiles a listener's spec.
func NewListener(owner, namespace string, name gwv1.SectionName, port gwv1.PortNumber, protocol gwv1.ProtocolType,
	hostname *gwv1.Hostname, tls *gwv1.ListenerTLSConfig, allowed *gwv1.AllowedRoutes) *Listener {
	l := &Listener{Name: name, Port: port, Protocol: protocol, Owner: owner, Namespace: namespace, Allowed: allowed, From: gwv1.NamespacesFromSame}
	if hostname != nil {
		l.Hostname = strings.ToLower(string(*hostname))
	}
	l.compileNamespaces(allowed)
	var asked []gwv1.RouteGroupKind
	if allowed != nil {
		asked = allowed.Kinds
	}
	kinds, ok := protocolKinds[protocol]
	if !ok {
		l.Unsupported = fmt.Sprintf("protocol %q is not supported: Gatehouse serves HTTP, HTTPS, TLS, TCP and UDP listeners", protocol)
		if len(asked) > 0 {
			l.InvalidKinds = fmt.Sprintf("no route kind can attach to a %s listener in Gatehouse", protocol)
		}
		return l
	}
	l.Kinds, l.InvalidKinds = supportedKinds(asked, kinds)
	if protocol == gwv1.HTTPSProtocolType && tls != nil && tls.Mode != nil && *tls.Mode != gwv1.TLSModeTerminate {
		l.Unsupported = fmt.Sprintf("TLS mode %q is not supported on an HTTPS listener: use Terminate, or protocol TLS for TLSRoutes", *tls.Mode)
	}
	return l
}

// compileNamespaces reads allowedRoutes.namespaces. The API server's schema
// does not require a selector with from: Selector, nor check that one
// parses; such a listener is invalid rather than silently closed.
func (l *Listener) compileNamespaces(allowed *gwv1.AllowedRoutes) {
	if allowed == nil || allowed.Namespaces == nil || allowed.Namespaces.From == nil {
		return
	}
	l.From = *allowed.Namespaces.From
	if l.From != gwv1.NamespacesFromSelector {
		return
	}
	sel := allowed.Namespaces.Selector
	if sel == nil {
		l.InvalidNamespaces = "allowedRoutes.namespaces.from is Selector but allowedRoutes.namespaces.selector is not set: set a selector, or use from: Same or All"
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		l.InvalidNamespaces = fmt.Sprintf("allowedRoutes.namespaces.selector is invalid: %v", err)
		return
	}
	l.Selector = s
}

// supportedKinds keeps the route kinds asked for that the listener's
// protocol serves (served) and describes the ones it cannot. No kinds asked
// means all it serves.
func supportedKinds(asked []gwv1.RouteGroupKind, served []string) ([]gwv1.RouteGroupKind, string) {
	group := gwv1.Group(gwv1.GroupName)
	if len(asked) == 0 {
		out := make([]gwv1.RouteGroupKind, len(served))
		for i, k := range served {
			out[i] = gwv1.RouteGroupKind{Group: &group, Kind: gwv1.Kind(k)}
		}
		return out, ""
	}
	var ok []gwv1.RouteGroupKind
	var bad []string
	for _, k := range asked {
		g := gwv1.GroupName
		if k.Group != nil && *k.Group != "" {
			g = string(*k.Group)
		}
		if g == gwv1.GroupName && slices.Contains(served, string(k.Kind)) {
			ok = append(ok, gwv1.RouteGroupKind{Group: &group, Kind: k.Kind})
			continue
		}
		bad = append(bad, fmt.Sprintf("%s/%s", g, k.Kind))
	}
	if len(bad) == 0 {
		return ok, ""
	}
	return ok, fmt.Sprintf("route kinds %s are not supported on this listener: use %s", strings.Join(bad, ", "), strings.Join(served, " or "))
}

// Accepted reports whether routes may attach to the listener at all.
func (l *Listener) Accepted() bool {
	return l.Unsupported == "" && l.InvalidNamespaces == "" && l.NotAccepted == ""
}

// Refusal says why the listener does not accept routes; "" when it does.
func (l *Listener) Refusal() string {
	switch {
	case l.NotAccepted != "":
		return l.NotAccepted
	case l.Unsupported != "":
		return l.Unsupported
	}
	return l.InvalidNamespaces
}

// AllowsKind reports whether the listener takes routes of kind.
func (l *Listener) AllowsKind(kind string) bool {
	for _, k := range l.Kinds {
		if string(k.Kind) == kind {
			return true
		}
	}
	return false
}

// AllowsNamespace applies allowedRoutes.namespaces to a route's namespace,
// whose labels are nsLabels.
func (l *Listener) AllowsNamespace(ns string, nsLabels map[string]string) bool {
	switch l.From {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return ns == l.Namespace
	case gwv1.NamespacesFromSelector:
		return l.Selector != nil && l.Selector.Matches(labels.Set(nsLabels))
	}
	return false
}

// Ref names the listener in messages: `"http"`, or `"http" of ListenerSet
// ns/name` for a ListenerSet's.
func (l *Listener) Ref() string {
	if strings.HasPrefix(l.Owner, "ListenerSet ") {
		return fmt.Sprintf("%q of %s", l.Name, l.Owner)
	}
	return fmt.Sprintf("%q", l.Name)
}

// String describes the listener for people: `"http" (port 80, HTTP, any hostname)`.
func (l *Listener) String() string {
	h := l.Hostname
	if h == "" {
		h = "any hostname"
	}
	return fmt.Sprintf("%q (port %d, %s, %s)", l.Name, l.Port, l.Protocol, h)
}

// GatewayListeners compiles a Gateway's listeners as a reader of the
// cluster sees them: NotAccepted comes from the listener's Accepted
// condition, when the status describes the Gateway's current generation.
// None takes a route while the Gateway itself is not accepted.
func GatewayListeners(gw *gwv1.Gateway) []*Listener {
	owner := "Gateway " + gw.Namespace + "/" + gw.Name
	refused := ""
	if c := meta.FindStatusCondition(gw.Status.Conditions, string(gwv1.GatewayConditionAccepted)); c != nil && c.Status == metav1.ConditionFalse && c.ObservedGeneration == gw.Generation {
		refused = fmt.Sprintf("%s is not accepted (%s): %s", owner, c.Reason, c.Message)
	}
	out := make([]*Listener, 0, len(gw.Spec.Listeners))
	for _, s := range gw.Spec.Listeners {
		l := NewListener(owner, gw.Namespace, s.Name, s.Port, s.Protocol, s.Hostname, s.TLS, s.AllowedRoutes)
		l.NotAccepted = cmp.Or(refused, notAccepted(gw.Generation, s.Name, gw.Status.Listeners))
		out = append(out, l)
	}
	return out
}

// ListenerSetListeners is GatewayListeners for a ListenerSet's listeners.
// None takes a route while the ListenerSet's Gateway does not take it.
func ListenerSetListeners(ls *gwv1.ListenerSet) []*Listener {
	refused := ListenerSetAccepted(ls)
	owner := "ListenerSet " + ls.Namespace + "/" + ls.Name
	status := make([]gwv1.ListenerStatus, len(ls.Status.Listeners))
	for i, s := range ls.Status.Listeners {
		status[i] = gwv1.ListenerStatus{Name: s.Name, Conditions: s.Conditions}
	}
	out := make([]*Listener, 0, len(ls.Spec.Listeners))
	for _, s := range ls.Spec.Listeners {
		l := NewListener(owner, ls.Namespace, s.Name, s.Port, s.Protocol, s.Hostname, s.TLS, s.AllowedRoutes)
		l.NotAccepted = notAccepted(ls.Generation, s.Name, status)
		l.NotAccepted = cmp.Or(refused, l.NotAccepted)
		out = append(out, l)
	}
	return out
}

// ListenerSetAccepted says why a ListenerSet's Gateway does not take it, as
// its Accepted condition at its current generation says; "" when it does
// or when no status says otherwise yet.
func ListenerSetAccepted(ls *gwv1.ListenerSet) string {
	c := meta.FindStatusCondition(ls.Status.Conditions, string(gwv1.ListenerSetConditionAccepted))
	if c == nil || c.Status != metav1.ConditionFalse || c.ObservedGeneration != ls.Generation {
		return ""
	}
	return fmt.Sprintf("ListenerSet %s/%s is not accepted by its Gateway (%s): %s", ls.Namespace, ls.Name, c.Reason, c.Message)
}

func notAccepted(generation int64, name gwv1.SectionName, status []gwv1.ListenerStatus) string {
	for _, s := range status {
		if s.Name != name {
			continue
		}
		c := meta.FindStatusCondition(s.Conditions, string(gwv1.ListenerConditionAccepted))
		if c == nil || c.Status != metav1.ConditionFalse || c.ObservedGeneration != generation {
			return ""
		}
		return fmt.Sprintf("%s: %s", c.Reason, c.Message)
	}
	return ""
}
