package migrate

import (
	"fmt"
	"regexp"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// pathConversion is how one Ingress path appears in an HTTPRoute rule.
type pathConversion struct {
	match gwv1.HTTPPathMatch
	// rewrite is the URLRewrite path modifier rewrite-target asks for, or nil.
	rewrite *gwv1.HTTPPathModifier
}

// regexMeta are the characters that make an ingress-nginx path a regular
// expression. A dot is left out: it is common in plain paths (/favicon.ico).
const regexMeta = `^$()[]{}*+?|\`

var captureReference = regexp.MustCompile(`\$[0-9]`)

// convertPath converts the path of an Ingress path entry, with the rewrite
// s's rewrite-target asks for. false means it cannot be converted (noted):
// the path gets no rule.
func (c *converter) convertPath(s *source, field string, p networkingv1.HTTPIngressPath) (pathConversion, bool) {
	value := p.Path
	if value == "" {
		value = "/"
	}
	pathType := networkingv1.PathTypeImplementationSpecific
	if p.PathType != nil {
		pathType = *p.PathType
	}
	target := s.cfg.rewriteTarget
	if target != nil && (*target == value || s.cfg.redirect != nil) {
		target = nil // ingress-nginx does not rewrite a path to itself
	}
	captures := target != nil && captureReference.MatchString(*target)
	isRegex := pathType != networkingv1.PathTypeExact && strings.ContainsAny(value, regexMeta) &&
		(pathType == networkingv1.PathTypeImplementationSpecific || s.cfg.useRegex || captures)

	var out pathConversion
	var shape regexShape
	switch {
	case pathType == networkingv1.PathTypeExact:
		out.match = pathMatch(gwv1.PathMatchExact, value)
	case !isRegex:
		out.match = pathMatch(gwv1.PathMatchPathPrefix, value)
		if pathType == networkingv1.PathTypeImplementationSpecific && !strings.HasSuffix(value, "/") {
			c.note(s, field+".pathType", "ImplementationSpecific became PathPrefix %q, which matches whole path segments: ingress-nginx matched a plain string prefix and also sent e.g. %s-v2 and %sx here; add paths for such URLs if clients use them", value, value, value)
		}
	default:
		var ok bool
		if shape, ok = parseRegexShape(value); ok {
			out.match = pathMatch(shape.matchType, shape.prefix)
			c.note(s, field+".path", "regular expression %q became %s %q: matching is now case-sensitive (ingress-nginx matched case-insensitively)%s; check that clients use this spelling", value, shape.matchType, shape.prefix, shape.caveat)
			break
		}
		if captures {
			c.note(s, field+".path", "regular expression %q with rewrite-target %q cannot be expressed in an HTTPRoute (only the shape <path>(/|$)(.*) with /$2 can), so this path has no rule; rewrite it as PathPrefix with a URLRewrite ReplacePrefixMatch filter by hand", value, *target)
			return out, false
		}
		expr := "^(?i)" + strings.TrimPrefix(value, "^")
		if !strings.HasSuffix(expr, ".*") {
			expr += ".*"
		}
		if _, err := routetable.CompileRegex(expr); err != nil {
			c.note(s, field+".path", "regular expression %q is not one Gatehouse serves (%v), so this path has no rule: rewrite it without look-arounds or back-references, or as Exact/PathPrefix paths", value, err)
			return out, false
		}
		out.match = pathMatch(gwv1.PathMatchRegularExpression, expr)
		c.note(s, field+".path", "regular expression %q became RegularExpression %q (anchored and case-insensitive as in ingress-nginx); regular-expression matching is implementation-specific (Gatehouse: RE2 over the whole path), so test it or replace it with Exact/PathPrefix paths", value, expr)
	}
	if out.match.Type != nil && *out.match.Type != gwv1.PathMatchRegularExpression && !validPath(*out.match.Value) {
		c.note(s, field+".path", "%q is not a path HTTPRoute accepts (it must start with \"/\", must not contain \"//\", \"/./\", \"/../\", \"%%2f\" or \"#\", and allows only URL path characters), so this path has no rule: change the path", *out.match.Value)
		return out, false
	}
	if target == nil {
		return out, true
	}
	rewrite, ok := c.rewrite(s, field, value, *target, captures, shape)
	out.rewrite = rewrite
	if ok && rewrite != nil && rewrite.Type == gwv1.PrefixMatchHTTPPathModifier && *out.match.Type != gwv1.PathMatchPathPrefix {
		c.note(s, field+".path", "rewrite-target %q needs a PathPrefix match but the path is %s %q, so this path has no rule: write the rewrite by hand", *target, *out.match.Type, *out.match.Value)
		return out, false
	}
	return out, ok
}

// rewrite maps rewrite-target onto a URLRewrite path modifier. ingress-nginx
// emits `rewrite "(?i)<path>" <target> break;`, which replaces the whole URI.
func (c *converter) rewrite(s *source, field, path, target string, captures bool, shape regexShape) (*gwv1.HTTPPathModifier, bool) {
	annotation := annotationField(nginxPrefix + "rewrite-target")
	if !captures {
		if !strings.HasPrefix(target, "/") || len(target) > 1024 {
			c.note(s, annotation, "rewrite target %q is not an absolute path, so %s has no rule: write the rewrite by hand", target, field)
			return nil, false
		}
		return &gwv1.HTTPPathModifier{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To(target)}, true
	}
	if shape.rest > 0 {
		prefix, ok := strings.CutSuffix(target, fmt.Sprintf("/$%d", shape.rest))
		if ok && !strings.Contains(prefix, "$") && (prefix == "" || validPath(prefix)) {
			if prefix == "" {
				return &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/")}, true
			}
			c.note(s, annotation, "rewrite target %q for %q became ReplacePrefixMatch %q: a request for exactly %s now reaches the backend as %s instead of %s/; check the backend accepts that", target, path, prefix, shape.prefix, prefix, prefix)
			return &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To(prefix)}, true
		}
	}
	c.note(s, annotation, "rewrite target %q for path %q cannot be expressed in an HTTPRoute (only <prefix>/$n, where $n captures the rest of the path, can), so %s has no rule: rewrite it by hand", target, path, field)
	return nil, false
}

func pathMatch(t gwv1.PathMatchType, value string) gwv1.HTTPPathMatch {
	return gwv1.HTTPPathMatch{Type: ptr.To(t), Value: ptr.To(value)}
}

// regexShape is an ingress-nginx regular expression path that an Exact or
// PathPrefix match can stand for.
type regexShape struct {
	matchType gwv1.PathMatchType
	prefix    string
	// rest is the capture group holding the rest of the path after prefix,
	// 0 when there is none.
	rest int
	// caveat says how the match differs beyond letter case ("" if not).
	caveat string
}

// parseRegexShape recognises `<literal>` + one of the common endings. nginx
// matches `~* "^<path>"`, so the expression is a prefix unless it ends in `$`.
func parseRegexShape(value string) (regexShape, bool) {
	body := strings.TrimPrefix(value, "^")
	literal, suffix := splitLiteral(body)
	prefix := strings.TrimSuffix(literal, "/")
	if prefix == "" {
		prefix = "/"
	}
	if !strings.HasPrefix(literal, "/") {
		return regexShape{}, false
	}
	sep := strings.HasSuffix(literal, "/") // the literal already ends in "/"
	itself := ""
	if prefix != "/" {
		itself = fmt.Sprintf(", and it also matches %s itself, which ingress-nginx sent elsewhere", prefix)
	}
	switch {
	case suffix == "$" && !sep:
		return regexShape{matchType: gwv1.PathMatchExact, prefix: literal}, true
	case (suffix == "(/|$)(.*)" || suffix == "(/|$)(.*)$") && !sep:
		return regexShape{matchType: gwv1.PathMatchPathPrefix, prefix: prefix, rest: 2}, true
	case sep && (suffix == "(.*)" || suffix == "(.*)$"):
		return regexShape{matchType: gwv1.PathMatchPathPrefix, prefix: prefix, rest: 1, caveat: itself}, true
	case sep && (suffix == ".*" || suffix == ""):
		return regexShape{matchType: gwv1.PathMatchPathPrefix, prefix: prefix, caveat: itself}, true
	case suffix == "(.*)" || suffix == ".*" || suffix == "":
		return regexShape{matchType: gwv1.PathMatchPathPrefix, prefix: prefix, caveat: fmt.Sprintf(", and it matches whole segments only (ingress-nginx also sent e.g. %sx here)", prefix)}, true
	}
	return regexShape{}, false
}

// splitLiteral splits a regular expression into its leading literal text
// (with `\x` escapes resolved) and the rest.
func splitLiteral(expr string) (string, string) {
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		ch := expr[i]
		switch {
		case ch == '\\' && i+1 < len(expr) && strings.IndexByte(`./-_~`, expr[i+1]) >= 0:
			b.WriteByte(expr[i+1])
			i++
		case strings.IndexByte(regexMeta, ch) >= 0:
			return b.String(), expr[i:]
		case ch == '.' && i+1 < len(expr) && (expr[i+1] == '*' || expr[i+1] == '+'):
			return b.String(), expr[i:]
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), ""
}
