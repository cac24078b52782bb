package hub

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

func TestTrimMemberObject(t *testing.T) {
	big := strings.Repeat("x", MaxCachedData+1)
	meta := func(labels map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "o", Namespace: "ns", Labels: labels,
			Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": big},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}
	}
	cases := []struct {
		name    string
		in      client.Object
		data    map[string]int // key → length kept
		labels  bool           // labels kept
		annots  []string       // annotation keys kept
		dropped bool
	}{
		{name: "a ConfigMap keeps only the keys translate reads",
			in: &corev1.ConfigMap{ObjectMeta: meta(map[string]string{"a": "b"}),
				Data: map[string]string{"ca.crt": "pem", "mode": "external", "blob": big}, BinaryData: map[string][]byte{"bin": []byte(big)}},
			data: map[string]int{"ca.crt": 3, "mode": 8}},
		{name: "a ConfigMap whose read keys are larger than the bound keeps a note only",
			in:   &corev1.ConfigMap{ObjectMeta: meta(nil), Data: map[string]string{"ca.crt": big}},
			data: map[string]int{}, annots: []string{translate.AnnotationDataDropped}, dropped: true},
		{name: "a tenant cannot forge the note",
			in: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{translate.AnnotationDataDropped: "forged"}},
				Data: map[string]string{"ca.crt": "pem"}},
			data: map[string]int{"ca.crt": 3}},
		{name: "a Secret keeps only the key pair",
			in: &corev1.Secret{ObjectMeta: meta(nil), Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k"), "extra": []byte(big)}},
			data: map[string]int{"tls.crt": 1, "tls.key": 1}},
		{name: "a Secret whose key pair is larger than the bound keeps a note only",
			in:   &corev1.Secret{ObjectMeta: meta(nil), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte(big), "tls.key": []byte("k")}},
			data: map[string]int{}, annots: []string{translate.AnnotationDataDropped}, dropped: true},
		{name: "labels that push an object past the bound count",
			in: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelGateway: "shared", "l": big}},
				Data: map[string]string{"ca.crt": "pem"}},
			data: map[string]int{}, annots: []string{translate.AnnotationDataDropped}, dropped: true},
		{name: "a ConfigMap the hub created keeps its labels and annotations",
			in: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelGateway: "shared"}, Annotations: map[string]string{"a": "b"}},
				Data: map[string]string{"ca.crt": "pem"}},
			data: map[string]int{"ca.crt": 3}, labels: true, annots: []string{"a"}},
		{name: "a Service loses its annotations",
			in: &corev1.Service{ObjectMeta: meta(map[string]string{"app": "web"})}, labels: true},
		{name: "a Service the hub created keeps them",
			in:     &corev1.Service{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelGateway: "shared"}, Annotations: map[string]string{"a": "b"}}},
			labels: true, annots: []string{"a"}},
		{name: "a Namespace keeps its labels, for allowedRoutes selectors",
			in: &corev1.Namespace{ObjectMeta: meta(map[string]string{"team": "shop"})}, labels: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := trimMemberObject(c.in)
			if err != nil {
				t.Fatal(err)
			}
			o := out.(client.Object)
			if len(o.GetManagedFields()) > 0 {
				t.Error("managedFields kept")
			}
			if got := len(o.GetLabels()) > 0; got != c.labels {
				t.Errorf("labels kept: %v, want %v", got, c.labels)
			}
			var annots []string
			for k := range o.GetAnnotations() {
				annots = append(annots, k)
			}
			if strings.Join(annots, ",") != strings.Join(c.annots, ",") {
				t.Errorf("annotations kept: %v, want %v", annots, c.annots)
			}
			if c.dropped && !strings.Contains(o.GetAnnotations()[translate.AnnotationDataDropped], "more than the 131072 it keeps") {
				t.Errorf("the note says %q", o.GetAnnotations()[translate.AnnotationDataDropped])
			}
			got := map[string]int{}
			switch v := o.(type) {
			case *corev1.ConfigMap:
				for k, d := range v.Data {
					got[k] = len(d)
				}
				if len(v.BinaryData) > 0 {
					t.Error("binaryData kept")
				}
			case *corev1.Secret:
				for k, d := range v.Data {
					got[k] = len(d)
				}
			}
			if len(got) != len(c.data) {
				t.Errorf("data kept: %v, want %v", got, c.data)
			}
			for k, n := range c.data {
				if got[k] != n {
					t.Errorf("data kept: %v, want %v", got, c.data)
				}
			}
		})
	}
}
