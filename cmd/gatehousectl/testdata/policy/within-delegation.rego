# Reads the tenants' data as the hub exposes it: every hostname of a tenant's
# route must be one of the tenant's delegated hostnames, literally.
package gatehouse_policies.delegation

violation contains {"msg": msg, "details": {"field": sprintf("spec.hostnames[%d]", [i])}} if {
	input.review.tenant != ""
	some i, h in input.review.object.spec.hostnames
	not h in {x | some x in data.gatehouse.tenants[input.review.tenant].hostnames}
	msg := sprintf("%s is not listed in tenant %s's hostnames", [h, input.review.tenant])
}
