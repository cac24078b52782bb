package explain

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/tenancy"
)

// inspection is one route in one member cluster being explained.
type inspection struct {
	ctx     context.Context
	c       client.Client
	hub     hubView
	cluster tenancy.Cluster
	r       *route
	// nsLabels are the labels of the route's namespace; nsErr says why
	// they could not be read.
	nsLabels map[string]string
	nsErr    error
}

// explainCluster explains the route in one member cluster; the error is
// NotFound when the route is not there.
func explainCluster(ctx context.Context, c client.Client, hub hubView, cl tenancy.Cluster, kind string, key types.NamespacedName) (*ClusterReport, error) {
	r, err := getRoute(ctx, c, kind, key)
	if err != nil {
		return nil, err
	}
	in := &inspection{ctx: ctx, c: c, hub: hub, cluster: cl, r: r}
	var ns corev1.Namespace
	if err := c.Get(ctx, types.NamespacedName{Name: key.Namespace}, &ns); err != nil {
		in.nsErr = err
	} else {
		in.nsLabels = ns.Labels
	}
	out := &ClusterReport{Cluster: cl.Name, Generation: r.generation}
	for _, p := range r.parents {
		if p.ControllerName != translate.ControllerName {
			out.OtherControllers = append(out.OtherControllers, fmt.Sprintf("%s (parent %s)", p.ControllerName, keyOf(key.Namespace, p.ParentRef)))
		}
	}
	backends := in.backendReasons()
	for i, p := range r.parentRefs {
		out.Parents = append(out.Parents, in.explainParent(i, p, backends))
	}
	return out, nil
}

// Cluster explains a route of kind in one member cluster, read through c,
// with the fleet's tenancy view; the error is NotFound when the route is
// not there.
func Cluster(ctx context.Context, c client.Client, tenants *tenancy.View, cl tenancy.Cluster, kind string, key types.NamespacedName) (*ClusterReport, error) {
	return explainCluster(ctx, c, hubView{tenants: tenants}, cl, kind, key)
}

// ourStatus is Gatehouse's status entry for a parentRef, or nil.
func (in *inspection) ourStatus(k parentKey) *gwv1.RouteParentStatus {
	for i, p := range in.r.parents {
		if p.ControllerName == translate.ControllerName && keyOf(in.r.key.Namespace, p.ParentRef) == k {
			return &in.r.parents[i]
		}
	}
	return nil
}

// explainParent runs every check of one parentRef, in the order a person
// reads them: the parent, its listeners, attachment and the decisions of
// tenancy and policy, the backends, and whether proxies serve it.
func (in *inspection) explainParent(i int, p gwv1.ParentReference, backends []Reason) ParentReport {
	k := keyOf(in.r.key.Namespace, p)
	rep := ParentReport{Parent: k.String()}
	if !k.ours() {
		rep.Verdict = verdictNotAttached + " by Gatehouse"
		rep.Reasons = []Reason{problem(checkParent,
			"if this parent should be served by Gatehouse, point spec.parentRefs["+fmt.Sprint(i)+"] at a Gateway or ListenerSet",
			"Gatehouse serves parents of kind Gateway or ListenerSet (group %s), not %s of group %q: another controller may serve this one", gwv1.GroupName, k.kind, k.group)}
		return rep
	}
	info, rs := in.parentObjects(i, k)
	if info.ours {
		lrs, taking := in.listenerReasons(i, k, p, info)
		rs = append(rs, lrs...)
		for _, c := range taking {
			rep.Listeners = append(rep.Listeners, string(c.Listener.Name))
		}
	}

	st := in.ourStatus(k)
	var conds []metav1.Condition
	if st != nil {
		conds = st.Conditions
	}
	accepted := meta.FindStatusCondition(conds, string(gwv1.RouteConditionAccepted))
	attached := accepted != nil && accepted.Status == metav1.ConditionTrue
	programmed := meta.FindStatusCondition(conds, checkProgrammed)
	served := attached && programmed != nil && programmed.Status == metav1.ConditionTrue

	if r := in.statusReason(info, st, accepted); r != nil {
		rs = append([]Reason{*r}, rs...)
	}
	decided := in.tenancyReasons(accepted)
	if accepted != nil {
		rs = append(rs, acceptedReason(accepted, slices.Concat(rs, decided)))
	}
	rs = append(rs, decided...)
	if c := meta.FindStatusCondition(conds, translate.ConditionPolicyCompliant); c != nil {
		rs = append(rs, policyCompliantReason(c))
	}
	rs = append(rs, backends...)
	resolved := meta.FindStatusCondition(conds, string(gwv1.RouteConditionResolvedRefs))
	if resolved != nil {
		rs = append(rs, resolvedRefsReason(resolved, backends))
	}
	if st != nil || info.ours {
		rs = append(rs, in.programmedReason(k, info, attached, programmed))
	}

	rep.Attached, rep.Served, rep.Reasons = attached, served, rs
	switch {
	case served:
		rep.Verdict = verdictServed
	case attached:
		rep.Verdict = verdictNotServed
	default:
		rep.Verdict = verdictNotAttached
	}
	if attached && resolved != nil && resolved.Status != metav1.ConditionTrue {
		rep.Verdict += "; but some backendRefs do not resolve (ResolvedRefs=False): " + in.r.failedShare()
	}
	return rep
}

// statusReason says when Gatehouse's status for the parent is missing or
// older than the route.
func (in *inspection) statusReason(info parentInfo, st *gwv1.RouteParentStatus, accepted *metav1.Condition) *Reason {
	registered := fmt.Sprintf("wait a moment and run explain again; if it stays so, check that the hub is running and that cluster %s is registered with it", in.cluster.Name)
	switch {
	case st == nil && info.ours:
		r := problem(checkStatus, registered, "Gatehouse has written no status for this parent yet")
		return &r
	case st == nil:
		return nil
	case accepted == nil:
		r := problem(checkStatus, registered, "Gatehouse's status for this parent has no Accepted condition yet")
		return &r
	case accepted.ObservedGeneration != in.r.generation:
		r := problem(checkStatus, registered,
			"the status describes generation %d of the route, which is now at generation %d: the hub has not caught up with the latest change, so what follows may be out of date",
			accepted.ObservedGeneration, in.r.generation)
		return &r
	}
	return nil
}
