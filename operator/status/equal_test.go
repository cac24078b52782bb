package status

import (
	"math/rand/v2"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// EqualRouteParents answers as equality.Semantic.DeepEqual does, on random
// lists that differ in one field or none.
func TestEqualRouteParentsAgreesWithSemanticDeepEqual(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(options ...string) string { return options[r.IntN(len(options))] }
	parents := func() []gwv1.RouteParentStatus {
		var out []gwv1.RouteParentStatus
		for range r.IntN(3) {
			p := gwv1.RouteParentStatus{ControllerName: gwv1.GatewayController(pick("a/b", "c/d")),
				ParentRef: gwv1.ParentReference{Name: gwv1.ObjectName(pick("gw", "other"))}}
			if r.IntN(2) == 0 {
				p.ParentRef.Namespace = ptr.To(gwv1.Namespace(pick("infra", "")))
			}
			if r.IntN(3) == 0 {
				p.ParentRef.SectionName = ptr.To(gwv1.SectionName(pick("http", "https")))
			}
			if r.IntN(4) == 0 {
				p.ParentRef.Port = ptr.To(gwv1.PortNumber(80 + r.IntN(2)))
			}
			for range r.IntN(3) {
				p.Conditions = append(p.Conditions, metav1.Condition{Type: pick("Accepted", "Programmed"), Status: metav1.ConditionStatus(pick("True", "False")),
					Reason: pick("Accepted", "Pending"), Message: pick("", "m"), ObservedGeneration: int64(r.IntN(2)),
					LastTransitionTime: metav1.NewTime(time.Unix(int64(r.IntN(2)), 0))})
			}
			if r.IntN(5) == 0 && p.Conditions == nil {
				p.Conditions = []metav1.Condition{}
			}
			out = append(out, p)
		}
		return out
	}
	equal := 0
	for range 20000 {
		a := parents()
		b := parents()
		if r.IntN(2) == 0 {
			b = a
		}
		want := equality.Semantic.DeepEqual(a, b)
		if got := EqualRouteParents(a, b); got != want {
			t.Fatalf("EqualRouteParents = %v, equality.Semantic.DeepEqual = %v:\n%+v\n%+v", got, want, a, b)
		}
		if want {
			equal++
		}
	}
	if equal < 5000 {
		t.Fatalf("only %d equal pairs: the test compares too little that is equal", equal)
	}
}
