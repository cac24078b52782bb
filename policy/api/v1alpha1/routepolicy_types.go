package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoutePolicy is a Rego v1 module, in Gatekeeper's convention, that every
// matching tenant route is checked against — at admission in the member
// cluster and again whenever the hub computes the route's status:
//
//	package gatehouse_policies.timeouts
//
//	violation contains {"msg": msg, "details": {}} if {
//		some i, rule in input.review.object.spec.rules
//		not rule.timeouts.request
//		msg := sprintf("spec.rules[%d].timeouts.request is required", [i])
//	}
//
// The input is {"review": {"object", "oldObject", "operation", "userInfo",
// "cluster", "tenant", "kind"}, "parameters"}; Tenants and Gateways are
// under data.gatehouse.tenants and data.gatehouse.gateways.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Enforcement",type=string,JSONPath=`.spec.enforcement`
// +kubebuilder:printcolumn:name="Compiled",type=string,JSONPath=`.status.conditions[?(@.type=="Compiled")].status`
// +kubebuilder:printcolumn:name="Violations",type=integer,JSONPath=`.status.violations`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RoutePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RoutePolicySpec   `json:"spec"`
	Status RoutePolicyStatus `json:"status,omitempty"`
}

// Enforcement says what a violation does.
//
// +kubebuilder:validation:Enum=deny;warn;audit
type Enforcement string

const (
	// Deny refuses the route at admission and sets Accepted=False.
	Deny Enforcement = "deny"
	// Warn admits the route with a warning and sets a condition on it.
	Warn Enforcement = "warn"
	// Audit only counts violations in the policy's status.
	Audit Enforcement = "audit"
)

// RoutePolicySpec is the module and where it applies.
type RoutePolicySpec struct {
	// Rego is the module's source, in Rego v1. It must define the set
	// "violation" of objects {"msg": string, "details": object}. Its package
	// must not lie under "gatehouse", which holds the fleet's data.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	Rego string `json:"rego"`
	// Enforcement: deny (default), warn or audit.
	//
	// +optional
	// +kubebuilder:default=deny
	Enforcement Enforcement `json:"enforcement,omitempty"`
	// Match limits the policy to some tenants, kinds and clusters.
	//
	// +optional
	Match PolicyMatch `json:"match,omitempty"`
	// Parameters are passed to the module as input.parameters.
	//
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Parameters *apiextensionsv1.JSON `json:"parameters,omitempty"`
}

// PolicyMatch selects the objects a policy applies to. Every field that is
// set must match.
type PolicyMatch struct {
	// Tenants by name. Empty: every tenant, and namespaces of no tenant.
	//
	// +optional
	// +listType=set
	Tenants []string `json:"tenants,omitempty"`
	// Kinds: HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute,
	// ListenerSet. Empty: all of them.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:items:Enum=HTTPRoute;GRPCRoute;TLSRoute;TCPRoute;UDPRoute;ListenerSet
	Kinds []string `json:"kinds,omitempty"`
	// Clusters selects member clusters by the labels of their registration
	// Secret. Unset: every cluster.
	//
	// +optional
	Clusters *metav1.LabelSelector `json:"clusters,omitempty"`
}

// RoutePolicyStatus says whether the module compiled and how often it is
// violated.
type RoutePolicyStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Compiled (False with the compile error and its line).
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Violations counts the objects that violate the policy, fleet-wide, at
	// the hub's last evaluation of each cluster.
	//
	// +optional
	Violations int32 `json:"violations"`
}

// RoutePolicyList is a list of RoutePolicies.
//
// +kubebuilder:object:root=true
type RoutePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RoutePolicy `json:"items"`
}

func init() { SchemeBuilder.Register(&RoutePolicy{}, &RoutePolicyList{}) }
