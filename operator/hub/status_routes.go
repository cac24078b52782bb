package hub

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/status"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// routes writes our entries of every route's status.parents: translate's,
// each accepted one Programmed once its Gateway's proxies serve the table
// that carries the route.
func (sw *statusWriter) routes(in translate.Input, out translate.Output, sv *serving) {
	rs := routeStatuses{sw: sw, sv: sv, listenerSets: map[types.NamespacedName]types.NamespacedName{}}
	for _, ls := range in.ListenerSets {
		rs.listenerSets[types.NamespacedName{Namespace: ls.Namespace, Name: ls.Name}] = parentOf(ls)
	}
	for _, set := range routeSets(in, out) {
		for _, r := range set.routes {
			r = latest(sw, r)
			stored, parents := set.parents(r), set.ours[client.ObjectKeyFromObject(r)]
			if rs.settling(set.kind, r, parents) {
				continue
			}
			next := status.MergeRouteParents(stored, rs.programmed(set.kind, r, parents, stored), sw.controller, sw.now)
			if !status.EqualRouteParents(stored, next) {
				announceParents(sw.recorder, r, stored, next, sw.controller)
				sw.update(set.withParents(r, next))
			}
		}
	}
}

// routeStatuses is what the route statuses of one pass are computed from.
type routeStatuses struct {
	sw           *statusWriter
	sv           *serving
	listenerSets map[types.NamespacedName]types.NamespacedName // → their Gateway
}

// programmed adds Programmed to each accepted parent entry of a route.
func (rs routeStatuses) programmed(kind string, r metav1.Object, parents, stored []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
	routeNS, key := r.GetNamespace(), objectKey(kind, r.GetNamespace(), r.GetName(), r.GetGeneration())
	out := make([]gwv1.RouteParentStatus, len(parents))
	for i, p := range parents {
		p.Conditions = append([]metav1.Condition(nil), p.Conditions...)
		out[i] = p
		accepted := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
		if accepted == nil || accepted.Status != metav1.ConditionTrue {
			continue
		}
		gw := gatewayOf(routeNS, p.ParentRef, rs.listenerSets)
		cond := metav1.Condition{Type: conditionProgramed, Status: metav1.ConditionTrue, Reason: string(gwv1.RouteReasonAccepted), ObservedGeneration: accepted.ObservedGeneration}
		var prev []metav1.Condition
		for _, s := range stored {
			if s.ControllerName == rs.sw.controller && s.ParentRef.Name == p.ParentRef.Name {
				prev = s.Conditions
			}
		}
		f := rs.sv.route(kind, gw, key, onParent(routeNS, p.ParentRef))
		out[i].Conditions = programmed(append(out[i].Conditions, cond), f, prev)
	}
	return out
}

// settling says whether a route waits for its first acknowledgement: it
// is written once that comes, not before and after (see settleTime).
func (rs routeStatuses) settling(kind string, r metav1.Object, parents []gwv1.RouteParentStatus) bool {
	key := objectKey(kind, r.GetNamespace(), r.GetName(), r.GetGeneration())
	for _, p := range parents {
		gw := gatewayOf(r.GetNamespace(), p.ParentRef, rs.listenerSets)
		if meta.IsStatusConditionTrue(p.Conditions, string(gwv1.RouteConditionAccepted)) && rs.sv.fleet(gw, key).settling {
			return true
		}
	}
	return false
}
