package translate

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// ConfigMapKeys are the only keys of ConfigMaps translate reads: the class
// parameters (with the limit keys, which parseLimits reads by name), the
// proxy settings of classes and Gateways, and the CA bundles of
// BackendTLSPolicies and of Gateways' client-certificate validation. A cache
// that feeds translate may drop every other key (TestReadsListEveryKey keeps
// this list complete).
var ConfigMapKeys = slices.Concat([]string{"mode", "addresses", "clusterIssuer", "issuer", "adminPort", "ca.crt"}, limitKeys(), ProxySettingKeys)

// limitKeys are the names of the limit keys of class parameters.
func limitKeys() []string {
	var keys []string
	for _, k := range limitDurations {
		keys = append(keys, k.name)
	}
	for _, k := range limitCounts {
		keys = append(keys, k.name)
	}
	return keys
}

// SecretKeys are the only keys of Secrets translate reads: the key pairs of
// listeners' certificateRefs, and the CA bundles of Gateways' client
// certificate validation.
var SecretKeys = []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, "ca.crt"}

// AnnotationTooLarge marks an object a cache kept only a stub of because
// it was too large: its name, what it refers to and its status. Its value
// says so in words ("is N bytes …, more than the M it keeps of one
// object"); translate reports it wherever the object is referenced, and
// never serves the stub as if it were the object.
const AnnotationTooLarge = "gatehouse.dev/too-large"

// ReasonTooLarge is the reason of a condition about an object the hub's
// cache kept only a stub of.
const ReasonTooLarge = "TooLarge"

// tooLarge says why obj (not nil) is only a stub, or "" when it is whole.
func tooLarge(obj interface{ GetAnnotations() map[string]string }) string {
	return obj.GetAnnotations()[AnnotationTooLarge]
}
