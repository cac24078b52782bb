package hub

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// MaxCachedObject is the most the hub keeps of one member object, measured
// as JSON once what the hub does not read is dropped. A route, a Gateway, a
// CA bundle or a key pair is a few KiB; an object above the bound is kept
// as a stub (its name, what it refers to, its status) with a note that
// translate reports wherever the object is referenced. So a member that
// fills its API server with large objects costs the hub at most this much
// per object, whoever wrote them and whatever they hold.
const MaxCachedObject = 128 << 10

// annotationLastApplied is kubectl's copy of the object, the largest
// annotation most objects carry; nobody in the hub reads it.
const annotationLastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// gatewayAnnotations are the annotations the hub reads of Gateways: the
// issuer a Gateway names for its listeners' certificates.
var gatewayAnnotations = []string{certificates.AnnotationClusterIssuer, certificates.AnnotationIssuer}

// trimMemberObject is the transform of member caches: each object keeps
// what the hub reads of it and nothing else, within MaxCachedObject.
//
//   - every object loses managedFields, and, unless the hub provisioned it
//     (provisioned), ownerReferences and finalizers;
//   - ConfigMaps and Secrets keep only the data keys translate reads
//     (translate.ConfigMapKeys, SecretKeys), and no labels or annotations;
//   - Services keep their type and ports; EndpointSlices their address type,
//     ports, addresses, readiness and target, and the label naming their
//     Service; Namespaces their labels (tenancy and allowedRoutes select by
//     any of them); none keeps annotations;
//   - Gateways keep their labels (Tenants select Gateways by them) and the
//     issuer annotations; routes and ListenerSets keep their labels and
//     annotations, which RoutePolicies may read, but not kubectl's copy of
//     the object; GatewayClasses, ReferenceGrants and BackendTLSPolicies keep
//     neither;
//   - an object the hub provisioned for a Gateway's proxies is kept whole,
//     since the hub compares it with what it wants.
//
// A note (translate.AnnotationTooLarge) a member wrote itself is removed.
func trimMemberObject(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	o.SetManagedFields(nil)
	if provisioned(o) {
		o.SetAnnotations(without(o.GetAnnotations(), translate.AnnotationTooLarge))
		return bound(o), nil
	}
	o.SetOwnerReferences(nil)
	o.SetFinalizers(nil)
	switch v := o.(type) {
	case *corev1.ConfigMap:
		v.BinaryData = nil
		v.Data = keepKeys(v.Data, translate.ConfigMapKeys)
		dropMetadata(v)
	case *corev1.Secret:
		v.StringData = nil
		v.Data = keepKeys(v.Data, translate.SecretKeys)
		dropMetadata(v)
	case *corev1.Service:
		v.Spec = corev1.ServiceSpec{Type: v.Spec.Type, Ports: v.Spec.Ports}
		v.Status = corev1.ServiceStatus{}
		dropMetadata(v)
	case *discoveryv1.EndpointSlice:
		trimEndpoints(v)
	case *corev1.Namespace:
		v.Spec, v.Status = corev1.NamespaceSpec{}, corev1.NamespaceStatus{}
		v.Annotations = nil
	case *gwv1.Gateway:
		v.Annotations = keepKeys(v.Annotations, gatewayAnnotations)
	case *gwv1.HTTPRoute, *gwv1.GRPCRoute, *gwv1.TLSRoute, *gwv1.TCPRoute, *gwv1.UDPRoute, *gwv1.ListenerSet:
		o.SetAnnotations(without(o.GetAnnotations(), annotationLastApplied, translate.AnnotationTooLarge))
	case *gwv1.GatewayClass, *gwv1.ReferenceGrant, *gwv1beta1.ReferenceGrant, *gwv1.BackendTLSPolicy:
		dropMetadata(o)
	default:
		// Kinds the hub reads only as its own (ServiceAccounts,
		// Deployments: cached by label, see ClusterCache) keep what they
		// have, within the bound.
		o.SetAnnotations(without(o.GetAnnotations(), translate.AnnotationTooLarge))
	}
	return bound(o), nil
}

// provisioned reports whether o is an object the hub creates for a
// Gateway's proxies, which it reads back whole to compare with what it
// wants: it is named for the Gateway its LabelGateway names, and that
// Gateway is its controller. A tenant may set all three on an object of its
// own; that buys it nothing but its labels and annotations, within the same
// bound as every object.
func provisioned(o client.Object) bool {
	gw := o.GetLabels()[LabelGateway]
	if gw == "" {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(o)
	if ref == nil || ref.Kind != "Gateway" || ref.Name != gw || !strings.HasPrefix(ref.APIVersion, gwv1.GroupName+"/") {
		return false
	}
	switch o.(type) {
	case *corev1.ConfigMap:
		return o.GetName() == proxyCABundle(gw)
	case *corev1.Service:
		return o.GetName() == proxyServiceName(gw)
	case *corev1.ServiceAccount, *appsv1.Deployment, *policyv1.PodDisruptionBudget:
		return o.GetName() == ProxyServiceAccount(gw)
	}
	return false
}

func dropMetadata(o client.Object) {
	o.SetLabels(nil)
	o.SetAnnotations(nil)
}

// trimEndpoints keeps of an EndpointSlice what translate builds backends
// from.
func trimEndpoints(es *discoveryv1.EndpointSlice) {
	es.Labels = keepKeys(es.Labels, []string{discoveryv1.LabelServiceName})
	es.Annotations = nil
	for i := range es.Endpoints {
		e := &es.Endpoints[i]
		var target *corev1.ObjectReference
		if e.TargetRef != nil {
			target = &corev1.ObjectReference{Kind: e.TargetRef.Kind, Name: e.TargetRef.Name}
		}
		*e = discoveryv1.Endpoint{Addresses: e.Addresses, Conditions: discoveryv1.EndpointConditions{Ready: e.Conditions.Ready}, TargetRef: target}
	}
}

// bound replaces an object larger than MaxCachedObject with its stub.
func bound(o client.Object) client.Object {
	size := jsonSize(o)
	if size <= MaxCachedObject {
		return o
	}
	s := stub(o)
	note := fmt.Sprintf("is %d bytes once the hub drops what it does not read, more than the %d it keeps of one object", size, MaxCachedObject)
	if jsonSize(s) > MaxCachedObject {
		// Only a writer of status can make it this large; the hub's own
		// next status write replaces it.
		s = stub(o)
		clearStatus(s)
	}
	s.SetAnnotations(map[string]string{translate.AnnotationTooLarge: note})
	return s
}

// stub is what the hub keeps of an object too large to keep: its identity,
// what translate needs to say where it is too large (a route's parents, a
// ListenerSet's Gateway, a Gateway's class, a policy's targets, a slice's
// Service) and its status, which status writes carry forward.
func stub(o client.Object) client.Object {
	meta := metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(), UID: o.GetUID(), ResourceVersion: o.GetResourceVersion(),
		Generation: o.GetGeneration(), CreationTimestamp: o.GetCreationTimestamp(), DeletionTimestamp: o.GetDeletionTimestamp()}
	var s client.Object
	switch v := o.(type) {
	case *gwv1.HTTPRoute:
		s = &gwv1.HTTPRoute{ObjectMeta: meta, Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: v.Spec.CommonRouteSpec}, Status: v.Status}
	case *gwv1.GRPCRoute:
		s = &gwv1.GRPCRoute{ObjectMeta: meta, Spec: gwv1.GRPCRouteSpec{CommonRouteSpec: v.Spec.CommonRouteSpec}, Status: v.Status}
	case *gwv1.TLSRoute:
		s = &gwv1.TLSRoute{ObjectMeta: meta, Spec: gwv1.TLSRouteSpec{CommonRouteSpec: v.Spec.CommonRouteSpec}, Status: v.Status}
	case *gwv1.TCPRoute:
		s = &gwv1.TCPRoute{ObjectMeta: meta, Spec: gwv1.TCPRouteSpec{CommonRouteSpec: v.Spec.CommonRouteSpec}, Status: v.Status}
	case *gwv1.UDPRoute:
		s = &gwv1.UDPRoute{ObjectMeta: meta, Spec: gwv1.UDPRouteSpec{CommonRouteSpec: v.Spec.CommonRouteSpec}, Status: v.Status}
	case *gwv1.ListenerSet:
		s = &gwv1.ListenerSet{ObjectMeta: meta, Spec: gwv1.ListenerSetSpec{ParentRef: v.Spec.ParentRef}, Status: v.Status}
	case *gwv1.Gateway:
		s = &gwv1.Gateway{ObjectMeta: meta, Spec: gwv1.GatewaySpec{GatewayClassName: v.Spec.GatewayClassName}, Status: v.Status}
	case *gwv1.GatewayClass:
		s = &gwv1.GatewayClass{ObjectMeta: meta, Spec: gwv1.GatewayClassSpec{ControllerName: v.Spec.ControllerName}, Status: v.Status}
	case *gwv1.BackendTLSPolicy:
		s = &gwv1.BackendTLSPolicy{ObjectMeta: meta, Spec: gwv1.BackendTLSPolicySpec{TargetRefs: v.Spec.TargetRefs}, Status: v.Status}
	case *discoveryv1.EndpointSlice:
		meta.Labels = keepKeys(maps.Clone(v.Labels), []string{discoveryv1.LabelServiceName})
		s = &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: v.AddressType}
	default:
		// Every built-in kind embeds ObjectMeta by that name.
		n := reflect.New(reflect.TypeOf(o).Elem())
		n.Elem().FieldByName("ObjectMeta").Set(reflect.ValueOf(meta))
		s = n.Interface().(client.Object)
	}
	s.GetObjectKind().SetGroupVersionKind(o.GetObjectKind().GroupVersionKind())
	return s
}

// clearStatus zeroes the status of a stub of a kind that has one.
func clearStatus(o client.Object) {
	if f := reflect.ValueOf(o).Elem().FieldByName("Status"); f.IsValid() {
		f.SetZero()
	}
}

func jsonSize(o client.Object) int {
	b, err := json.Marshal(o)
	if err != nil {
		// Not expected of an object an API server sent; count it as too
		// large rather than keep what cannot be measured.
		return MaxCachedObject + 1
	}
	return len(b)
}

func keepKeys[V any](m map[string]V, keys []string) map[string]V {
	if m == nil {
		return nil
	}
	maps.DeleteFunc(m, func(k string, _ V) bool { return !slices.Contains(keys, k) })
	return m
}

func without(m map[string]string, keys ...string) map[string]string {
	for _, k := range keys {
		delete(m, k)
	}
	return m
}
