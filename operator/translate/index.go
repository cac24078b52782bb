package translate

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/referencegrant"
)

// translator holds the lookups built from one Input and the Output under
// construction. It lives for one call of Translate.
type translator struct {
	in  Input
	out Output

	controller  gwv1.GatewayController
	authorizer  AttachmentAuthorizer
	certs       CertificateSource
	classes     map[string]*gwv1.GatewayClass // accepted classes of ours
	namespaces  map[string]labels.Set
	services    map[types.NamespacedName]*corev1.Service
	slices      map[types.NamespacedName][]*discoveryv1.EndpointSlice // by Service
	secrets     map[types.NamespacedName]*corev1.Secret
	configMaps  map[types.NamespacedName]*corev1.ConfigMap
	grants      *referencegrant.Index
	gateways    map[types.NamespacedName]*gateway // ours, in a class of ours
	gatewayList []*gateway                        // the same, sorted by key
	// listenerSets of our Gateways, by their own key.
	listenerSets map[types.NamespacedName]*listenerSet
	// tlsPolicies by the Service they target; tlsPolicyOf by their own key.
	tlsPolicies map[types.NamespacedName][]*gwv1.BackendTLSPolicy
	tlsPolicyOf map[types.NamespacedName]*tlsPolicy
	// resolved backendRefs, by what their resolution depends on.
	resolved map[backendKey]resolvedBackend
	// regexes: compile results of every expression seen, by expression.
	regexes map[string]error
	// backends referenced by any route, by name.
	backends map[string]*routetable.Backend
	// backendUse records which Gateways reach which Services, for
	// BackendTLSPolicy ancestor status.
	backendUse map[types.NamespacedName]map[types.NamespacedName]bool
	// frontends: each Gateway's client-certificate validations, resolved once.
	frontends map[frontendKey]*frontendValidation
	// reuse: the routes compiled or reused, for the next translation;
	// resolving: the backendRefs the route being compiled resolved;
	// fingerprints and byNamespace: what they read (deps.go).
	reuse        *Compiled
	resolving    []backendKey
	fingerprints map[backendKey]uint64
	byNamespace  *namespaceObjects
}

func newTranslator(in Input) *translator {
	t := &translator{
		in:         in,
		controller: in.ControllerName,
		authorizer: in.Authorizer,
		certs:      in.Certificates,
		out: Output{
			GatewayClasses:     map[string]*gwv1.GatewayClassStatus{},
			Gateways:           map[types.NamespacedName]*gwv1.GatewayStatus{},
			ListenerSets:       map[types.NamespacedName]*gwv1.ListenerSetStatus{},
			HTTPRoutes:         make(map[types.NamespacedName][]gwv1.RouteParentStatus, len(in.HTTPRoutes)),
			GRPCRoutes:         make(map[types.NamespacedName][]gwv1.RouteParentStatus, len(in.GRPCRoutes)),
			TLSRoutes:          map[types.NamespacedName][]gwv1.RouteParentStatus{},
			TCPRoutes:          map[types.NamespacedName][]gwv1.RouteParentStatus{},
			UDPRoutes:          map[types.NamespacedName][]gwv1.RouteParentStatus{},
			BackendTLSPolicies: map[types.NamespacedName][]gwv1.PolicyAncestorStatus{},
			Tables:             map[types.NamespacedName]*routetable.RouteTable{},
			Parameters:         map[string]ClassParameters{},
			ProxySettings:      map[types.NamespacedName]ProxySettings{},
		},
		classes:      map[string]*gwv1.GatewayClass{},
		namespaces:   make(map[string]labels.Set, len(in.Namespaces)),
		services:     make(map[types.NamespacedName]*corev1.Service, len(in.Services)),
		slices:       map[types.NamespacedName][]*discoveryv1.EndpointSlice{},
		secrets:      make(map[types.NamespacedName]*corev1.Secret, len(in.Secrets)),
		configMaps:   make(map[types.NamespacedName]*corev1.ConfigMap, len(in.ConfigMaps)),
		gateways:     map[types.NamespacedName]*gateway{},
		listenerSets: map[types.NamespacedName]*listenerSet{},
		tlsPolicies:  map[types.NamespacedName][]*gwv1.BackendTLSPolicy{},
		backends:     map[string]*routetable.Backend{},
		regexes:      map[string]error{},
		resolved:     map[backendKey]resolvedBackend{},
		backendUse:   map[types.NamespacedName]map[types.NamespacedName]bool{},
		reuse:        &Compiled{routes: make(map[compiledKey]*compiledRoute, len(in.HTTPRoutes)+len(in.GRPCRoutes))},
		fingerprints: map[backendKey]uint64{},
	}
	t.out.Compiled = t.reuse
	if t.controller == "" {
		t.controller = ControllerName
	}
	if t.authorizer == nil {
		t.authorizer = allowAll{}
	}
	if t.certs == nil {
		t.certs = secretCertificates{t}
	} else {
		t.certs = issuedOrReferenced{issued: t.certs, refs: secretCertificates{t}}
	}
	for _, ns := range in.Namespaces {
		if ns == nil {
			continue
		}
		// The API server labels every namespace with its name; selectors
		// rely on it, so it holds here even for objects built without it.
		set := make(labels.Set, len(ns.Labels)+1)
		for k, v := range ns.Labels {
			set[k] = v
		}
		set[corev1.LabelMetadataName] = ns.Name
		t.namespaces[ns.Name] = set
	}
	for _, s := range in.Services {
		if s != nil {
			t.services[key(s.Namespace, s.Name)] = s
		}
	}
	for _, es := range in.EndpointSlices {
		if es == nil {
			continue
		}
		if svc := es.Labels[discoveryv1.LabelServiceName]; svc != "" {
			k := key(es.Namespace, svc)
			t.slices[k] = append(t.slices[k], es)
		}
	}
	for _, list := range t.slices {
		slices.SortFunc(list, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	}
	for _, s := range in.Secrets {
		if s != nil {
			t.secrets[key(s.Namespace, s.Name)] = s
		}
	}
	for _, c := range in.ConfigMaps {
		if c != nil {
			t.configMaps[key(c.Namespace, c.Name)] = c
		}
	}
	t.grants = referencegrant.New(in.ReferenceGrants, in.ReferenceGrantsV1B)
	return t
}

func key(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

type allowAll struct{}

func (allowAll) AuthorizeAttachment(AttachmentRequest) Decision { return Decision{Allowed: true} }

// namespaceLabels returns the labels of a namespace; a namespace missing from
// the input has none, so only selectors that match everything select it.
func (t *translator) namespaceLabels(ns string) labels.Set {
	if set, ok := t.namespaces[ns]; ok {
		return set
	}
	return labels.Set{corev1.LabelMetadataName: ns}
}
