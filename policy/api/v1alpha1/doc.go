// Package v1alpha1 is the policy.gatehouse.dev API: RoutePolicies, Rego
// modules the platform team writes on the hub to decide which tenant routes
// are admitted.
//
// +kubebuilder:object:generate=true
// +groupName=policy.gatehouse.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// GroupVersion is the group and version of the RoutePolicy API.
var GroupVersion = schema.GroupVersion{Group: "policy.gatehouse.dev", Version: "v1alpha1"}

var (
	// SchemeBuilder registers the types of this group.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the types of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
