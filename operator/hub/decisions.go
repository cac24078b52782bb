package hub

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/policy"
	policyv1 "github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/policy/rego"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// ClusterSecretLabel marks the members' kubeconfig Secrets on the hub; the
// other labels of such a Secret are the cluster's labels, which Tenants and
// RoutePolicies select clusters by.
const ClusterSecretLabel = "sigs.k8s.io/multicluster-runtime-kubeconfig"

// Decisions keeps the fleet's tenancy view and policy set current and
// hands every cluster pass, and the admission webhook, the same Decider.
type Decisions struct {
	hub        client.Client
	namespace  string
	unassigned tenancy.Unassigned
	engine     *rego.Engine
	routes     *tenancy.Routes
	log        *slog.Logger
	// retrigger asks every cluster to be translated again.
	retrigger func()

	decider atomic.Pointer[policy.Decider]
	labels  atomic.Pointer[map[string]map[string]string]

	mu sync.Mutex
	// compileErrors of RoutePolicies by name, and the generation read.
	compileErrors map[string]error
	generations   map[string]int64
	// reports: what the last pass of each cluster found, for Tenant and
	// RoutePolicy status.
	reports map[string]*clusterReport
	// cache of policy results across passes, by cluster and route.
	cache map[string]map[string]cachedPolicy
	dirty chan struct{}
}

// DecisionsOptions configure Decisions.
type DecisionsOptions struct {
	// Namespace holds the members' kubeconfig Secrets.
	Namespace string
	// Unassigned: what routes in namespaces of no tenant get.
	Unassigned tenancy.Unassigned
	Log        *slog.Logger
}

// NewDecisions returns Decisions reading Tenants, RoutePolicies and cluster
// Secrets through hub (the hub cluster's cached client).
func NewDecisions(hub client.Client, opts DecisionsOptions) *Decisions {
	d := &Decisions{
		hub: hub, namespace: opts.Namespace, unassigned: opts.Unassigned, log: opts.Log,
		engine: rego.New(rego.Options{}), routes: tenancy.NewRoutes(),
		compileErrors: map[string]error{}, generations: map[string]int64{},
		reports: map[string]*clusterReport{}, cache: map[string]map[string]cachedPolicy{},
		dirty: make(chan struct{}, 1), retrigger: func() {},
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.decider.Store(&policy.Decider{Tenancy: tenancy.NewView(nil, opts.Unassigned), Routes: d.routes, Engine: d.engine})
	empty := map[string]map[string]string{}
	d.labels.Store(&empty)
	return d
}

// Decider is the current decision function.
func (d *Decisions) Decider() *policy.Decider { return d.decider.Load() }

// ClusterLabels returns a member's labels.
func (d *Decisions) ClusterLabels(name string) map[string]string { return (*d.labels.Load())[name] }

// Rebuild reads every Tenant, RoutePolicy and cluster Secret and swaps in
// a new Decider; every cluster is translated again.
func (d *Decisions) Rebuild(ctx context.Context) error {
	var tenants tenancyv1.TenantList
	var policies policyv1.RoutePolicyList
	var secrets corev1.SecretList
	if err := d.hub.List(ctx, &tenants); err != nil {
		return fmt.Errorf("listing Tenants: %w", err)
	}
	if err := d.hub.List(ctx, &policies); err != nil {
		return fmt.Errorf("listing RoutePolicies: %w", err)
	}
	if err := d.hub.List(ctx, &secrets, client.InNamespace(d.namespace), client.HasLabels{ClusterSecretLabel}); err != nil {
		return fmt.Errorf("listing cluster Secrets: %w", err)
	}
	labels := map[string]map[string]string{}
	for _, s := range secrets.Items {
		labels[s.Name] = s.Labels
	}
	d.labels.Store(&labels)

	items := make([]*tenancyv1.Tenant, len(tenants.Items))
	for i := range tenants.Items {
		items[i] = &tenants.Items[i]
	}
	view := tenancy.NewView(items, d.unassigned)
	if err := d.engine.SetData(ctx, "tenants", policy.TenantData(view)); err != nil {
		return err
	}

	var mods []rego.Module
	compiled := map[string]*policy.Policy{}
	invalid := map[string]error{}
	gens := map[string]int64{}
	for i := range policies.Items {
		p := &policies.Items[i]
		gens[p.Name] = p.Generation
		pol, err := policy.NewPolicy(p)
		if err != nil {
			invalid[p.Name] = err
			continue
		}
		compiled[p.Name] = pol
		m := rego.Module{Name: p.Name, Source: p.Spec.Rego}
		if p.Spec.Parameters != nil {
			m.Parameters = p.Spec.Parameters.Raw
		}
		mods = append(mods, m)
	}
	for name, err := range d.engine.Load(mods) {
		invalid[name] = err
		delete(compiled, name)
	}
	d.mu.Lock()
	d.compileErrors, d.generations = invalid, gens
	d.mu.Unlock()
	d.decider.Store(&policy.Decider{Tenancy: view, Routes: d.routes, Engine: d.engine, Policies: compiled})
	d.markDirty()
	d.retrigger()
	return nil
}

func (d *Decisions) markDirty() {
	select {
	case d.dirty <- struct{}{}:
	default:
	}
}

// cachedPolicy is a route's policy result, valid while the route's
// generation and metadata, the Decider and the fleet data are the same;
// and its verdict, valid while its namespace's labels are the same too and
// its tenant has no limits (which rank it against the tenant's other
// routes, fleet-wide).
type cachedPolicy struct {
	uid        types.UID
	generation int64
	labels     map[string]string
	annots     map[string]string
	decider    *policy.Decider
	result     policy.PolicyResult
	tenant     string
	verdict    *routeVerdict
	nsLabels   map[string]string
}

// clusterReport is what one pass found, for Tenant and RoutePolicy status.
type clusterReport struct {
	namespaces map[string][]string // tenant → namespaces
	losers     map[string][]string // tenant → namespaces held by another
	attached   map[string]int      // tenant → attached routes
	violations map[string][]tenancyv1.Violation
	policies   map[string]int // policy → violations
}

// pass decides for one translation of one cluster.
type pass struct {
	d        *Decisions
	decider  *policy.Decider
	ctx      context.Context
	cluster  tenancy.Cluster
	nsLabels map[string]map[string]string
	tenantOf map[string]string
	// losers: namespaces held by one tenant that others claimed as well.
	losers   map[string][]string
	verdicts map[string]*routeVerdict
	cache    map[string]cachedPolicy
	next     map[string]cachedPolicy
	// unsettled: some policy could not be evaluated in this pass; the
	// cluster must be translated again soon (Unsettled).
	unsettled bool
}

// Unsettled says whether a policy could not be evaluated in this pass
// (policy.PolicyResult.Unsettled): the cluster needs another pass soon,
// whether or not anything changes.
func (p *pass) Unsettled() bool { return p.unsettled }

// routeVerdict is the object-level verdict of a route or ListenerSet in
// one pass (policy.Decider.Verdict), kept as the pass reports it.
type routeVerdict struct {
	tenant     string
	denials    []policy.Denial
	warnings   []string
	violations map[string]int
}

func newRouteVerdict(v policy.Verdict) *routeVerdict {
	return &routeVerdict{tenant: v.Tenant, denials: v.Denials, warnings: v.Warnings, violations: v.Violations}
}

func (v *routeVerdict) verdict() policy.Verdict {
	return policy.Verdict{Tenant: v.tenant, Denials: v.denials, Warnings: v.warnings, Violations: v.violations}
}

// forPass prepares the decisions of one pass of a cluster: it indexes the
// cluster's routes for tenant limits and returns the authorizer and the
// hostname owners to translate with.
func (d *Decisions) forPass(ctx context.Context, cluster string, in *translate.Input) *pass {
	p := &pass{
		d: d, decider: d.Decider(), ctx: ctx,
		cluster:  tenancy.Cluster{Name: cluster, Labels: d.ClusterLabels(cluster)},
		nsLabels: make(map[string]map[string]string, len(in.Namespaces)),
		tenantOf: make(map[string]string, len(in.Namespaces)),
		losers:   map[string][]string{},
		verdicts: map[string]*routeVerdict{},
		next:     map[string]cachedPolicy{},
	}
	for _, ns := range in.Namespaces {
		p.nsLabels[ns.Name] = ns.Labels
		owner, losers := p.decider.Tenancy.NamespaceOwner(p.cluster, ns.Name, ns.Labels)
		p.tenantOf[ns.Name] = owner
		if len(losers) > 0 {
			p.losers[ns.Name] = losers
		}
	}
	// Every tenant's routes of every kind count toward its limits.
	var entries []tenancy.RouteEntry
	for _, set := range routeSets(*in, translate.Output{}) {
		for _, r := range set.routes {
			if t := p.tenantOf[r.GetNamespace()]; t != "" {
				entries = append(entries, policy.RouteEntry(set.kind, r, t))
			}
		}
	}
	if changed := d.routes.SetCluster(cluster, entries); len(changed) > 0 {
		for _, t := range changed {
			if p.decider.Tenancy.Limits(t) != nil {
				// Another cluster's routes of this tenant may now rank
				// differently against its limits.
				d.retrigger()
				break
			}
		}
	}
	d.mu.Lock()
	p.cache = d.cache[cluster]
	d.mu.Unlock()
	in.Authorizer, in.Owners = p, p.decider.Tenancy
	return p
}

func (p *pass) subject(kind string, o client.Object) policy.Subject {
	return policy.Subject{Cluster: p.cluster, Kind: kind, Object: o, NamespaceLabels: p.nsLabels[o.GetNamespace()]}
}

// verdict is the object-level decision of a route or ListenerSet, once per
// pass: policy.Decider.Verdict with the tenant of the namespace owners the
// pass computed, and policy results reused across passes while nothing
// they read changed.
func (p *pass) verdict(kind string, o client.Object) *routeVerdict {
	id := kind + "/" + o.GetNamespace() + "/" + o.GetName()
	if v := p.verdicts[id]; v != nil {
		return v
	}
	s := p.subject(kind, o)
	tenant := p.tenantOf[o.GetNamespace()]
	var result policy.PolicyResult
	if c, ok := p.cache[id]; ok && c.uid == o.GetUID() && c.generation == o.GetGeneration() && c.decider == p.decider && c.tenant == tenant &&
		maps.Equal(c.labels, o.GetLabels()) && maps.Equal(c.annots, o.GetAnnotations()) {
		if c.verdict != nil && maps.Equal(c.nsLabels, s.NamespaceLabels) && p.decider.Tenancy.Limits(tenant) == nil {
			p.next[id], p.verdicts[id] = c, c.verdict
			return c.verdict
		}
		result = c.result
	} else {
		result = p.decider.Evaluate(p.ctx, tenant, s)
	}
	v := newRouteVerdict(p.decider.Verdict(tenant, s, result))
	if result.Unsettled {
		// A timeout is not a verdict: evaluate again on the next pass.
		p.unsettled = true
	} else {
		p.next[id] = cachedPolicy{uid: o.GetUID(), generation: o.GetGeneration(), labels: o.GetLabels(), annots: o.GetAnnotations(), decider: p.decider,
			result: result, tenant: tenant, verdict: v, nsLabels: s.NamespaceLabels}
	}
	p.verdicts[id] = v
	return v
}

// AuthorizeAttachment implements translate.AttachmentAuthorizer.
func (p *pass) AuthorizeAttachment(req translate.AttachmentRequest) translate.Decision {
	o, ok := req.Route.(client.Object)
	if !ok {
		return translate.Decision{Allowed: true}
	}
	return p.attached(req.Kind, o, policy.Attachment{Gateway: req.Gateway, Listener: req.Listener, Hostnames: req.Hostnames,
		Path: field.NewPath("spec", "parentRefs").Index(req.Parent)})
}

// AuthorizeListenerSet implements translate.ListenerSetAuthorizer.
func (p *pass) AuthorizeListenerSet(ls *gwv1.ListenerSet, gw *gwv1.Gateway) translate.Decision {
	return p.attached("ListenerSet", ls, policy.Attachment{Gateway: gw})
}

// attached decides one attachment of an object, as admission does.
func (p *pass) attached(kind string, o client.Object, a policy.Attachment) translate.Decision {
	v := p.decider.Attached(p.verdict(kind, o).verdict(), p.subject(kind, o), a)
	d := translate.Decision{Allowed: v.Allowed(), Owner: v.Tenant, Warnings: v.Warnings}
	if !d.Allowed {
		d.Reason, d.Message = v.Reason(), v.Message()
	}
	return d
}

// AuthorizeCertificate implements certificates.Authorizer: the tenant is
// that of the namespace of the listener's owner.
func (p *pass) AuthorizeCertificate(r policy.CertificateRequest) []policy.Denial {
	r.Cluster = p.cluster
	ns := r.Gateway.Namespace
	if r.ListenerSet != nil {
		ns = r.ListenerSet.Namespace
	}
	return p.decider.Certificate(p.tenantOf[ns], r)
}

// report records what the pass found, for Tenant and RoutePolicy status.
func (p *pass) report(in translate.Input, out translate.Output) {
	r := &clusterReport{namespaces: map[string][]string{}, losers: map[string][]string{}, attached: map[string]int{}, violations: map[string][]tenancyv1.Violation{}, policies: map[string]int{}}
	for _, ns := range in.Namespaces {
		owner := p.tenantOf[ns.Name]
		if owner != "" {
			r.namespaces[owner] = append(r.namespaces[owner], ns.Name)
		}
		for _, l := range p.losers[ns.Name] {
			r.losers[l] = append(r.losers[l], fmt.Sprintf("namespace %q of cluster %q is held by tenant %q", ns.Name, p.cluster.Name, owner))
		}
	}
	routeReport := func(kind string, o client.Object, parents []gwv1.RouteParentStatus) {
		v := p.verdict(kind, o)
		for name, n := range v.violations {
			r.policies[name] += n
		}
		attached := false
		var refused *metav1.Condition
		for _, ps := range parents {
			c := meta.FindStatusCondition(ps.Conditions, string(gwv1.RouteConditionAccepted))
			switch {
			case c == nil:
			case c.Status == metav1.ConditionTrue:
				attached = true
			case ours(c.Reason) && refused == nil:
				refused = c
			}
		}
		if v.tenant == "" {
			return
		}
		if attached {
			r.attached[v.tenant]++
		}
		if refused != nil || len(v.denials) > 0 {
			viol := tenancyv1.Violation{Cluster: p.cluster.Name, Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()}
			if refused != nil {
				viol.Reason, viol.Message = refused.Reason, refused.Message
			} else {
				verdict := v.verdict()
				viol.Reason, viol.Message = verdict.Reason(), verdict.Message()
			}
			r.violations[v.tenant] = append(r.violations[v.tenant], viol)
		}
	}
	for _, set := range routeSets(in, out) {
		for _, r := range set.routes {
			routeReport(set.kind, r, set.ours[client.ObjectKeyFromObject(r)])
		}
	}
	p.d.mu.Lock()
	p.d.reports[p.cluster.Name] = r
	p.d.cache[p.cluster.Name] = p.next
	p.d.mu.Unlock()
	p.d.markDirty()
}

// ours reports whether a reason is one a Tenant's violations list: tenancy's,
// policy's, or a route too large for the hub to read.
func ours(reason string) bool {
	switch reason {
	case policy.ReasonNamespaceNotDelegated, policy.ReasonHostnameNotDelegated, policy.ReasonHostnameOwnedByOtherTenant,
		policy.ReasonGatewayNotDelegated, policy.ReasonTenantQuotaExceeded, policy.ReasonPolicyViolation, translate.ReasonTooLarge:
		return true
	}
	return false
}

// forget drops a cluster that left the fleet.
func (d *Decisions) forget(cluster string) {
	d.routes.RemoveCluster(cluster)
	d.mu.Lock()
	delete(d.reports, cluster)
	delete(d.cache, cluster)
	d.mu.Unlock()
	d.markDirty()
	d.retrigger()
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	return keys
}
