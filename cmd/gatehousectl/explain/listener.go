package explain

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/hostnames"
)

// listenerReasons says which listeners the parentRef selects and, for each,
// whether it takes the route: protocol and status, route kind, namespace,
// hostnames.
func (in *inspection) listenerReasons(i int, k parentKey, info parentInfo) []Reason {
	var selected []listenerView
	for _, l := range info.listeners {
		if k.section != "" && string(l.name) != k.section || k.port != 0 && l.port != k.port {
			continue
		}
		selected = append(selected, l)
	}
	rs := []Reason{selection(i, k, info.listeners, selected)}
	for _, l := range selected {
		rs = append(rs, listenerState(l), in.kindReason(l), in.namespaceReason(l), in.hostnameReason(l))
	}
	return rs
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
func listenerState(l listenerView) Reason {
	fix := fmt.Sprintf("the owner of %s must fix listener %q", l.owner, l.name)
	if l.protocol != gwv1.HTTPProtocolType && l.protocol != gwv1.HTTPSProtocolType {
		return problem(checkListener, fix+": Gatehouse serves HTTP and HTTPS listeners",
			"listener %q is of protocol %s, which Gatehouse does not serve", l.name, l.protocol)
	}
	if !l.hasStatus {
		return ok(checkListener, "listener %q: no status written for it yet", l.name)
	}
	var bad []string
	for _, c := range l.conditions {
		if c.Type == string(gwv1.ListenerConditionProgrammed) {
			// It follows the Gateway's (are its proxies serving?), which
			// the gateway check reports.
			continue
		}
		wrong := c.Status != metav1.ConditionTrue
		if c.Type == string(gwv1.ListenerConditionConflicted) || c.Type == string(gwv1.ListenerConditionOverlappingTLSConfig) {
			wrong = c.Status == metav1.ConditionTrue
		}
		if wrong {
			bad = append(bad, fmt.Sprintf("%s=%s (%s): %s", c.Type, c.Status, c.Reason, c.Message))
		}
	}
	if len(bad) > 0 {
		return problem(checkListener, fix+" as its conditions say",
			"listener %q has problems: %s", l.name, strings.Join(bad, "; "))
	}
	return ok(checkListener, "listener %q is accepted, without conflicts; %d route(s) attached to it", l.name, l.attached)
}

// kindReason: does the listener take routes of this kind?
func (in *inspection) kindReason(l listenerView) Reason {
	kind := in.r.kind
	var kinds []string
	if l.allowed == nil || len(l.allowed.Kinds) == 0 {
		if l.protocol == gwv1.HTTPProtocolType || l.protocol == gwv1.HTTPSProtocolType {
			return ok(checkKinds, "listener %q takes %ss (allowedRoutes.kinds is unset: %s listeners take HTTPRoutes and GRPCRoutes)", l.name, kind, l.protocol)
		}
		return problem(checkKinds, "attach to an HTTP or HTTPS listener",
			"listener %q takes no %ss: it is of protocol %s", l.name, kind, l.protocol)
	}
	allowed := false
	for _, k := range l.allowed.Kinds {
		group := gwv1.GroupName
		if k.Group != nil {
			group = string(*k.Group)
		}
		if group == gwv1.GroupName {
			kinds = append(kinds, string(k.Kind))
			allowed = allowed || string(k.Kind) == kind
		} else {
			kinds = append(kinds, string(k.Kind)+"."+group)
		}
	}
	list := strings.Join(kinds, ", ")
	if allowed {
		return ok(checkKinds, "listener %q takes %ss (allowedRoutes.kinds: %s)", l.name, kind, list)
	}
	return problem(checkKinds,
		fmt.Sprintf("use a route of a kind the listener takes (%s), or ask the owner of %s to add %s to listener %q's allowedRoutes.kinds", list, l.owner, kind, l.name),
		"listener %q does not take %ss: its allowedRoutes.kinds lists only %s", l.name, kind, list)
}

// namespaceReason: does the listener take routes from the route's
// namespace, and if not, what would make it?
func (in *inspection) namespaceReason(l listenerView) Reason {
	ns := in.r.key.Namespace
	from := gwv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if l.allowed != nil && l.allowed.Namespaces != nil {
		if l.allowed.Namespaces.From != nil {
			from = *l.allowed.Namespaces.From
		}
		sel = l.allowed.Namespaces.Selector
	}
	ask := fmt.Sprintf("ask the owner of %s to set listener %q's allowedRoutes.namespaces.from to All, or to Selector with a selector namespace %q matches", l.owner, l.name, ns)
	switch from {
	case gwv1.NamespacesFromAll:
		return ok(checkNamespaces, "listener %q takes routes from every namespace (allowedRoutes.namespaces.from: All)", l.name)
	case gwv1.NamespacesFromSame:
		if ns == l.namespace {
			return ok(checkNamespaces, "listener %q takes routes from its own namespace %q only (allowedRoutes.namespaces.from: Same), which is the route's", l.name, l.namespace)
		}
		return problem(checkNamespaces, fmt.Sprintf("move the route to namespace %q, or %s", l.namespace, ask),
			"listener %q of %s takes routes only from its own namespace %q (allowedRoutes.namespaces.from: Same); this route is in namespace %q",
			l.name, l.owner, l.namespace, ns)
	case gwv1.NamespacesFromSelector:
		return in.selectorReason(l, sel)
	}
	return problem(checkNamespaces, ask, "listener %q of %s takes routes from no namespace (allowedRoutes.namespaces.from: %s)", l.name, l.owner, from)
}

func (in *inspection) selectorReason(l listenerView, sel *metav1.LabelSelector) Reason {
	ns := in.r.key.Namespace
	owner := fmt.Sprintf("the owner of %s", l.owner)
	if sel == nil {
		return problem(checkNamespaces, owner+" must set allowedRoutes.namespaces.selector",
			"listener %q has allowedRoutes.namespaces.from: Selector but no selector: it takes no route", l.name)
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return problem(checkNamespaces, owner+" must fix the selector", "listener %q has an invalid allowedRoutes.namespaces.selector: %v", l.name, err)
	}
	want := metav1.FormatLabelSelector(sel)
	if in.nsErr != nil {
		return problem(checkNamespaces, "make sure you may read namespaces (RBAC) and run explain again",
			"listener %q takes routes from namespaces matching %s, and the labels of namespace %q could not be read: %v", l.name, want, ns, in.nsErr)
	}
	if s.Matches(labels.Set(in.nsLabels)) {
		return ok(checkNamespaces, "listener %q takes routes from namespaces matching %s (allowedRoutes.namespaces.from: Selector), and namespace %q matches", l.name, want, ns)
	}
	return problem(checkNamespaces, labelFix(ns, sel, in.nsLabels)+", or ask "+owner+" to widen listener "+fmt.Sprintf("%q", l.name)+"'s selector",
		"listener %q of %s takes routes only from namespaces matching %s (allowedRoutes.namespaces.from: Selector); namespace %q has labels %s",
		l.name, l.owner, want, ns, describeLabels(in.nsLabels))
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
	accepts := l.hostname
	if accepts == "" {
		accepts = "any hostname"
	}
	common := hostnames.Intersect(l.hostname, in.r.hostnames)
	switch {
	case len(in.r.hostnames) == 0:
		return ok(checkHostnames, "the route names no hostname and takes listener %q's: %s", l.name, accepts)
	case len(common) > 0:
		return ok(checkHostnames, "hostnames in common with listener %q (which accepts %s): %s", l.name, accepts, strings.Join(common, ", "))
	}
	return problem(checkHostnames,
		fmt.Sprintf("name a hostname within %s in spec.hostnames, or attach to a listener that accepts %s", accepts, strings.Join(in.r.hostnames, ", ")),
		"no hostname in common: the route has %s, the listener %q accepts %s", strings.Join(in.r.hostnames, ", "), l.name, accepts)
}
