package hub

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// MaxCachedData is the most the hub keeps of one member ConfigMap or Secret:
// the bytes of the keys translate reads, plus the labels and annotations
// kept. A CA bundle or a key pair is a few KiB; an object above the bound
// keeps only its name and a note that translate reports where the object is
// referenced. So a member that floods its API server with large objects
// costs the hub their metadata only.
const MaxCachedData = 128 << 10

// trimMemberObject is the transform of member caches: objects keep what the
// hub reads of them and nothing else. Every object loses its managedFields.
// ConfigMaps and Secrets keep only the data keys translate reads
// (translate.ConfigMapKeys, SecretKeys), within MaxCachedData; they, Services,
// EndpointSlices and Namespaces lose the annotations nobody reads. Objects
// the hub created itself (labelled LabelGateway) keep their labels and
// annotations, which it compares when it updates them.
func trimMemberObject(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	o.SetManagedFields(nil)
	_, ours := o.GetLabels()[LabelGateway]
	switch v := o.(type) {
	case *corev1.ConfigMap:
		v.BinaryData = nil
		v.Data = keepKeys(v.Data, translate.ConfigMapKeys)
		boundData(v, ours, dataSize(v.Data))
	case *corev1.Secret:
		v.StringData = nil
		v.Data = keepKeys(v.Data, translate.SecretKeys)
		boundData(v, ours, dataSize(v.Data))
	case *corev1.Service:
		if !ours {
			v.Annotations = nil
		}
	case *discoveryv1.EndpointSlice, *corev1.Namespace:
		o.SetAnnotations(nil)
	}
	return o, nil
}

// boundData drops the metadata the hub does not read and, when what is
// left is larger than MaxCachedData, the data too, leaving a note.
func boundData(o client.Object, ours bool, data int) {
	if !ours {
		o.SetLabels(nil)
		o.SetAnnotations(nil)
	}
	size := data + dataSize(o.GetLabels()) + dataSize(o.GetAnnotations())
	if size <= MaxCachedData {
		return
	}
	o.SetLabels(nil)
	o.SetAnnotations(map[string]string{translate.AnnotationDataDropped: fmt.Sprintf(
		"holds %d bytes of data the hub reads, more than the %d it keeps of one object", size, MaxCachedData)})
	switch v := o.(type) {
	case *corev1.ConfigMap:
		v.Data = nil
	case *corev1.Secret:
		v.Data = nil
	}
}

func keepKeys[V any](m map[string]V, keys []string) map[string]V {
	if m == nil {
		return nil
	}
	maps.DeleteFunc(m, func(k string, _ V) bool { return !slices.Contains(keys, k) })
	return m
}

func dataSize[V string | []byte](m map[string]V) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}
