package translate

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/referencegrant"
)

// Client-certificate validation is a Gateway's, set per port
// (spec.tls.frontend, GEP-91), not per listener: a TLS connection, once
// made, may carry requests for any listener on its port, so every HTTPS
// listener of one port asks the same of clients. The spec: perPort
// "overrides the default configuration for all Listeners handling HTTPS
// traffic that match this port", and default applies "for all Listeners
// handling HTTPS traffic, unless a per-port configuration is defined".
//
// The listeners of the Gateway's ListenerSets follow the Gateway's
// configuration for their port too: ListenerSet's spec says
// "Implementations MUST treat the parent Gateway as having the merged list
// of all listeners from itself and attached ListenerSets", and a
// ListenerSet has no frontend configuration of its own. The references resolve as the Gateway's, from
// its namespace.
//
// CA bundles come from ConfigMaps (key ca.crt, the spec's Core support) and,
// as Gatehouse's implementation-specific support, from Secrets of type
// kubernetes.io/tls (key ca.crt, where cert-manager writes the issuing CA):
// the hub caches no other Secrets.

// frontendValidation is what a Gateway's spec.tls.frontend asks of the
// HTTPS listeners of one port.
type frontendValidation struct {
	// caPEM holds the certificates of every reference that resolved.
	caPEM    string
	fallback bool
	// reason and message, when a reference does not resolve, are the
	// ResolvedRefs=False condition of every listener it targets.
	reason  gwv1.ListenerConditionReason
	message string
	// field names the validation in messages, e.g.
	// "spec.tls.frontend.perPort[0].tls.validation" of Gateway ns/name.
	field string
}

// frontendKey names one validation of a Gateway: perPort's index, or -1
// for default.
type frontendKey struct {
	gateway types.NamespacedName
	perPort int
}

// frontendFor is the validation the Gateway asks of its HTTPS listeners on
// port, nil for none. A perPort entry without validation turns validation
// off on its port even when default sets it: it overrides default.
func (t *translator) frontendFor(gw *gateway, port gwv1.PortNumber) *frontendValidation {
	if gw.obj.Spec.TLS == nil || gw.obj.Spec.TLS.Frontend == nil {
		return nil
	}
	fe := gw.obj.Spec.TLS.Frontend
	k, cfg, field := frontendKey{gw.key, -1}, &fe.Default, "spec.tls.frontend.default.validation"
	for i := range fe.PerPort {
		if fe.PerPort[i].Port == port {
			k.perPort, cfg, field = i, &fe.PerPort[i].TLS, fmt.Sprintf("spec.tls.frontend.perPort[%d].tls.validation", i)
			break
		}
	}
	if cfg.Validation == nil {
		return nil
	}
	if f, ok := t.frontends[k]; ok {
		return f
	}
	if t.frontends == nil {
		t.frontends = map[frontendKey]*frontendValidation{}
	}
	f := t.resolveFrontend(gw, cfg.Validation, fmt.Sprintf("Gateway %s %s", gw.key, field))
	t.frontends[k] = f
	return f
}

// resolveFrontend reads the CA bundles of one validation. Each invalid
// reference is reported; the listeners are served with the CAs of the
// others, and not at all when none resolves.
func (t *translator) resolveFrontend(gw *gateway, v *gwv1.FrontendTLSValidation, field string) *frontendValidation {
	f := &frontendValidation{field: field, fallback: v.Mode == gwv1.AllowInsecureFallback}
	var bundle strings.Builder
	var problems []string
	for i, r := range v.CACertificateRefs {
		pem, reason, why := t.frontendCA(gw, r)
		if why != "" {
			problems = append(problems, fmt.Sprintf("caCertificateRefs[%d]: %s", i, why))
			if f.reason == "" {
				f.reason = reason
			}
			continue
		}
		bundle.WriteString(pem)
		if !strings.HasSuffix(pem, "\n") {
			bundle.WriteByte('\n')
		}
	}
	f.caPEM = bundle.String()
	if len(problems) > 0 {
		f.message = field + ": " + strings.Join(problems, "; ")
	}
	return f
}

// frontendCA reads one reference's CA bundle, or says why it cannot, with
// the spec's reason: InvalidCACertificateKind for a kind Gatehouse does not
// read, RefNotPermitted for another namespace without a ReferenceGrant,
// InvalidCACertificateRef for what does not exist or holds no certificate.
func (t *translator) frontendCA(gw *gateway, r gwv1.ObjectReference) (string, gwv1.ListenerConditionReason, string) {
	kind := string(r.Kind)
	if r.Group != "" || (kind != "ConfigMap" && kind != "Secret") {
		return "", gwv1.ListenerReasonInvalidCACertificateKind, fmt.Sprintf(
			"%s/%s cannot hold CA certificates in Gatehouse: refer to a ConfigMap (key ca.crt) or a Secret of type %s (key ca.crt)",
			orCore(string(r.Group)), kind, corev1.SecretTypeTLS)
	}
	ns := gw.obj.Namespace
	if r.Namespace != nil && *r.Namespace != "" {
		ns = string(*r.Namespace)
	}
	if !t.grants.Allowed(referencegrant.Ref{Group: gwv1.GroupName, Kind: "Gateway", Namespace: gw.obj.Namespace},
		referencegrant.Ref{Kind: kind, Namespace: ns, Name: string(r.Name)}) {
		return "", gwv1.ListenerReasonRefNotPermitted, fmt.Sprintf(
			"%s %s/%s is in another namespace and no ReferenceGrant in %q allows it: add one from Gateway in %q", kind, ns, r.Name, ns, gw.obj.Namespace)
	}
	if kind == "ConfigMap" {
		cm := t.configMaps[key(ns, string(r.Name))]
		if msg := validCABundle(cm); msg != "" {
			return "", gwv1.ListenerReasonInvalidCACertificateRef, fmt.Sprintf("ConfigMap %s/%s %s", ns, r.Name, msg)
		}
		return cm.Data["ca.crt"], "", ""
	}
	s := t.secrets[key(ns, string(r.Name))]
	if msg := validCASecret(s); msg != "" {
		return "", gwv1.ListenerReasonInvalidCACertificateRef, fmt.Sprintf("Secret %s/%s %s", ns, r.Name, msg)
	}
	return string(s.Data["ca.crt"]), "", ""
}

// validCASecret says why a Secret holds no CA bundle Gatehouse reads, or
// "" when it holds one.
func validCASecret(s *corev1.Secret) string {
	switch {
	case s == nil:
		return fmt.Sprintf("does not exist (Gatehouse reads only Secrets of type %s)", corev1.SecretTypeTLS)
	case tooLarge(s) != "":
		return tooLarge(s) + ": keep only the certificates and key in tls.crt, tls.key and ca.crt"
	case s.Type != corev1.SecretTypeTLS:
		return fmt.Sprintf("has type %q: Gatehouse reads CA bundles only from Secrets of type %q, or from ConfigMaps", s.Type, corev1.SecretTypeTLS)
	}
	data, ok := s.Data["ca.crt"]
	if !ok {
		return `has no key "ca.crt"`
	}
	return caPEMProblem(data)
}

// noValidCA reports that no reference of the validation resolved: its
// listeners are Accepted=False NoValidCACertificate and not served, since
// serving them without validation would let every client in.
func (f *frontendValidation) noValidCA() bool {
	return f != nil && f.caPEM == ""
}

// unresolved reports that a reference of the validation does not resolve.
func (f *frontendValidation) unresolved() bool {
	return f != nil && f.reason != ""
}

// alsoUnresolved is what a listener's ResolvedRefs message adds about the
// validation when its own certificateRefs already set the reason.
func (f *frontendValidation) alsoUnresolved() string {
	if !f.unresolved() {
		return ""
	}
	return "; and " + f.message
}

// notAccepted is the message of Accepted=False NoValidCACertificate.
func (f *frontendValidation) notAccepted(port int32) string {
	return fmt.Sprintf("no CA certificate of %s resolves (see ResolvedRefs): the HTTPS listeners on port %d are not served rather than served without client-certificate validation",
		f.field, port)
}

// table is the validation as the route table carries it, nil for none.
func (f *frontendValidation) table() *routetable.ClientValidation {
	if f == nil {
		return nil
	}
	return &routetable.ClientValidation{CaPem: f.caPEM, InsecureFallback: f.fallback}
}

// unknownFrontendMode says why the mode of the validation for port is not
// one Gatehouse knows, "" when it is. Its listeners are then not served
// (Accepted=False UnsupportedValue): read as another mode, they would
// validate clients other than as written.
func unknownFrontendMode(gw *gwv1.Gateway, port gwv1.PortNumber) string {
	for _, m := range frontendModes(gw) {
		if m.port != nil && *m.port != port {
			continue
		}
		if m.mode != "" && m.mode != gwv1.AllowValidOnly && m.mode != gwv1.AllowInsecureFallback {
			return fmt.Sprintf("%s.mode: %q is not a value Gatehouse knows: use %s or %s", m.field, m.mode, gwv1.AllowValidOnly, gwv1.AllowInsecureFallback)
		}
		return ""
	}
	return ""
}

// frontendMode is the mode of one validation of spec.tls.frontend; port is
// nil for default.
type frontendMode struct {
	port  *gwv1.PortNumber
	field string
	mode  gwv1.FrontendValidationModeType
}

// frontendModes lists the validations of a Gateway, perPort entries
// first, then default: the first that names a port applies to it.
func frontendModes(gw *gwv1.Gateway) []frontendMode {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return nil
	}
	fe := gw.Spec.TLS.Frontend
	var out []frontendMode
	for i := range fe.PerPort {
		pp := &fe.PerPort[i]
		m := frontendMode{port: &pp.Port, field: fmt.Sprintf("spec.tls.frontend.perPort[%d].tls.validation", i)}
		if pp.TLS.Validation != nil {
			m.mode = pp.TLS.Validation.Mode
		}
		out = append(out, m)
	}
	m := frontendMode{field: "spec.tls.frontend.default.validation"}
	if fe.Default.Validation != nil {
		m.mode = fe.Default.Validation.Mode
	}
	return append(out, m)
}

// frontendConditions sets the Gateway's InsecureFrontendValidationMode
// condition. The spec: it "is true when the Gateway
// FrontendValidationModeType is configured to allow insecure fallback
// behavior", "either at the Gateway level or via a per-port override", and
// "is removed as soon as FrontendValidationModeType is changed back to
// `AllowValidOnly`" (operator/status drops it when translate no longer sets
// it).
func frontendConditions(gw *gateway) {
	var fields []string
	for _, m := range frontendModes(gw.obj) {
		if m.mode == gwv1.AllowInsecureFallback {
			fields = append(fields, m.field+".mode")
		}
	}
	if len(fields) == 0 {
		return
	}
	gw.conds.set(string(gwv1.GatewayConditionInsecureFrontendValidationMode), true, string(gwv1.GatewayReasonConfigurationChanged),
		fmt.Sprintf("%s: AllowInsecureFallback serves clients without a valid certificate and leaves their authentication to the backends: set AllowValidOnly to require one",
			strings.Join(fields, ", ")), gw.obj.Generation)
}
