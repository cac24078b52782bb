package hub

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

type fakeMember struct{ c client.Client }

func (m fakeMember) GetClient() client.Client                        { return m.c }
func (m fakeMember) GetEventRecorderFor(string) record.EventRecorder { return &record.FakeRecorder{} }

// TestInfrastructureMetadataReachesEveryObject: spec.infrastructure's labels
// and annotations are on every object the hub creates for a Gateway's
// proxies, except those in the hub's own domain, gatehouse.dev, which no
// Gateway may set; the labels by which the hub and the Gateway API find a
// Gateway's objects (gatehouse.dev/gateway, gateway-name) stay the hub's
// whatever the Gateway asks. Kubernetes' domains stay off the pods only.
func TestInfrastructureMetadataReachesEveryObject(t *testing.T) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "gw-uid"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse",
			Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
			Infrastructure: &gwv1.GatewayInfrastructure{
				Labels: map[gwv1.LabelKey]gwv1.LabelValue{
					"team": "shop", LabelGateway: "other", gwv1.GatewayNameLabelKey: "other", "sub.gatehouse.dev/x": "y",
				},
				Annotations: map[gwv1.AnnotationKey]gwv1.AnnotationValue{
					"example.com/owner": "shop", "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
					translate.AnnotationTooLarge: "pretend",
				},
			}},
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(gw).Build()
	w := &worker{name: "member-1", cl: fakeMember{c}}
	p := Provisioning{Image: "gatehouse-proxy:test", XDSAddress: "hub.example:18000", CABundle: func() []byte { return []byte("ca") }}
	if _, err := w.provisionGateway(t.Context(), gw, p, translate.ClassParameters{Mode: translate.ModeManaged}, translate.ProxySettings{}); err != nil {
		t.Fatal(err)
	}

	name := client.ObjectKey{Namespace: "shop", Name: ProxyServiceAccount("web")}
	objs := map[string]client.Object{"ServiceAccount": &corev1.ServiceAccount{}, "Deployment": &appsv1.Deployment{},
		"PodDisruptionBudget": &policyv1.PodDisruptionBudget{}, "Service": &corev1.Service{}, "ConfigMap": &corev1.ConfigMap{}}
	for kind, obj := range objs {
		key := name
		if kind == "ConfigMap" {
			key.Name = proxyCABundle("web")
		}
		if err := c.Get(t.Context(), key, obj); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		l, a := obj.GetLabels(), obj.GetAnnotations()
		if l["team"] != "shop" || a["example.com/owner"] != "shop" || a["service.beta.kubernetes.io/aws-load-balancer-scheme"] != "internal" {
			t.Errorf("%s lacks spec.infrastructure's labels or annotations: %v %v", kind, l, a)
		}
		if l[LabelGateway] != "web" || l[gwv1.GatewayNameLabelKey] != "web" {
			t.Errorf("%s: the Gateway's labels override the hub's: %v", kind, l)
		}
		if _, ok := l["sub.gatehouse.dev/x"]; ok {
			t.Errorf("%s carries a gatehouse.dev label a Gateway asked for: %v", kind, l)
		}
		if _, ok := a[translate.AnnotationTooLarge]; ok {
			t.Errorf("%s carries a gatehouse.dev annotation a Gateway asked for: %v", kind, a)
		}
	}
	tpl := objs["Deployment"].(*appsv1.Deployment).Spec.Template
	if tpl.Labels["team"] != "shop" || tpl.Labels[LabelGateway] != "web" || tpl.Annotations["example.com/owner"] != "shop" {
		t.Errorf("pod metadata %v %v", tpl.Labels, tpl.Annotations)
	}
	if _, ok := tpl.Annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"]; ok {
		t.Errorf("a kubernetes.io annotation of spec.infrastructure reached the pods: %v", tpl.Annotations)
	}
}
