// Package policy holds the one decision every tenant object gets — tenancy
// (namespace, hostnames, Gateways, limits) and the platform team's Rego
// RoutePolicies — whether it is asked by the admission webhook when the
// object is applied or by translate when the hub computes its status.
package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/referencegrant"
	"github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/policy/rego"
	"github.com/gatehouse-dev/gatehouse/tenancy"
)

// Reasons of ours, on a route parent's Accepted condition, on a
// ListenerSet's Accepted condition and in admission denials.
const (
	ReasonNamespaceNotDelegated      = "NamespaceNotDelegated"
	ReasonHostnameNotDelegated       = "HostnameNotDelegated"
	ReasonHostnameOwnedByOtherTenant = "HostnameOwnedByOtherTenant"
	ReasonGatewayNotDelegated        = "GatewayNotDelegated"
	ReasonTenantQuotaExceeded        = "TenantQuotaExceeded"
	ReasonPolicyViolation            = "PolicyViolation"
	// ReasonPolicyWarning is the reason of a False PolicyCompliant
	// condition: a warn policy is violated, the object is still served.
	ReasonPolicyWarning = "PolicyWarning"
)

// Denial is one reason to refuse an object: the field, what is wrong with
// it and what to do, as the API server words validation errors.
type Denial struct {
	Reason string
	Err    *field.Error
}

func (d Denial) String() string { return d.Err.Error() }

// Subject is the object being decided, where it lives and who sends it.
type Subject struct {
	Cluster tenancy.Cluster
	// Kind is one of RouteKinds or ListenerSet; Object one of those.
	Kind      string
	Object    client.Object
	OldObject client.Object
	// Operation and UserInfo are set at admission; status evaluation
	// leaves them empty.
	Operation       string
	UserInfo        any
	NamespaceLabels map[string]string
	// Grants, when set, are the cluster's ReferenceGrants: a backendRef
	// into another namespace that no grant allows gets a warning (status
	// reports it as ResolvedRefs=False; it never refuses the object, since
	// the grant may be created after the route).
	Grants *referencegrant.Index
}

// Policy is a compiled RoutePolicy and what it applies to.
type Policy struct {
	Name        string
	Enforcement v1alpha1.Enforcement
	tenants     []string
	kinds       []string
	clusters    labels.Selector
}

// NewPolicy reads a RoutePolicy's enforcement and match.
func NewPolicy(p *v1alpha1.RoutePolicy) (*Policy, error) {
	out := &Policy{Name: p.Name, Enforcement: p.Spec.Enforcement, tenants: p.Spec.Match.Tenants, kinds: p.Spec.Match.Kinds}
	if out.Enforcement == "" {
		out.Enforcement = v1alpha1.Deny
	}
	if p.Spec.Match.Clusters != nil {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Match.Clusters)
		if err != nil {
			return nil, fmt.Errorf("spec.match.clusters: %w", err)
		}
		out.clusters = sel
	}
	return out, nil
}

// Matches reports whether the policy applies to the subject, of tenant:
// its spec.match names the tenant, the kind and the cluster, or leaves them out.
func (p *Policy) Matches(tenant string, s Subject) bool {
	if len(p.tenants) > 0 && !slices.Contains(p.tenants, tenant) {
		return false
	}
	if len(p.kinds) > 0 && !slices.Contains(p.kinds, s.Kind) {
		return false
	}
	return p.clusters == nil || p.clusters.Matches(labels.Set(s.Cluster.Labels))
}

// Decider makes the decision. It is immutable: the hub builds a new one
// when Tenants or RoutePolicies change, and swaps it.
type Decider struct {
	Tenancy *tenancy.View
	// Routes counts every tenant's routes for limits; nil: no limits.
	Routes *tenancy.Routes
	// Engine evaluates Policies, which are the RoutePolicies that compiled.
	Engine   *rego.Engine
	Policies map[string]*Policy
}

// TenantData is what policies see of Tenants under data.gatehouse.tenants
// (Engine.SetData(ctx, "tenants", TenantData(view))): each tenant's
// hostnames in effect, labels and annotations.
func TenantData(v *tenancy.View) map[string]any {
	out := map[string]any{}
	for _, name := range v.Tenants() {
		t := v.Tenant(name)
		hs := make([]any, 0)
		for _, h := range v.Hostnames(name) {
			hs = append(hs, h)
		}
		out[name] = map[string]any{"hostnames": hs, "labels": anyMap(t.Labels), "annotations": anyMap(t.Annotations)}
	}
	return out
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ReferenceWarnings lists the backendRefs of a route that point into
// another namespace without a ReferenceGrant there allowing it.
func ReferenceWarnings(s Subject) []string {
	if s.Grants == nil {
		return nil
	}
	var out []string
	check := func(p *field.Path, ref gwv1.BackendObjectReference) {
		if ref.Namespace == nil || string(*ref.Namespace) == s.Object.GetNamespace() {
			return
		}
		group, kind := "", "Service"
		if ref.Group != nil {
			group = string(*ref.Group)
		}
		if ref.Kind != nil {
			kind = string(*ref.Kind)
		}
		from := referencegrant.Ref{Group: gwv1.GroupName, Kind: s.Kind, Namespace: s.Object.GetNamespace()}
		to := referencegrant.Ref{Group: group, Kind: kind, Namespace: string(*ref.Namespace), Name: string(ref.Name)}
		if !s.Grants.Allowed(from, to) {
			out = append(out, fmt.Sprintf("%s: %s %s/%s is in another namespace and no ReferenceGrant there allows %ss from namespace %q; the route reports ResolvedRefs=False (RefNotPermitted) until one does",
				p, kind, to.Namespace, to.Name, s.Kind, from.Namespace))
		}
	}
	for _, b := range backendRefs(s.Object) {
		check(b.path, b.ref)
	}
	return out
}

// ofNoTenant is the denial of an object whose namespace belongs to no
// tenant (tenant ""), when such namespaces are refused; nil otherwise.
func (d *Decider) ofNoTenant(tenant string, s Subject) *Denial {
	if tenant != "" || d.Tenancy.Empty() || d.Tenancy.Unassigned() != tenancy.Deny {
		return nil
	}
	return &Denial{ReasonNamespaceNotDelegated, field.Forbidden(field.NewPath("metadata", "namespace"),
		fmt.Sprintf("namespace %q of cluster %q belongs to no tenant, and routes outside tenants are refused; ask the platform team to delegate the namespace in a Tenant's spec.namespaces", s.Object.GetNamespace(), s.Cluster.Name))}
}

// hostnames checks the hostnames the object names itself: a route's
// spec.hostnames, a ListenerSet's listener hostnames.
func (d *Decider) hostnames(tenant string, s Subject) []Denial {
	var out []Denial
	for i, h := range routeHostnames(s.Object) {
		if deny := d.hostname(tenant, s, string(h), field.NewPath("spec", "hostnames").Index(i)); deny != nil {
			out = append(out, *deny)
		}
	}
	if o, ok := s.Object.(*gwv1.ListenerSet); ok {
		for i, l := range o.Spec.Listeners {
			p := field.NewPath("spec", "listeners").Index(i).Child("hostname")
			if tenant != "" && (l.Protocol == gwv1.TCPProtocolType || l.Protocol == gwv1.UDPProtocolType) {
				out = append(out, d.portListener(tenant, field.NewPath("spec", "listeners").Index(i).Child("protocol"), l.Protocol))
				continue
			}
			if l.Hostname == nil || *l.Hostname == "" {
				if tenant != "" {
					out = append(out, Denial{ReasonHostnameNotDelegated, field.Required(p,
						fmt.Sprintf("a listener of tenant %q must name a hostname within its delegation (%s)", tenant, d.delegated(tenant)))})
				}
				continue
			}
			if deny := d.hostname(tenant, s, string(*l.Hostname), p); deny != nil {
				out = append(out, *deny)
			}
		}
	}
	return out
}

// portListener refuses a TCP or UDP listener in a tenant's ListenerSet. A
// port has no owner the way a hostname has, so a tenant that could open
// one could take a port another tenant's connections were meant for; the
// platform team delegates ports instead as listeners of its Gateways
// (spec.gateways[].listeners of the Tenant), which TCPRoutes and UDPRoutes
// attach to.
func (d *Decider) portListener(tenant string, p *field.Path, protocol gwv1.ProtocolType) Denial {
	return Denial{ReasonGatewayNotDelegated, field.Forbidden(p, fmt.Sprintf(
		"tenant %q may not open %s ports through a ListenerSet: ports are delegated as listeners of the platform team's Gateways; attach a %sRoute to a listener tenant %q may use (%s), or ask the platform team to delegate one",
		tenant, protocol, protocol, tenant, d.Tenancy.DescribeGateways(tenant)))}
}

// hostname checks one hostname against the fleet's delegations.
func (d *Decider) hostname(tenant string, s Subject, h string, p *field.Path) *Denial {
	owner, _ := d.Tenancy.Owner(h)
	switch {
	case owner == tenant:
		return nil
	case tenant == "":
		return &Denial{ReasonHostnameOwnedByOtherTenant, field.Forbidden(p,
			fmt.Sprintf("%q is delegated to tenant %q; namespace %q belongs to no tenant", h, owner, s.Object.GetNamespace()))}
	case owner == "":
		return &Denial{ReasonHostnameNotDelegated, field.Forbidden(p,
			fmt.Sprintf("%q is not delegated to tenant %q (delegated: %s); use a hostname within the delegation or ask the platform team to delegate this one", h, tenant, d.delegated(tenant)))}
	}
	return &Denial{ReasonHostnameOwnedByOtherTenant, field.Forbidden(p,
		fmt.Sprintf("%q is delegated to tenant %q; this namespace belongs to tenant %q (delegated: %s)", h, owner, tenant, d.delegated(tenant)))}
}

func (d *Decider) delegated(tenant string) string {
	hs := d.Tenancy.Hostnames(tenant)
	if len(hs) == 0 {
		return "none"
	}
	return strings.Join(hs, ", ")
}

// Attachment is one listener an object attaches to, with the hostnames it
// would serve there.
type Attachment struct {
	Gateway  *gwv1.Gateway
	Listener gwv1.SectionName
	// Hostnames: the route's after intersection with the listener's; "*"
	// for any hostname.
	Hostnames []string
	// Path is the parentRef's field path, for messages.
	Path *field.Path
}

// attachment checks one attachment: the tenant may use the Gateway and
// listener, and every hostname served there is its own.
func (d *Decider) attachment(tenant string, s Subject, a Attachment) []Denial {
	if d.Tenancy.Empty() {
		return nil
	}
	p := a.Path
	if p == nil {
		p = field.NewPath("spec", "parentRefs")
	}
	var out []Denial
	if tenant != "" && !d.Tenancy.AllowsGateway(tenant, s.Cluster, a.Gateway, a.Listener) {
		where := fmt.Sprintf("Gateway %s/%s", a.Gateway.Namespace, a.Gateway.Name)
		if a.Listener != "" {
			where = fmt.Sprintf("listener %q of %s", a.Listener, where)
		}
		out = append(out, Denial{ReasonGatewayNotDelegated, field.Forbidden(p,
			fmt.Sprintf("%s in cluster %q is not delegated to tenant %q (allowed: %s)", where, s.Cluster.Name, tenant, d.Tenancy.DescribeGateways(tenant)))})
	}
	if hostless(s.Kind) {
		// Which Gateways and listeners the tenant may use decides alone.
		return out
	}
	own := routeHostnames(s.Object)
	for _, h := range a.Hostnames {
		if len(own) > 0 {
			i := sourceIndex(own, h)
			if deny := d.hostname(tenant, s, h, field.NewPath("spec", "hostnames").Index(i)); deny != nil {
				out = append(out, *deny)
			}
			continue
		}
		// The route names no hostname and takes the listener's.
		if tenant == "" {
			if owner, _ := d.Tenancy.Owner(h); owner != "" {
				out = append(out, Denial{ReasonHostnameOwnedByOtherTenant, field.Forbidden(field.NewPath("spec", "hostnames"),
					fmt.Sprintf("listener %q accepts %q, which is delegated to tenant %q; namespace %q belongs to no tenant: name hostnames of your own", a.Listener, h, owner, s.Object.GetNamespace()))})
			}
			continue
		}
		if owner, _ := d.Tenancy.Owner(h); owner != tenant {
			what := fmt.Sprintf("listener %q accepts %q", a.Listener, h)
			if h == "*" {
				what = fmt.Sprintf("listener %q accepts any hostname", a.Listener)
			}
			out = append(out, Denial{ReasonHostnameNotDelegated, field.Required(field.NewPath("spec", "hostnames"),
				fmt.Sprintf("%s, which is not delegated to tenant %q; routes of the tenant must name hostnames within its delegation (%s)", what, tenant, d.delegated(tenant)))})
		}
	}
	return out
}

// sourceIndex finds the route hostname an intersected hostname came from.
func sourceIndex(own []gwv1.Hostname, h string) int {
	for i, o := range own {
		if string(o) == h {
			return i
		}
	}
	for i, o := range own {
		s := string(o)
		if strings.HasPrefix(s, "*.") && strings.HasSuffix(strings.TrimPrefix(h, "*"), s[1:]) {
			return i
		}
	}
	return 0
}

// limits checks the tenant's fleet-wide limits for a route; at admission
// the route counts as given, in status as indexed.
func (d *Decider) limits(tenant string, s Subject) *Denial {
	if tenant == "" || d.Routes == nil || !isRoute(s.Kind) {
		return nil
	}
	e := RouteEntry(s.Kind, s.Object, tenant)
	e.Cluster = s.Cluster.Name
	if s.Operation == "CREATE" {
		// Not created yet: it ranks after every route that exists.
		e.Created = time.Time{}
	}
	var why string
	if s.Operation != "" {
		why = d.Routes.Admit(d.Tenancy, e)
	} else {
		why = d.Routes.OverLimit(d.Tenancy, e)
	}
	if why == "" {
		return nil
	}
	return &Denial{ReasonTenantQuotaExceeded, field.Forbidden(field.NewPath("metadata", "name"), why)}
}

// PolicyResult is what the RoutePolicies say of an object.
type PolicyResult struct {
	Denials    []Denial
	Warnings   []string
	Violations map[string]int
	// Unsettled: a policy could not be evaluated (an error, or a timeout
	// under load). A deny policy then refuses, but only for now: the result
	// is not a verdict on the object and must not be kept as one.
	Unsettled bool
}

// Evaluate runs the policies that match the object.
func (d *Decider) Evaluate(ctx context.Context, tenant string, s Subject) PolicyResult {
	var out PolicyResult
	if d.Engine == nil || len(d.Policies) == 0 {
		return out
	}
	review := rego.Review{Object: s.Object, OldObject: s.OldObject, Operation: s.Operation, UserInfo: s.UserInfo,
		Cluster: s.Cluster.Name, Tenant: tenant, Kind: rego.Kind{Group: gwv1.GroupName, Version: "v1", Kind: s.Kind}}
	results := d.Engine.Evaluate(ctx, review, func(name string) bool {
		p := d.Policies[name]
		return p != nil && p.Matches(tenant, s)
	})
	for _, r := range results {
		p := d.Policies[r.Policy]
		if r.Err != nil {
			out.Unsettled = true
			switch p.Enforcement {
			case v1alpha1.Deny:
				// A deny policy that cannot decide refuses: a tenant must not
				// slip past a policy by making it fail.
				out.Denials = append(out.Denials, Denial{ReasonPolicyViolation, field.InternalError(field.NewPath("spec"),
					fmt.Errorf("RoutePolicy %q could not be evaluated: %v; the platform team must fix the policy", r.Policy, r.Err))})
			case v1alpha1.Warn:
				out.Warnings = append(out.Warnings, fmt.Sprintf("RoutePolicy %q could not be evaluated: %v", r.Policy, r.Err))
			}
			continue
		}
		if len(r.Violations) == 0 {
			continue
		}
		if out.Violations == nil {
			out.Violations = map[string]int{}
		}
		out.Violations[r.Policy] += len(r.Violations)
		for _, viol := range r.Violations {
			msg := fmt.Sprintf("RoutePolicy %q: %s", r.Policy, viol.Msg)
			switch p.Enforcement {
			case v1alpha1.Deny:
				out.Denials = append(out.Denials, Denial{ReasonPolicyViolation, field.Forbidden(violationPath(viol.Details), msg)})
			case v1alpha1.Warn:
				out.Warnings = append(out.Warnings, msg)
			}
		}
	}
	return out
}

// violationPath takes the field a violation names in details.field, if any.
func violationPath(details map[string]any) *field.Path {
	if f, ok := details["field"].(string); ok && f != "" && len(f) < 256 {
		return field.NewPath(f)
	}
	return field.NewPath("spec")
}
