package gatehouse_policies.broken

violation contains {"msg": msg} if {
	msg := sprintf("missing %s", [input.review.object.metadata.name]
}
