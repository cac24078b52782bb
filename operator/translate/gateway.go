package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gateway is one Gateway of an accepted GatewayClass of ours.
type gateway struct {
	obj   *gwv1.Gateway
	key   types.NamespacedName
	conds conditions
	// own listeners in spec order, then those of attached ListenerSets:
	// the order in which conflicts are settled.
	listeners []*listener
	own       []*listener
	sets      []*listenerSet
	accepted  bool
	// client is its client certificate for backends (backendclient.go).
	client backendClient
}

// listenerSet is a ListenerSet whose parent is a Gateway of ours.
type listenerSet struct {
	obj       *gwv1.ListenerSet
	key       types.NamespacedName
	gw        *gateway
	conds     conditions
	listeners []*listener
	accepted  bool
}

func (t *translator) gatewayClasses() {
	for _, gc := range t.in.GatewayClasses {
		if gc == nil || gc.Spec.ControllerName != t.controller {
			continue
		}
		var conds conditions
		params, problem := t.classParameters(gc)
		if problem != "" {
			conds.set(string(gwv1.GatewayClassConditionStatusAccepted), false, string(gwv1.GatewayClassReasonInvalidParameters), problem, gc.Generation)
		} else {
			conds.set(string(gwv1.GatewayClassConditionStatusAccepted), true, string(gwv1.GatewayClassReasonAccepted),
				"GatewayClass is accepted by Gatehouse", gc.Generation)
			t.classes[gc.Name] = gc
			t.out.Parameters[gc.Name] = params
		}
		t.out.GatewayClasses[gc.Name] = &gwv1.GatewayClassStatus{
			Conditions:        conds,
			SupportedFeatures: supportedFeatures(params.Mode),
		}
	}
}

func (t *translator) buildGateways() {
	for _, g := range t.in.Gateways {
		if g == nil {
			continue
		}
		if _, ok := t.classes[string(g.Spec.GatewayClassName)]; !ok {
			continue
		}
		gw := &gateway{obj: g, key: key(g.Namespace, g.Name)}
		for i := range g.Spec.Listeners {
			l := &g.Spec.Listeners[i]
			gw.own = append(gw.own, t.newListener(gw, nil, l.Name, l.Port, l.Protocol, l.Hostname, l.TLS, l.AllowedRoutes).withFilters(l.Filters))
		}
		gw.listeners = append(gw.listeners, gw.own...)
		t.gateways[gw.key] = gw
		t.gatewayList = append(t.gatewayList, gw)
	}
	slices.SortFunc(t.gatewayList, func(a, b *gateway) int { return compareKeys(a.key, b.key) })
	t.attachListenerSets()
	for _, gw := range t.gatewayList {
		settleConflicts(gw.listeners)
		t.gatewayStatus(gw)
		for _, ls := range gw.sets {
			t.listenerSetStatus(ls)
		}
		t.countListenerSets(gw)
	}
}

// attachListenerSets binds each ListenerSet to its parent Gateway when that
// Gateway allows it, in the spec's precedence: oldest first, then by
// namespace/name.
func (t *translator) attachListenerSets() {
	sets := slices.Clone(t.in.ListenerSets)
	sets = slices.DeleteFunc(sets, func(ls *gwv1.ListenerSet) bool { return ls == nil })
	slices.SortFunc(sets, func(a, b *gwv1.ListenerSet) int {
		return compareAge(a.CreationTimestamp, b.CreationTimestamp, key(a.Namespace, a.Name), key(b.Namespace, b.Name))
	})
	for _, s := range sets {
		p := s.Spec.ParentRef
		if (p.Group != nil && *p.Group != gwv1.GroupName) || (p.Kind != nil && *p.Kind != "Gateway") {
			continue
		}
		ns := s.Namespace
		if p.Namespace != nil && *p.Namespace != "" {
			ns = string(*p.Namespace)
		}
		gw := t.gateways[key(ns, string(p.Name))]
		if gw == nil {
			continue
		}
		ls := &listenerSet{obj: s, key: key(s.Namespace, s.Name), gw: gw}
		t.listenerSets[ls.key] = ls
		refuse := func(reason, message string) {
			ls.conds.set(string(gwv1.ListenerSetConditionAccepted), false, reason, message, s.Generation)
			ls.conds.set(string(gwv1.ListenerSetConditionProgrammed), false, reason, "the ListenerSet is not attached to its parent Gateway", s.Generation)
			t.out.ListenerSets[ls.key] = &gwv1.ListenerSetStatus{Conditions: ls.conds}
		}
		if why := tooLarge(s); why != "" {
			refuse(ReasonTooLarge, fmt.Sprintf("ListenerSet %s %s: split its listeners over several ListenerSets, or trim its labels and annotations", ls.key, why))
			continue
		}
		if !t.allowsListenerSet(gw, s.Namespace) {
			refuse(string(gwv1.ListenerSetReasonNotAllowed),
				fmt.Sprintf("Gateway %s does not allow ListenerSets from namespace %q: see its spec.allowedListeners", gw.key, s.Namespace))
			continue
		}
		if lsa, ok := t.in.Authorizer.(ListenerSetAuthorizer); ok {
			if d := lsa.AuthorizeListenerSet(s, gw.obj); !d.Allowed {
				refuse(cmp.Or(d.Reason, ReasonNotAuthorized), d.Message)
				continue
			}
		}
		for i := range s.Spec.Listeners {
			e := &s.Spec.Listeners[i]
			ls.listeners = append(ls.listeners, t.newListener(gw, ls, e.Name, e.Port, e.Protocol, e.Hostname, e.TLS, e.AllowedRoutes).withFilters(e.Filters))
		}
		gw.sets = append(gw.sets, ls)
		gw.listeners = append(gw.listeners, ls.listeners...)
	}
}

func (t *translator) allowsListenerSet(gw *gateway, ns string) bool {
	al := gw.obj.Spec.AllowedListeners
	if al == nil || al.Namespaces == nil || al.Namespaces.From == nil {
		return false
	}
	switch *al.Namespaces.From {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return ns == gw.obj.Namespace
	case gwv1.NamespacesFromSelector:
		if al.Namespaces.Selector == nil {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(al.Namespaces.Selector)
		return err == nil && sel.Matches(t.namespaceLabels(ns))
	}
	return false
}

// gatewayStatus settles a Gateway's conditions and resolves the
// certificates of its listeners and of its ListenerSets' listeners. Its
// acceptance does not wait for certificates (judgeListeners), and only the
// listeners of a Gateway that is served may ask for theirs to be issued
// (listenerCertificates): accepted first, then certificates, then the
// reason, which names the listeners they leave unserved.
func (t *translator) gatewayStatus(gw *gateway) {
	g := gw.obj
	status := &gwv1.GatewayStatus{}
	var assigned []gwv1.GatewayStatusAddress
	if params := t.out.Parameters[string(g.Spec.GatewayClassName)]; params.Mode == ModeExternal {
		assigned = params.Addresses
	}
	addrs, _, addrErr := GatewayAddresses(g.Spec.Addresses, assigned)
	status.Addresses = addrs
	settings, badParams := t.gatewayProxySettings(g)
	var refusal, why string
	switch {
	case tooLarge(g) != "":
		refusal, why = ReasonTooLarge, fmt.Sprintf("Gateway %s %s: move listeners to ListenerSets, or trim its labels and annotations", gw.key, tooLarge(g))
	case badParams != "":
		refusal, why = string(gwv1.GatewayReasonInvalidParameters), badParams
	case addrErr != "":
		refusal, why = string(gwv1.GatewayReasonUnsupportedAddress), addrErr
	}
	// Provisional, and already final: certificates do not decide it.
	gw.accepted = refusal == "" && judgeListeners(gw.own, true).accepted
	for _, l := range gw.listeners {
		t.listenerCertificates(l)
		l.finish()
	}
	accepted := string(gwv1.GatewayConditionAccepted)
	programmed := string(gwv1.GatewayConditionProgrammed)
	switch v := judgeListeners(gw.own, true); {
	case refusal != "":
		gw.conds.set(accepted, false, refusal, why, g.Generation)
	case v.reason != "":
		gw.conds.set(accepted, v.accepted, v.reason, v.message, g.Generation)
	default:
		gw.conds.set(accepted, true, string(gwv1.GatewayReasonAccepted), "Gateway is accepted", g.Generation)
	}
	gw.accepted = gw.conds.isTrue(accepted)
	if gw.accepted {
		t.out.ProxySettings[gw.key] = settings
		gw.conds.set(programmed, true, string(gwv1.GatewayReasonProgrammed), "route table compiled", g.Generation)
	} else {
		gw.conds.set(programmed, false, string(gwv1.GatewayReasonInvalid), "the Gateway is not accepted", g.Generation)
	}
	frontendConditions(gw)
	gw.client = t.resolveBackendClient(g)
	t.gatewayResolvedRefs(gw)
	status.Conditions = gw.conds
	t.out.Gateways[gw.key] = status
}

// listenerVerdict is what a Gateway's or a ListenerSet's listeners make of
// its Accepted condition: reason is "" when every listener is served.
type listenerVerdict struct {
	accepted        bool
	reason, message string
}

// judgeListeners is the one rule by which a Gateway and a ListenerSet answer
// for their listeners. A listener that is not served (not accepted, or its
// certificates do not resolve) cannot be configured on its object, which
// then says ListenersNotValid and names it. The object stays accepted while
// one of its listeners is served, and is not accepted once its listeners
// leave it nothing to serve: when none of them is accepted or, unless it
// ownsInfrastructure, none is served.
//
// ownsInfrastructure tells a Gateway from a ListenerSet. A Gateway has
// proxies and addresses of its own, which its accepted listeners need before
// their certificates can be issued and served: a listener waiting for its
// Secret or for cert-manager must not take its Gateway's address away, so a
// Gateway's acceptance does not wait for certificates. A ListenerSet has
// only its listeners. The conformance suite holds both: a Gateway whose
// listeners all lack their Secrets stays Accepted and Programmed
// (GatewaySecretMissingReferenceGrant, under NamespacesMustBeReady), and a
// ListenerSet whose only listener lacks its ReferenceGrant is not accepted
// (ListenerSetReferenceGrant).
func judgeListeners(listeners []*listener, ownsInfrastructure bool) listenerVerdict {
	var unserved []string
	accepted, served := 0, 0
	for _, l := range listeners {
		if l.accepted() {
			accepted++
		}
		if l.usable() {
			served++
		} else {
			unserved = append(unserved, string(l.name))
		}
	}
	reason := string(gwv1.GatewayReasonListenersNotValid) // the ListenerSet reason is the same string
	switch {
	case len(unserved) == 0:
		return listenerVerdict{accepted: true}
	case accepted == 0 || (served == 0 && !ownsInfrastructure):
		return listenerVerdict{false, reason,
			fmt.Sprintf("no listener is valid (%s): see the conditions of each listener", strings.Join(unserved, ", "))}
	default:
		return listenerVerdict{true, reason,
			fmt.Sprintf("listeners %s are not valid and not served: see their conditions", strings.Join(unserved, ", "))}
	}
}

// countListenerSets reports how many ListenerSets are attached and accepted.
func (t *translator) countListenerSets(gw *gateway) {
	if len(gw.sets) == 0 && gw.obj.Spec.AllowedListeners == nil {
		return
	}
	n := int32(0)
	for _, ls := range gw.sets {
		if ls.accepted {
			n++
		}
	}
	t.out.Gateways[gw.key].AttachedListenerSets = &n
}

func (t *translator) listenerSetStatus(ls *listenerSet) {
	s := ls.obj
	status := &gwv1.ListenerSetStatus{}
	accepted, programmed := string(gwv1.ListenerSetConditionAccepted), string(gwv1.ListenerSetConditionProgrammed)
	switch v := judgeListeners(ls.listeners, false); {
	case !ls.gw.accepted:
		ls.conds.set(accepted, false, string(gwv1.ListenerSetReasonParentNotAccepted),
			fmt.Sprintf("parent Gateway %s is not accepted", ls.gw.key), s.Generation)
	case v.reason != "":
		ls.conds.set(accepted, v.accepted, v.reason, v.message, s.Generation)
	default:
		ls.conds.set(accepted, true, string(gwv1.ListenerSetReasonAccepted), "ListenerSet is attached to "+ls.gw.key.String(), s.Generation)
	}
	ls.accepted = ls.conds.isTrue(accepted)
	if ls.accepted {
		ls.conds.set(programmed, true, string(gwv1.ListenerSetReasonProgrammed), "route table compiled", s.Generation)
	} else {
		// Not accepted: Programmed carries the same reason.
		ls.conds.set(programmed, false, ls.conds.get(accepted).Reason, "the ListenerSet is not accepted: see Accepted", s.Generation)
	}
	status.Conditions = ls.conds
	t.out.ListenerSets[ls.key] = status
}

func compareKeys(a, b types.NamespacedName) int {
	if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// compareAge orders objects oldest first, then by namespace/name.
func compareAge(a, b metav1.Time, ka, kb types.NamespacedName) int {
	if !a.Equal(&b) {
		if a.Before(&b) {
			return -1
		}
		return 1
	}
	return compareKeys(ka, kb)
}

// selectorFor compiles a namespace selector; an invalid one selects nothing.
func selectorFor(s *metav1.LabelSelector) labels.Selector {
	if s == nil {
		return labels.Nothing()
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return labels.Nothing()
	}
	return sel
}

// listenerStatuses fills in the listeners of every Gateway and ListenerSet
// status, once routes are attached and counted.
func (t *translator) listenerStatuses() {
	for _, gw := range t.gatewayList {
		status := t.out.Gateways[gw.key]
		for _, l := range gw.own {
			if !gw.accepted {
				l.conds.set(string(gwv1.ListenerConditionProgrammed), false, string(gwv1.ListenerReasonInvalid),
					"the Gateway is not accepted: see its conditions", gw.obj.Generation)
			}
			status.Listeners = append(status.Listeners, l.status())
		}
		for _, ls := range gw.sets {
			lss := t.out.ListenerSets[ls.key]
			for _, l := range ls.listeners {
				if !ls.accepted && l.usable() {
					l.conds.set(string(gwv1.ListenerConditionProgrammed), false, string(gwv1.ListenerReasonInvalid),
						"the ListenerSet is not accepted: see its conditions", ls.obj.Generation)
				}
				ps := l.status()
				lss.Listeners = append(lss.Listeners, gwv1.ListenerEntryStatus{
					Name: ps.Name, SupportedKinds: ps.SupportedKinds, AttachedRoutes: ps.AttachedRoutes, Conditions: ps.Conditions,
				})
			}
		}
	}
}
