package status

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// EqualRouteParents reports whether two status.parents lists are equal as
// equality.Semantic.DeepEqual sees them (nil and empty alike, times by
// their instant), without reflection: the hub compares every route's
// stored parents with its next ones on every pass.
func EqualRouteParents(a, b []gwv1.RouteParentStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ControllerName != b[i].ControllerName || !equalRef(a[i].ParentRef, b[i].ParentRef) ||
			!EqualConditions(a[i].Conditions, b[i].Conditions) {
			return false
		}
	}
	return true
}

// EqualConditions compares conditions field by field, in order.
func EqualConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Type != y.Type || x.Status != y.Status || x.ObservedGeneration != y.ObservedGeneration ||
			!x.LastTransitionTime.Time.Equal(y.LastTransitionTime.Time) || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}

// equalRef compares parentRefs as written: a field left out differs from
// one set to its default.
func equalRef(a, b gwv1.ParentReference) bool {
	return equalPtr(a.Group, b.Group) && equalPtr(a.Kind, b.Kind) && equalPtr(a.Namespace, b.Namespace) &&
		a.Name == b.Name && equalPtr(a.SectionName, b.SectionName) && equalPtr(a.Port, b.Port)
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
