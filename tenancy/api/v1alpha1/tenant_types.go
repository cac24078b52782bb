package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Tenant delegates part of the fleet to one team: the namespaces its routes
// live in, the hostnames they may serve and the Gateways they may attach to.
// Delegations are fleet-wide: a hostname delegated to one tenant is never
// served for another in any cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Conflicted",type=string,JSONPath=`.status.conditions[?(@.type=="Conflicted")].status`
// +kubebuilder:printcolumn:name="Routes",type=integer,JSONPath=`.status.attachedRoutes`
// +kubebuilder:printcolumn:name="Violations",type=integer,JSONPath=`.status.violationCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Tenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TenantSpec   `json:"spec"`
	Status TenantStatus `json:"status,omitempty"`
}

// TenantSpec is what the platform team delegates.
type TenantSpec struct {
	// Namespaces that belong to the tenant. A namespace claimed by two
	// tenants goes to the more specific claim (a name before a label
	// selector; a claim limited to some clusters before one for the whole
	// fleet); between equally specific claims the older Tenant keeps it and
	// the newer one reports Conflicted.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Namespaces []NamespaceDelegation `json:"namespaces,omitempty"`

	// Hostnames the tenant's routes and ListenerSets may serve: exact names
	// or wildcards ("*.web.example.com"). The most specific delegation of a
	// hostname wins fleet-wide; the same hostname delegated to two tenants
	// stays with the older Tenant and the newer one reports Conflicted.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	Hostnames []gwv1.Hostname `json:"hostnames,omitempty"`

	// Gateways the tenant may attach to. Empty: any Gateway of ours, subject
	// to the Gateway's own allowedRoutes.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Gateways []GatewayDelegation `json:"gateways,omitempty"`

	// Limits across the whole fleet.
	//
	// +optional
	Limits *TenantLimits `json:"limits,omitempty"`

	// Certificates says which cert-manager issuers on the hub the tenant's
	// listeners may name. Unset: only the GatewayClass's own issuer.
	//
	// +optional
	Certificates *CertificateDelegation `json:"certificates,omitempty"`
}

// CertificateDelegation is what the tenant may choose for the certificates
// the hub issues for its listeners. Whatever it chooses, a certificate
// is issued only for hostnames the tenant holds.
type CertificateDelegation struct {
	// Issuers the tenant's ListenerSets (annotation
	// gatehouse.dev/cluster-issuer or gatehouse.dev/issuer) and their
	// listeners' tls.options may name, besides the GatewayClass's own. A
	// listener naming any other issuer gets no certificate.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Issuers []IssuerReference `json:"issuers,omitempty"`
}

// IssuerReference names a cert-manager issuer on the hub: a ClusterIssuer,
// or an Issuer in the hub namespace that holds the member's certificates
// (gatehouse-<cluster>).
type IssuerReference struct {
	// Kind is ClusterIssuer or Issuer.
	//
	// +kubebuilder:validation:Enum=ClusterIssuer;Issuer
	Kind string `json:"kind"`
	// Name of the issuer.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// NamespaceDelegation selects namespaces by name or by label, optionally
// only in some member clusters.
//
// +kubebuilder:validation:XValidation:rule="has(self.names) || has(self.selector)",message="set names or selector"
type NamespaceDelegation struct {
	// Names of namespaces.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	Names []string `json:"names,omitempty"`
	// Selector selects namespaces by their labels in the member cluster.
	//
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// Clusters limits the delegation to member clusters whose registration
	// Secret on the hub carries these labels. Unset: every cluster.
	//
	// +optional
	Clusters *metav1.LabelSelector `json:"clusters,omitempty"`
}

// GatewayDelegation allows Gateways (or some of their listeners) to a tenant.
// Every field that is set must match.
type GatewayDelegation struct {
	// Clusters selects member clusters by the labels of their registration
	// Secret. Unset: every cluster.
	//
	// +optional
	Clusters *metav1.LabelSelector `json:"clusters,omitempty"`
	// Namespace of the Gateway. Unset: any.
	//
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Name of the Gateway. Unset: any.
	//
	// +optional
	Name string `json:"name,omitempty"`
	// Selector selects Gateways by label. Unset: any.
	//
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// Listeners limits the delegation to these listener names (a
	// parentRef's sectionName). A TCP or UDP port has no hostname to
	// delegate: a listener named here is how a port is given to a tenant
	// (a TCPRoute on listener "tcp-5432"). Empty: all.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Listeners []gwv1.SectionName `json:"listeners,omitempty"`
}

// TenantLimits cap what a tenant may use across the fleet. Routes over a
// limit are refused in the order they were created: older routes keep
// serving.
type TenantLimits struct {
	// MaxRoutes is the number of routes the tenant may have in all clusters
	// together, of every kind: HTTPRoutes, GRPCRoutes, TLSRoutes, TCPRoutes
	// and UDPRoutes.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxRoutes *int32 `json:"maxRoutes,omitempty"`
	// MaxHostnames is the number of distinct hostnames the tenant's routes
	// may name in all clusters together (a TLSRoute's SNI names count).
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxHostnames *int32 `json:"maxHostnames,omitempty"`
}

// TenantStatus is what the hub observed of the tenant across the fleet.
type TenantStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Accepted (the delegation is valid) and Conflicted (part of
	// it overlaps another tenant's equally specific delegation and is not in
	// effect).
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Namespaces the tenant holds, per member cluster.
	//
	// +optional
	// +listType=map
	// +listMapKey=cluster
	Namespaces []ClusterNamespaces `json:"namespaces,omitempty"`
	// AttachedRoutes counts the tenant's routes attached to at least one
	// listener, fleet-wide.
	//
	// +optional
	AttachedRoutes int32 `json:"attachedRoutes"`
	// ViolationCount counts the tenant's routes refused by tenancy or a
	// RoutePolicy, fleet-wide.
	//
	// +optional
	ViolationCount int32 `json:"violationCount"`
	// Violations lists the first of them.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	Violations []Violation `json:"violations,omitempty"`
}

// ClusterNamespaces lists the tenant's namespaces in one member cluster.
type ClusterNamespaces struct {
	Cluster string `json:"cluster"`
	// +listType=set
	Namespaces []string `json:"namespaces"`
}

// Violation names one route of the tenant that was refused and why.
type Violation struct {
	Cluster   string `json:"cluster"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}

// TenantList is a list of Tenants.
//
// +kubebuilder:object:root=true
type TenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Tenant `json:"items"`
}

func init() { SchemeBuilder.Register(&Tenant{}, &TenantList{}) }
