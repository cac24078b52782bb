package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// ProxySettingKeys are the keys of a parameters ConfigMap, a GatewayClass's
// or a Gateway's, that shape managed proxies. Structured values are YAML,
// written as the Pod or Service field of the same name.
var ProxySettingKeys = []string{
	"replicas", "maxReplicas", "resources", "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints",
	"imagePullSecrets", "podAnnotations", "podLabels", "serviceType", "serviceAnnotations", "externalTrafficPolicy",
	"podDisruptionBudget",
}

// settingsScope says whose ConfigMap is read: the platform team's (a
// GatewayClass's) or a Gateway owner's, who may set less.
type settingsScope int

const (
	scopeClass settingsScope = iota
	scopeGateway
)

// classOnlyKeys may not be set in a Gateway's ConfigMap. maxReplicas bounds
// what Gateways ask for; a toleration lets pods onto nodes the cluster's
// taints keep workloads off, which is the platform team's call; the rest
// say how the whole class works.
func classOnlyKeys() []string {
	return append([]string{"mode", "addresses", "clusterIssuer", "issuer", "adminPort", "maxReplicas", "tolerations"}, limitKeys()...)
}

// reservedDomains are label and annotation domains a Gateway owner may not
// put on its proxies' pods: Kubernetes' own (which hold AppArmor and
// seccomp overrides, among others) and Gatehouse's (which select the pods).
var reservedDomains = []string{"kubernetes.io", "k8s.io", "gatehouse.dev"}

// ReservedKey reports whether a label or annotation key is in a domain of
// reservedDomains or below one.
func ReservedKey(key string) bool {
	for _, d := range reservedDomains {
		if InDomain(key, d) {
			return true
		}
	}
	return false
}

// InDomain reports whether a label or annotation key's prefix is domain or
// a name below it.
func InDomain(key, domain string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	return ok && (prefix == domain || strings.HasSuffix(prefix, "."+domain))
}

// settingsParser reads the proxy keys of one ConfigMap, collecting every
// problem with its field path and what to write instead.
type settingsParser struct {
	scope settingsScope
	errs  field.ErrorList
}

// parseProxySettings reads the proxy keys of a parameters ConfigMap; a
// Gateway's replicas may not exceed maxReplicas. An empty value is as if
// the key were absent.
func parseProxySettings(cm *corev1.ConfigMap, scope settingsScope, maxReplicas int32) (ProxySettings, field.ErrorList) {
	p := &settingsParser{scope: scope}
	data := field.NewPath("data")
	if scope == scopeGateway {
		classOnly := classOnlyKeys()
		for k := range cm.Data {
			if slices.Contains(classOnly, k) {
				p.errs = append(p.errs, field.Forbidden(data.Key(k), "set in the GatewayClass's parameters only: remove it, or ask the platform team"))
			}
		}
	}
	var s ProxySettings
	s.Replicas = p.replicas(cm.Data["replicas"], data.Key("replicas"), maxReplicas)
	s.Resources = p.resources(cm.Data["resources"], data.Key("resources"))
	s.NodeSelector = p.stringMap(cm.Data["nodeSelector"], data.Key("nodeSelector"), "a map of node labels", "{kubernetes.io/os: linux}", metav1validation.ValidateLabels, false)
	if scope == scopeClass {
		s.Tolerations = p.tolerations(cm.Data["tolerations"], data.Key("tolerations"))
	}
	s.Affinity = p.affinity(cm.Data["affinity"], data.Key("affinity"))
	s.TopologySpreadConstraints = p.topologySpread(cm.Data["topologySpreadConstraints"], data.Key("topologySpreadConstraints"))
	s.ImagePullSecrets = p.pullSecrets(cm.Data["imagePullSecrets"], data.Key("imagePullSecrets"))
	s.PodAnnotations = p.stringMap(cm.Data["podAnnotations"], data.Key("podAnnotations"), "a map of annotations", "{example.com/team: payments}", apivalidation.ValidateAnnotations, true)
	s.PodLabels = p.stringMap(cm.Data["podLabels"], data.Key("podLabels"), "a map of labels", "{team: payments}", metav1validation.ValidateLabels, true)
	s.ServiceType = oneOf(p, cm.Data["serviceType"], data.Key("serviceType"),
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort, corev1.ServiceTypeClusterIP)
	s.ServiceAnnotations = p.stringMap(cm.Data["serviceAnnotations"], data.Key("serviceAnnotations"), "a map of annotations",
		"{service.beta.kubernetes.io/aws-load-balancer-scheme: internal}", apivalidation.ValidateAnnotations, false)
	s.ExternalTrafficPolicy = oneOf(p, cm.Data["externalTrafficPolicy"], data.Key("externalTrafficPolicy"),
		corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)
	s.MaxUnavailable = p.disruptionBudget(cm.Data["podDisruptionBudget"], data.Key("podDisruptionBudget"))
	// Maps were walked in no order: sort, so that a message reads the same
	// on every pass and the status is not rewritten for nothing.
	slices.SortFunc(p.errs, func(a, b *field.Error) int {
		return cmp.Or(cmp.Compare(a.Field, b.Field), cmp.Compare(a.Error(), b.Error()))
	})
	return s, p.errs
}

// parseMaxReplicas reads a class's maxReplicas: 0 when absent.
func parseMaxReplicas(raw string) (int32, *field.Error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || n < 1 {
		return 0, field.Invalid(field.NewPath("data").Key("maxReplicas"), raw, "must be a whole number of at least 1, such as \"10\"")
	}
	return int32(n), nil
}

func (p *settingsParser) add(errs ...*field.Error) {
	p.errs = append(p.errs, errs...)
}

// decode reads the YAML value of a key, refusing unknown fields. ok is
// false when the key is empty (not set) or does not decode, which it
// reports with what to write instead.
func decode[T any](p *settingsParser, raw string, path *field.Path, what, example string) (v T, ok bool) {
	if strings.TrimSpace(raw) == "" {
		return v, false
	}
	if err := yaml.UnmarshalStrict([]byte(raw), &v); err != nil {
		p.add(field.Invalid(path, field.OmitValueType{}, fmt.Sprintf("is not %s (%v): write YAML such as %s", what, err, example)))
		return v, false
	}
	return v, true
}

// checked is v when no problem was found since the parser had before of
// them, else the zero value: a setting with a problem is never used.
func checked[T any](p *settingsParser, before int, v T) T {
	if len(p.errs) > before {
		var zero T
		return zero
	}
	return v
}

func (p *settingsParser) replicas(raw string, path *field.Path, max int32) *int32 {
	if raw = strings.TrimSpace(raw); raw == "" {
		return nil
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || n < 1 || n > int64(max) {
		why := fmt.Sprintf("must be a whole number from 1 to %d, such as \"3\"", max)
		if p.scope == scopeGateway {
			why += " (the class's maxReplicas bounds it)"
		}
		p.add(field.Invalid(path, raw, why))
		return nil
	}
	r := int32(n)
	return &r
}

// proxyResources are the resources a proxy container may ask for.
var proxyResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}

func (p *settingsParser) resources(raw string, path *field.Path) *corev1.ResourceRequirements {
	r, ok := decode[corev1.ResourceRequirements](p, raw, path, "a container's resources", "{requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 512Mi}}")
	if !ok {
		return nil
	}
	before := len(p.errs)
	if len(r.Claims) > 0 {
		p.add(field.Forbidden(path.Child("claims"), "the proxies claim no devices: remove it"))
	}
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for name, q := range part.list {
			at := path.Child(part.name).Key(string(name))
			switch {
			case !slices.Contains(proxyResources, name):
				p.add(field.NotSupported(at, name, proxyResources))
			case q.Sign() < 0 || (part.name == "limits" && q.IsZero()):
				p.add(field.Invalid(at, q.String(), "must be more than 0, such as 100m of cpu or 128Mi of memory"))
			}
		}
	}
	for name, req := range r.Requests {
		if limit, ok := r.Limits[name]; ok && req.Cmp(limit) > 0 {
			p.add(field.Invalid(path.Child("requests").Key(string(name)), req.String(),
				fmt.Sprintf("must not exceed the %s limit %s: lower the request or raise the limit", name, limit.String())))
		}
	}
	return checked(p, before, &r)
}

// stringMap reads a map of labels or annotations, checked by validate.
// Those for the pods (onPods) are checked against the domains their owner
// may not use (reserved).
func (p *settingsParser) stringMap(raw string, path *field.Path, what, example string, validate func(map[string]string, *field.Path) field.ErrorList, onPods bool) map[string]string {
	m, ok := decode[map[string]string](p, raw, path, what, example)
	if !ok {
		return nil
	}
	before := len(p.errs)
	p.add(validate(m, path)...)
	if onPods {
		p.add(p.reserved(m, path)...)
	}
	return checked(p, before, m)
}

// reserved refuses keys the pods' owner may not set: Gatehouse's domain
// always, and from a Gateway, Kubernetes' domains too.
func (p *settingsParser) reserved(m map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k := range m {
		switch {
		case strings.HasPrefix(k, "gatehouse.dev/"):
			errs = append(errs, field.Forbidden(path.Key(k), "the gatehouse.dev domain is Gatehouse's own: use a key of your own domain"))
		case p.scope == scopeGateway && ReservedKey(k):
			errs = append(errs, field.Forbidden(path.Key(k), "a Gateway may not set keys in the kubernetes.io and k8s.io domains on its proxies' pods "+
				"(they include security overrides): use a key of your own domain, or ask the platform team to set it in the GatewayClass's parameters"))
		}
	}
	return errs
}

func (p *settingsParser) pullSecrets(raw string, path *field.Path) []corev1.LocalObjectReference {
	refs, ok := decode[[]corev1.LocalObjectReference](p, raw, path, "a list of Secret references", "[{name: registry-credentials}]")
	if !ok {
		return nil
	}
	before := len(p.errs)
	for i, r := range refs {
		for _, msg := range validation.IsDNS1123Subdomain(r.Name) {
			p.add(field.Invalid(path.Index(i).Child("name"), r.Name, msg+": name a Secret of type kubernetes.io/dockerconfigjson in the Gateway's namespace"))
		}
	}
	return checked(p, before, refs)
}

// disruptionBudget offers maxUnavailable only: a Gateway owner's
// minAvailable equal to the replicas would block node drains.
func (p *settingsParser) disruptionBudget(raw string, path *field.Path) *intstr.IntOrString {
	b, ok := decode[struct {
		MaxUnavailable *intstr.IntOrString `json:"maxUnavailable"`
	}](p, raw, path, "a disruption budget", "{maxUnavailable: 1}")
	if !ok {
		return nil
	}
	at := path.Child("maxUnavailable")
	why := "must be at least 1, or a percentage from 1% to 100%, such as 1 or \"25%\": a budget that allows no disruption would block every node drain"
	switch m := b.MaxUnavailable; {
	case m == nil:
		p.add(field.Required(at, "write {maxUnavailable: 1}, or remove the key for the default"))
	case m.Type == intstr.Int && m.IntVal < 1:
		p.add(field.Invalid(at, m.IntVal, why))
	case m.Type == intstr.String:
		n, err := strconv.Atoi(strings.TrimSuffix(m.StrVal, "%"))
		if !strings.HasSuffix(m.StrVal, "%") || err != nil || n < 1 || n > 100 {
			p.add(field.Invalid(at, m.StrVal, why))
			return nil
		}
		return m
	default:
		return m
	}
	return nil
}

// oneOf reads a value that must be one of allowed.
func oneOf[T ~string](p *settingsParser, raw string, path *field.Path, allowed ...T) T {
	v := T(strings.TrimSpace(raw))
	if v == "" {
		return ""
	}
	if !slices.Contains(allowed, v) {
		p.add(field.NotSupported(path, v, allowed))
		return ""
	}
	return v
}
