// Package tenancy reads the platform team's Tenants into a View that
// answers, for any member cluster, which tenant a namespace belongs to,
// which tenant owns a hostname fleet-wide, which Gateways a tenant may
// attach to and whether it is within its limits.
package tenancy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// Unassigned says what happens to routes in namespaces that belong to no
// tenant.
type Unassigned string

const (
	// Platform treats such namespaces as the platform team's own: their
	// routes attach with any hostname no tenant owns.
	Platform Unassigned = "platform"
	// Deny refuses their routes.
	Deny Unassigned = "deny"
)

// Cluster is a member cluster as tenancy sees it: its name and the labels
// of its registration Secret on the hub.
type Cluster struct {
	Name   string
	Labels map[string]string
}

// View is an immutable reading of every Tenant. Build a new one when any
// Tenant changes; it is safe for concurrent use.
type View struct {
	unassigned Unassigned
	tenants    []*tenant // oldest first
	byName     map[string]*tenant
	// owners: each delegated hostname pattern and the tenant that holds it.
	owners map[string]*tenant
	// claims of namespaces by name, and claims by selector.
	byNamespace map[string][]*namespaceClaim
	bySelector  []*namespaceClaim
}

type tenant struct {
	obj  *v1alpha1.Tenant
	name string
	// hostnames in effect (those not lost to an older tenant).
	hostnames []string
	gateways  []gatewayClaim
	// problems: invalid parts of the spec; conflicts: parts lost to others.
	problems  []string
	conflicts []string
}

type namespaceClaim struct {
	tenant   *tenant
	names    map[string]bool
	selector labels.Selector
	clusters labels.Selector // nil: every cluster
}

// specificity orders claims of one namespace: by name before by label,
// limited to some clusters before fleet-wide.
func (c *namespaceClaim) specificity() int {
	s := 0
	if c.names != nil {
		s += 2
	}
	if c.clusters != nil {
		s++
	}
	return s
}

type gatewayClaim struct {
	clusters  labels.Selector
	namespace string
	name      string
	selector  labels.Selector
	listeners []gwv1.SectionName
	spec      v1alpha1.GatewayDelegation
}

// NewView indexes tenants. Between equally specific delegations of one
// hostname or namespace, the older Tenant keeps it.
func NewView(tenants []*v1alpha1.Tenant, unassigned Unassigned) *View {
	if unassigned == "" {
		unassigned = Platform
	}
	v := &View{unassigned: unassigned, byName: map[string]*tenant{}, owners: map[string]*tenant{}, byNamespace: map[string][]*namespaceClaim{}}
	sorted := slices.Clone(tenants)
	slices.SortFunc(sorted, olderFirst)
	for _, obj := range sorted {
		t := &tenant{obj: obj, name: obj.Name}
		v.tenants = append(v.tenants, t)
		v.byName[t.name] = t
		v.addHostnames(t)
		v.addNamespaces(t)
		v.addGateways(t)
	}
	return v
}

func olderFirst(a, b *v1alpha1.Tenant) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

func (v *View) addHostnames(t *tenant) {
	for _, h := range t.obj.Spec.Hostnames {
		name := strings.ToLower(string(h))
		if holder := v.owners[name]; holder != nil && holder != t {
			t.conflicts = append(t.conflicts, fmt.Sprintf("hostname %q is already delegated to tenant %q", name, holder.name))
			continue
		}
		v.owners[name] = t
		if !slices.Contains(t.hostnames, name) {
			t.hostnames = append(t.hostnames, name)
		}
	}
}

func (v *View) addNamespaces(t *tenant) {
	for i, d := range t.obj.Spec.Namespaces {
		c := &namespaceClaim{tenant: t}
		var err error
		if d.Clusters != nil {
			if c.clusters, err = metav1.LabelSelectorAsSelector(d.Clusters); err != nil {
				t.problems = append(t.problems, fmt.Sprintf("spec.namespaces[%d].clusters: %v", i, err))
				continue
			}
		}
		if d.Selector != nil {
			if c.selector, err = metav1.LabelSelectorAsSelector(d.Selector); err != nil {
				t.problems = append(t.problems, fmt.Sprintf("spec.namespaces[%d].selector: %v", i, err))
				continue
			}
		}
		if len(d.Names) > 0 {
			c.names = map[string]bool{}
			for _, n := range d.Names {
				c.names[n] = true
				v.byNamespace[n] = append(v.byNamespace[n], c)
			}
			continue
		}
		if c.selector != nil {
			v.bySelector = append(v.bySelector, c)
		}
	}
}

func (v *View) addGateways(t *tenant) {
	for i, d := range t.obj.Spec.Gateways {
		g := gatewayClaim{namespace: d.Namespace, name: d.Name, listeners: d.Listeners, spec: d}
		var err error
		if d.Clusters != nil {
			if g.clusters, err = metav1.LabelSelectorAsSelector(d.Clusters); err != nil {
				t.problems = append(t.problems, fmt.Sprintf("spec.gateways[%d].clusters: %v", i, err))
				continue
			}
		}
		if d.Selector != nil {
			if g.selector, err = metav1.LabelSelectorAsSelector(d.Selector); err != nil {
				t.problems = append(t.problems, fmt.Sprintf("spec.gateways[%d].selector: %v", i, err))
				continue
			}
		}
		t.gateways = append(t.gateways, g)
	}
}

// Unassigned says what happens to namespaces of no tenant.
func (v *View) Unassigned() Unassigned { return v.unassigned }

// Empty reports whether there are no Tenants at all.
func (v *View) Empty() bool { return v == nil || len(v.tenants) == 0 }

// Tenants lists the tenants' names, oldest first.
func (v *View) Tenants() []string {
	out := make([]string, len(v.tenants))
	for i, t := range v.tenants {
		out[i] = t.name
	}
	return out
}

// Tenant returns a tenant's object, or nil.
func (v *View) Tenant(name string) *v1alpha1.Tenant {
	if t := v.byName[name]; t != nil {
		return t.obj
	}
	return nil
}

// Problems lists the invalid parts of a tenant's spec, which are not in
// effect.
func (v *View) Problems(name string) []string {
	if t := v.byName[name]; t != nil {
		return t.problems
	}
	return nil
}

// Conflicts lists the parts of a tenant's delegation that an older tenant
// holds (hostnames; namespaces are reported per cluster by NamespaceOwner).
func (v *View) Conflicts(name string) []string {
	if t := v.byName[name]; t != nil {
		return t.conflicts
	}
	return nil
}

// Hostnames lists the hostnames delegated to a tenant and in effect.
func (v *View) Hostnames(name string) []string {
	if t := v.byName[name]; t != nil {
		return t.hostnames
	}
	return nil
}

// NamespaceOwner returns the tenant a namespace of a cluster belongs to ("" for
// none) and the tenants whose equally specific claims lost to it.
func (v *View) NamespaceOwner(cl Cluster, namespace string, nsLabels map[string]string) (owner string, losers []string) {
	if v == nil {
		return "", nil
	}
	var best *namespaceClaim
	consider := func(c *namespaceClaim) {
		if c.clusters != nil && !c.clusters.Matches(labels.Set(cl.Labels)) {
			return
		}
		switch {
		case best == nil || c.specificity() > best.specificity():
			best, losers = c, losers[:0]
		case c.specificity() == best.specificity() && c.tenant != best.tenant:
			// Tenants are visited oldest first within each list, but the
			// lists interleave: keep the older one.
			if olderFirst(c.tenant.obj, best.tenant.obj) < 0 {
				losers = append(losers, best.tenant.name)
				best = c
			} else if !slices.Contains(losers, c.tenant.name) {
				losers = append(losers, c.tenant.name)
			}
		}
	}
	for _, c := range v.byNamespace[namespace] {
		consider(c)
	}
	if len(v.bySelector) > 0 {
		set := labels.Set(nsLabels)
		for _, c := range v.bySelector {
			if c.selector.Matches(set) {
				consider(c)
			}
		}
	}
	if best == nil {
		return "", nil
	}
	return best.tenant.name, losers
}

// TenantOf returns the tenant a namespace belongs to, or "".
func (v *View) TenantOf(cl Cluster, namespace string, nsLabels map[string]string) string {
	t, _ := v.NamespaceOwner(cl, namespace, nsLabels)
	return t
}

// Owner returns the tenant that holds hostname (exact, or a wildcard such
// as "*.example.com") through its most specific delegation, and that
// delegation; both are empty when no tenant holds it. "*" (any hostname) is
// held by no one.
func (v *View) Owner(hostname string) (tenant, delegation string) {
	if v == nil || hostname == "*" || hostname == "" {
		return "", ""
	}
	h := strings.ToLower(hostname)
	if t := v.owners[h]; t != nil {
		return t.name, h
	}
	// Wildcards over ever shorter suffixes: "*.b.c" then "*.c".
	rest := strings.TrimPrefix(h, "*.")
	for {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return "", ""
		}
		rest = rest[i+1:]
		w := "*." + rest
		if t := v.owners[w]; t != nil {
			return t.name, w
		}
	}
}

// Delegated lists every delegated hostname pattern that lies strictly
// within pattern ("*" holds them all), with its tenant, sorted. Compilation
// uses it to keep a tenant's hostnames out of a broader virtual host of
// someone else.
func (v *View) Delegated(pattern string) [][2]string {
	if v == nil {
		return nil
	}
	var out [][2]string
	suffix := strings.TrimPrefix(strings.ToLower(pattern), "*")
	for h, t := range v.owners {
		if h == pattern {
			continue
		}
		if pattern == "*" || (strings.HasPrefix(pattern, "*.") && strings.HasSuffix(h, suffix) && len(strings.TrimPrefix(h, "*.")) > len(suffix)-1) {
			out = append(out, [2]string{h, t.name})
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int { return cmp.Compare(a[0], b[0]) })
	return out
}

// AllowsGateway reports whether a tenant may attach to a listener of a
// Gateway in a cluster; listener "" asks about the Gateway as a whole (a
// ListenerSet's parent).
func (v *View) AllowsGateway(name string, cl Cluster, gw *gwv1.Gateway, listener gwv1.SectionName) bool {
	return v.allowsGateway(name, cl, gw, listener, false)
}

// NamesGateway reports whether the tenant's spec.gateways names this
// Gateway by namespace and name (not "any Gateway", not a label selector,
// which the Gateway's owner could satisfy by labelling it) and, when
// listeners are listed, this listener.
func (v *View) NamesGateway(name string, cl Cluster, gw *gwv1.Gateway, listener gwv1.SectionName) bool {
	return v.allowsGateway(name, cl, gw, listener, true)
}

func (v *View) allowsGateway(name string, cl Cluster, gw *gwv1.Gateway, listener gwv1.SectionName, byName bool) bool {
	t := v.byName[name]
	if t == nil {
		return false
	}
	if len(t.obj.Spec.Gateways) == 0 {
		return !byName
	}
	for _, g := range t.gateways {
		if byName && (g.namespace == "" || g.name == "" || g.selector != nil) {
			continue
		}
		if g.clusters != nil && !g.clusters.Matches(labels.Set(cl.Labels)) {
			continue
		}
		if g.namespace != "" && g.namespace != gw.Namespace || g.name != "" && g.name != gw.Name {
			continue
		}
		if g.selector != nil && !g.selector.Matches(labels.Set(gw.Labels)) {
			continue
		}
		if listener != "" && len(g.listeners) > 0 && !slices.Contains(g.listeners, listener) {
			continue
		}
		return true
	}
	return false
}

// DescribeGateways says which Gateways a tenant may attach to, for messages.
func (v *View) DescribeGateways(name string) string {
	t := v.byName[name]
	if t == nil || len(t.obj.Spec.Gateways) == 0 {
		return "any Gateway"
	}
	var parts []string
	for _, g := range t.obj.Spec.Gateways {
		var s []string
		ns, n := cmp.Or(g.Namespace, "*"), cmp.Or(g.Name, "*")
		s = append(s, ns+"/"+n)
		if g.Selector != nil {
			s = append(s, "labels "+metav1.FormatLabelSelector(g.Selector))
		}
		if g.Clusters != nil {
			s = append(s, "clusters "+metav1.FormatLabelSelector(g.Clusters))
		}
		if len(g.Listeners) > 0 {
			var ls []string
			for _, l := range g.Listeners {
				ls = append(ls, string(l))
			}
			s = append(s, "listeners "+strings.Join(ls, ","))
		}
		parts = append(parts, strings.Join(s, " "))
	}
	return strings.Join(parts, "; ")
}

// Limits returns a tenant's limits, or nil.
func (v *View) Limits(name string) *v1alpha1.TenantLimits {
	if t := v.byName[name]; t != nil {
		return t.obj.Spec.Limits
	}
	return nil
}

// AllowsIssuer reports whether a tenant's listeners may name a cert-manager
// issuer of the given kind and name (spec.certificates.issuers).
func (v *View) AllowsIssuer(name string, issuer v1alpha1.IssuerReference) bool {
	t := v.byName[name]
	return t != nil && t.obj.Spec.Certificates != nil && slices.Contains(t.obj.Spec.Certificates.Issuers, issuer)
}

// DescribeIssuers says which issuers a tenant may name, for messages.
func (v *View) DescribeIssuers(name string) string {
	t := v.byName[name]
	if t == nil || t.obj.Spec.Certificates == nil || len(t.obj.Spec.Certificates.Issuers) == 0 {
		return "none"
	}
	parts := make([]string, len(t.obj.Spec.Certificates.Issuers))
	for i, is := range t.obj.Spec.Certificates.Issuers {
		parts[i] = is.Kind + " " + is.Name
	}
	return strings.Join(parts, ", ")
}
