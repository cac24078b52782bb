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

// tlsPolicy is a BackendTLSPolicy after validation. An invalid policy still
// applies: connections through it must fail rather than go out unverified.
type tlsPolicy struct {
	obj *gwv1.BackendTLSPolicy
	tls *routetable.BackendTLS
	// acceptReason is set when Accepted is False; resolveReason when
	// ResolvedRefs is False.
	acceptReason  gwv1.PolicyConditionReason
	resolveReason gwv1.PolicyConditionReason
	message       string
	// conflictsWith names the older policy that wins the same target.
	conflictsWith string
}

func (tp *tlsPolicy) invalid(accept, resolve gwv1.PolicyConditionReason, message string) *tlsPolicy {
	tp.acceptReason, tp.resolveReason, tp.message = accept, resolve, message
	// No trust anchor at all: every handshake through this policy fails.
	tp.tls = &routetable.BackendTLS{Sni: tp.tls.Sni}
	return tp
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
	owner := map[string]*gwv1.BackendTLSPolicy{} // "ns/service#section" → the policy that holds it
	for _, p := range policies {
		tp := t.validateTLSPolicy(p)
		t.tlsPolicyOf[key(p.Namespace, p.Name)] = tp
		for _, target := range p.Spec.TargetRefs {
			if target.Group != "" || target.Kind != "Service" {
				continue
			}
			section := ""
			if target.SectionName != nil {
				section = string(*target.SectionName)
			}
			id := p.Namespace + "/" + string(target.Name) + "#" + section
			if prev := owner[id]; prev != nil {
				if tp.conflictsWith == "" {
					tp.conflictsWith = key(prev.Namespace, prev.Name).String()
				}
				continue
			}
			owner[id] = p
			svc := key(p.Namespace, string(target.Name))
			t.tlsPolicies[svc] = append(t.tlsPolicies[svc], p)
		}
	}
}

func (t *translator) validateTLSPolicy(p *gwv1.BackendTLSPolicy) *tlsPolicy {
	v := p.Spec.Validation
	tp := &tlsPolicy{obj: p, tls: &routetable.BackendTLS{Sni: string(v.Hostname)}}
	if why := tooLarge(p); why != "" {
		// The hub kept only its targets: connections to them fail rather
		// than go out unverified.
		return tp.invalid(gwv1.PolicyReasonInvalid, "", fmt.Sprintf("BackendTLSPolicy %s/%s %s: trim its labels and annotations", p.Namespace, p.Name, why))
	}
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
			return tp.invalid(gwv1.PolicyReasonInvalid, "",
				fmt.Sprintf("spec.validation.wellKnownCACertificates: %q is not supported: use System", *v.WellKnownCACertificates))
		}
		tp.tls.UseSystemRoots = true
		return tp
	}
	// Invalid references are reported; the policy is rejected only when no
	// reference gives a usable CA.
	var bundle strings.Builder
	var problems []string
	resolve := gwv1.PolicyConditionReason("")
	for i, r := range v.CACertificateRefs {
		field := fmt.Sprintf("spec.validation.caCertificateRefs[%d]", i)
		if r.Group != "" || r.Kind != "ConfigMap" {
			problems = append(problems, fmt.Sprintf("%s: %s/%s cannot hold CA certificates: refer to a ConfigMap", field, orCore(string(r.Group)), r.Kind))
			if resolve == "" {
				resolve = gwv1.BackendTLSPolicyReasonInvalidKind
			}
			continue
		}
		cm := t.configMaps[key(p.Namespace, string(r.Name))]
		if msg := validCABundle(cm); msg != "" {
			problems = append(problems, fmt.Sprintf("%s: ConfigMap %s/%s %s", field, p.Namespace, r.Name, msg))
			if resolve == "" {
				resolve = gwv1.BackendTLSPolicyReasonInvalidCACertificateRef
			}
			continue
		}
		bundle.WriteString(cm.Data["ca.crt"])
		if !strings.HasSuffix(cm.Data["ca.crt"], "\n") {
			bundle.WriteByte('\n')
		}
	}
	if len(problems) > 0 {
		msg := strings.Join(problems, "; ")
		if bundle.Len() == 0 {
			return tp.invalid(gwv1.BackendTLSPolicyReasonNoValidCACertificate, resolve, msg)
		}
		tp.resolveReason, tp.message = resolve, msg
	}
	tp.tls.CaPem = bundle.String()
	return tp
}

func validCABundle(cm *corev1.ConfigMap) string {
	if cm == nil {
		return "does not exist"
	}
	if why := tooLarge(cm); why != "" {
		return why + ": keep only the CA certificates in ca.crt"
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
			conds := tp.conditions()
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

func (tp *tlsPolicy) conditions() conditions {
	var conds conditions
	gen := tp.obj.Generation
	accepted, resolved := string(gwv1.PolicyConditionAccepted), string(gwv1.BackendTLSPolicyConditionResolvedRefs)
	switch {
	case tp.conflictsWith != "":
		conds.set(accepted, false, string(gwv1.PolicyReasonConflicted),
			"BackendTLSPolicy "+tp.conflictsWith+" is older and targets the same Service port: only it applies", gen)
	case tp.acceptReason != "":
		conds.set(accepted, false, string(tp.acceptReason), tp.message+"; connections to the backend fail until this is fixed", gen)
	default:
		conds.set(accepted, true, string(gwv1.PolicyReasonAccepted), "policy is applied to the backend", gen)
	}
	if tp.resolveReason != "" {
		conds.set(resolved, false, string(tp.resolveReason), tp.message, gen)
	} else {
		conds.set(resolved, true, string(gwv1.BackendTLSPolicyReasonResolvedRefs), "all references resolved", gen)
	}
	return conds
}
