// Package v1alpha1 is the tenancy.gatehouse.dev API: Tenants, which the
// platform team writes on the hub to delegate namespaces, hostnames and
// Gateways of the whole fleet to a team.
//
// +kubebuilder:object:generate=true
// +groupName=tenancy.gatehouse.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// GroupVersion is the group and version of the Tenant API.
var GroupVersion = schema.GroupVersion{Group: "tenancy.gatehouse.dev", Version: "v1alpha1"}

var (
	// SchemeBuilder registers the types of this group.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the types of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
