package kubelet

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestPlace(t *testing.T) {
	node := func(name string, mod ...func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"zone": "a"}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		for _, m := range mod {
			m(n)
		}
		return n
	}
	cordoned := func(n *corev1.Node) { n.Spec.Unschedulable = true }
	notReady := func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
	tainted := func(n *corev1.Node) {
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
	}
	zoneB := func(n *corev1.Node) { n.Labels["zone"] = "b" }
	pod := func(name, node string, labels map[string]string, mod ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name), Labels: labels},
			Spec: corev1.PodSpec{NodeName: node}}
		for _, m := range mod {
			m(p)
		}
		return p
	}
	hub := map[string]string{"app": "hub", "pod-template-hash": "new"}
	oldHub := map[string]string{"app": "hub", "pod-template-hash": "old", "gatehouse.dev/role": "active"}
	other := map[string]string{"app": "other"}
	succeeded := func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }
	tolerateCordon := func(p *corev1.Pod) {
		p.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists}}
	}
	for _, c := range []struct {
		name  string
		pod   *corev1.Pod
		nodes []*corev1.Node
		pods  []*corev1.Pod
		want  string // "" when no node fits
	}{
		{"first name on a tie", pod("p", "", hub), []*corev1.Node{node("b"), node("a")}, nil, "a"},
		{"away from siblings of another ReplicaSet", pod("p", "", hub), []*corev1.Node{node("a"), node("b")},
			[]*corev1.Pod{pod("h1", "a", oldHub), pod("o1", "b", other), pod("o2", "b", other)}, "b"},
		{"fewest Pods when siblings tie", pod("p", "", hub), []*corev1.Node{node("a"), node("b")},
			[]*corev1.Pod{pod("o1", "a", other)}, "b"},
		{"finished Pods do not count", pod("p", "", hub), []*corev1.Node{node("a"), node("b")},
			[]*corev1.Pod{pod("h1", "a", hub, succeeded), pod("o1", "b", other)}, "a"},
		{"not on a cordoned node", pod("p", "", hub), []*corev1.Node{node("a", cordoned), node("b")},
			[]*corev1.Pod{pod("h1", "b", hub)}, "b"},
		{"on a cordoned node when tolerated", pod("p", "", hub, tolerateCordon), []*corev1.Node{node("a", cordoned), node("b")},
			[]*corev1.Pod{pod("h1", "b", hub)}, "a"},
		{"not on a node that is not Ready", pod("p", "", hub), []*corev1.Node{node("a", notReady), node("b")}, nil, "b"},
		{"not on a tainted node", pod("p", "", hub), []*corev1.Node{node("a", tainted), node("b")}, nil, "b"},
		{"nodeSelector", pod("p", "", hub, func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "b"} }),
			[]*corev1.Node{node("a"), node("b", zoneB)}, nil, "b"},
		{"nowhere", pod("p", "", hub), []*corev1.Node{node("a", cordoned), node("b", notReady)}, nil, ""},
		{"after a sibling still waiting ahead of it", pod("p2", "", hub), []*corev1.Node{node("a"), node("b")},
			[]*corev1.Pod{pod("p1", "", hub)}, "b"},
		{"before a sibling waiting behind it", pod("p1", "", hub), []*corev1.Node{node("a"), node("b")},
			[]*corev1.Pod{pod("p2", "", hub)}, "a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := place(c.pod, c.nodes, c.pods)
			if c.want == "" {
				if err == nil || !strings.Contains(err.Error(), "a: cordoned") || !strings.Contains(err.Error(), "b: not Ready") {
					t.Fatalf("placed on %q (%v), want an error naming why each node does not fit", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("placed on %q (%v), want %q", got, err, c.want)
			}
		})
	}
}
