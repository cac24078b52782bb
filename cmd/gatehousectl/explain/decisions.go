package explain

import (
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/policy"
)

// tenancyReasons explains the tenancy and policy side of the route: which
// Tenant holds its namespace and, when tenancy or a deny RoutePolicy
// refused it (Accepted=False with a reason of ours), what to change.
func (in *inspection) tenancyReasons(accepted *metav1.Condition) []Reason {
	var reason, message string
	if accepted != nil && accepted.Status != metav1.ConditionTrue {
		reason, message = accepted.Reason, accepted.Message
	}
	if reason == policy.ReasonPolicyViolation {
		return []Reason{policyViolation(message)}
	}
	refused := isTenancyReason(reason)
	if in.hub.err != nil {
		if refused {
			return []Reason{problem(checkTenancy, "ask the platform team which Tenant holds your namespace and hostnames",
				"%s: %s (the Tenants on the hub could not be read: %v)", reason, message, in.hub.err)}
		}
		return []Reason{ok(checkTenancy, "the Tenants on the hub could not be read (%v): who holds the namespace and hostnames is not known here", in.hub.err)}
	}
	v := in.hub.tenants
	ns := in.r.key.Namespace
	tenant, losers := v.NamespaceOwner(in.cluster, ns, in.nsLabels)
	who := fmt.Sprintf("namespace %q belongs to no tenant", ns)
	if tenant != "" {
		who = fmt.Sprintf("namespace %q belongs to tenant %q (Tenant %q on the hub, delegated hostnames: %s)", ns, tenant, tenant, in.delegated(tenant))
	}
	if len(losers) > 0 {
		who += fmt.Sprintf("; tenants %s claim it too, and lose to the more specific or older claim", strings.Join(losers, ", "))
	}
	switch reason {
	case policy.ReasonNamespaceNotDelegated:
		return []Reason{problem(checkTenancy,
			fmt.Sprintf("ask the platform team to delegate namespace %q to your Tenant (spec.namespaces of the Tenant on the hub), or move the route to a namespace of your tenant", ns),
			"%s: namespace %q of cluster %s belongs to no tenant, and this hub refuses routes outside tenants", reason, ns, in.cluster.Name)}
	case policy.ReasonHostnameNotDelegated:
		return []Reason{in.hostnameNotDelegated(tenant, who, message)}
	case policy.ReasonHostnameOwnedByOtherTenant:
		return []Reason{in.hostnameOwnedByOther(tenant, who, message)}
	case policy.ReasonGatewayNotDelegated:
		return []Reason{problem(checkTenancy,
			fmt.Sprintf("attach to a Gateway tenant %q may use (%s), or ask the platform team to add this Gateway to spec.gateways of Tenant %q", tenant, v.DescribeGateways(tenant), tenant),
			"%s: %s; tenant %q may attach only to %s: %s", reason, who, tenant, v.DescribeGateways(tenant), message)}
	case policy.ReasonTenantQuotaExceeded:
		return []Reason{problem(checkTenancy,
			fmt.Sprintf("delete routes or hostnames of tenant %q that are no longer needed (the newest routes are refused first), or ask the platform team to raise spec.limits of Tenant %q", tenant, tenant),
			"%s: %s; its fleet-wide limits are %s: %s", reason, who, in.limits(tenant), message)}
	}
	if v.Empty() {
		return []Reason{ok(checkTenancy, "no Tenant is defined on the hub: tenancy does not restrict this route")}
	}
	if tenant == "" {
		who += ": its routes are the platform team's and may use any hostname no tenant holds"
	}
	return []Reason{ok(checkTenancy, "%s", who)}
}

func isTenancyReason(r string) bool {
	switch r {
	case policy.ReasonNamespaceNotDelegated, policy.ReasonHostnameNotDelegated, policy.ReasonHostnameOwnedByOtherTenant,
		policy.ReasonGatewayNotDelegated, policy.ReasonTenantQuotaExceeded:
		return true
	}
	return false
}

func (in *inspection) delegated(tenant string) string {
	hs := in.hub.tenants.Hostnames(tenant)
	if len(hs) == 0 {
		return "none"
	}
	return strings.Join(hs, ", ")
}

func (in *inspection) limits(tenant string) string {
	l := in.hub.tenants.Limits(tenant)
	var parts []string
	if l != nil && l.MaxRoutes != nil {
		parts = append(parts, fmt.Sprintf("maxRoutes %d", *l.MaxRoutes))
	}
	if l != nil && l.MaxHostnames != nil {
		parts = append(parts, fmt.Sprintf("maxHostnames %d", *l.MaxHostnames))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (in *inspection) hostnameNotDelegated(tenant, who, message string) Reason {
	var outside []string
	for _, h := range in.r.hostnames {
		if owner, _ := in.hub.tenants.Owner(h); owner != tenant {
			outside = append(outside, fmt.Sprintf("%q", h))
		}
	}
	within := in.delegated(tenant)
	if len(outside) == 0 {
		// The route names no hostname (or the listener narrowed it): it
		// takes the listener's, which is not the tenant's.
		return problem(checkTenancy,
			fmt.Sprintf("name hostnames within the delegation of tenant %q (%s) in spec.hostnames", tenant, within),
			"%s: %s; %s", policy.ReasonHostnameNotDelegated, who, message)
	}
	return problem(checkTenancy,
		fmt.Sprintf("use hostnames within %s in spec.hostnames, or ask the platform team to add %s to spec.hostnames of Tenant %q on the hub", within, strings.Join(outside, ", "), tenant),
		"%s: %s; %s is not delegated to tenant %q", policy.ReasonHostnameNotDelegated, who, strings.Join(outside, ", "), tenant)
}

func (in *inspection) hostnameOwnedByOther(tenant, who, message string) Reason {
	var taken, owners []string
	for _, h := range in.r.hostnames {
		owner, delegation := in.hub.tenants.Owner(h)
		if owner != "" && owner != tenant {
			taken = append(taken, fmt.Sprintf("%q is delegated to tenant %q (Tenant %q on the hub, delegation %q)", h, owner, owner, delegation))
			owners = append(owners, fmt.Sprintf("%q", owner))
		}
	}
	if len(taken) == 0 {
		return problem(checkTenancy, "name hostnames of your own in spec.hostnames",
			"%s: %s; %s", policy.ReasonHostnameOwnedByOtherTenant, who, message)
	}
	mine := "hostnames no tenant holds"
	if tenant != "" {
		mine = "within " + in.delegated(tenant)
	}
	return problem(checkTenancy,
		fmt.Sprintf("use hostnames of your own (%s): only routes of tenant %s may serve theirs, in every cluster", mine, strings.Join(owners, ", ")),
		"%s: %s; %s", policy.ReasonHostnameOwnedByOtherTenant, who, strings.Join(taken, "; "))
}

var policyName = regexp.MustCompile(`RoutePolicy "([^"]+)"`)

func policyViolation(message string) Reason {
	fix := "change the route as the RoutePolicy asks; RoutePolicies are on the hub, ask the platform team"
	if m := policyName.FindStringSubmatch(message); m != nil {
		fix = fmt.Sprintf("change the route as RoutePolicy %q asks (it is on the hub: the platform team can show its rule)", m[1])
	}
	return problem(checkPolicy, fix, "%s: a deny RoutePolicy refuses the route: %s", policy.ReasonPolicyViolation, message)
}

// acceptedReason reports the Accepted condition; when False, its fix is
// that of the check that explains it.
func acceptedReason(c *metav1.Condition, rs []Reason) Reason {
	if c.Status == metav1.ConditionTrue {
		return ok(checkAccepted, "Accepted=True (%s): %s", c.Reason, c.Message)
	}
	var explained *Reason
	switch c.Reason {
	case string(gwv1.RouteReasonNotAllowedByListeners):
		explained = firstProblem(rs, checkNamespaces, checkKinds, checkListener, checkParent)
	case string(gwv1.RouteReasonNoMatchingListenerHostname):
		explained = firstProblem(rs, checkHostnames)
	case string(gwv1.RouteReasonNoMatchingParent):
		explained = firstProblem(rs, checkListeners)
	case policy.ReasonPolicyViolation:
		explained = firstProblem(rs, checkPolicy)
	default:
		if isTenancyReason(c.Reason) {
			explained = firstProblem(rs, checkTenancy)
		}
	}
	fix := "change what the message names and apply the route again"
	if explained != nil && explained.Fix != "" {
		fix = explained.Fix
	}
	return problem(checkAccepted, fix, "Accepted=False (%s): %s", c.Reason, c.Message)
}

func policyCompliantReason(c *metav1.Condition) Reason {
	if c.Status == metav1.ConditionTrue {
		return ok(checkPolicyCompliant, "%s=True: %s", c.Type, c.Message)
	}
	return problem(checkPolicyCompliant,
		"change the route as the RoutePolicy asks: it only warns for now, but the platform team sees the violation and may make the policy deny",
		"%s=False (%s): the route is served, but a warn RoutePolicy objects: %s", c.Type, c.Reason, c.Message)
}

// resolvedRefsReason reports ResolvedRefs; when False, its fix is that of
// the backendRef check that explains it.
func resolvedRefsReason(c *metav1.Condition, backends []Reason) Reason {
	if c.Status == metav1.ConditionTrue {
		return ok(checkResolvedRefs, "ResolvedRefs=True (%s): %s", c.Reason, c.Message)
	}
	fix := "correct the backendRefs the message names"
	if r := firstProblem(backends, checkReferenceGrant, checkBackend); r != nil && r.Fix != "" {
		fix = r.Fix
	}
	return problem(checkResolvedRefs, fix, "ResolvedRefs=False (%s): %s", c.Reason, c.Message)
}
