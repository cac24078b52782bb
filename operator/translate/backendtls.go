package translate

import (
	"errors"
	"fmt"
	"maps"
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
	// unattached says why Service targets attach to nothing; attached
	// counts those that do.
	unattached []string
	attached   int
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
		for i, target := range p.Spec.TargetRefs {
			if target.Group != "" || target.Kind != "Service" {
				continue
			}
			section := ""
			if target.SectionName != nil {
				section = string(*target.SectionName)
			}
			if why := t.tlsTargetMissing(p.Namespace, string(target.Name), section); why != "" {
				tp.unattached = append(tp.unattached, fmt.Sprintf("spec.targetRefs[%d]: %s", i, why))
				continue
			}
			tp.attached++
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

// tlsTargetMissing says why a policy's Service target attaches to nothing:
// the Service does not exist, or has no port named section. The spec, of
// targetRefs[].sectionName: "If a SectionName is specified, but does not
// exist on the targeted object, the Policy must fail to attach".
func (t *translator) tlsTargetMissing(ns, name, section string) string {
	svc := t.services[key(ns, name)]
	if svc == nil {
		return fmt.Sprintf("Service %s/%s does not exist", ns, name)
	}
	if section == "" {
		return ""
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == section {
			return ""
		}
	}
	return fmt.Sprintf("Service %s/%s has no port named %q (sectionName)", ns, name, section)
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
	return caPEMProblem([]byte(data))
}

// caPEMProblem says why a ca.crt value holds no usable CA certificate, or
// "" when it holds at least one and every certificate in it parses.
func caPEMProblem(data []byte) string {
	_, err := routetable.ParseCertificates(data)
	switch {
	case errors.Is(err, routetable.ErrNoCertificate):
		return "holds no PEM certificate in ca.crt"
	case err != nil:
		return fmt.Sprintf("holds an invalid certificate in ca.crt: %v", err)
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

// MaxPolicyAncestors is the most entries a policy's status.ancestors may
// hold, all controllers' together (PolicyStatus, MaxItems=16): a status
// with more is refused whole by the API server.
const MaxPolicyAncestors = 16

// Our signal that a policy's ancestors do not fit its status: on each
// ancestor entry written, and on each Gateway left out.
const (
	// ConditionAncestorsListed is False on a policy's ancestor entries while
	// Gateways are left out of its status.ancestors.
	ConditionAncestorsListed = "gatehouse.dev/AncestorsListed"
	// ConditionPoliciesListed is False on a Gateway that a policy's
	// status.ancestors leaves out.
	ConditionPoliciesListed = "gatehouse.dev/PoliciesListed"
	ReasonAncestorsFull     = "AncestorsFull"
	ReasonAllListed         = "AllListed"
)

// backendTLSPolicies reports each policy on the Gateways whose routes reach
// a Service it targets: its ancestors, at most MaxPolicyAncestors of them.
func (t *translator) backendTLSPolicies() {
	if t.tlsPolicyOf == nil {
		t.indexTLSPolicies()
	}
	omittedFrom := map[types.NamespacedName][]string{} // Gateway → the policies that leave it out
	for pk, tp := range t.tlsPolicyOf {
		p := tp.obj
		gws := map[types.NamespacedName][]string{} // Gateway → the targeted Services its routes reach
		for _, target := range p.Spec.TargetRefs {
			svc := key(p.Namespace, string(target.Name))
			for gw := range t.backendUse[svc] {
				if name := "Service " + svc.String(); !slices.Contains(gws[gw], name) {
					gws[gw] = append(gws[gw], name)
				}
			}
		}
		if len(gws) == 0 {
			continue
		}
		kept, omitted, others := t.boundAncestors(p, slices.Collect(maps.Keys(gws)))
		signal := len(omitted) > 0 || slices.ContainsFunc(p.Status.Ancestors, func(a gwv1.PolicyAncestorStatus) bool {
			return a.ControllerName == t.controller && conditions(a.Conditions).get(ConditionAncestorsListed) != nil
		})
		var ancestors []gwv1.PolicyAncestorStatus
		for _, gk := range kept {
			conds := tp.conditions()
			if signal {
				ancestorsListed(&conds, omitted, others, p.Generation)
			}
			group, kind, ns := gwv1.Group(gwv1.GroupName), gwv1.Kind("Gateway"), gwv1.Namespace(gk.Namespace)
			ancestors = append(ancestors, gwv1.PolicyAncestorStatus{
				AncestorRef:    gwv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: gwv1.ObjectName(gk.Name)},
				ControllerName: t.controller,
				Conditions:     conds,
			})
		}
		t.out.BackendTLSPolicies[pk] = ancestors
		for _, gk := range omitted {
			omittedFrom[gk] = append(omittedFrom[gk], fmt.Sprintf("BackendTLSPolicy %s (on %s)", pk, strings.Join(gws[gk], ", ")))
		}
	}
	t.policiesListed(omittedFrom)
}

// boundAncestors chooses the Gateways a policy's status lists, sorted, and
// those it leaves out. The entries of other controllers (others) take their
// places first. The spec forbids adding entries to a full list, so Gateways
// the stored status lists keep their places; the remaining places go to the
// other Gateways in namespace/name order, so that each pass chooses the same.
func (t *translator) boundAncestors(p *gwv1.BackendTLSPolicy, gws []types.NamespacedName) (kept, omitted []types.NamespacedName, others int) {
	listed := map[types.NamespacedName]bool{}
	for _, a := range p.Status.Ancestors {
		if a.ControllerName != t.controller {
			others++
			continue
		}
		if kind, k := parentKind(p.Namespace, a.AncestorRef); kind == "Gateway" {
			listed[k] = true
		}
	}
	room := max(MaxPolicyAncestors-others, 0)
	slices.SortFunc(gws, func(a, b types.NamespacedName) int {
		if listed[a] != listed[b] {
			if listed[a] {
				return -1
			}
			return 1
		}
		return compareKeys(a, b)
	})
	if len(gws) <= room {
		room = len(gws)
	}
	kept, omitted = gws[:room], gws[room:]
	slices.SortFunc(kept, compareKeys)
	slices.SortFunc(omitted, compareKeys)
	return kept, omitted, others
}

// ancestorsListed says on a policy's ancestor entry which Gateways its
// status leaves out, or that it leaves none out any more.
func ancestorsListed(conds *conditions, omitted []types.NamespacedName, others int, generation int64) {
	if len(omitted) == 0 {
		conds.set(ConditionAncestorsListed, true, ReasonAllListed, "every Gateway whose routes reach a Service this policy targets is listed", generation)
		return
	}
	names := make([]string, 0, min(len(omitted), 5))
	for _, gk := range omitted[:min(len(omitted), 5)] {
		names = append(names, gk.String())
	}
	if more := len(omitted) - len(names); more > 0 {
		names = append(names, fmt.Sprintf("and %d more", more))
	}
	full := fmt.Sprintf("status.ancestors holds %d entries at most", MaxPolicyAncestors)
	if others > 0 {
		full += fmt.Sprintf(" (%d of them other controllers')", others)
	}
	conds.set(ConditionAncestorsListed, false, ReasonAncestorsFull,
		fmt.Sprintf("%s, and %d more Gateways reach a Service this policy targets (%s): they are not listed, and each says so in its %s condition; the policy's TLS settings still apply to them. To list every Gateway, have fewer reach the targeted Services, or split the Services and their policies among the Gateways",
			full, len(omitted), strings.Join(names, ", "), ConditionPoliciesListed), generation)
}

// policiesListed signals on each Gateway the policies whose status leaves
// it out; on a Gateway that said so before, it says when none does.
func (t *translator) policiesListed(omittedFrom map[types.NamespacedName][]string) {
	for _, gw := range t.gatewayList {
		status := t.out.Gateways[gw.key]
		policies := omittedFrom[gw.key]
		conds := conditions(status.Conditions)
		switch {
		case len(policies) > 0:
			slices.Sort(policies) // they come in map order
			conds.set(ConditionPoliciesListed, false, ReasonAncestorsFull,
				fmt.Sprintf("routes of this Gateway reach Services of %s, whose status.ancestors is full (%d entries at most) and does not list this Gateway; their TLS settings still apply here. A policy's owner can split its Service and the policy among fewer Gateways",
					strings.Join(policies, ", "), MaxPolicyAncestors), gw.obj.Generation)
		case conditions(gw.obj.Status.Conditions).get(ConditionPoliciesListed) != nil:
			conds.set(ConditionPoliciesListed, true, ReasonAllListed, "every BackendTLSPolicy whose targets this Gateway's routes reach lists it", gw.obj.Generation)
		}
		status.Conditions = conds
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
	case len(tp.unattached) > 0 && tp.attached == 0:
		conds.set(accepted, false, string(gwv1.PolicyReasonTargetNotFound),
			strings.Join(tp.unattached, "; ")+": the policy applies to no backend; point targetRefs at a Service port that exists", gen)
	case len(tp.unattached) > 0:
		conds.set(accepted, true, string(gwv1.PolicyReasonAccepted),
			"policy is applied to the backend, but not through "+strings.Join(tp.unattached, "; "), gen)
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
