package status_test

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/status"
)

var (
	earlier = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now     = metav1.NewTime(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
)

func cond(t, s, reason string, gen int64, at metav1.Time) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(s), Reason: reason, ObservedGeneration: gen, LastTransitionTime: at}
}

func TestMergeConditions(t *testing.T) {
	foreign := cond("example.com/Audited", "True", "Seeded", 1, earlier)
	tests := []struct {
		name         string
		stored, ours []metav1.Condition
		want         []metav1.Condition
	}{
		{
			name:   "unchanged status keeps its transition time, takes the new generation",
			stored: []metav1.Condition{cond("Accepted", "True", "Accepted", 1, earlier)},
			ours:   []metav1.Condition{cond("Accepted", "True", "Accepted", 2, metav1.Time{})},
			want:   []metav1.Condition{cond("Accepted", "True", "Accepted", 2, earlier)},
		},
		{
			name:   "changed status gets now",
			stored: []metav1.Condition{cond("Accepted", "Unknown", "Pending", 0, earlier)},
			ours:   []metav1.Condition{cond("Accepted", "False", "NoMatchingParent", 3, metav1.Time{})},
			want:   []metav1.Condition{cond("Accepted", "False", "NoMatchingParent", 3, now)},
		},
		{
			name:   "foreign types are kept in place, new ones appended",
			stored: []metav1.Condition{foreign, cond("Accepted", "True", "Accepted", 1, earlier)},
			ours:   []metav1.Condition{cond("Accepted", "True", "Accepted", 1, metav1.Time{}), cond("ResolvedRefs", "True", "ResolvedRefs", 1, metav1.Time{})},
			want:   []metav1.Condition{foreign, cond("Accepted", "True", "Accepted", 1, earlier), cond("ResolvedRefs", "True", "ResolvedRefs", 1, now)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := status.MergeConditions(tt.stored, tt.ours, now)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d conditions, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("condition %d:\n got  %+v\n want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestMergeRouteParentsPreservesForeignEntries(t *testing.T) {
	ours := gwv1.GatewayController("gatehouse.dev/gateway-controller")
	kind := gwv1.Kind("Gateway")
	stale := gwv1.RouteParentStatus{
		ParentRef:      gwv1.ParentReference{Name: "unmanaged-gateway"},
		ControllerName: "gateway.networking.k8s.io/stale-controller",
		Conditions:     []metav1.Condition{cond("Accepted", "True", "Accepted", 1, earlier)},
	}
	old := gwv1.RouteParentStatus{
		ParentRef:      gwv1.ParentReference{Name: "same-namespace"},
		ControllerName: ours,
		Conditions:     []metav1.Condition{cond("Accepted", "True", "Accepted", 1, earlier)},
	}
	gone := gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: "removed"}, ControllerName: ours}
	fresh := gwv1.RouteParentStatus{
		// The same parent, written with defaults spelled out.
		ParentRef:      gwv1.ParentReference{Name: "same-namespace", Kind: &kind},
		ControllerName: ours,
		Conditions:     []metav1.Condition{cond("Accepted", "True", "Accepted", 2, metav1.Time{})},
	}
	got := status.MergeRouteParents([]gwv1.RouteParentStatus{old, stale, gone}, []gwv1.RouteParentStatus{fresh}, ours, now)
	if len(got) != 2 {
		t.Fatalf("got %d parents, want the foreign one and ours: %+v", len(got), got)
	}
	if got[0].ControllerName != stale.ControllerName || got[0].Conditions[0] != stale.Conditions[0] {
		t.Errorf("foreign entry changed: %+v", got[0])
	}
	if c := got[1].Conditions[0]; c.ObservedGeneration != 2 || !c.LastTransitionTime.Equal(&earlier) {
		t.Errorf("our entry: got %+v, want generation 2 with the earlier transition time", c)
	}
}

func TestMergeGatewayStatusByListenerName(t *testing.T) {
	foreign := cond("conformance.gateway.networking.k8s.io/StaleCondition", "True", "Seeded", 1, earlier)
	stored := &gwv1.GatewayStatus{
		Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", 1, earlier), foreign},
		Listeners: []gwv1.ListenerStatus{
			{Name: "https", Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", 1, earlier)}},
			{Name: "http", Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", 1, earlier), foreign}},
		},
	}
	ours := &gwv1.GatewayStatus{
		Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", 2, metav1.Time{})},
		Listeners: []gwv1.ListenerStatus{
			{Name: "http", AttachedRoutes: 3, Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", 2, metav1.Time{})}},
			{Name: "admin", Conditions: []metav1.Condition{cond("Accepted", "False", "UnsupportedProtocol", 2, metav1.Time{})}},
		},
	}
	got := status.MergeGatewayStatus(stored, ours, now)
	if len(got.Conditions) != 2 || got.Conditions[1] != foreign {
		t.Errorf("gateway conditions: %+v", got.Conditions)
	}
	if len(got.Listeners) != 2 || got.Listeners[0].Name != "http" || got.Listeners[1].Name != "admin" {
		t.Fatalf("listeners: %+v (the removed https listener must go)", got.Listeners)
	}
	http := got.Listeners[0]
	if http.AttachedRoutes != 3 || len(http.Conditions) != 2 || http.Conditions[1] != foreign || !http.Conditions[0].LastTransitionTime.Equal(&earlier) {
		t.Errorf("http listener: %+v", http)
	}
	if c := got.Listeners[1].Conditions[0]; !c.LastTransitionTime.Equal(&now) {
		t.Errorf("new listener condition must get now: %+v", c)
	}
}

// TestMergeGatewayStatusRemovesInsecureFrontendValidationMode: the spec
// removes the condition once the mode is back to AllowValidOnly, and keeps
// every other stored condition translate does not set.
func TestMergeGatewayStatusRemovesInsecureFrontendValidationMode(t *testing.T) {
	insecure := cond(string(gwv1.GatewayConditionInsecureFrontendValidationMode), "True", string(gwv1.GatewayReasonConfigurationChanged), 1, earlier)
	foreign := cond("example.com/Audited", "True", "Seeded", 1, earlier)
	stored := &gwv1.GatewayStatus{Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", 1, earlier), insecure, foreign}}
	tests := []struct {
		name  string
		ours  []metav1.Condition
		types []string
	}{
		{"still insecure", []metav1.Condition{cond("Accepted", "True", "Accepted", 2, metav1.Time{}), insecure},
			[]string{"Accepted", string(gwv1.GatewayConditionInsecureFrontendValidationMode), "example.com/Audited"}},
		{"back to AllowValidOnly", []metav1.Condition{cond("Accepted", "True", "Accepted", 2, metav1.Time{})},
			[]string{"Accepted", "example.com/Audited"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := status.MergeGatewayStatus(stored, &gwv1.GatewayStatus{Conditions: tt.ours}, now)
			var types []string
			for _, c := range got.Conditions {
				types = append(types, c.Type)
			}
			if fmt.Sprint(types) != fmt.Sprint(tt.types) {
				t.Errorf("conditions %v, want %v", types, tt.types)
			}
			if len(stored.Conditions) != 3 {
				t.Errorf("the stored status was changed: %+v", stored.Conditions)
			}
		})
	}
}
