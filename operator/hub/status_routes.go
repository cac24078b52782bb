package hub

import (
	"slices"

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
// that carries the route. A route found up to date is not looked at again
// while its stored version, translate's entries and what the proxies serve
// of it stay the same (upToDate).
func (sw *statusWriter) routes(in translate.Input, out translate.Output, sv *serving) {
	rs := routeStatuses{sw: sw, sv: sv, listenerSets: map[types.NamespacedName]types.NamespacedName{}}
	for _, ls := range in.ListenerSets {
		rs.listenerSets[types.NamespacedName{Namespace: ls.Namespace, Name: ls.Name}] = parentOf(ls)
	}
	if sw.w.upToDate == nil {
		sw.w.upToDate = map[routeID]routeUpToDate{}
	}
	// The memo is kept in place, each entry stamped with the pass that
	// found it up to date: thousands of routes, most of them unchanged.
	sw.w.statusPasses++
	pass := sw.w.statusPasses
	for _, set := range routeSets(in, out) {
		for _, r := range set.routes {
			r = latest(sw, r)
			stored, parents := set.parents(r), set.ours[client.ObjectKeyFromObject(r)]
			id := routeID{set.kind, r.GetNamespace(), r.GetName()}
			answers, settling := rs.answers(set.kind, r, parents)
			if settling {
				delete(sw.w.upToDate, id)
				continue
			}
			seen := routeUpToDate{resourceVersion: r.GetResourceVersion(), ours: parents, answers: answers, pass: pass}
			if prev, ok := sw.w.upToDate[id]; ok && prev.same(seen) {
				sw.w.upToDate[id] = seen
				continue
			}
			next := status.MergeRouteParents(stored, rs.programmed(parents, stored, answers), sw.controller, sw.now)
			if !status.EqualRouteParents(stored, next) {
				announceParents(sw.recorder, r, stored, next, sw.controller)
				sw.update(set.withParents(r, next))
				delete(sw.w.upToDate, id)
				continue
			}
			sw.w.upToDate[id] = seen
		}
	}
	for id, u := range sw.w.upToDate {
		if u.pass != pass {
			delete(sw.w.upToDate, id)
		}
	}
}

type routeID struct{ kind, namespace, name string }

// routeUpToDate is what a route's status was found up to date with.
type routeUpToDate struct {
	resourceVersion string
	ours            []gwv1.RouteParentStatus
	answers         []served
	pass            uint64 // the status pass that found it so
}

func (u routeUpToDate) same(v routeUpToDate) bool {
	return u.resourceVersion == v.resourceVersion && slices.Equal(u.answers, v.answers) &&
		(sameSlice(u.ours, v.ours) || status.EqualRouteParents(u.ours, v.ours))
}

// sameSlice: the same entries of the same output (a status pass after an
// acknowledgement writes from the last pass's).
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// routeStatuses is what the route statuses of one pass are computed from.
type routeStatuses struct {
	sw           *statusWriter
	sv           *serving
	listenerSets map[types.NamespacedName]types.NamespacedName // → their Gateway
}

// answers says, for each of a route's parent entries, whether its Gateway's
// proxies serve the route (the zero answer for entries not accepted), and
// whether the route waits for its first acknowledgement: it is written
// once that comes, not before and after (see settleTime).
func (rs routeStatuses) answers(kind string, r metav1.Object, parents []gwv1.RouteParentStatus) ([]served, bool) {
	routeNS, key := r.GetNamespace(), objectKey(kind, r.GetNamespace(), r.GetName(), r.GetGeneration())
	answers := make([]served, len(parents))
	for i, p := range parents {
		if !meta.IsStatusConditionTrue(p.Conditions, string(gwv1.RouteConditionAccepted)) {
			continue
		}
		gw := gatewayOf(routeNS, p.ParentRef, rs.listenerSets)
		answers[i] = rs.sv.route(kind, gw, key, onParent(routeNS, p.ParentRef))
		if answers[i].settling {
			return nil, true
		}
	}
	return answers, false
}

// programmed adds Programmed to each accepted parent entry of a route, as
// answers say.
func (rs routeStatuses) programmed(parents, stored []gwv1.RouteParentStatus, answers []served) []gwv1.RouteParentStatus {
	out := make([]gwv1.RouteParentStatus, len(parents))
	for i, p := range parents {
		p.Conditions = append([]metav1.Condition(nil), p.Conditions...)
		out[i] = p
		accepted := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
		if accepted == nil || accepted.Status != metav1.ConditionTrue {
			continue
		}
		cond := metav1.Condition{Type: conditionProgramed, Status: metav1.ConditionTrue, Reason: string(gwv1.RouteReasonAccepted), ObservedGeneration: accepted.ObservedGeneration}
		var prev []metav1.Condition
		for _, s := range stored {
			if s.ControllerName == rs.sw.controller && s.ParentRef.Name == p.ParentRef.Name {
				prev = s.Conditions
			}
		}
		out[i].Conditions = programmed(append(out[i].Conditions, cond), answers[i], prev)
	}
	return out
}
