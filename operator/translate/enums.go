package translate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The Gateway API may add values to the enums of a route's spec. Of each of
// PathMatchType, HeaderMatchType, QueryParamMatchType, HTTPMethod,
// HTTPPathModifier.Type, HTTPRequestRedirectFilter.Scheme and .StatusCode,
// and GRPCHeaderMatchType it says: "Unknown values here must result in the
// implementation setting the Accepted Condition for the Route to `status:
// False`, with a Reason of `UnsupportedValue`." A value read as another
// (a header match type as Exact, a path modifier as none) would serve the
// route other than as written, so such a route is not served at all.
// GRPCMethodMatchType says nothing of the kind, but a method match of an
// unknown type would otherwise match every method: it is held to the same
// rule.

var (
	pathMatchTypes  = []string{string(gwv1.PathMatchExact), string(gwv1.PathMatchPathPrefix), string(gwv1.PathMatchRegularExpression)}
	valueMatchTypes = []string{"Exact", "RegularExpression"}
	httpMethods     = []string{
		string(gwv1.HTTPMethodGet), string(gwv1.HTTPMethodHead), string(gwv1.HTTPMethodPost), string(gwv1.HTTPMethodPut),
		string(gwv1.HTTPMethodDelete), string(gwv1.HTTPMethodConnect), string(gwv1.HTTPMethodOptions),
		string(gwv1.HTTPMethodTrace), string(gwv1.HTTPMethodPatch),
	}
	pathModifierTypes = []string{string(gwv1.FullPathHTTPPathModifier), string(gwv1.PrefixMatchHTTPPathModifier)}
	redirectSchemes   = []string{"http", "https"}
	redirectCodes     = []string{"301", "302", "303", "307", "308"}
)

// unknownValue appends to out why value, at field f followed by sub, is
// not one of known; out is unchanged when it is.
func unknownValue(out []string, f fieldPath, sub, value string, known []string) []string {
	if slices.Contains(known, value) {
		return out
	}
	f.sub += sub
	return append(out, fmt.Sprintf("%s: %q is not a value Gatehouse knows: use one of %s", f, value, strings.Join(known, ", ")))
}

// httpRouteEnums lists the enum values of an HTTPRoute's rules that
// Gatehouse does not know.
func httpRouteEnums(rules []gwv1.HTTPRouteRule) []string {
	var out []string
	for i := range rules {
		rule := &rules[i]
		for j, m := range rule.Matches {
			f := fieldPath{rule: i}.at("matches", j)
			if m.Path != nil && m.Path.Type != nil {
				out = unknownValue(out, f, ".path.type", string(*m.Path.Type), pathMatchTypes)
			}
			for k, h := range m.Headers {
				if h.Type != nil {
					out = unknownValue(out, f, fmt.Sprintf(".headers[%d].type", k), string(*h.Type), valueMatchTypes)
				}
			}
			for k, q := range m.QueryParams {
				if q.Type != nil {
					out = unknownValue(out, f, fmt.Sprintf(".queryParams[%d].type", k), string(*q.Type), valueMatchTypes)
				}
			}
			if m.Method != nil {
				out = unknownValue(out, f, ".method", string(*m.Method), httpMethods)
			}
		}
		for j := range rule.Filters {
			flt := &rule.Filters[j]
			f := fieldPath{rule: i}.at("filters", j)
			if r := flt.RequestRedirect; r != nil {
				if r.Scheme != nil {
					out = unknownValue(out, f, ".requestRedirect.scheme", *r.Scheme, redirectSchemes)
				}
				if r.StatusCode != nil {
					out = unknownValue(out, f, ".requestRedirect.statusCode", strconv.Itoa(*r.StatusCode), redirectCodes)
				}
				if r.Path != nil {
					out = unknownValue(out, f, ".requestRedirect.path.type", string(r.Path.Type), pathModifierTypes)
				}
			}
			if rw := flt.URLRewrite; rw != nil && rw.Path != nil {
				out = unknownValue(out, f, ".urlRewrite.path.type", string(rw.Path.Type), pathModifierTypes)
			}
		}
		for j := range rule.BackendRefs {
			for k, flt := range rule.BackendRefs[j].Filters {
				if rw := flt.URLRewrite; rw != nil && rw.Path != nil {
					f := fieldPath{rule: i}.at("backendRefs", j)
					out = unknownValue(out, f, fmt.Sprintf(".filters[%d].urlRewrite.path.type", k), string(rw.Path.Type), pathModifierTypes)
				}
			}
		}
	}
	return out
}

// grpcRouteEnums lists the enum values of a GRPCRoute's rules that
// Gatehouse does not know.
func grpcRouteEnums(rules []gwv1.GRPCRouteRule) []string {
	var out []string
	for i := range rules {
		for j, m := range rules[i].Matches {
			f := fieldPath{rule: i}.at("matches", j)
			if m.Method != nil && m.Method.Type != nil {
				out = unknownValue(out, f, ".method.type", string(*m.Method.Type), valueMatchTypes)
			}
			for k, h := range m.Headers {
				if h.Type != nil {
					out = unknownValue(out, f, fmt.Sprintf(".headers[%d].type", k), string(*h.Type), valueMatchTypes)
				}
			}
		}
	}
	return out
}
