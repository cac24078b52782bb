package explain

import (
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// parentInfo is what explain learnt of a parent: its Gateway and the
// listeners a parentRef to it may select.
type parentInfo struct {
	gateway *gwv1.Gateway
	// ours: the Gateway exists and its class is Gatehouse's.
	ours      bool
	listeners []listenerView
}

// listenerView is one listener of a Gateway or of a ListenerSet: the
// attachment rules' view of it (package attach) and what its status says.
type listenerView struct {
	*attach.Listener
	hasStatus  bool
	conditions []metav1.Condition
	attached   int32
}

// parentObjects reads the parent a parentRef names (a Gateway, or a
// ListenerSet and its Gateway) and the GatewayClass.
func (in *inspection) parentObjects(i int, k parentKey) (parentInfo, []Reason) {
	var info parentInfo
	var rs []Reason
	gwKey := k.object()
	var ls *gwv1.ListenerSet
	if k.kind == "ListenerSet" {
		ls = &gwv1.ListenerSet{}
		if err := in.c.Get(in.ctx, k.object(), ls); err != nil {
			return info, []Reason{in.missing(i, "ListenerSet", k.object(), err)}
		}
		gwKey = types.NamespacedName{Namespace: ls.Namespace, Name: string(ls.Spec.ParentRef.Name)}
		if ns := ls.Spec.ParentRef.Namespace; ns != nil && *ns != "" {
			gwKey.Namespace = string(*ns)
		}
		rs = append(rs, listenerSetReason(ls, gwKey))
	}
	var gw gwv1.Gateway
	if err := in.c.Get(in.ctx, gwKey, &gw); err != nil {
		return info, append(rs, in.missing(i, "Gateway", gwKey, err))
	}
	info.gateway = &gw
	if ls == nil {
		rs = append(rs, ok(checkParent, "Gateway %s exists in cluster %s", gwKey, in.cluster.Name))
	}
	class, ours := in.classReason(&gw)
	rs = append(rs, class)
	if !ours {
		return info, rs
	}
	info.ours = true
	if ls != nil {
		info.listeners = listenerSetListeners(ls)
	} else {
		info.listeners = gatewayListeners(&gw)
	}
	return info, append(rs, gatewayReason(&gw))
}

// missing explains a parent that cannot be read.
func (in *inspection) missing(i int, kind string, key types.NamespacedName, err error) Reason {
	if !apierrors.IsNotFound(err) {
		return problem(checkParent, "make sure you may read it (RBAC) and run explain again", "could not read %s %s: %v", kind, key, err)
	}
	fix := fmt.Sprintf("correct spec.parentRefs[%d] (name, namespace, kind)", i)
	if kind == "Gateway" {
		if ours := in.ourGateways(); len(ours) > 0 {
			fix += "; Gateways of Gatehouse in this cluster: " + strings.Join(ours, ", ")
		}
	}
	return problem(checkParent, fix, "%s %s does not exist in cluster %s", kind, key, in.cluster.Name)
}

// ourGateways lists the Gateways of Gatehouse's classes in the cluster.
func (in *inspection) ourGateways() []string {
	var classes gwv1.GatewayClassList
	var gws gwv1.GatewayList
	if in.c.List(in.ctx, &classes) != nil || in.c.List(in.ctx, &gws) != nil {
		return nil
	}
	ours := map[string]bool{}
	for _, c := range classes.Items {
		ours[c.Name] = c.Spec.ControllerName == translate.ControllerName
	}
	var out []string
	for _, g := range gws.Items {
		if ours[string(g.Spec.GatewayClassName)] {
			out = append(out, g.Namespace+"/"+g.Name)
		}
	}
	slices.Sort(out)
	return out
}

// classReason says whether the Gateway's class is Gatehouse's and accepted.
func (in *inspection) classReason(gw *gwv1.Gateway) (Reason, bool) {
	name := string(gw.Spec.GatewayClassName)
	var gc gwv1.GatewayClass
	if err := in.c.Get(in.ctx, types.NamespacedName{Name: name}, &gc); err != nil {
		if apierrors.IsNotFound(err) {
			return problem(checkGatewayClass, fmt.Sprintf("the platform team must create GatewayClass %q, or the Gateway must name a class that exists", name),
				"GatewayClass %q of Gateway %s/%s does not exist: no controller serves the Gateway", name, gw.Namespace, gw.Name), false
		}
		return problem(checkGatewayClass, "make sure you may read GatewayClasses (RBAC) and run explain again",
			"could not read GatewayClass %q: %v", name, err), false
	}
	if gc.Spec.ControllerName != translate.ControllerName {
		fix := "attach the route to a Gateway of a Gatehouse class"
		if ours := in.ourGateways(); len(ours) > 0 {
			fix += " (here: " + strings.Join(ours, ", ") + ")"
		}
		return problem(checkGatewayClass, fix,
			"Gateway %s/%s has class %q, which controller %q serves, not Gatehouse (%s): Gatehouse does not attach routes to it",
			gw.Namespace, gw.Name, name, gc.Spec.ControllerName, translate.ControllerName), false
	}
	if c := meta.FindStatusCondition(gc.Status.Conditions, string(gwv1.GatewayClassConditionStatusAccepted)); c != nil && c.Status != metav1.ConditionTrue {
		return problem(checkGatewayClass, "the platform team must fix the GatewayClass (often its parametersRef)",
			"GatewayClass %q is not accepted (%s): %s", name, c.Reason, c.Message), false
	}
	return ok(checkGatewayClass, "Gateway %s/%s has class %q, which is Gatehouse's", gw.Namespace, gw.Name, name), true
}

// gatewayReason reports the Gateway's Accepted and Programmed conditions
// and its addresses.
func gatewayReason(gw *gwv1.Gateway) Reason {
	owner := fmt.Sprintf("the owner of Gateway %s/%s (namespace %s)", gw.Namespace, gw.Name, gw.Namespace)
	accepted := meta.FindStatusCondition(gw.Status.Conditions, string(gwv1.GatewayConditionAccepted))
	programmed := meta.FindStatusCondition(gw.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
	addrs := "no address yet"
	if len(gw.Status.Addresses) > 0 {
		var vs []string
		for _, a := range gw.Status.Addresses {
			vs = append(vs, a.Value)
		}
		addrs = "addresses: " + strings.Join(vs, ", ")
	}
	switch {
	case accepted == nil:
		return problem(checkGateway, "wait a moment; if it stays so, check that the hub is running and the cluster is registered",
			"Gatehouse has written no status on Gateway %s/%s yet", gw.Namespace, gw.Name)
	case accepted.Status != metav1.ConditionTrue:
		return problem(checkGateway, owner+" must fix what the condition names",
			"Gateway %s/%s is not accepted (%s): %s", gw.Namespace, gw.Name, accepted.Reason, accepted.Message)
	case programmed == nil || programmed.Status != metav1.ConditionTrue:
		reason, msg := "no condition", "Gatehouse has not reported Programmed yet"
		if programmed != nil {
			reason, msg = programmed.Reason, programmed.Message
		}
		fix := owner + " must start the Gateway's proxies or check that they reach the hub"
		if reason == "Invalid" {
			fix = owner + " must fix what the proxy rejected (the proxy's log has the details); meanwhile the proxies keep serving the table they had"
		}
		return problem(checkGateway, fix, "Gateway %s/%s is accepted but not programmed (%s): %s; %s", gw.Namespace, gw.Name, reason, msg, addrs)
	}
	return ok(checkGateway, "Gateway %s/%s is accepted and programmed; %s%s", gw.Namespace, gw.Name, addrs, proxyVersions(programmed))
}

// listenerSetReason says whether the ListenerSet is accepted by its Gateway.
func listenerSetReason(ls *gwv1.ListenerSet, gw types.NamespacedName) Reason {
	c := meta.FindStatusCondition(ls.Status.Conditions, string(gwv1.ListenerSetConditionAccepted))
	switch {
	case c == nil:
		return problem(checkParent, "wait a moment; if it stays so, check that its Gateway "+gw.String()+" is Gatehouse's and allows ListenerSets",
			"ListenerSet %s/%s has no Accepted condition yet", ls.Namespace, ls.Name)
	case c.Status != metav1.ConditionTrue:
		return problem(checkParent, fmt.Sprintf("the owner of ListenerSet %s/%s must fix what the condition names (Gateway %s's spec.allowedListeners decides which ListenerSets it takes)", ls.Namespace, ls.Name, gw),
			"ListenerSet %s/%s is not accepted by Gateway %s (%s): %s", ls.Namespace, ls.Name, gw, c.Reason, c.Message)
	}
	return ok(checkParent, "ListenerSet %s/%s exists and Gateway %s accepts it", ls.Namespace, ls.Name, gw)
}

func gatewayListeners(gw *gwv1.Gateway) []listenerView {
	return views(attach.GatewayListeners(gw), gw.Status.Listeners)
}

func listenerSetListeners(ls *gwv1.ListenerSet) []listenerView {
	status := make([]gwv1.ListenerStatus, len(ls.Status.Listeners))
	for i, s := range ls.Status.Listeners {
		status[i] = gwv1.ListenerStatus{Name: s.Name, Conditions: s.Conditions, AttachedRoutes: s.AttachedRoutes}
	}
	return views(attach.ListenerSetListeners(ls), status)
}

// views pairs listeners with the status written for them.
func views(ls []*attach.Listener, status []gwv1.ListenerStatus) []listenerView {
	out := make([]listenerView, 0, len(ls))
	for _, l := range ls {
		v := listenerView{Listener: l}
		for _, s := range status {
			if s.Name == l.Name {
				v.hasStatus, v.conditions, v.attached = true, s.Conditions, s.AttachedRoutes
			}
		}
		out = append(out, v)
	}
	return out
}
