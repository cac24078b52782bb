package explain

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/hostnames"
)

// listenerReasons says which listeners the parentRef selects and, for each,
// whether it takes the route: protocol and status, route kind, namespace,
// hostnames. Package attach decides, as it does for the hub's status and
// the admission webhook; explain words its answer. It also returns the
// listeners that take the route.
func (in *inspection) listenerReasons(i int, k parentKey, p gwv1.ParentReference, info parentInfo) ([]Reason, []attach.Candidate) {
	specs := make([]*attach.Listener, len(info.listeners))
	for j, l := range info.listeners {
		specs[j] = l.Listener
	}
	res := attach.Attach(in.r.attachRoute(), p, specs, in.nsLabels)
	var selected []listenerView
	for _, c := range res.Selected {
		selected = append(selected, info.listeners[slices.Index(specs, c.Listener)])
	}
	rs := []Reason{selection(i, k, info.listeners, selected)}
	for j, l := range selected {
		c := res.Selected[j]
		rs = append(rs, listenerState(l, c), in.kindReason(l), in.namespaceReason(l), in.hostnameReason(l))
	}
	return rs, res.Taking()
}

func selection(i int, k parentKey, all, selected []listenerView) Reason {
	var names []string
	for _, l := range all {
		names = append(names, l.String())
	}
	what := "every listener"
	switch {
	case k.section != "" && k.port != 0:
		what = fmt.Sprintf("the listener named %q on port %d", k.section, k.port)
	case k.section != "":
		what = fmt.Sprintf("the listener named %q", k.section)
	case k.port != 0:
		what = fmt.Sprintf("the listeners on port %d", k.port)
	}
	if len(all) == 0 {
		return problem(checkListeners, "the owner of the parent must add a listener", "the parent has no listeners")
	}
	if len(selected) == 0 {
		return problem(checkListeners,
			fmt.Sprintf("set spec.parentRefs[%d].sectionName (and port) to a listener it has, or leave them out to attach to every listener that takes the route", i),
			"spec.parentRefs[%d] asks for %s, and there is none: its listeners are %s", i, what, strings.Join(names, "; "))
	}
	var picked []string
	for _, l := range selected {
		picked = append(picked, l.String())
	}
	return ok(checkListeners, "spec.parentRefs[%d] asks for %s: %s", i, what, strings.Join(picked, "; "))
}

// listenerState reports the listener's protocol and its own conditions.
func listenerState(l listenerView, c attach.Candidate) Reason {
	fix := fmt.Sprintf("the owner of %s must fix listener %q", l.Owner, l.Name)
	if c.Step == attach.NotAccepted {
		return problem(checkListener, fix, "listener %q takes no route: %s", l.Name, l.Refusal())
	}
	if !l.hasStatus {
		return ok(checkListener, "listener %q: no status written for it yet", l.Name)
	}
	var bad []string
	for _, c := range l.conditions {
		if c.Type == string(gwv1.ListenerConditionProgrammed) {
			// It follows the Gateway's (are its proxies serving?), which
			// the gateway check reports.
			continue
		}
		wrong := c.Status != metav1.ConditionTrue
		switch c.Type {
		case string(gwv1.ListenerConditionConflicted):
			wrong = c.Status == metav1.ConditionTrue
		case string(gwv1.ListenerConditionOverlappingTLSConfig):
			// A warning to the listener's owner: the listener is served.
			wrong = false
		}
		if wrong {
			bad = append(bad, fmt.Sprintf("%s=%s (%s): %s", c.Type, c.Status, c.Reason, c.Message))
		}
	}
	if len(bad) > 0 {
		return problem(checkListener, fix+" as its conditions say",
			"listener %q has problems: %s", l.Name, strings.Join(bad, "; "))
	}
	return ok(checkListener, "listener %q is accepted, without conflicts; %d route(s) attached to it", l.Name, l.attached)
}

// kindReason: does the listener take routes of this kind?
func (in *inspection) kindReason(l listenerView) Reason {
	kind := in.r.kind
	if l.Unsupported != "" {
		return problem(checkKinds, "attach to a listener of a protocol that takes "+kind+"s ("+protocolsOf(kind)+")",
			"listener %q takes no %ss: %s", l.Name, kind, l.Unsupported)
	}
	if l.Allowed == nil || len(l.Allowed.Kinds) == 0 {
		taken := kindNames(l.Kinds)
		if l.AllowsKind(kind) {
			return ok(checkKinds, "listener %q takes %ss (allowedRoutes.kinds is unset: %s listeners take %s)", l.Name, kind, l.Protocol, taken)
		}
		return problem(checkKinds, "attach to a listener of a protocol that takes "+kind+"s ("+protocolsOf(kind)+"), or use a route of a kind this listener takes ("+taken+")",
			"listener %q does not take %ss: %s listeners take %s", l.Name, kind, l.Protocol, taken)
	}
	list := kindNames(l.Allowed.Kinds)
	if l.AllowsKind(kind) {
		return ok(checkKinds, "listener %q takes %ss (allowedRoutes.kinds: %s)", l.Name, kind, list)
	}
	if !strings.Contains(protocolsOf(kind), string(l.Protocol)) {
		return problem(checkKinds, "attach to a listener of a protocol that takes "+kind+"s ("+protocolsOf(kind)+")",
			"listener %q does not take %ss: %s listeners never do (its allowedRoutes.kinds lists %s)", l.Name, kind, l.Protocol, list)
	}
	return problem(checkKinds,
		fmt.Sprintf("use a route of a kind the listener takes (%s), or ask the owner of %s to add %s to listener %q's allowedRoutes.kinds", list, l.Owner, kind, l.Name),
		"listener %q does not take %ss: its allowedRoutes.kinds lists only %s", l.Name, kind, list)
}

// kindNames lists route kinds as a person reads them: the kind, and its
// group when it is not the Gateway API's.
func kindNames(kinds []gwv1.RouteGroupKind) string {
	var out []string
	for _, k := range kinds {
		if k.Group == nil || *k.Group == "" || *k.Group == gwv1.GroupName {
			out = append(out, string(k.Kind))
		} else {
			out = append(out, string(k.Kind)+"."+string(*k.Group))
		}
	}
	return strings.Join(out, ", ")
}

// protocolsOf names the listener protocols that take routes of kind.
func protocolsOf(kind string) string {
	switch kind {
	case KindTLSRoute:
		return "TLS"
	case KindTCPRoute:
		return "TCP"
	case KindUDPRoute:
		return "UDP"
	}
	return "HTTP or HTTPS"
}

// namespaceReason: does the listener take routes from the route's
// namespace, and if not, what would make it?
func (in *inspection) namespaceReason(l listenerView) Reason {
	ns := in.r.key.Namespace
	owner := fmt.Sprintf("the owner of %s", l.Owner)
	if l.InvalidNamespaces != "" {
		return problem(checkNamespaces, owner+" must fix listener "+fmt.Sprintf("%q", l.Name)+"'s allowedRoutes", "listener %q takes no route: %s", l.Name, l.InvalidNamespaces)
	}
	ask := fmt.Sprintf("ask %s to set listener %q's allowedRoutes.namespaces.from to All, or to Selector with a selector namespace %q matches", owner, l.Name, ns)
	switch l.From {
	case gwv1.NamespacesFromAll:
		return ok(checkNamespaces, "listener %q takes routes from every namespace (allowedRoutes.namespaces.from: All)", l.Name)
	case gwv1.NamespacesFromSame:
		if l.AllowsNamespace(ns, nil) {
			return ok(checkNamespaces, "listener %q takes routes from its own namespace %q only (allowedRoutes.namespaces.from: Same), which is the route's", l.Name, l.Namespace)
		}
		return problem(checkNamespaces, fmt.Sprintf("move the route to namespace %q, or %s", l.Namespace, ask),
			"listener %q of %s takes routes only from its own namespace %q (allowedRoutes.namespaces.from: Same); this route is in namespace %q",
			l.Name, l.Owner, l.Namespace, ns)
	case gwv1.NamespacesFromSelector:
		return in.selectorReason(l)
	}
	return problem(checkNamespaces, ask, "listener %q of %s takes routes from no namespace (allowedRoutes.namespaces.from: %s)", l.Name, l.Owner, l.From)
}

func (in *inspection) selectorReason(l listenerView) Reason {
	ns := in.r.key.Namespace
	owner := fmt.Sprintf("the owner of %s", l.Owner)
	sel := l.Allowed.Namespaces.Selector
	want := metav1.FormatLabelSelector(sel)
	if in.nsErr != nil {
		return problem(checkNamespaces, "make sure you may read namespaces (RBAC) and run explain again",
			"listener %q takes routes from namespaces matching %s, and the labels of namespace %q could not be read: %v", l.Name, want, ns, in.nsErr)
	}
	if l.AllowsNamespace(ns, in.nsLabels) {
		return ok(checkNamespaces, "listener %q takes routes from namespaces matching %s (allowedRoutes.namespaces.from: Selector), and namespace %q matches", l.Name, want, ns)
	}
	return problem(checkNamespaces, labelFix(ns, sel, in.nsLabels)+", or ask "+owner+" to widen listener "+fmt.Sprintf("%q", l.Name)+"'s selector",
		"listener %q of %s takes routes only from namespaces matching %s (allowedRoutes.namespaces.from: Selector); namespace %q has labels %s",
		l.Name, l.Owner, want, ns, describeLabels(in.nsLabels))
}

// labelFix says which labels namespace ns needs for sel to match it.
func labelFix(ns string, sel *metav1.LabelSelector, have map[string]string) string {
	var set []string
	for k, v := range sel.MatchLabels {
		if have[k] != v {
			set = append(set, k+"="+v)
		}
	}
	sort.Strings(set)
	var parts []string
	if len(set) > 0 {
		parts = append(parts, fmt.Sprintf("label namespace %q with %s (kubectl label namespace %s %s)", ns, strings.Join(set, ","), ns, strings.Join(set, " ")))
	}
	if len(sel.MatchExpressions) > 0 {
		exprs := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchExpressions: sel.MatchExpressions})
		s, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchExpressions: sel.MatchExpressions})
		if err == nil && !s.Matches(labels.Set(have)) {
			parts = append(parts, fmt.Sprintf("give namespace %q labels that satisfy %s", ns, exprs))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("label namespace %q so that it matches %s", ns, metav1.FormatLabelSelector(sel))
	}
	return strings.Join(parts, ", and ")
}

func describeLabels(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// hostnameReason intersects the listener's hostname with the route's.
func (in *inspection) hostnameReason(l listenerView) Reason {
	if in.r.kind == KindTCPRoute || in.r.kind == KindUDPRoute {
		if !l.AllowsKind(in.r.kind) {
			return ok(checkHostnames, "%ss have no hostnames", in.r.kind)
		}
		return ok(checkHostnames, "%ss have no hostnames: the route takes every connection to listener %q's port %d", in.r.kind, l.Name, l.Port)
	}
	accepts := orAny(l.Hostname)
	common := hostnames.Intersect(l.Hostname, in.r.hostnames)
	switch {
	case len(in.r.hostnames) == 0:
		return ok(checkHostnames, "the route names no hostname and takes listener %q's: %s", l.Name, accepts)
	case len(common) > 0:
		return ok(checkHostnames, "hostnames in common with listener %q (which accepts %s): %s", l.Name, accepts, strings.Join(common, ", "))
	}
	return problem(checkHostnames,
		fmt.Sprintf("name a hostname within %s in spec.hostnames, or attach to a listener that accepts %s", accepts, strings.Join(in.r.hostnames, ", ")),
		"no hostname in common: the route has %s, the listener %q accepts %s", strings.Join(in.r.hostnames, ", "), l.Name, accepts)
}

func orAny(h string) string {
	if h == "" {
		return "any hostname"
	}
	return h
}
