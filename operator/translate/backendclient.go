package translate

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// backendClient is what a Gateway's spec.tls.backend.clientCertificateRef
// resolves to: the key pair its proxies present to backends that ask for a
// client certificate, or why there is none.
type backendClient struct {
	// keyPair names the Secret's key pair ("namespace/name"), as listener
	// certificates are named; "" when the reference is absent or invalid.
	keyPair string
	// reason and message are set when the reference does not resolve: the
	// Gateway's ResolvedRefs condition is False with them.
	reason  gwv1.GatewayConditionReason
	message string
}

// resolveBackendClient reads a Gateway's client certificate for backends.
// The spec (GatewayBackendTLS.ClientCertificateRef): a reference that
// "refers to a resource that cannot be resolved (e.g., the referenced
// resource does not exist) or is misconfigured (e.g., a Secret does not
// contain the keys named `tls.crt` and `tls.key`)" makes ResolvedRefs False
// with InvalidClientCertificateRef; one to another namespace without a
// ReferenceGrant, RefNotPermitted. Without a usable key pair the proxies
// present none: a backend that requires one refuses the connection.
func (t *translator) resolveBackendClient(g *gwv1.Gateway) backendClient {
	if g.Spec.TLS == nil || g.Spec.TLS.Backend == nil || g.Spec.TLS.Backend.ClientCertificateRef == nil {
		return backendClient{}
	}
	ref := t.keyPairRef("Gateway", g.Namespace, "spec.tls.backend.clientCertificateRef", *g.Spec.TLS.Backend.ClientCertificateRef)
	switch {
	case ref.notPermitted:
		return backendClient{reason: gwv1.GatewayReasonRefNotPermitted, message: ref.problem + noClientCertificate}
	case ref.problem != "":
		return backendClient{reason: gwv1.GatewayReasonInvalidClientCertificateRef, message: ref.problem + noClientCertificate}
	}
	return backendClient{keyPair: ref.name}
}

const noClientCertificate = "; until it is fixed the proxies present no client certificate to backends"

// gatewayResolvedRefs sets the Gateway's ResolvedRefs condition: whether
// the references it makes outside its listeners resolve, and a summary of
// its listeners' own ResolvedRefs. The spec: the condition "does not
// directly impact the Gateway's Accepted or Programmed conditions", and the
// conformance suite holds a Gateway with an invalid clientCertificateRef to
// Accepted=True, reason Accepted.
//
// Only a Gateway that makes such a reference (spec.tls.backend) gets the
// condition, and one that had it keeps it current: on the others it would
// repeat what each listener already says.
func (t *translator) gatewayResolvedRefs(gw *gateway) {
	g := gw.obj
	resolved := string(gwv1.GatewayConditionResolvedRefs)
	if g.Spec.TLS == nil || g.Spec.TLS.Backend == nil {
		if conditions(g.Status.Conditions).get(resolved) == nil {
			return
		}
	}
	if c := gw.client; c.reason != "" {
		gw.conds.set(resolved, false, string(c.reason), c.message, g.Generation)
		return
	}
	var unresolved []string
	for _, l := range gw.own {
		if c := l.conds.get(string(gwv1.ListenerConditionResolvedRefs)); c != nil && c.Status != "True" {
			unresolved = append(unresolved, string(l.name))
		}
	}
	if len(unresolved) > 0 {
		gw.conds.set(resolved, false, string(gwv1.GatewayReasonListenersNotResolved),
			fmt.Sprintf("listeners %s have references that do not resolve: see their ResolvedRefs conditions", strings.Join(unresolved, ", ")), g.Generation)
		return
	}
	gw.conds.set(resolved, true, string(gwv1.GatewayReasonResolvedRefs), "all references resolved", g.Generation)
}

// withClientCertificate is the backend as this Gateway's table carries it:
// a backend reached over TLS gets the Gateway's client certificate. Other
// Gateways' tables share the backend, so it is copied, not changed.
func (gw *gateway) withClientCertificate(b *routetable.Backend) *routetable.Backend {
	if gw.client.keyPair == "" || b.GetTls() == nil {
		return b
	}
	b = proto.Clone(b).(*routetable.Backend)
	b.Tls.ClientCertificate = gw.client.keyPair
	return b
}
