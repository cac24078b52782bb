package translate

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// tlsPolicy is a BackendTLSPolicy after validation.
type tlsPolicy struct {
	obj     *gwv1.BackendTLSPolicy
	tls     *routetable.BackendTLS
	reason  gwv1.PolicyConditionReason
	message string
}

// indexTLSPolicies validates every BackendTLSPolicy and indexes it by the
// Services it targets. For one Service port, the oldest policy wins.
func (t *translator) indexTLSPolicies() {
	policies := slices.Clone(t.in.BackendTLSPolicies)
	policies = slices.DeleteFunc(policies, func(p *gwv1.BackendTLSPolicy) bool { return p == nil })
	slices.SortFunc(policies, func(a, b *gwv1.BackendTLSPolicy) int {
		return compareAge(a.CreationTimestamp, b.CreationTimestamp, key(a.Namespace, a.Name), key(b.Namespace, b.Name))
	})
	t.tlsPolicyOf = map[types.NamespacedName]*tlsPolicy{}
	for _, p := range policies {
		tp := t.validateTLSPolicy(p)
		t.tlsPolicyOf[key(p.Namespace, p.Name)] = tp
		for _, target := range p.Spec.TargetRefs {
			if target.Group != "" || target.Kind != "Service" {
				continue
			}
			svc := key(p.Namespace, string(target.Name))
			t.tlsPolicies[svc] = append(t.tlsPolicies[svc], p)
		}
	}
}

func (t *translator) validateTLSPolicy(p *gwv1.BackendTLSPolicy) *tlsPolicy {
	v := p.Spec.Validation
	tp := &tlsPolicy{obj: p, tls: &routetable.BackendTLS{Sni: string(v.Hostname)}}
	for _, san := range v.SubjectAltNames {
		switch san.Type {
		case gwv1.HostnameSubjectAltNameType:
			tp.tls.SubjectAltNames = append(tp.tls.SubjectAltNames, string(san.Hostname))
		case gwv1.URISubjectAltNameType:
			tp.tls.SubjectAltNames = append(tp.tls.SubjectAltNames, string(san.URI))
		}
	}
	if v.WellKnownCACertificates != nil {
		if *v.WellKnownCACertificates != gwv1.WellKnownCACertificatesSystem {
			tp.reason = gwv1.PolicyReasonInvalid
			tp.message = fmt.Sprintf("spec.validation.wellKnownCACertificates: %q is not supported: use System", *v.WellKnownCACertificates)
			return tp
		}
		tp.tls.UseSystemRoots = true
		return tp
	}
	var bundle strings.Builder
	for i, r := range v.CACertificateRefs {
		field := fmt.Sprintf("spec.validation.caCertificateRefs[%d]", i)
		if r.Group != "" || r.Kind != "ConfigMap" {
			tp.reason = gwv1.BackendTLSPolicyReasonInvalidKind
			tp.message = fmt.Sprintf("%s: %s/%s cannot hold CA certificates: refer to a ConfigMap", field, orCore(string(r.Group)), r.Kind)
			return tp
		}
		cm := t.configMaps[key(p.Namespace, string(r.Name))]
		if msg := validCABundle(cm); msg != "" {
			tp.reason = gwv1.BackendTLSPolicyReasonInvalidCACertificateRef
			tp.message = fmt.Sprintf("%s: ConfigMap %s/%s %s", field, p.Namespace, r.Name, msg)
			return tp
		}
		bundle.WriteString(cm.Data["ca.crt"])
		if !strings.HasSuffix(cm.Data["ca.crt"], "\n") {
			bundle.WriteByte('\n')
		}
	}
	tp.tls.CaPem = bundle.String()
	return tp
}

func validCABundle(cm *corev1.ConfigMap) string {
	if cm == nil {
		return "does not exist"
	}
	data, ok := cm.Data["ca.crt"]
	if !ok {
		return `has no key "ca.crt"`
	}
	rest := []byte(data)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Sprintf("holds an invalid certificate in ca.crt: %v", err)
		}
		n++
	}
	if n == 0 {
		return "holds no PEM certificate in ca.crt"
	}
	return ""
}

// backendTLS returns the TLS settings for a Service port: those of the oldest
// valid policy targeting it (by port name, or the whole Service).
func (t *translator) backendTLS(svc *corev1.Service, port *corev1.ServicePort) *routetable.BackendTLS {
	if t.tlsPolicyOf == nil {
		t.indexTLSPolicies()
	}
	for _, p := range t.tlsPolicies[key(svc.Namespace, svc.Name)] {
		tp := t.tlsPolicyOf[key(p.Namespace, p.Name)]
		if tp.reason != "" {
			continue
		}
		for _, target := range p.Spec.TargetRefs {
			if string(target.Name) != svc.Name {
				continue
			}
			if target.SectionName == nil || string(*target.SectionName) == port.Name {
				return tp.tls
			}
		}
	}
	return nil
}

// backendTLSPolicies reports each policy on the Gateways whose routes reach
// a Service it targets: its ancestors.
func (t *translator) backendTLSPolicies() {
	if t.tlsPolicyOf == nil {
		t.indexTLSPolicies()
	}
	for pk, tp := range t.tlsPolicyOf {
		p := tp.obj
		gws := map[types.NamespacedName]bool{}
		for _, target := range p.Spec.TargetRefs {
			for gw := range t.backendUse[key(p.Namespace, string(target.Name))] {
				gws[gw] = true
			}
		}
		if len(gws) == 0 {
			continue
		}
		keys := make([]types.NamespacedName, 0, len(gws))
		for k := range gws {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareKeys)
		var ancestors []gwv1.PolicyAncestorStatus
		for _, gk := range keys {
			var conds conditions
			if tp.reason != "" {
				conds.set(string(gwv1.PolicyConditionAccepted), false, string(gwv1.PolicyReasonInvalid), tp.message, p.Generation)
				conds.set(string(gwv1.BackendTLSPolicyConditionResolvedRefs), false, string(tp.reason), tp.message, p.Generation)
			} else {
				conds.set(string(gwv1.PolicyConditionAccepted), true, string(gwv1.PolicyReasonAccepted), "policy is applied to the backend", p.Generation)
				conds.set(string(gwv1.BackendTLSPolicyConditionResolvedRefs), true, string(gwv1.BackendTLSPolicyReasonResolvedRefs), "all references resolved", p.Generation)
			}
			group, kind, ns := gwv1.Group(gwv1.GroupName), gwv1.Kind("Gateway"), gwv1.Namespace(gk.Namespace)
			ancestors = append(ancestors, gwv1.PolicyAncestorStatus{
				AncestorRef:    gwv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: gwv1.ObjectName(gk.Name)},
				ControllerName: t.controller,
				Conditions:     conds,
			})
		}
		t.out.BackendTLSPolicies[pk] = ancestors
	}
}
