package migrate

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// The HTTPRoute CRD of the Gateway API release go.mod pins: its OpenAPI
// schema is checked with kube-openapi, its CEL rules by celRules below (the
// CEL library is not a dependency of this module). TestCELRulesCovered fails
// when the CRD has a rule celRules does not know, e.g. after an upgrade.
var httpRouteSchema = sync.OnceValues(func() (map[string]any, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return nil, fmt.Errorf("locating sigs.k8s.io/gateway-api in the module cache: %w", err)
	}
	file := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return nil, err
	}
	for _, v := range crd.Spec.Versions {
		if v.Name == "v1" {
			return v.Schema.OpenAPIV3Schema, nil
		}
	}
	return nil, fmt.Errorf("%s has no version v1", file)
})

func schemaValidator(t *testing.T) *validate.SchemaValidator {
	t.Helper()
	raw, err := httpRouteSchema()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(raw)
	var s spec.Schema
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return validate.NewSchemaValidator(&s, nil, "", strfmt.Default)
}

// routeErrors is everything the API server would refuse in r: object name,
// OpenAPI schema, CEL rules.
func routeErrors(t *testing.T, v *validate.SchemaValidator, r *gwv1.HTTPRoute) []string {
	t.Helper()
	var errs []string
	for _, msg := range validation.IsDNS1123Subdomain(r.Name) {
		errs = append(errs, "metadata.name: "+msg)
	}
	if len(r.Name) > maxNameLength {
		errs = append(errs, fmt.Sprintf("metadata.name: longer than %d characters", maxNameLength))
	}
	doc, err := routeYAML(r)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		t.Fatal(err)
	}
	for _, e := range v.Validate(obj).Errors {
		errs = append(errs, "schema: "+e.Error())
	}
	for _, rule := range celRules {
		for _, where := range rule.violations(r) {
			errs = append(errs, fmt.Sprintf("%s: %s", where, rule.message))
		}
	}
	return errs
}

// TestRoutesValid checks that every route converted from testdata would be
// accepted by an API server with the Gateway API CRDs installed.
func TestRoutesValid(t *testing.T) {
	v := schemaValidator(t)
	for _, tc := range loadCases(t) {
		for _, r := range tc.convert().Routes {
			for _, e := range routeErrors(t, v, r) {
				t.Errorf("%s: HTTPRoute %s/%s: %s", tc.name, r.Namespace, r.Name, e)
			}
		}
	}
}

// TestValidatorRejects makes sure the checks above can fail.
func TestValidatorRejects(t *testing.T) {
	v := schemaValidator(t)
	prefix, exact := gwv1.PathMatchPathPrefix, gwv1.PathMatchExact
	bad := &gwv1.HTTPRoute{}
	bad.Name = "Not_A_Name"
	bad.Spec.ParentRefs = []gwv1.ParentReference{{Name: "shared"}}
	bad.Spec.Hostnames = []gwv1.Hostname{"Bad_Host"}
	bad.Spec.Rules = []gwv1.HTTPRouteRule{{
		Matches: []gwv1.HTTPRouteMatch{
			{Path: &gwv1.HTTPPathMatch{Type: &exact, Value: ptrTo("/a//b")}},
			{Path: &gwv1.HTTPPathMatch{Type: &prefix, Value: ptrTo("/c")}},
		},
		Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: &gwv1.HTTPURLRewriteFilter{
			Path: &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptrTo("/")},
		}}},
		BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "svc"}}}},
	}}
	for i := 0; i < 16; i++ {
		bad.Spec.Rules = append(bad.Spec.Rules, gwv1.HTTPRouteRule{})
	}
	got := strings.Join(routeErrors(t, v, bad), "\n")
	for _, want := range []string{
		"metadata.name",
		"spec.hostnames[0] in body should match",
		"spec.rules in body should have at most 16 items",
		"must not contain '//'",
		"exactly one PathPrefix match must be specified",
		"Must have port for Service reference",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no error containing %q in:\n%s", want, got)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestCELRulesCovered lists the CEL rules of the CRD and fails for any that
// celRules does not check.
func TestCELRulesCovered(t *testing.T) {
	raw, err := httpRouteSchema()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, r := range celRules {
		known[r.message] = true
	}
	var walk func(node any, path string)
	walk = func(node any, path string) {
		m, ok := node.(map[string]any)
		if !ok {
			return
		}
		if rules, ok := m["x-kubernetes-validations"].([]any); ok {
			for _, r := range rules {
				msg, _ := r.(map[string]any)["message"].(string)
				if !known[msg] {
					t.Errorf("%s: CEL rule %q is not checked by celRules", path, msg)
				}
			}
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for k, p := range props {
				walk(p, path+"."+k)
			}
		}
		walk(m["items"], path+"[]")
	}
	spec := raw["properties"].(map[string]any)["spec"]
	walk(spec, "spec")
}

// celRule is one CEL rule of the HTTPRoute CRD, rewritten in Go: violations
// names every place in a route that breaks it.
type celRule struct {
	message    string
	violations func(r *gwv1.HTTPRoute) []string
}

// filterList is a filters list of a rule or of a backendRef.
type filterList struct {
	where   string
	filters []gwv1.HTTPRouteFilter
}

func filterLists(r *gwv1.HTTPRoute) []filterList {
	var out []filterList
	for i, rule := range r.Spec.Rules {
		out = append(out, filterList{fmt.Sprintf("spec.rules[%d].filters", i), rule.Filters})
		for j, b := range rule.BackendRefs {
			out = append(out, filterList{fmt.Sprintf("spec.rules[%d].backendRefs[%d].filters", i, j), b.Filters})
		}
	}
	return out
}

// eachFilterList reports the lists for which bad is true.
func eachFilterList(bad func(fs []gwv1.HTTPRouteFilter) bool) func(*gwv1.HTTPRoute) []string {
	return func(r *gwv1.HTTPRoute) []string {
		var out []string
		for _, l := range filterLists(r) {
			if bad(l.filters) {
				out = append(out, l.where)
			}
		}
		return out
	}
}

// eachFilter reports the filters for which bad is true.
func eachFilter(bad func(f gwv1.HTTPRouteFilter) bool) func(*gwv1.HTTPRoute) []string {
	return func(r *gwv1.HTTPRoute) []string {
		var out []string
		for _, l := range filterLists(r) {
			for i, f := range l.filters {
				if bad(f) {
					out = append(out, fmt.Sprintf("%s[%d]", l.where, i))
				}
			}
		}
		return out
	}
}

// eachRule reports the rules for which bad is true.
func eachRule(bad func(rule gwv1.HTTPRouteRule) bool) func(*gwv1.HTTPRoute) []string {
	return func(r *gwv1.HTTPRoute) []string {
		var out []string
		for i, rule := range r.Spec.Rules {
			if bad(rule) {
				out = append(out, fmt.Sprintf("spec.rules[%d]", i))
			}
		}
		return out
	}
}

// eachPath reports the path matches (defaults applied) for which bad is true.
func eachPath(bad func(typ gwv1.PathMatchType, value string) bool) func(*gwv1.HTTPRoute) []string {
	return func(r *gwv1.HTTPRoute) []string {
		var out []string
		for i, rule := range r.Spec.Rules {
			for j, m := range rule.Matches {
				typ, value := pathOf(m)
				if bad(typ, value) {
					out = append(out, fmt.Sprintf("spec.rules[%d].matches[%d].path", i, j))
				}
			}
		}
		return out
	}
}

func pathOf(m gwv1.HTTPRouteMatch) (gwv1.PathMatchType, string) {
	typ, value := gwv1.PathMatchPathPrefix, "/"
	if m.Path != nil && m.Path.Type != nil {
		typ = *m.Path.Type
	}
	if m.Path != nil && m.Path.Value != nil {
		value = *m.Path.Value
	}
	return typ, value
}

func countFilters(fs []gwv1.HTTPRouteFilter, t gwv1.HTTPRouteFilterType) int {
	n := 0
	for _, f := range fs {
		if f.Type == t {
			n++
		}
	}
	return n
}

// typedField: the filter's type names exactly the one field that is set.
func typedField(t gwv1.HTTPRouteFilterType, set func(gwv1.HTTPRouteFilter) bool) []celRule {
	name := map[gwv1.HTTPRouteFilterType]string{
		gwv1.HTTPRouteFilterCORS:                   "cors",
		gwv1.HTTPRouteFilterRequestHeaderModifier:  "requestHeaderModifier",
		gwv1.HTTPRouteFilterResponseHeaderModifier: "responseHeaderModifier",
		gwv1.HTTPRouteFilterRequestMirror:          "requestMirror",
		gwv1.HTTPRouteFilterRequestRedirect:        "requestRedirect",
		gwv1.HTTPRouteFilterURLRewrite:             "urlRewrite",
		gwv1.HTTPRouteFilterExtensionRef:           "extensionRef",
	}[t]
	return []celRule{
		{fmt.Sprintf("filter.%s must be nil if the filter.type is not %s", name, t), eachFilter(func(f gwv1.HTTPRouteFilter) bool { return set(f) && f.Type != t })},
		{fmt.Sprintf("filter.%s must be specified for %s filter.type", name, t), eachFilter(func(f gwv1.HTTPRouteFilter) bool { return !set(f) && f.Type == t })},
	}
}

func notRepeated(t gwv1.HTTPRouteFilterType) celRule {
	return celRule{fmt.Sprintf("%s filter cannot be repeated", t), eachFilterList(func(fs []gwv1.HTTPRouteFilter) bool { return countFilters(fs, t) > 1 })}
}

// modifierRules are the four rules of an HTTPPathModifier.
func modifierRules(path func(f gwv1.HTTPRouteFilter) *gwv1.HTTPPathModifier) []celRule {
	on := func(bad func(m *gwv1.HTTPPathModifier) bool) func(*gwv1.HTTPRoute) []string {
		return eachFilter(func(f gwv1.HTTPRouteFilter) bool { m := path(f); return m != nil && bad(m) })
	}
	return []celRule{
		{"replaceFullPath must be specified when type is set to 'ReplaceFullPath'", on(func(m *gwv1.HTTPPathModifier) bool {
			return m.Type == gwv1.FullPathHTTPPathModifier && m.ReplaceFullPath == nil
		})},
		{"type must be 'ReplaceFullPath' when replaceFullPath is set", on(func(m *gwv1.HTTPPathModifier) bool {
			return m.ReplaceFullPath != nil && m.Type != gwv1.FullPathHTTPPathModifier
		})},
		{"replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'", on(func(m *gwv1.HTTPPathModifier) bool {
			return m.Type == gwv1.PrefixMatchHTTPPathModifier && m.ReplacePrefixMatch == nil
		})},
		{"type must be 'ReplacePrefixMatch' when replacePrefixMatch is set", on(func(m *gwv1.HTTPPathModifier) bool {
			return m.ReplacePrefixMatch != nil && m.Type != gwv1.PrefixMatchHTTPPathModifier
		})},
	}
}

func replacesPrefix(fs []gwv1.HTTPRouteFilter, redirect bool) bool {
	n := 0
	for _, f := range fs {
		var m *gwv1.HTTPPathModifier
		if redirect && f.RequestRedirect != nil {
			m = f.RequestRedirect.Path
		}
		if !redirect && f.URLRewrite != nil {
			m = f.URLRewrite.Path
		}
		if m != nil && m.Type == gwv1.PrefixMatchHTTPPathModifier && m.ReplacePrefixMatch != nil {
			n++
		}
	}
	return n == 1 // CEL exists_one
}

func onePathPrefix(rule gwv1.HTTPRouteRule) bool {
	return len(rule.Matches) == 1 && rule.Matches[0].Path != nil && rule.Matches[0].Path.Type != nil && *rule.Matches[0].Path.Type == gwv1.PathMatchPathPrefix
}

func sameParent(p1, p2 gwv1.ParentReference) bool {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	group := func(p gwv1.ParentReference) string {
		if p.Group == nil {
			return gwv1.GroupName
		}
		return string(*p.Group)
	}
	kind := func(p gwv1.ParentReference) string {
		if p.Kind == nil {
			return "Gateway"
		}
		return string(*p.Kind)
	}
	ns := func(p gwv1.ParentReference) string { return str((*string)(p.Namespace)) }
	return group(p1) == group(p2) && kind(p1) == kind(p2) && p1.Name == p2.Name && ns(p1) == ns(p2)
}

func sectionOf(p gwv1.ParentReference) string {
	if p.SectionName == nil {
		return ""
	}
	return string(*p.SectionName)
}

var allowedPathCharacters = regexp.MustCompile(`^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$`)

var celRules = slices.Concat(
	[]celRule{
		{"sectionName must be specified when parentRefs includes 2 or more references to the same parent", func(r *gwv1.HTTPRoute) []string {
			for _, p1 := range r.Spec.ParentRefs {
				for _, p2 := range r.Spec.ParentRefs {
					if sameParent(p1, p2) && (sectionOf(p1) == "") != (sectionOf(p2) == "") {
						return []string{"spec.parentRefs"}
					}
				}
			}
			return nil
		}},
		{"sectionName must be unique when parentRefs includes 2 or more references to the same parent", func(r *gwv1.HTTPRoute) []string {
			for i, p1 := range r.Spec.ParentRefs {
				n := 0
				for _, p2 := range r.Spec.ParentRefs {
					if sameParent(p1, p2) && sectionOf(p1) == sectionOf(p2) {
						n++
					}
				}
				if n != 1 {
					return []string{fmt.Sprintf("spec.parentRefs[%d]", i)}
				}
			}
			return nil
		}},
		{"Rule name must be unique within the route", func(r *gwv1.HTTPRoute) []string {
			seen := map[gwv1.SectionName]bool{}
			for i, rule := range r.Spec.Rules {
				if rule.Name != nil && seen[*rule.Name] {
					return []string{fmt.Sprintf("spec.rules[%d].name", i)}
				}
				if rule.Name != nil {
					seen[*rule.Name] = true
				}
			}
			return nil
		}},
		{"While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a route must be less than 128", func(r *gwv1.HTTPRoute) []string {
			n := 0
			for _, rule := range r.Spec.Rules {
				n += len(rule.Matches)
			}
			if n > 128 {
				return []string{"spec.rules"}
			}
			return nil
		}},
		{"RequestRedirect filter must not be used together with backendRefs", eachRule(func(rule gwv1.HTTPRouteRule) bool {
			return len(rule.BackendRefs) > 0 && countFilters(rule.Filters, gwv1.HTTPRouteFilterRequestRedirect) > 0
		})},
		{"When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified", eachRule(func(rule gwv1.HTTPRouteRule) bool {
			return replacesPrefix(rule.Filters, true) && !onePathPrefix(rule)
		})},
		{"When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified", eachRule(func(rule gwv1.HTTPRouteRule) bool {
			return replacesPrefix(rule.Filters, false) && !onePathPrefix(rule)
		})},
		{"Within backendRefs, when using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified", eachRule(func(rule gwv1.HTTPRouteRule) bool {
			n := 0
			for _, b := range rule.BackendRefs {
				if replacesPrefix(b.Filters, true) {
					n++
				}
			}
			return n == 1 && !onePathPrefix(rule)
		})},
		{"Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified", eachRule(func(rule gwv1.HTTPRouteRule) bool {
			n := 0
			for _, b := range rule.BackendRefs {
				if replacesPrefix(b.Filters, false) {
					n++
				}
			}
			return n == 1 && !onePathPrefix(rule)
		})},
		{"Must have port for Service reference", func(r *gwv1.HTTPRoute) []string {
			var out []string
			isService := func(ref gwv1.BackendObjectReference) bool {
				return (ref.Group == nil || *ref.Group == "") && (ref.Kind == nil || *ref.Kind == "Service")
			}
			for i, rule := range r.Spec.Rules {
				for j, b := range rule.BackendRefs {
					if isService(b.BackendObjectReference) && b.Port == nil {
						out = append(out, fmt.Sprintf("spec.rules[%d].backendRefs[%d]", i, j))
					}
				}
			}
			for _, l := range filterLists(r) {
				for k, f := range l.filters {
					if f.RequestMirror != nil && isService(f.RequestMirror.BackendRef) && f.RequestMirror.BackendRef.Port == nil {
						out = append(out, fmt.Sprintf("%s[%d].requestMirror.backendRef", l.where, k))
					}
				}
			}
			return out
		}},
		{"May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both", eachFilterList(func(fs []gwv1.HTTPRouteFilter) bool {
			return countFilters(fs, gwv1.HTTPRouteFilterRequestRedirect) > 0 && countFilters(fs, gwv1.HTTPRouteFilterURLRewrite) > 0
		})},
		notRepeated(gwv1.HTTPRouteFilterCORS),
		notRepeated(gwv1.HTTPRouteFilterRequestHeaderModifier),
		notRepeated(gwv1.HTTPRouteFilterResponseHeaderModifier),
		notRepeated(gwv1.HTTPRouteFilterRequestRedirect),
		notRepeated(gwv1.HTTPRouteFilterURLRewrite),
		{"AllowHeaders cannot contain '*' alongside other methods", eachFilter(func(f gwv1.HTTPRouteFilter) bool {
			return f.CORS != nil && slices.Contains(f.CORS.AllowHeaders, "*") && len(f.CORS.AllowHeaders) > 1
		})},
		{"AllowMethods cannot contain '*' alongside other methods", eachFilter(func(f gwv1.HTTPRouteFilter) bool {
			return f.CORS != nil && slices.Contains(f.CORS.AllowMethods, "*") && len(f.CORS.AllowMethods) > 1
		})},
		{"AllowOrigins cannot contain '*' alongside other origins", eachFilter(func(f gwv1.HTTPRouteFilter) bool {
			return f.CORS != nil && slices.Contains(f.CORS.AllowOrigins, "*") && len(f.CORS.AllowOrigins) > 1
		})},
		{"Only one of percent or fraction may be specified in HTTPRequestMirrorFilter", eachFilter(func(f gwv1.HTTPRouteFilter) bool {
			return f.RequestMirror != nil && f.RequestMirror.Percent != nil && f.RequestMirror.Fraction != nil
		})},
		{"numerator must be less than or equal to denominator", eachFilter(func(f gwv1.HTTPRouteFilter) bool {
			if f.RequestMirror == nil || f.RequestMirror.Fraction == nil {
				return false
			}
			den := int32(100)
			if f.RequestMirror.Fraction.Denominator != nil {
				den = *f.RequestMirror.Fraction.Denominator
			}
			return f.RequestMirror.Fraction.Numerator > den
		})},
		{"backendRequest timeout cannot be longer than request timeout", eachRule(func(rule gwv1.HTTPRouteRule) bool {
			t := rule.Timeouts
			if t == nil || t.Request == nil || t.BackendRequest == nil {
				return false
			}
			req, err1 := time.ParseDuration(string(*t.Request))
			backend, err2 := time.ParseDuration(string(*t.BackendRequest))
			return err1 != nil || err2 != nil || (req != 0 && backend > req)
		})},
	},
	typedField(gwv1.HTTPRouteFilterCORS, func(f gwv1.HTTPRouteFilter) bool { return f.CORS != nil }),
	typedField(gwv1.HTTPRouteFilterRequestHeaderModifier, func(f gwv1.HTTPRouteFilter) bool { return f.RequestHeaderModifier != nil }),
	typedField(gwv1.HTTPRouteFilterResponseHeaderModifier, func(f gwv1.HTTPRouteFilter) bool { return f.ResponseHeaderModifier != nil }),
	typedField(gwv1.HTTPRouteFilterRequestMirror, func(f gwv1.HTTPRouteFilter) bool { return f.RequestMirror != nil }),
	typedField(gwv1.HTTPRouteFilterRequestRedirect, func(f gwv1.HTTPRouteFilter) bool { return f.RequestRedirect != nil }),
	typedField(gwv1.HTTPRouteFilterURLRewrite, func(f gwv1.HTTPRouteFilter) bool { return f.URLRewrite != nil }),
	typedField(gwv1.HTTPRouteFilterExtensionRef, func(f gwv1.HTTPRouteFilter) bool { return f.ExtensionRef != nil }),
	modifierRules(func(f gwv1.HTTPRouteFilter) *gwv1.HTTPPathModifier {
		if f.RequestRedirect == nil {
			return nil
		}
		return f.RequestRedirect.Path
	}),
	modifierRules(func(f gwv1.HTTPRouteFilter) *gwv1.HTTPPathModifier {
		if f.URLRewrite == nil {
			return nil
		}
		return f.URLRewrite.Path
	}),
	pathRules(),
)

// pathRules are the rules of HTTPPathMatch; messages end in "when type one of
// ['Exact', 'PathPrefix']" and apply only to those types.
func pathRules() []celRule {
	const when = " when type one of ['Exact', 'PathPrefix']"
	plain := func(msg string, bad func(v string) bool) celRule {
		return celRule{msg + when, eachPath(func(t gwv1.PathMatchType, v string) bool {
			return (t == gwv1.PathMatchExact || t == gwv1.PathMatchPathPrefix) && bad(v)
		})}
	}
	rules := []celRule{
		plain("value must be an absolute path and start with '/'", func(v string) bool { return !strings.HasPrefix(v, "/") }),
		plain("must not end with '/..'", func(v string) bool { return strings.HasSuffix(v, "/..") }),
		plain("must not end with '/.'", func(v string) bool { return strings.HasSuffix(v, "/.") }),
		{"type must be one of ['Exact', 'PathPrefix', 'RegularExpression']", eachPath(func(t gwv1.PathMatchType, _ string) bool {
			return t != gwv1.PathMatchExact && t != gwv1.PathMatchPathPrefix && t != gwv1.PathMatchRegularExpression
		})},
		{"must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types ['Exact', 'PathPrefix']", eachPath(func(t gwv1.PathMatchType, v string) bool {
			return (t == gwv1.PathMatchExact || t == gwv1.PathMatchPathPrefix) && !allowedPathCharacters.MatchString(v)
		})},
	}
	for _, s := range []string{"//", "/./", "/../", "%2f", "%2F", "#"} {
		rules = append(rules, plain(fmt.Sprintf("must not contain '%s'", s), func(v string) bool { return strings.Contains(v, s) }))
	}
	return rules
}
