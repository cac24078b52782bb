package translate

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigMapKeys are the only keys of ConfigMaps translate reads: the class
// parameters and the CA bundles of BackendTLSPolicies. A cache that feeds
// translate may drop every other key (TestReadsListEveryKey keeps this list
// complete).
var ConfigMapKeys = []string{"mode", "addresses", "clusterIssuer", "issuer", "adminPort", "ca.crt"}

// SecretKeys are the only keys of Secrets translate reads: the key pairs of
// listeners' certificateRefs.
var SecretKeys = []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey}

// AnnotationDataDropped marks a ConfigMap or Secret whose data a cache did
// not keep because it was too large. Its value says so in words ("holds N
// bytes …"); translate reports it wherever the object is referenced.
const AnnotationDataDropped = "gatehouse.dev/data-dropped"

// dataDropped says why obj's data is missing, or "" when it is whole.
func dataDropped(obj metav1.Object) string {
	if obj == nil {
		return ""
	}
	return obj.GetAnnotations()[AnnotationDataDropped]
}
