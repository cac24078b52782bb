package translate

import (
	"crypto/tls"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/referencegrant"
)

// issuedOrReferenced asks the issuing source about listeners without
// certificateRefs, and reads certificateRefs otherwise.
type issuedOrReferenced struct {
	issued CertificateSource
	refs   secretCertificates
}

func (s issuedOrReferenced) ListenerCertificates(req ListenerCertificateRequest) CertificateResult {
	if req.TLS == nil || len(req.TLS.CertificateRefs) == 0 {
		if res := s.issued.ListenerCertificates(req); len(res.KeyPairs) > 0 || res.Reason != "" {
			return res
		}
	}
	return s.refs.ListenerCertificates(req)
}

// secretCertificates is the default CertificateSource: the listener's
// certificateRefs, each a kubernetes.io/tls Secret of the cluster, subject to
// ReferenceGrants when in another namespace.
type secretCertificates struct{ t *translator }

func (s secretCertificates) ListenerCertificates(req ListenerCertificateRequest) CertificateResult {
	if req.TLS == nil || len(req.TLS.CertificateRefs) == 0 {
		return CertificateResult{
			Reason:  gwv1.ListenerReasonInvalidCertificateRef,
			Message: "an HTTPS listener needs tls.certificateRefs: add a reference to a kubernetes.io/tls Secret",
		}
	}
	owner := req.Gateway.Namespace
	fromKind := "Gateway"
	if req.ListenerSet != nil {
		owner, fromKind = req.ListenerSet.Namespace, "ListenerSet"
	}
	var res CertificateResult
	for i, r := range req.TLS.CertificateRefs {
		ref := s.t.keyPairRef(fromKind, owner, fmt.Sprintf("tls.certificateRefs[%d]", i), r)
		switch {
		case ref.notPermitted:
			return CertificateResult{Reason: gwv1.ListenerReasonRefNotPermitted, Message: ref.problem}
		case ref.problem != "":
			return CertificateResult{Reason: gwv1.ListenerReasonInvalidCertificateRef, Message: ref.problem}
		}
		res.KeyPairs = append(res.KeyPairs, ref.name)
	}
	return res
}

// secretKeyPair is a reference to a Secret that holds a key pair, resolved.
type secretKeyPair struct {
	// name is "namespace/secret" when the reference resolves.
	name string
	// notPermitted: the Secret is in another namespace and no ReferenceGrant
	// allows it. problem says what is wrong and what to do.
	notPermitted bool
	problem      string
}

// keyPairRef resolves a reference, at field of an object of kind fromKind in
// namespace owner, to a kubernetes.io/tls Secret holding a valid key pair:
// the one rule for listener certificates and a Gateway's client
// certificate for backends.
func (t *translator) keyPairRef(fromKind, owner, field string, r gwv1.SecretObjectReference) secretKeyPair {
	if (r.Group != nil && *r.Group != "") || (r.Kind != nil && *r.Kind != "Secret") {
		return secretKeyPair{problem: fmt.Sprintf("%s: only core Secrets can hold certificates, not %s", field, groupKind(r.Group, r.Kind))}
	}
	ns := owner
	if r.Namespace != nil && *r.Namespace != "" {
		ns = string(*r.Namespace)
	}
	if !t.grants.Allowed(referencegrant.Ref{Group: gwv1.GroupName, Kind: fromKind, Namespace: owner}, referencegrant.Ref{Kind: "Secret", Namespace: ns, Name: string(r.Name)}) {
		return secretKeyPair{notPermitted: true,
			problem: fmt.Sprintf("%s: Secret %s/%s is in another namespace and no ReferenceGrant in %q allows it: add one from %s in %q",
				field, ns, r.Name, ns, fromKind, owner)}
	}
	if msg := validKeyPair(t.secrets[key(ns, string(r.Name))]); msg != "" {
		return secretKeyPair{problem: fmt.Sprintf("%s: Secret %s/%s %s", field, ns, r.Name, msg)}
	}
	return secretKeyPair{name: ns + "/" + string(r.Name)}
}

func validKeyPair(s *corev1.Secret) string {
	if s == nil {
		return "does not exist"
	}
	if why := tooLarge(s); why != "" {
		return why + ": keep only the certificate chain and key in tls.crt and tls.key"
	}
	if s.Type != corev1.SecretTypeTLS {
		return fmt.Sprintf("has type %q: it must be %q", s.Type, corev1.SecretTypeTLS)
	}
	if _, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
		return fmt.Sprintf("does not hold a valid key pair: %v", err)
	}
	return ""
}

func groupKind(g *gwv1.Group, k *gwv1.Kind) string {
	group, kind := "core", "Secret"
	if g != nil && *g != "" {
		group = string(*g)
	}
	if k != nil {
		kind = string(*k)
	}
	return group + "/" + kind
}
