package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	policyv1 "github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// Condition types and reasons of Tenants and RoutePolicies.
const (
	ConditionAccepted   = "Accepted"
	ConditionConflicted = "Conflicted"
	ConditionCompiled   = "Compiled"

	ReasonValid                 = "Valid"
	ReasonInvalid               = "Invalid"
	ReasonNoConflict            = "NoConflict"
	ReasonOverlappingDelegation = "OverlappingDelegation"
	ReasonCompiled              = "Compiled"
	ReasonCompileError          = "CompileError"
)

// maxViolations listed in a Tenant's status.
const maxViolations = 50

// SetupWithManager watches Tenants, RoutePolicies and the cluster Secrets on
// the hub cluster (mgr is the hub's own manager) and writes their status.
func (d *Decisions) SetupWithManager(mgr ctrl.Manager, retrigger func()) error {
	d.retrigger = retrigger
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: "fleet"}}}
	})
	spec := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))
	secrets := builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := o.GetLabels()[ClusterSecretLabel]
		return o.GetNamespace() == d.namespace && ok
	}))
	err := ctrl.NewControllerManagedBy(mgr).Named("gatehouse-tenancy").
		Watches(&tenancyv1.Tenant{}, one, spec).
		Watches(&policyv1.RoutePolicy{}, one, spec).
		Watches(&corev1.Secret{}, one, secrets).
		Complete(reconcile.Func(func(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
			return reconcile.Result{}, d.Rebuild(ctx)
		}))
	if err != nil {
		return err
	}
	return mgr.Add(d)
}

// Start writes Tenant and RoutePolicy status whenever a pass reported
// something new, at most twice a second.
func (d *Decisions) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.dirty:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
		if err := d.writeStatus(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("writing Tenant and RoutePolicy status failed; retrying", "error", err)
			time.AfterFunc(2*time.Second, d.markDirty)
		}
	}
}

func (d *Decisions) writeStatus(ctx context.Context) error {
	var tenants tenancyv1.TenantList
	var policies policyv1.RoutePolicyList
	if err := d.hub.List(ctx, &tenants); err != nil {
		return err
	}
	if err := d.hub.List(ctx, &policies); err != nil {
		return err
	}
	view := d.Decider().Tenancy
	d.mu.Lock()
	reports := make(map[string]*clusterReport, len(d.reports))
	for k, v := range d.reports {
		reports[k] = v
	}
	compileErrors := d.compileErrors
	d.mu.Unlock()
	now := metav1.Now()
	var errs []error
	for i := range tenants.Items {
		t := &tenants.Items[i]
		want := t.Status.DeepCopy()
		want.ObservedGeneration = t.Generation
		want.Namespaces, want.Violations, want.AttachedRoutes, want.ViolationCount = nil, nil, 0, 0
		conflicts := slices.Clone(view.Conflicts(t.Name))
		for _, cluster := range sortedKeys(reports) {
			r := reports[cluster]
			if nss := r.namespaces[t.Name]; len(nss) > 0 {
				want.Namespaces = append(want.Namespaces, tenancyv1.ClusterNamespaces{Cluster: cluster, Namespaces: slices.Sorted(slices.Values(nss))})
			}
			conflicts = append(conflicts, r.losers[t.Name]...)
			want.AttachedRoutes += int32(r.attached[t.Name])
			want.ViolationCount += int32(len(r.violations[t.Name]))
			for _, v := range r.violations[t.Name] {
				if len(want.Violations) < maxViolations {
					want.Violations = append(want.Violations, v)
				}
			}
		}
		if problems := view.Problems(t.Name); len(problems) > 0 {
			setCondition(want, ConditionAccepted, false, ReasonInvalid, "these parts of the spec are invalid and not in effect: "+strings.Join(problems, "; "), t.Generation, now)
		} else {
			setCondition(want, ConditionAccepted, true, ReasonValid, "the delegation is in effect", t.Generation, now)
		}
		if len(conflicts) > 0 {
			setCondition(want, ConditionConflicted, true, ReasonOverlappingDelegation, "an older tenant holds an equally specific delegation, which stays with it: "+strings.Join(limit(conflicts, 20), "; "), t.Generation, now)
		} else {
			setCondition(want, ConditionConflicted, false, ReasonNoConflict, "no other tenant holds an equally specific delegation", t.Generation, now)
		}
		if !equality.Semantic.DeepEqual(&t.Status, want) {
			t.Status = *want
			errs = append(errs, client.IgnoreNotFound(d.hub.Status().Update(ctx, t)))
		}
	}
	for i := range policies.Items {
		p := &policies.Items[i]
		want := p.Status.DeepCopy()
		want.ObservedGeneration = p.Generation
		want.Violations = 0
		for _, r := range reports {
			want.Violations += int32(r.policies[p.Name])
		}
		if err := compileErrors[p.Name]; err != nil {
			setPolicyCondition(want, false, ReasonCompileError, err.Error(), p.Generation, now)
		} else {
			setPolicyCondition(want, true, ReasonCompiled, fmt.Sprintf("the module compiled; enforcement %s", p.Spec.Enforcement), p.Generation, now)
		}
		if !equality.Semantic.DeepEqual(&p.Status, want) {
			p.Status = *want
			errs = append(errs, client.IgnoreNotFound(d.hub.Status().Update(ctx, p)))
		}
	}
	return errors.Join(errs...)
}

func limit(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}

func condition(t string, ok bool, reason, message string, gen int64, now metav1.Time) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: message, ObservedGeneration: gen, LastTransitionTime: now}
}

// setCondition keeps lastTransitionTime when the status did not change.
func setCondition(st *tenancyv1.TenantStatus, t string, ok bool, reason, message string, gen int64, now metav1.Time) {
	c := condition(t, ok, reason, message, gen, now)
	if old := meta.FindStatusCondition(st.Conditions, t); old != nil && old.Status == c.Status {
		c.LastTransitionTime = old.LastTransitionTime
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

func setPolicyCondition(st *policyv1.RoutePolicyStatus, ok bool, reason, message string, gen int64, now metav1.Time) {
	c := condition(ConditionCompiled, ok, reason, message, gen, now)
	if old := meta.FindStatusCondition(st.Conditions, ConditionCompiled); old != nil && old.Status == c.Status {
		c.LastTransitionTime = old.LastTransitionTime
	}
	meta.SetStatusCondition(&st.Conditions, c)
}
