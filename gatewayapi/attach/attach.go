package attach

import (
	"fmt"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/hostnames"
)

// Route is what attachment needs of a route of any kind.
type Route struct {
	Kind      string
	Namespace string
	// Hostnames are spec.hostnames, lower case (TLSRoute: SNI names);
	// TCPRoute and UDPRoute have none.
	Hostnames []string
}

// Step is the first check a selected listener failed, in the order the
// spec applies them.
type Step int

const (
	// Takes: the listener takes the route.
	Takes Step = iota
	// NotAccepted: the listener takes no route (see Listener.Refusal).
	NotAccepted
	// KindNotAllowed: allowedRoutes.kinds (or the protocol) leaves the
	// route's kind out.
	KindNotAllowed
	// NamespaceNotAllowed: allowedRoutes.namespaces leaves the route's
	// namespace out.
	NamespaceNotAllowed
	// NoHostname: no hostname of the route is within the listener's.
	NoHostname
)

// Candidate is one listener a parentRef selects, and what it says of the route.
type Candidate struct {
	Listener *Listener
	Step     Step
	// Hostnames the route serves on the listener (the intersection; "*"
	// for any), set whatever Step is once kind and namespace allow it.
	Hostnames []string
}

// Result is the attachment of a route through one parentRef.
type Result struct {
	// Selected are the listeners the parentRef selects, in listener order.
	Selected []Candidate
	// Reason and Message are the route's Accepted=False condition when no
	// listener takes the route; both "" when one does.
	Reason  gwv1.RouteConditionReason
	Message string
}

// Taking returns the selected listeners that take the route.
func (r Result) Taking() []Candidate {
	var out []Candidate
	for _, c := range r.Selected {
		if c.Step == Takes {
			out = append(out, c)
		}
	}
	return out
}

// Selects reports whether parentRef p's sectionName and port select l.
func Selects(p gwv1.ParentReference, l *Listener) bool {
	return (p.SectionName == nil || *p.SectionName == l.Name) && (p.Port == nil || *p.Port == l.Port)
}

// Attach decides which of a parent's listeners take route r through
// parentRef p; nsLabels are the labels of the route's namespace.
func Attach(r Route, p gwv1.ParentReference, listeners []*Listener, nsLabels map[string]string) Result {
	var res Result
	for _, l := range listeners {
		if Selects(p, l) {
			res.Selected = append(res.Selected, judge(r, l, nsLabels))
		}
	}
	if len(res.Selected) == 0 {
		res.Reason, res.Message = gwv1.RouteReasonNoMatchingParent, noListenerMessage(p)
		return res
	}
	worst := Takes
	for _, c := range res.Selected {
		if c.Step == Takes {
			return res
		}
		worst = max(worst, c.Step)
	}
	if worst == NoHostname {
		var allowed []*Listener
		for _, c := range res.Selected {
			if c.Step == NoHostname {
				allowed = append(allowed, c.Listener)
			}
		}
		res.Reason = gwv1.RouteReasonNoMatchingListenerHostname
		res.Message = fmt.Sprintf("no hostname of the route (%s) matches a listener's hostname (%s)", strings.Join(r.Hostnames, ", "), listenerHostnames(allowed))
		return res
	}
	res.Reason, res.Message = gwv1.RouteReasonNotAllowedByListeners, notAllowedMessage(r, res.Selected)
	return res
}

// judge applies one listener's checks to the route. A listener that is
// not accepted still intersects hostnames when its allowedRoutes take the
// route: the spec counts routes on it (attachedRoutes) accepted or not.
func judge(r Route, l *Listener, nsLabels map[string]string) Candidate {
	c := Candidate{Listener: l}
	kind := l.Unsupported == "" && l.AllowsKind(r.Kind)
	ns := l.InvalidNamespaces == "" && l.AllowsNamespace(r.Namespace, nsLabels)
	switch {
	case !kind || !ns:
	case r.Kind == KindTCPRoute || r.Kind == KindUDPRoute:
		// A TCP or UDP listener's hostname matches nothing: the spec
		// ignores it for protocols without hostnames, and the route
		// takes every connection to the port.
		c.Hostnames = []string{"*"}
	default:
		c.Hostnames = hostnames.Intersect(l.Hostname, r.Hostnames)
	}
	switch {
	case !l.Accepted():
		c.Step = NotAccepted
	case !kind:
		c.Step = KindNotAllowed
	case !ns:
		c.Step = NamespaceNotAllowed
	case len(c.Hostnames) == 0:
		c.Step = NoHostname
	}
	return c
}

// CountsOn reports whether a route accepted through this parentRef counts
// on the listener (status.listeners[].attachedRoutes): it is selected, its
// allowedRoutes take the route and a hostname is in common, whether or not
// the listener is accepted.
func (c Candidate) CountsOn() bool { return len(c.Hostnames) > 0 }

func noListenerMessage(p gwv1.ParentReference) string {
	switch {
	case p.SectionName != nil && p.Port != nil:
		return fmt.Sprintf("no listener named %q on port %d", *p.SectionName, *p.Port)
	case p.SectionName != nil:
		return fmt.Sprintf("no listener named %q", *p.SectionName)
	case p.Port != nil:
		return fmt.Sprintf("no listener on port %d", *p.Port)
	}
	return "the parent has no listeners"
}

func listenerHostnames(ls []*Listener) string {
	var hs []string
	for _, l := range ls {
		h := l.Hostname
		if h == "" {
			h = "any"
		}
		if !contains(hs, h) {
			hs = append(hs, h)
		}
	}
	return strings.Join(hs, ", ")
}

// notAllowedMessage says, listener by listener, why none takes the route.
func notAllowedMessage(r Route, selected []Candidate) string {
	var why []string
	for _, c := range selected {
		l := c.Listener
		switch c.Step {
		case NotAccepted:
			why = append(why, fmt.Sprintf("listener %s is not accepted", l.Ref()))
		case KindNotAllowed:
			why = append(why, fmt.Sprintf("listener %s does not allow %s", l.Ref(), r.Kind))
		case NamespaceNotAllowed:
			why = append(why, fmt.Sprintf("listener %s does not allow routes from namespace %q (allowedRoutes.namespaces.from: %s)", l.Ref(), r.Namespace, l.From))
		}
	}
	return strings.Join(why, "; ")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// RouteOf reads the attachment-relevant part of a route of any kind;
// false for any other object.
func RouteOf(obj any) (Route, []gwv1.ParentReference, bool) {
	switch o := obj.(type) {
	case *gwv1.HTTPRoute:
		return Route{Kind: KindHTTPRoute, Namespace: o.Namespace, Hostnames: Lower(o.Spec.Hostnames)}, o.Spec.ParentRefs, true
	case *gwv1.GRPCRoute:
		return Route{Kind: KindGRPCRoute, Namespace: o.Namespace, Hostnames: Lower(o.Spec.Hostnames)}, o.Spec.ParentRefs, true
	case *gwv1.TLSRoute:
		return Route{Kind: KindTLSRoute, Namespace: o.Namespace, Hostnames: Lower(o.Spec.Hostnames)}, o.Spec.ParentRefs, true
	case *gwv1.TCPRoute:
		return Route{Kind: KindTCPRoute, Namespace: o.Namespace}, o.Spec.ParentRefs, true
	case *gwv1.UDPRoute:
		return Route{Kind: KindUDPRoute, Namespace: o.Namespace}, o.Spec.ParentRefs, true
	}
	return Route{}, nil, false
}

// Lower is spec.hostnames in lower case, as hostnames compare.
func Lower(hs []gwv1.Hostname) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = strings.ToLower(string(h))
	}
	return out
}
