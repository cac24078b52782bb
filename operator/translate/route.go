package translate

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
)

// route is a route of any kind compiled once, whatever it attaches to.
type route struct {
	kind      string
	obj       RouteObject
	key       types.NamespacedName
	created   metav1.Time
	hostnames []string
	parents   []gwv1.ParentReference

	// entries are the table routes of its valid rules, one per match.
	entries []*entry
	// unresolved backend references make ResolvedRefs False.
	refReason   gwv1.RouteConditionReason
	refMessages []string
	// invalid rules are left out of the table ("Dropped Rule"); fallbacks
	// name filters of a type Gatehouse does not implement and enum values
	// it does not know (enums.go), which make the whole route not accepted
	// (UnsupportedValue), as the spec asks of unknown values.
	invalidRules []string
	fallbacks    []string
	rules        int
	// services the route sends traffic to, and the backends it names.
	services []types.NamespacedName
	backends []string

	// stream is the served rule of a TLSRoute, TCPRoute or UDPRoute; nil
	// for other kinds (stream.go).
	stream *streamAction

	// counted lists the listeners that already count this route as
	// attached (a route has a listener or two: a list, not a map).
	counted []*listener
	// authorized: the authorizer was asked about the route; owner and
	// warnings are from its answers.
	authorized bool
	owner      string
	warnings   []string
}

// entry is one table route with what orders it among others.
type entry struct {
	r     *routetable.Route
	route *route
	rule  int
	match int
	// precedence
	pathClass int // 0 exact, 1 regex, 2 prefix
	pathLen   int
	method    bool
	headers   int
	query     int
}

// attachment is a route attached to a listener, for the listener's hostnames.
type attachment struct {
	route     *route
	hostnames []string
}

func (r *route) unresolved(reason gwv1.RouteConditionReason, message string) {
	if r.refReason == "" {
		r.refReason = reason
	}
	r.refMessages = append(r.refMessages, message)
}

func (r *route) useBackend(b resolvedBackend) {
	if b.service.Name != "" && !slices.Contains(r.services, b.service) {
		r.services = append(r.services, b.service)
	}
	if b.name != "" && !slices.Contains(r.backends, b.name) {
		r.backends = append(r.backends, b.name)
	}
}

func (t *translator) attachRoutes() {
	for _, hr := range t.in.HTTPRoutes {
		if hr == nil || !t.mayConcernUs(hr.Namespace, hr.Spec.ParentRefs) {
			continue
		}
		r := t.compiledRoute(kindHTTPRoute, hr, func() *route { return t.compileHTTPRoute(hr) })
		if status := t.attach(r); len(status) > 0 {
			t.out.HTTPRoutes[r.key] = status
		}
	}
	for _, gr := range t.in.GRPCRoutes {
		if gr == nil || !t.mayConcernUs(gr.Namespace, gr.Spec.ParentRefs) {
			continue
		}
		r := t.compiledRoute(kindGRPCRoute, gr, func() *route { return t.compileGRPCRoute(gr) })
		if status := t.attach(r); len(status) > 0 {
			t.out.GRPCRoutes[r.key] = status
		}
	}
	t.attachStreamRoutes()
}

// parentKind resolves a parentRef to ("Gateway"|"ListenerSet", key), or ""
// for a parent kind that is not ours to judge.
func parentKind(routeNS string, p gwv1.ParentReference) (string, types.NamespacedName) {
	if p.Group != nil && *p.Group != gwv1.GroupName {
		return "", types.NamespacedName{}
	}
	kind := "Gateway"
	if p.Kind != nil {
		kind = string(*p.Kind)
	}
	if kind != "Gateway" && kind != "ListenerSet" {
		return "", types.NamespacedName{}
	}
	ns := routeNS
	if p.Namespace != nil && *p.Namespace != "" {
		ns = string(*p.Namespace)
	}
	return kind, key(ns, string(p.Name))
}

func (t *translator) mayConcernUs(ns string, parents []gwv1.ParentReference) bool {
	for _, p := range parents {
		switch kind, k := parentKind(ns, p); kind {
		case "Gateway":
			if t.gateways[k] != nil {
				return true
			}
		case "ListenerSet":
			if t.listenerSets[k] != nil {
				return true
			}
		}
	}
	return false
}

// condsPerParent is room for the conditions of a route's parent entry:
// Accepted, ResolvedRefs and PolicyCompliant (PartiallyInvalid, rare,
// grows it). The hub keeps the entries of thousands of routes.
const condsPerParent = 3

// attach binds the route to the listeners each of its parentRefs selects and
// returns our entries of its status.parents, in parentRef order.
func (t *translator) attach(r *route) []gwv1.RouteParentStatus {
	var out []gwv1.RouteParentStatus
	big := tooLarge(r.obj)
	if big != "" {
		// The hub kept only the route's parentRefs: it can say why, not serve it.
		big = fmt.Sprintf("%s %s %s: split its rules over several routes, or trim its labels and annotations", r.kind, r.key, big)
		r.unresolved(ReasonTooLarge, "the hub did not keep the route's rules: see Accepted")
	}
	for i, p := range r.parents {
		kind, pk := parentKind(r.key.Namespace, p)
		var candidates []*listener
		var gw *gateway
		var notAttached string
		switch kind {
		case "Gateway":
			if gw = t.gateways[pk]; gw == nil {
				continue
			}
			candidates = gw.own
			if !gw.accepted {
				// Its proxies get no table: the route would not be served.
				notAttached = fmt.Sprintf("Gateway %s is not accepted: %s", pk, gw.conds.get(string(gwv1.GatewayConditionAccepted)).Message)
			}
		case "ListenerSet":
			ls := t.listenerSets[pk]
			if ls == nil {
				continue
			}
			gw, candidates = ls.gw, ls.listeners
			if !ls.accepted {
				notAttached = fmt.Sprintf("ListenerSet %s is not accepted by its Gateway: see its conditions", pk)
			}
		default:
			continue
		}
		conds := make(conditions, 0, condsPerParent)
		gen := r.obj.GetGeneration()
		accepted := string(gwv1.RouteConditionAccepted)
		var reason, message string
		allInvalid := len(r.invalidRules) > 0 && len(r.entries) == 0
		if notAttached == "" && !allInvalid && big == "" && len(r.fallbacks) == 0 {
			reason, message = t.bind(r, i, gw, candidates)
		}
		switch {
		case big != "":
			conds.set(accepted, false, ReasonTooLarge, big, gen)
		case notAttached != "":
			conds.set(accepted, false, string(gwv1.RouteReasonNotAllowedByListeners), notAttached, gen)
		case allInvalid:
			conds.set(accepted, false, string(gwv1.RouteReasonUnsupportedValue),
				"no rule is valid: "+strings.Join(r.invalidRules, "; "), gen)
		case len(r.fallbacks) > 0:
			conds.set(accepted, false, string(gwv1.RouteReasonUnsupportedValue),
				strings.Join(r.fallbacks, "; ")+"; until then the route is not served", gen)
		case reason != "":
			conds.set(accepted, false, reason, message, gen)
		default:
			msg := "route is attached to " + describeParent(kind, pk, p)
			if notes := t.clampNotes(r, gw); notes != "" {
				msg += "; " + notes
			}
			conds.set(accepted, true, string(gwv1.RouteReasonAccepted), msg, gen)
		}
		if r.refReason != "" {
			conds.set(string(gwv1.RouteConditionResolvedRefs), false, string(r.refReason), strings.Join(r.refMessages, "; "), gen)
		} else {
			conds.set(string(gwv1.RouteConditionResolvedRefs), true, string(gwv1.RouteReasonResolvedRefs), "all references resolved", gen)
		}
		if r.authorized && t.in.Authorizer != nil {
			if len(r.warnings) > 0 {
				conds.set(ConditionPolicyCompliant, false, ReasonPolicyWarning, strings.Join(r.warnings, "; "), gen)
			} else {
				conds.set(ConditionPolicyCompliant, true, ReasonPolicyCompliant, "no RoutePolicy that applies is violated", gen)
			}
		}
		if msg := r.partiallyInvalid(); msg != "" && conds.isTrue(accepted) {
			conds.set(string(gwv1.RouteConditionPartiallyInvalid), true, string(gwv1.RouteReasonUnsupportedValue), msg, gen)
		}
		out = append(out, gwv1.RouteParentStatus{ParentRef: statusParentRef(p, kind), ControllerName: t.controller, Conditions: conds})
	}
	return out
}

func describeParent(kind string, k types.NamespacedName, p gwv1.ParentReference) string {
	s := kind + " " + k.String()
	if p.SectionName != nil {
		s += " listener " + string(*p.SectionName)
	}
	if p.Port != nil {
		s += fmt.Sprintf(" port %d", *p.Port)
	}
	return s
}

// bind attaches r to the candidate listeners p selects, as package attach
// decides and the authorizer allows. It returns a reason and message when
// it attaches to none.
func (t *translator) bind(r *route, parent int, gw *gateway, candidates []*listener) (string, string) {
	p := r.parents[parent]
	specs := make([]*attach.Listener, len(candidates))
	for i, l := range candidates {
		specs[i] = l.spec
	}
	res := attach.Attach(attach.Route{Kind: r.kind, Namespace: r.key.Namespace, Hostnames: r.hostnames}, p, specs, t.namespaceLabels(r.key.Namespace))
	if res.Reason != "" {
		return string(res.Reason), res.Message
	}
	var denied *Decision
	var bound, counted []*listener
	for _, c := range res.Selected {
		l := candidates[slices.Index(specs, c.Listener)]
		if c.Step != attach.Takes {
			if c.CountsOn() {
				counted = append(counted, l)
			}
			continue
		}
		req := AttachmentRequest{Kind: r.kind, Route: r.obj, Parent: parent, Gateway: gw.obj, Listener: l.name, Hostnames: c.Hostnames}
		if l.set != nil {
			req.ListenerSet = l.set.obj
		}
		d := t.authorizer.AuthorizeAttachment(req)
		r.authorized, r.owner = true, d.Owner
		if len(d.Warnings) > 0 {
			r.warnings = d.Warnings
		}
		if !d.Allowed {
			if denied == nil {
				denied = &d
			}
			continue
		}
		l.attach(r, c.Hostnames)
		bound = append(bound, l)
	}
	if len(bound) == 0 {
		reason := denied.Reason
		if reason == "" {
			reason = ReasonNotAuthorized
		}
		return reason, denied.Message
	}
	// The route is accepted here: listeners that are not accepted count it
	// too, as attachedRoutes says.
	for _, l := range counted {
		l.count(r)
	}
	for _, svc := range r.services {
		if t.backendUse[svc] == nil {
			t.backendUse[svc] = map[types.NamespacedName]bool{}
		}
		t.backendUse[svc][gw.key] = true
	}
	return "", ""
}

// count counts r on the listener once, however many parentRefs select it.
func (l *listener) count(r *route) bool {
	if slices.Contains(r.counted, l) {
		return false
	}
	r.counted = append(r.counted, l)
	l.attached++
	return true
}

func (l *listener) attach(r *route, hosts []string) {
	if !l.count(r) {
		// A second parentRef selecting the same listener adds hostnames only.
		for _, a := range l.routes {
			if a.route == r {
				for _, h := range hosts {
					if !contains(a.hostnames, h) {
						a.hostnames = append(a.hostnames, h)
					}
				}
			}
		}
		return
	}
	l.routes = append(l.routes, &attachment{route: r, hostnames: hosts})
}

// statusParentRef is the parentRef as the API server defaults it: group and
// kind always set, so that readers can match entries without knowing defaults.
func statusParentRef(p gwv1.ParentReference, kind string) gwv1.ParentReference {
	group, k := gwv1.Group(gwv1.GroupName), gwv1.Kind(kind)
	p.Group, p.Kind = &group, &k
	return p
}

// partiallyInvalid describes the rules left out of the table, in the
// spec's wording: "Dropped Rule". Gatehouse never falls back to an older
// generation of a route, so it never says "Fall Back".
func (r *route) partiallyInvalid() string {
	parts := make([]string, len(r.invalidRules))
	for i, m := range r.invalidRules {
		parts[i] = "Dropped Rule: " + m
	}
	return strings.Join(parts, "; ")
}
