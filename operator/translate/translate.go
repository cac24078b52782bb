// Package translate turns one cluster's Gateway API objects into the status
// of every object Gatehouse owns and one compiled route table per Gateway.
//
// Translate is a pure function: everything it needs is in its Input, it
// talks to no cluster, keeps no state between calls and produces the same
// Output for the same Input. Gateway API semantics live here.
package translate

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// ControllerName is the controllerName of the GatewayClasses Gatehouse owns.
const ControllerName gwv1.GatewayController = "gatehouse.dev/gateway-controller"

// Input is one cluster's objects, as read from its cache.
type Input struct {
	// ControllerName defaults to ControllerName.
	ControllerName gwv1.GatewayController

	GatewayClasses     []*gwv1.GatewayClass
	Gateways           []*gwv1.Gateway
	ListenerSets       []*gwv1.ListenerSet
	HTTPRoutes         []*gwv1.HTTPRoute
	GRPCRoutes         []*gwv1.GRPCRoute
	TLSRoutes          []*gwv1.TLSRoute
	TCPRoutes          []*gwv1.TCPRoute
	UDPRoutes          []*gwv1.UDPRoute
	ReferenceGrants    []*gwv1.ReferenceGrant
	ReferenceGrantsV1B []*gwv1beta1.ReferenceGrant
	BackendTLSPolicies []*gwv1.BackendTLSPolicy
	Namespaces         []*corev1.Namespace
	Services           []*corev1.Service
	EndpointSlices     []*discoveryv1.EndpointSlice
	// Secrets and ConfigMaps that listeners and policies reference.
	Secrets    []*corev1.Secret
	ConfigMaps []*corev1.ConfigMap

	// Authorizer decides tenancy and policy for each attachment; nil allows
	// all. When it also implements ListenerSetAuthorizer, it decides
	// ListenerSets too.
	Authorizer AttachmentAuthorizer
	// Owners says who owns hostnames fleet-wide, so that a virtual host of
	// one owner never serves a hostname delegated to another; nil: no one
	// owns any.
	Owners HostnameOwners
	// Certificates resolves listener certificates; nil reads certificateRefs.
	Certificates CertificateSource

	// Compiled is what the previous translation of this cluster compiled
	// (its Output.Compiled); nil compiles everything. It changes the cost of
	// a translation, never its result.
	Compiled *Compiled
}

// Output is the status of every object Gatehouse owns and the route tables.
//
// Conditions carry observedGeneration but no lastTransitionTime: the status
// writer sets it when it merges them with what is stored (see package
// operator/status), so that Output stays a function of Input alone.
type Output struct {
	GatewayClasses map[string]*gwv1.GatewayClassStatus
	Gateways       map[types.NamespacedName]*gwv1.GatewayStatus
	ListenerSets   map[types.NamespacedName]*gwv1.ListenerSetStatus
	// Our entries of each route's status.parents, one per parentRef that
	// names a Gateway or ListenerSet of ours.
	HTTPRoutes         map[types.NamespacedName][]gwv1.RouteParentStatus
	GRPCRoutes         map[types.NamespacedName][]gwv1.RouteParentStatus
	TLSRoutes          map[types.NamespacedName][]gwv1.RouteParentStatus
	TCPRoutes          map[types.NamespacedName][]gwv1.RouteParentStatus
	UDPRoutes          map[types.NamespacedName][]gwv1.RouteParentStatus
	BackendTLSPolicies map[types.NamespacedName][]gwv1.PolicyAncestorStatus
	// One table per accepted Gateway.
	Tables map[types.NamespacedName]*routetable.RouteTable
	// Parameters of each accepted GatewayClass of ours.
	Parameters map[string]ClassParameters
	// ProxySettings of each accepted Gateway: its class's, overridden by
	// its own parametersRef.
	ProxySettings map[types.NamespacedName]ProxySettings
	// Compiled is for the next translation's Input.
	Compiled *Compiled
}

// AttachmentAuthorizer is the seam through which tenancy and policy decide
// whether a route may attach to a listener. Translate asks once per route,
// parentRef and listener that Gateway API semantics already allow.
type AttachmentAuthorizer interface {
	AuthorizeAttachment(AttachmentRequest) Decision
}

// AttachmentRequest describes one attachment that Gateway API allows.
type AttachmentRequest struct {
	// Kind is the route's kind ("HTTPRoute", "GRPCRoute", "TLSRoute",
	// "TCPRoute" or "UDPRoute"); Route is the object itself.
	Kind  string
	Route RouteObject
	// Parent is the index in spec.parentRefs of the parentRef that selects
	// the listener, for messages.
	Parent int
	// Gateway is the Gateway the listener belongs to; ListenerSet is set when
	// the listener comes from one.
	Gateway     *gwv1.Gateway
	ListenerSet *gwv1.ListenerSet
	Listener    gwv1.SectionName
	// Hostnames are the route's hostnames after intersection with the listener.
	Hostnames []string
}

// RouteObject is what every route kind has in common.
type RouteObject interface {
	GetNamespace() string
	GetName() string
	GetGeneration() int64
	GetLabels() map[string]string
	GetAnnotations() map[string]string
}

// Decision is an authorizer's answer. A denial becomes Accepted=False on the
// route's parent status with Reason and Message.
type Decision struct {
	Allowed bool
	Reason  string
	Message string
	// Owner is the tenant the route belongs to, "" for none.
	Owner string
	// Warnings from policies that do not refuse: the route's parents get
	// PolicyCompliant=False with them.
	Warnings []string
}

// ListenerSetAuthorizer decides whether a ListenerSet may add its listeners
// to a Gateway; a denial makes the ListenerSet Accepted=False.
type ListenerSetAuthorizer interface {
	AuthorizeListenerSet(*gwv1.ListenerSet, *gwv1.Gateway) Decision
}

// HostnameOwners is the seam through which fleet-wide hostname ownership
// reaches compilation.
type HostnameOwners interface {
	// Owner returns the tenant that holds hostname (exact or wildcard), or "".
	Owner(hostname string) (tenant, delegation string)
	// Delegated lists the delegated hostname patterns strictly within
	// pattern, each with its tenant.
	Delegated(pattern string) [][2]string
}

// ConditionPolicyCompliant is our condition on a route's parent entries:
// False with ReasonPolicyWarning when a warn policy is violated.
const ConditionPolicyCompliant = "gatehouse.dev/PolicyCompliant"

// CertificateSource is the seam that supplies listener certificates issued
// for the listener (by cert-manager, on the hub). It is asked only about
// HTTPS listeners without certificateRefs; a result with neither key pairs
// nor a reason leaves the listener to the default, which reads
// certificateRefs against Input.Secrets.
type CertificateSource interface {
	ListenerCertificates(ListenerCertificateRequest) CertificateResult
}

// ListenerCertificateRequest names an HTTPS listener.
type ListenerCertificateRequest struct {
	Gateway     *gwv1.Gateway
	ListenerSet *gwv1.ListenerSet
	Listener    gwv1.SectionName
	Hostname    string
	TLS         *gwv1.ListenerTLSConfig
	// Parameters of the Gateway's class.
	Parameters ClassParameters
}

// CertificateResult lists the key pairs to serve by name, or why it cannot.
type CertificateResult struct {
	// Names of key pairs, in the order of preference.
	KeyPairs []string
	// When Reason is set, the listener's ResolvedRefs is False with it.
	Reason  gwv1.ListenerConditionReason
	Message string
}

// Translate computes statuses and route tables for one cluster.
func Translate(in Input) Output {
	t := newTranslator(in)
	t.gatewayClasses()
	t.buildGateways()
	t.attachRoutes()
	t.listenerStatuses()
	t.compile()
	t.backendTLSPolicies()
	return t.out
}

// parseDuration reads a Gateway API Duration (GEP-2257: whole numbers with
// units h, m, s, ms, at most one of each, in that order).
func parseDuration(d gwv1.Duration) (time.Duration, bool) {
	s := string(d)
	if s == "" || len(s) > 20 {
		return 0, false
	}
	units := []string{"h", "m", "s", "ms"}
	last := -1
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j-i > 5 {
			return 0, false
		}
		k := j
		for k < len(s) && (s[k] < '0' || s[k] > '9') {
			k++
		}
		unit := s[j:k]
		idx := -1
		for u, name := range units {
			if unit == name {
				idx = u
			}
		}
		if idx <= last {
			return 0, false
		}
		last = idx
		i = k
	}
	v, err := time.ParseDuration(s)
	return v, err == nil
}
