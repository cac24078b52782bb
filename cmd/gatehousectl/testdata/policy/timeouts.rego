# The example of RoutePolicy's API documentation: every rule needs a request
# timeout.
package gatehouse_policies.timeouts

violation contains {"msg": msg, "details": {"field": sprintf("spec.rules[%d].timeouts.request", [i])}} if {
	some i, rule in input.review.object.spec.rules
	not rule.timeouts.request
	msg := sprintf("rule %d has no request timeout; set spec.rules[%d].timeouts.request, e.g. 10s", [i, i])
}
