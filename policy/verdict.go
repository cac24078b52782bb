package policy

import (
	"context"
	"slices"
	"strings"
)

// Verdict is the whole decision about an object.
type Verdict struct {
	// Tenant the object's namespace belongs to, "" for none.
	Tenant string
	// Denials refuse the object: tenancy, limits and deny policies.
	Denials []Denial
	// Warnings come from warn policies and from backendRefs no
	// ReferenceGrant allows: the object is admitted.
	Warnings []string
	// Violations counts each policy's violations, audit ones included.
	Violations map[string]int
}

// Allowed reports whether nothing refuses the object.
func (v Verdict) Allowed() bool { return len(v.Denials) == 0 }

// Message joins the denials the way the API server joins field errors.
func (v Verdict) Message() string {
	msgs := make([]string, len(v.Denials))
	for i, d := range v.Denials {
		msgs[i] = d.String()
	}
	if len(msgs) == 1 {
		return msgs[0]
	}
	return "[" + strings.Join(msgs, ", ") + "]"
}

// Reason is the reason of the first denial.
func (v Verdict) Reason() string {
	if len(v.Denials) == 0 {
		return ""
	}
	return v.Denials[0].Reason
}

// Decide is the object-level decision: the tenant of the object's
// namespace, then Verdict with what the policies say of the object. Which
// listeners the object attaches to is decided by Attached.
func (d *Decider) Decide(ctx context.Context, s Subject) Verdict {
	tenant := d.Tenancy.TenantOf(s.Cluster, s.Object.GetNamespace(), s.NamespaceLabels)
	return d.Verdict(tenant, s, d.Evaluate(ctx, tenant, s))
}

// Verdict composes the object-level decision of an object of tenant (""
// for none) from what the policies said of it (Evaluate): a namespace of no
// tenant is refused when such namespaces are; otherwise the hostnames the
// object names and the tenant's limits are checked; then come the policies'
// denials and warnings. It is the one composition admission, status and
// `gatehousectl policy test` share; callers that know the tenant or keep
// policy results (the hub, across passes) pass them in. A fleet without
// Tenants has no tenancy to check: only the policies decide.
func (d *Decider) Verdict(tenant string, s Subject, policies PolicyResult) Verdict {
	v := Verdict{Tenant: tenant}
	if !d.Tenancy.Empty() {
		if deny := d.ofNoTenant(tenant, s); deny != nil {
			v.Denials = append(v.Denials, *deny)
		} else {
			v.Denials = append(v.Denials, d.hostnames(tenant, s)...)
			if deny := d.limits(tenant, s); deny != nil {
				v.Denials = append(v.Denials, *deny)
			}
		}
	}
	// Copies: policies may be a result the caller keeps and reuses.
	v.Denials = append(v.Denials, policies.Denials...)
	v.Warnings = slices.Concat(policies.Warnings, ReferenceWarnings(s))
	v.Violations = policies.Violations
	return v
}

// Attached is the verdict on the object at the listeners it attaches to,
// given its object-level verdict v (Decide or Verdict): an object refused
// is refused at every listener, with its own denials; otherwise each
// attachment's denials (the tenant may use the Gateway and listener, and
// every hostname served there is its own) refuse it. Status asks it of one
// attachment at a time, admission of all of them at once.
func (d *Decider) Attached(v Verdict, s Subject, attachments ...Attachment) Verdict {
	if !v.Allowed() {
		return v
	}
	var denials []Denial
	for _, a := range attachments {
		denials = append(denials, d.attachment(v.Tenant, s, a)...)
	}
	v.Denials = denials
	return v
}
