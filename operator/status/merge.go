// Package status merges what translate computes into what a cluster stores,
// the way the Gateway API asks controllers to: only our own route parent
// entries and our own condition types change; everything another controller
// wrote is kept as it is, in its place.
package status

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// MergeConditions returns stored with each condition of ours replacing the
// stored condition of the same type; other types are kept in place. A
// condition whose status did not change keeps its lastTransitionTime; a new
// or changed one gets now.
func MergeConditions(stored, ours []metav1.Condition, now metav1.Time) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(stored)+len(ours))
	used := make([]bool, len(ours))
	for _, s := range stored {
		i := indexOf(ours, s.Type)
		if i < 0 {
			out = append(out, s)
			continue
		}
		used[i] = true
		out = append(out, withTransitionTime(ours[i], &s, now))
	}
	for i, c := range ours {
		if !used[i] {
			out = append(out, withTransitionTime(c, nil, now))
		}
	}
	return out
}

func withTransitionTime(c metav1.Condition, prev *metav1.Condition, now metav1.Time) metav1.Condition {
	if prev != nil && prev.Status == c.Status && !prev.LastTransitionTime.IsZero() {
		c.LastTransitionTime = prev.LastTransitionTime
	} else {
		c.LastTransitionTime = now
	}
	return c
}

func indexOf(conds []metav1.Condition, condType string) int {
	for i := range conds {
		if conds[i].Type == condType {
			return i
		}
	}
	return -1
}

// MergeRouteParents replaces the stored parents[] entries written by
// controller with ours, keeping other controllers' entries untouched and in
// place. Our entries keep the order of ours; conditions of an entry that
// existed before keep their transition times.
func MergeRouteParents(stored, ours []gwv1.RouteParentStatus, controller gwv1.GatewayController, now metav1.Time) []gwv1.RouteParentStatus {
	var out []gwv1.RouteParentStatus
	var previous []gwv1.RouteParentStatus
	for _, p := range stored {
		if p.ControllerName == controller {
			previous = append(previous, p)
			continue
		}
		out = append(out, p)
	}
	for _, p := range ours {
		var prev []metav1.Condition
		for _, q := range previous {
			if sameParent(p.ParentRef, q.ParentRef) {
				prev = q.Conditions
				break
			}
		}
		p.Conditions = MergeConditions(prev, p.Conditions, now)
		out = append(out, p)
	}
	return out
}

// sameParent compares parentRefs with their defaults applied.
func sameParent(a, b gwv1.ParentReference) bool {
	str := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	port := func(p *gwv1.PortNumber) gwv1.PortNumber {
		if p == nil {
			return 0
		}
		return *p
	}
	return str((*string)(a.Group), gwv1.GroupName) == str((*string)(b.Group), gwv1.GroupName) &&
		str((*string)(a.Kind), "Gateway") == str((*string)(b.Kind), "Gateway") &&
		str((*string)(a.Namespace), "") == str((*string)(b.Namespace), "") &&
		a.Name == b.Name &&
		str((*string)(a.SectionName), "") == str((*string)(b.SectionName), "") &&
		port(a.Port) == port(b.Port)
}

// MergeGatewayStatus merges our Gateway status into the stored one: our
// conditions by type, and our listeners by name, each listener's conditions
// merged the same way. Listeners that are no longer in the spec are dropped;
// addresses are ours.
func MergeGatewayStatus(stored, ours *gwv1.GatewayStatus, now metav1.Time) *gwv1.GatewayStatus {
	out := ours.DeepCopy()
	out.Conditions = MergeConditions(withoutRemoved(stored.Conditions, ours.Conditions), ours.Conditions, now)
	for i := range out.Listeners {
		l := &out.Listeners[i]
		var prev []metav1.Condition
		for _, s := range stored.Listeners {
			if s.Name == l.Name {
				prev = s.Conditions
				break
			}
		}
		l.Conditions = MergeConditions(prev, l.Conditions, now)
	}
	return out
}

// removedWhenAbsent are the Gateway condition types the spec has the
// Gateway's controller remove, not set False, once they no longer hold:
// InsecureFrontendValidationMode "is removed as soon as
// FrontendValidationModeType is changed back to `AllowValidOnly`". A stored
// one that ours lacks is ours to drop.
var removedWhenAbsent = []string{string(gwv1.GatewayConditionInsecureFrontendValidationMode)}

// withoutRemoved is stored less the conditions of removedWhenAbsent that
// ours no longer sets.
func withoutRemoved(stored, ours []metav1.Condition) []metav1.Condition {
	out := stored
	for _, t := range removedWhenAbsent {
		if i := indexOf(out, t); i >= 0 && indexOf(ours, t) < 0 {
			out = append(out[:i:i], out[i+1:]...)
		}
	}
	return out
}

// Now is the time a status writer stamps on changed conditions; conditions
// are stored at second precision.
func Now() metav1.Time {
	return metav1.NewTime(time.Now().Truncate(time.Second))
}
