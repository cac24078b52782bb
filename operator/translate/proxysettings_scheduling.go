package translate

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The scheduling keys are checked here as the API server would check them
// in the Deployment, so that a mistake is reported on the GatewayClass or
// Gateway that made it, with the key it is in, instead of failing every
// write of the proxies' Deployment.

func (p *settingsParser) tolerations(raw string, path *field.Path) []corev1.Toleration {
	ts, ok := decode[[]corev1.Toleration](p, raw, path, "a list of tolerations", "[{key: dedicated, operator: Equal, value: ingress, effect: NoSchedule}]")
	if !ok {
		return nil
	}
	before := len(p.errs)
	effects := []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}
	for i, t := range ts {
		at := path.Index(i)
		if t.Key != "" {
			p.qualifiedName(t.Key, at.Child("key"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			if t.Key == "" {
				p.add(field.Invalid(at.Child("operator"), t.Operator, "a toleration without a key must have operator Exists"))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				p.add(field.Invalid(at.Child("value"), t.Value, "must be empty when operator is Exists"))
			}
		default:
			p.add(field.NotSupported(at.Child("operator"), t.Operator, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
		}
		if t.Effect != "" && !slices.Contains(effects, t.Effect) {
			p.add(field.NotSupported(at.Child("effect"), t.Effect, effects))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			p.add(field.Invalid(at.Child("effect"), t.Effect, "tolerationSeconds applies only to effect NoExecute"))
		}
	}
	return checked(p, before, ts)
}

func (p *settingsParser) affinity(raw string, path *field.Path) *corev1.Affinity {
	a, ok := decode[corev1.Affinity](p, raw, path, "a pod's affinity", "{nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: example.com/ingress, operator: Exists}]}]}}}")
	if !ok {
		return nil
	}
	before := len(p.errs)
	if na := a.NodeAffinity; na != nil {
		at := path.Child("nodeAffinity")
		if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			terms := at.Child("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
			if len(req.NodeSelectorTerms) == 0 {
				p.add(field.Required(terms, "name at least one term"))
			}
			for i, term := range req.NodeSelectorTerms {
				p.nodeSelectorTerm(term, terms.Index(i))
			}
		}
		for i, pref := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			at := at.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
			p.weight(pref.Weight, at.Child("weight"))
			p.nodeSelectorTerm(pref.Preference, at.Child("preference"))
		}
	}
	if pa := a.PodAffinity; pa != nil {
		p.podAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, path.Child("podAffinity"))
	}
	if pa := a.PodAntiAffinity; pa != nil {
		p.podAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, path.Child("podAntiAffinity"))
	}
	return checked(p, before, &a)
}

func (p *settingsParser) nodeSelectorTerm(term corev1.NodeSelectorTerm, path *field.Path) {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		p.add(field.Required(path, "name matchExpressions or matchFields"))
	}
	for i, r := range term.MatchExpressions {
		at := path.Child("matchExpressions").Index(i)
		p.qualifiedName(r.Key, at.Child("key"))
		p.nodeSelectorValues(r, at)
	}
	for i, r := range term.MatchFields {
		at := path.Child("matchFields").Index(i)
		if r.Key != "metadata.name" {
			p.add(field.NotSupported(at.Child("key"), r.Key, []string{"metadata.name"}))
		}
		p.nodeSelectorValues(r, at)
	}
}

func (p *settingsParser) nodeSelectorValues(r corev1.NodeSelectorRequirement, path *field.Path) {
	values := path.Child("values")
	switch r.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(r.Values) == 0 {
			p.add(field.Required(values, "operator "+string(r.Operator)+" needs at least one value"))
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(r.Values) > 0 {
			p.add(field.Forbidden(values, "operator "+string(r.Operator)+" takes no values"))
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(r.Values) != 1 {
			p.add(field.Required(values, "operator "+string(r.Operator)+" takes exactly one whole number"))
		} else if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
			p.add(field.Invalid(values.Index(0), r.Values[0], "must be a whole number"))
		}
	default:
		p.add(field.NotSupported(path.Child("operator"), r.Operator, []corev1.NodeSelectorOperator{
			corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt}))
	}
}

func (p *settingsParser) podAffinityTerms(required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm, path *field.Path) {
	for i, t := range required {
		p.podAffinityTerm(t, path.Child("requiredDuringSchedulingIgnoredDuringExecution").Index(i))
	}
	for i, w := range preferred {
		at := path.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
		p.weight(w.Weight, at.Child("weight"))
		p.podAffinityTerm(w.PodAffinityTerm, at.Child("podAffinityTerm"))
	}
}

func (p *settingsParser) podAffinityTerm(t corev1.PodAffinityTerm, path *field.Path) {
	p.qualifiedName(t.TopologyKey, path.Child("topologyKey"))
	opts := metav1validation.LabelSelectorValidationOptions{}
	if t.LabelSelector != nil {
		p.add(metav1validation.ValidateLabelSelector(t.LabelSelector, opts, path.Child("labelSelector"))...)
	}
	if t.NamespaceSelector != nil {
		p.add(metav1validation.ValidateLabelSelector(t.NamespaceSelector, opts, path.Child("namespaceSelector"))...)
	}
}

func (p *settingsParser) weight(w int32, path *field.Path) {
	if w < 1 || w > 100 {
		p.add(field.Invalid(path, w, "must be from 1 to 100"))
	}
}

func (p *settingsParser) topologySpread(raw string, path *field.Path) []corev1.TopologySpreadConstraint {
	cs, ok := decode[[]corev1.TopologySpreadConstraint](p, raw, path, "a list of topology spread constraints", "[{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}]")
	if !ok {
		return nil
	}
	before := len(p.errs)
	whens := []corev1.UnsatisfiableConstraintAction{corev1.DoNotSchedule, corev1.ScheduleAnyway}
	policies := []corev1.NodeInclusionPolicy{corev1.NodeInclusionPolicyHonor, corev1.NodeInclusionPolicyIgnore}
	for i, c := range cs {
		at := path.Index(i)
		if c.MaxSkew < 1 {
			p.add(field.Invalid(at.Child("maxSkew"), c.MaxSkew, "must be at least 1"))
		}
		p.qualifiedName(c.TopologyKey, at.Child("topologyKey"))
		if !slices.Contains(whens, c.WhenUnsatisfiable) {
			p.add(field.NotSupported(at.Child("whenUnsatisfiable"), c.WhenUnsatisfiable, whens))
		}
		if c.MinDomains != nil && (*c.MinDomains < 1 || c.WhenUnsatisfiable != corev1.DoNotSchedule) {
			p.add(field.Invalid(at.Child("minDomains"), *c.MinDomains, "must be at least 1, and only with whenUnsatisfiable DoNotSchedule"))
		}
		if pol := c.NodeAffinityPolicy; pol != nil && !slices.Contains(policies, *pol) {
			p.add(field.NotSupported(at.Child("nodeAffinityPolicy"), *pol, policies))
		}
		if pol := c.NodeTaintsPolicy; pol != nil && !slices.Contains(policies, *pol) {
			p.add(field.NotSupported(at.Child("nodeTaintsPolicy"), *pol, policies))
		}
		if c.LabelSelector != nil {
			p.add(metav1validation.ValidateLabelSelector(c.LabelSelector, metav1validation.LabelSelectorValidationOptions{}, at.Child("labelSelector"))...)
		}
	}
	return checked(p, before, cs)
}

func (p *settingsParser) qualifiedName(name string, path *field.Path) {
	for _, msg := range validation.IsQualifiedName(name) {
		p.add(field.Invalid(path, name, fmt.Sprintf("%s, such as topology.kubernetes.io/zone", msg)))
	}
}
