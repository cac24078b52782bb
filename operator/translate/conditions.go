package translate

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons of our own, for what the Gateway API has no reason for.
const (
	// ReasonNotAuthorized is the default reason of an authorizer denial.
	ReasonNotAuthorized = "NotAuthorized"
	// ReasonPolicyWarning and ReasonPolicyCompliant are the reasons of
	// ConditionPolicyCompliant.
	ReasonPolicyWarning   = "PolicyWarning"
	ReasonPolicyCompliant = "Compliant"
)

// conditions collects the conditions of one object, in the order they are
// first set; setting a type again replaces it.
type conditions []metav1.Condition

func (c *conditions) set(condType string, ok bool, reason, message string, generation int64) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	cond := metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	}
	for i := range *c {
		if (*c)[i].Type == condType {
			(*c)[i] = cond
			return
		}
	}
	*c = append(*c, cond)
}

func (c conditions) get(condType string) *metav1.Condition {
	for i := range c {
		if c[i].Type == condType {
			return &c[i]
		}
	}
	return nil
}

func (c conditions) isTrue(condType string) bool {
	cond := c.get(condType)
	return cond != nil && cond.Status == metav1.ConditionTrue
}
