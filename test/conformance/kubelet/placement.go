package kubelet

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// The test bed runs no kube-scheduler (building it would add minutes of
// compilation on every fresh machine for a few rules), so the kubelets
// place Pods themselves: each computes the same choice from the cluster
// state and only the chosen node's kubelet binds the Pod. Should two
// kubelets see different states for a moment, a Pod is bound once (the
// API refuses a second binding) or waits for the next look.
//
// The rules are the part of the default scheduler a test of Deployments,
// drains and rollouts relies on: a node must be Ready and not cordoned
// (spec.unschedulable, unless the Pod tolerates
// node.kubernetes.io/unschedulable), match the Pod's nodeSelector, and
// carry no NoSchedule or NoExecute taint the Pod does not tolerate; among
// those, the node with the fewest Pods the Pod's own labels select (its
// Deployment's, across ReplicaSets), then the fewest Pods, then the first
// name.

// errNoNode says why no node fits.
var errNoNode = errors.New("no node fits")

// place picks the node for pod among nodes, given the Pods of the cluster.
// Pods still waiting that came before it (older, or as old with a smaller
// name) are placed first, as a scheduler's queue takes them: a kubelet
// that has not seen another's binding yet still counts that Pod where it
// goes, so two Pods created together do not both go to the first node.
func place(pod *corev1.Pod, nodes []*corev1.Node, pods []*corev1.Pod) (string, error) {
	var queue []*corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName == "" && p.DeletionTimestamp == nil && len(p.Spec.SchedulingGates) == 0 && !terminal(p) && p.UID != pod.UID && before(p, pod) {
			queue = append(queue, p)
		}
	}
	slices.SortFunc(queue, func(a, b *corev1.Pod) int {
		if before(a, b) {
			return -1
		}
		return 1
	})
	placed := map[types.UID]string{}
	for _, p := range queue {
		if n, err := placeOne(p, nodes, pods, placed); err == nil {
			placed[p.UID] = n
		}
	}
	return placeOne(pod, nodes, pods, placed)
}

// before orders waiting Pods: by creation, then by namespace and name.
func before(a, b *corev1.Pod) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// placeOne picks the node for pod, counting the Pods bound to each node
// and those placed on it ahead of pod.
func placeOne(pod *corev1.Pod, nodes []*corev1.Node, pods []*corev1.Pod, placed map[types.UID]string) (string, error) {
	siblings := siblingSelector(pod)
	type candidate struct {
		name            string
		siblings, total int
	}
	var best *candidate
	var refused []string
	for _, n := range nodes {
		if why := unfit(pod, n); why != "" {
			refused = append(refused, n.Name+": "+why)
			continue
		}
		c := candidate{name: n.Name}
		for _, p := range pods {
			node := p.Spec.NodeName
			if node == "" {
				node = placed[p.UID]
			}
			if node != n.Name || p.UID == pod.UID || terminal(p) {
				continue
			}
			c.total++
			if p.Namespace == pod.Namespace && siblings.Matches(labels.Set(p.Labels)) {
				c.siblings++
			}
		}
		if best == nil || cmp.Or(cmp.Compare(c.siblings, best.siblings), cmp.Compare(c.total, best.total), strings.Compare(c.name, best.name)) < 0 {
			best = &c
		}
	}
	if best == nil {
		return "", fmt.Errorf("%w: %s", errNoNode, strings.Join(append(refused, fmt.Sprintf("%d nodes", len(nodes))), "; "))
	}
	return best.name, nil
}

// siblingSelector selects the Pods that carry all of pod's labels but the
// one that tells ReplicaSets of a Deployment apart; a Pod without labels
// has no siblings.
func siblingSelector(pod *corev1.Pod) labels.Selector {
	set := labels.Set{}
	for k, v := range pod.Labels {
		if k != appsv1.DefaultDeploymentUniqueLabelKey {
			set[k] = v
		}
	}
	if len(set) == 0 {
		return labels.Nothing()
	}
	return labels.SelectorFromSet(set)
}

// unfit says why pod may not run on n, "" if it may.
func unfit(pod *corev1.Pod, n *corev1.Node) string {
	if !nodeReady(n) {
		return "not Ready"
	}
	if n.Spec.Unschedulable && !tolerates(pod, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return "cordoned"
	}
	if !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(n.Labels)) {
		return "does not match the nodeSelector"
	}
	for _, t := range n.Spec.Taints {
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !tolerates(pod, t) {
			return "taint " + t.ToString() + " not tolerated"
		}
	}
	return ""
}

func tolerates(pod *corev1.Pod, taint corev1.Taint) bool {
	for _, t := range pod.Spec.Tolerations {
		if t.ToleratesTaint(klog.Background(), &taint, false) {
			return true
		}
	}
	return false
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// placeOf places pod with what the informers hold.
func (k *Kubelet) placeOf(pod *corev1.Pod) (string, error) {
	nodes, err := k.nodes.List(labels.Everything())
	if err != nil {
		return "", err
	}
	pods, err := k.pods.List(labels.Everything())
	if err != nil {
		return "", err
	}
	return place(pod, nodes, pods)
}
