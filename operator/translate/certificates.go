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
		field := fmt.Sprintf("tls.certificateRefs[%d]", i)
		if (r.Group != nil && *r.Group != "") || (r.Kind != nil && *r.Kind != "Secret") {
			return CertificateResult{Reason: gwv1.ListenerReasonInvalidCertificateRef,
				Message: fmt.Sprintf("%s: only core Secrets can hold certificates, not %s", field, groupKind(r.Group, r.Kind))}
		}
		ns := owner
		if r.Namespace != nil && *r.Namespace != "" {
			ns = string(*r.Namespace)
		}
		if !s.t.grants.Allowed(referencegrant.Ref{Group: gwv1.GroupName, Kind: fromKind, Namespace: owner}, referencegrant.Ref{Kind: "Secret", Namespace: ns, Name: string(r.Name)}) {
			return CertificateResult{Reason: gwv1.ListenerReasonRefNotPermitted,
				Message: fmt.Sprintf("%s: Secret %s/%s is in another namespace and no ReferenceGrant in %q allows it: add one from %s in %q",
					field, ns, r.Name, ns, fromKind, owner)}
		}
		secret := s.t.secrets[key(ns, string(r.Name))]
		if msg := validKeyPair(secret); msg != "" {
			return CertificateResult{Reason: gwv1.ListenerReasonInvalidCertificateRef,
				Message: fmt.Sprintf("%s: Secret %s/%s %s", field, ns, r.Name, msg)}
		}
		res.KeyPairs = append(res.KeyPairs, ns+"/"+string(r.Name))
	}
	return res
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
