package hub

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/dump"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// TestTrimMemberObject: each kind keeps what the hub reads of it and no
// more, and an object still larger than MaxCachedObject becomes a stub with
// a note, whatever part of it is large and whoever claims to own it.
func TestTrimMemberObject(t *testing.T) {
	big := strings.Repeat("x", MaxCachedObject+1)
	// Labels are at most 63 characters a value: many of them make an
	// object large through what routes and Namespaces keep.
	manyLabels := map[string]string{}
	for i := range 3000 {
		manyLabels[fmt.Sprintf("l%d", i)] = strings.Repeat("v", 60)
	}
	junk := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "o", Namespace: "ns", UID: "u", ResourceVersion: "7", Generation: 3,
			Labels: map[string]string{"team": "shop"},
			Annotations: map[string]string{"a": "b", annotationLastApplied: "{}", translate.AnnotationTooLarge: "forged",
				certificates.AnnotationIssuer: "ca"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Finalizers:      []string{"example.com/f"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "x"}}}
	}
	// kept is the identity every trimmed object and every stub keeps.
	kept := func(labels, annotations map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "o", Namespace: "ns", UID: "u", ResourceVersion: "7", Generation: 3, Labels: labels, Annotations: annotations}
	}
	tooLarge := map[string]string{translate.AnnotationTooLarge: "…"}
	// ours is what the hub writes on what it provisions for Gateway gw.
	ours := func(name, gw string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{LabelGateway: gw},
			Annotations:     map[string]string{"infra": "x"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "gateway.networking.k8s.io/v1", Kind: "Gateway", Name: gw, UID: "g", Controller: ptr.To(true)}}}
	}
	parents := gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared"}}}
	routeStatus := gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "shared"}, ControllerName: "other.example/controller"}}}
	bigRules := []gwv1.HTTPRouteRule{{Matches: []gwv1.HTTPRouteMatch{{Headers: []gwv1.HTTPHeaderMatch{{Name: "x", Value: big}}}}}}

	cases := []struct {
		name string
		in   client.Object
		want client.Object
	}{
		{name: "a ConfigMap keeps only the keys translate reads, and no metadata",
			in:   &corev1.ConfigMap{ObjectMeta: junk(), Data: map[string]string{"ca.crt": "pem", "mode": "external", "blob": big}, BinaryData: map[string][]byte{"bin": []byte(big)}},
			want: &corev1.ConfigMap{ObjectMeta: kept(nil, nil), Data: map[string]string{"ca.crt": "pem", "mode": "external"}}},
		{name: "a ConfigMap whose read keys are larger than the bound is a stub",
			in:   &corev1.ConfigMap{ObjectMeta: junk(), Data: map[string]string{"ca.crt": big}},
			want: &corev1.ConfigMap{ObjectMeta: kept(nil, tooLarge)}},
		{name: "a Secret keeps only the key pair and its CA bundle",
			in:   &corev1.Secret{ObjectMeta: junk(), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k"), "ca.crt": []byte("ca"), "extra": []byte(big)}},
			want: &corev1.Secret{ObjectMeta: kept(nil, nil), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k"), "ca.crt": []byte("ca")}}},
		{name: "a Secret whose key pair is larger than the bound is a stub",
			in:   &corev1.Secret{ObjectMeta: junk(), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte(big)}},
			want: &corev1.Secret{ObjectMeta: kept(nil, tooLarge)}},
		{name: "a Service keeps its type and ports only",
			in: &corev1.Service{ObjectMeta: junk(), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 80}},
				Selector: map[string]string{"app": big}, ClusterIP: "10.0.0.1"}},
			want: &corev1.Service{ObjectMeta: kept(nil, nil), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 80}}}}},
		{name: "a tenant's Service labelled as the hub's keeps nothing more",
			in: func() client.Object {
				m := junk()
				m.Labels[LabelGateway] = "shared"
				m.Annotations["big"] = big
				return &corev1.Service{ObjectMeta: m}
			}(),
			want: &corev1.Service{ObjectMeta: kept(nil, nil)}},
		{name: "a tenant's Service with the hub's label, a Gateway owner and another name keeps nothing more",
			in: func() client.Object {
				m := ours("web", "shared")
				m.Annotations["big"] = big
				return &corev1.Service{ObjectMeta: m}
			}(),
			want: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}},
		{name: "the proxies' Service the hub provisioned is kept whole",
			in: &corev1.Service{ObjectMeta: ours("gatehouse-proxy-shared", "shared"), Spec: corev1.ServiceSpec{Selector: map[string]string{LabelGateway: "shared"}},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}}},
			want: &corev1.Service{ObjectMeta: ours("gatehouse-proxy-shared", "shared"), Spec: corev1.ServiceSpec{Selector: map[string]string{LabelGateway: "shared"}},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}}}},
		{name: "a provisioned object is bounded too",
			in: func() client.Object {
				m := ours("gatehouse-proxy-shared", "shared")
				m.Annotations["big"] = big
				return &corev1.ServiceAccount{ObjectMeta: m}
			}(),
			want: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-proxy-shared", Namespace: "ns", Annotations: tooLarge}}},
		{name: "the proxies' CA bundle keeps its metadata",
			in:   &corev1.ConfigMap{ObjectMeta: ours(proxyCABundle("shared"), "shared"), Data: map[string]string{"ca.crt": "pem"}},
			want: &corev1.ConfigMap{ObjectMeta: ours(proxyCABundle("shared"), "shared"), Data: map[string]string{"ca.crt": "pem"}}},
		{name: "a Deployment the hub provisioned is kept whole",
			in:   &appsv1.Deployment{ObjectMeta: ours("gatehouse-proxy-shared", "shared"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}},
			want: &appsv1.Deployment{ObjectMeta: ours("gatehouse-proxy-shared", "shared"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}}},
		{name: "a PodDisruptionBudget the hub provisioned is kept whole",
			in:   &policyv1.PodDisruptionBudget{ObjectMeta: ours("gatehouse-proxy-shared", "shared"), Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1))}},
			want: &policyv1.PodDisruptionBudget{ObjectMeta: ours("gatehouse-proxy-shared", "shared"), Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1))}}},
		{name: "an EndpointSlice keeps its Service's label and what backends are built from",
			in: &discoveryv1.EndpointSlice{ObjectMeta: func() metav1.ObjectMeta {
				m := junk()
				m.Labels[discoveryv1.LabelServiceName] = "web"
				return m
			}(), AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](8080)}},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Hostname: ptr.To(big), NodeName: ptr.To("n"), Zone: ptr.To("z"),
					Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true)},
					TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "web-1", Namespace: "ns", UID: "p", ResourceVersion: "9"}}}},
			want: &discoveryv1.EndpointSlice{ObjectMeta: kept(map[string]string{discoveryv1.LabelServiceName: "web"}, nil),
				AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](8080)}},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
					TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}}}}},
		{name: "an EndpointSlice with too many endpoints is a stub that still names its Service",
			in: &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "ns", UID: "u", ResourceVersion: "7", Generation: 3,
				Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}, AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints: []discoveryv1.Endpoint{{Addresses: strings.Split(strings.Repeat("10.0.0.1,", 20000), ",")}}},
			want: &discoveryv1.EndpointSlice{ObjectMeta: kept(map[string]string{discoveryv1.LabelServiceName: "web"}, tooLarge), AddressType: discoveryv1.AddressTypeIPv4}},
		{name: "a Namespace keeps its labels, for tenancy and allowedRoutes selectors",
			in:   &corev1.Namespace{ObjectMeta: junk(), Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			want: &corev1.Namespace{ObjectMeta: kept(map[string]string{"team": "shop"}, nil)}},
		{name: "a Namespace whose labels are larger than the bound is a stub",
			in:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "ns", UID: "u", ResourceVersion: "7", Generation: 3, Labels: manyLabels}},
			want: &corev1.Namespace{ObjectMeta: kept(nil, tooLarge)}},
		{name: "a Gateway keeps its labels and its issuer annotation",
			in: &gwv1.Gateway{ObjectMeta: junk(), Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse"}},
			want: &gwv1.Gateway{ObjectMeta: kept(map[string]string{"team": "shop"}, map[string]string{certificates.AnnotationIssuer: "ca"}),
				Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse"}}},
		{name: "an HTTPRoute keeps its labels and annotations for RoutePolicies, not kubectl's copy or a forged note",
			in: &gwv1.HTTPRoute{ObjectMeta: junk(), Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parents, Hostnames: []gwv1.Hostname{"a.example"}}},
			want: &gwv1.HTTPRoute{ObjectMeta: kept(map[string]string{"team": "shop"}, map[string]string{"a": "b", certificates.AnnotationIssuer: "ca"}),
				Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parents, Hostnames: []gwv1.Hostname{"a.example"}}}},
		{name: "an HTTPRoute larger than the bound keeps its parents and status",
			in:   &gwv1.HTTPRoute{ObjectMeta: junk(), Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parents, Rules: bigRules}, Status: gwv1.HTTPRouteStatus{RouteStatus: routeStatus}},
			want: &gwv1.HTTPRoute{ObjectMeta: kept(nil, tooLarge), Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parents}, Status: gwv1.HTTPRouteStatus{RouteStatus: routeStatus}}},
		{name: "an HTTPRoute whose labels make it larger than the bound is a stub",
			in:   &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "ns", UID: "u", ResourceVersion: "7", Generation: 3, Labels: manyLabels}, Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parents}},
			want: &gwv1.HTTPRoute{ObjectMeta: kept(nil, tooLarge), Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parents}}},
		{name: "a GRPCRoute larger than the bound keeps its parents",
			in:   &gwv1.GRPCRoute{ObjectMeta: junk(), Spec: gwv1.GRPCRouteSpec{CommonRouteSpec: parents, Hostnames: []gwv1.Hostname{gwv1.Hostname(big)}}},
			want: &gwv1.GRPCRoute{ObjectMeta: kept(nil, tooLarge), Spec: gwv1.GRPCRouteSpec{CommonRouteSpec: parents}}},
		{name: "a ListenerSet larger than the bound keeps its Gateway",
			in: &gwv1.ListenerSet{ObjectMeta: junk(), Spec: gwv1.ListenerSetSpec{ParentRef: gwv1.ParentGatewayReference{Name: "shared"},
				Listeners: []gwv1.ListenerEntry{{Name: "l", Hostname: ptr.To(gwv1.Hostname(big))}}}},
			want: &gwv1.ListenerSet{ObjectMeta: kept(nil, tooLarge), Spec: gwv1.ListenerSetSpec{ParentRef: gwv1.ParentGatewayReference{Name: "shared"}}}},
		{name: "a Gateway larger than the bound keeps its class",
			in: &gwv1.Gateway{ObjectMeta: junk(), Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse",
				Listeners: []gwv1.Listener{{Name: "l", Hostname: ptr.To(gwv1.Hostname(big))}}}},
			want: &gwv1.Gateway{ObjectMeta: kept(nil, tooLarge), Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse"}}},
		{name: "a route whose status alone is larger than the bound keeps no status",
			in: &gwv1.HTTPRoute{ObjectMeta: junk(), Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parents},
				Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{{ControllerName: gwv1.GatewayController(big)}}}}},
			want: &gwv1.HTTPRoute{ObjectMeta: kept(nil, tooLarge), Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parents}}},
		{name: "GatewayClasses, ReferenceGrants and BackendTLSPolicies keep no metadata",
			in:   &gwv1beta1.ReferenceGrant{ObjectMeta: junk(), Spec: gwv1.ReferenceGrantSpec{To: []gwv1.ReferenceGrantTo{{Kind: "Service"}}}},
			want: &gwv1beta1.ReferenceGrant{ObjectMeta: kept(nil, nil), Spec: gwv1.ReferenceGrantSpec{To: []gwv1.ReferenceGrantTo{{Kind: "Service"}}}}},
		{name: "a BackendTLSPolicy larger than the bound keeps its targets, so that they fail closed",
			in: &gwv1.BackendTLSPolicy{ObjectMeta: junk(), Spec: gwv1.BackendTLSPolicySpec{
				TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "web"}}},
				Validation: gwv1.BackendTLSPolicyValidation{Hostname: gwv1.PreciseHostname(big)}}},
			want: &gwv1.BackendTLSPolicy{ObjectMeta: kept(nil, tooLarge), Spec: gwv1.BackendTLSPolicySpec{
				TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "web"}}}}}},
	}
	note := regexp.MustCompile(`^is \d+ bytes once the hub drops what it does not read, more than the 131072 it keeps of one object$`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := trimMemberObject(c.in)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(client.Object)
			if a := got.GetAnnotations(); a[translate.AnnotationTooLarge] != "" {
				if !note.MatchString(a[translate.AnnotationTooLarge]) {
					t.Errorf("the note says %q", a[translate.AnnotationTooLarge])
				}
				a[translate.AnnotationTooLarge] = "…"
			}
			if !equality.Semantic.DeepEqual(got, c.want) {
				t.Errorf("kept:\n%s\nwant:\n%s", dump.Pretty(got), dump.Pretty(c.want))
			}
			if n := jsonSize(got); n > MaxCachedObject {
				t.Errorf("kept %d bytes, more than MaxCachedObject", n)
			}
		})
	}
}
