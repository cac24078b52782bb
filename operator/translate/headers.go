package translate

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// What a route puts into a header is checked with the route table's own
// checks (routetable.CheckHeaderEdit and the others), the ones the proxy
// applies to every route it loads: a value the proxy could not send as
// written drops its rule here, with the field to change, instead of being
// served mangled, dropped, or answered with 502.

// headerProblem is the message of a rule dropped for err, about the name
// or the value of the header entry at field.
func headerProblem(field string, err error) string {
	var he *routetable.HeaderError
	if errors.As(err, &he) {
		return field + "." + he.Part + ": " + he.Msg
	}
	return field + ": " + err.Error()
}

// valueProblem is the message of a rule dropped for err about the value
// at field itself.
func valueProblem(field string, err error) string {
	var he *routetable.HeaderError
	if errors.As(err, &he) {
		return field + ": " + he.Msg
	}
	return field + ": " + err.Error()
}

// headerModifier compiles a filter of type RequestHeaderModifier (req, into
// *reqM) or ResponseHeaderModifier (resp, into *respM) at field, and
// merges it with what came before.
func headerModifier(typ string, req, resp *gwv1.HTTPHeaderFilter, field string, reqM, respM **routetable.HeaderMutation, host *string) string {
	request := typ == string(gwv1.HTTPRouteFilterRequestHeaderModifier)
	f, dst, part := resp, respM, ".responseHeaderModifier"
	if request {
		f, dst, part = req, reqM, ".requestHeaderModifier"
	}
	m, problem := headerFilter(f, request, field+part, host)
	if problem == "" {
		*dst = mergeMutation(*dst, m)
	}
	return problem
}

// headerFilter compiles a RequestHeaderModifier (request) or
// ResponseHeaderModifier at field. Of entries with equivalent names only
// the first counts, as HTTPHeader says. Setting a request's Host is a host
// rewrite: it is stored in *host, which the proxy writes as the Host (and
// HTTP/2 :authority) of the request to the backend.
func headerFilter(f *gwv1.HTTPHeaderFilter, request bool, field string, host *string) (*routetable.HeaderMutation, string) {
	if f == nil {
		return nil, ""
	}
	m := &routetable.HeaderMutation{}
	lists := []struct {
		op  routetable.HeaderOp
		hs  []gwv1.HTTPHeader
		out *[]*routetable.Header
	}{{routetable.OpSet, f.Set, &m.Set}, {routetable.OpAdd, f.Add, &m.Add}}
	for _, l := range lists {
		seen := map[string]bool{}
		for i, h := range l.hs {
			name := textproto.CanonicalMIMEHeaderKey(string(h.Name))
			key := strings.ToLower(name)
			if seen[key] {
				continue
			}
			seen[key] = true
			var err error
			if request && l.op == routetable.OpSet && name == "Host" {
				if err = routetable.CheckHost(h.Value); err == nil {
					*host = h.Value
					continue
				}
			} else {
				err = routetable.CheckHeaderEdit(request, l.op, string(h.Name), h.Value)
			}
			if err != nil {
				return nil, headerProblem(fmt.Sprintf("%s.%s[%d]", field, l.op, i), err)
			}
			*l.out = append(*l.out, &routetable.Header{Name: name, Value: h.Value})
		}
	}
	for i, n := range f.Remove {
		if err := routetable.CheckHeaderEdit(request, routetable.OpRemove, n, ""); err != nil {
			return nil, valueProblem(fmt.Sprintf("%s.remove[%d]", field, i), err)
		}
		m.Remove = append(m.Remove, textproto.CanonicalMIMEHeaderKey(n))
	}
	return m, ""
}

// checkHostname says why a filter's hostname at field cannot be sent.
func checkHostname(h *gwv1.PreciseHostname, field string) string {
	if h == nil {
		return ""
	}
	if err := routetable.CheckHostname(string(*h)); err != nil {
		return valueProblem(field, err)
	}
	return ""
}

// checkRedirect checks what a redirect writes into its Location.
func checkRedirect(f *gwv1.HTTPRequestRedirectFilter, field string) string {
	if f.Scheme != nil && *f.Scheme != "http" && *f.Scheme != "https" {
		return fmt.Sprintf("%s.scheme: %q is not supported: write http or https", field, *f.Scheme)
	}
	if problem := checkHostname(f.Hostname, field+".hostname"); problem != "" {
		return problem
	}
	return checkPathValue(f.Path, field+".path")
}

// checkPathValue: a redirect's path goes into its Location header as
// written. (A rewrite's path is escaped into the request line.)
func checkPathValue(p *gwv1.HTTPPathModifier, field string) string {
	if p == nil {
		return ""
	}
	for _, v := range []struct {
		name string
		s    *string
	}{{"replaceFullPath", p.ReplaceFullPath}, {"replacePrefixMatch", p.ReplacePrefixMatch}} {
		if v.s == nil {
			continue
		}
		if err := routetable.CheckFieldValue(*v.s); err != nil {
			return valueProblem(field+"."+v.name, err)
		}
	}
	return ""
}

// checkCORS checks what a CORS filter writes into responses and what it
// compares with a request's Origin.
func checkCORS(f *gwv1.HTTPCORSFilter, field string) string {
	if f == nil {
		return ""
	}
	for i, o := range f.AllowOrigins {
		if err := routetable.CheckFieldValue(string(o)); err != nil {
			return valueProblem(fmt.Sprintf("%s.allowOrigins[%d]", field, i), err)
		}
	}
	for i, m := range f.AllowMethods {
		if err := routetable.CheckCORSToken(string(m)); err != nil {
			return valueProblem(fmt.Sprintf("%s.allowMethods[%d]", field, i), err)
		}
	}
	for _, l := range []struct {
		name string
		hs   []gwv1.HTTPHeaderName
	}{{"allowHeaders", f.AllowHeaders}, {"exposeHeaders", f.ExposeHeaders}} {
		for i, h := range l.hs {
			if err := routetable.CheckCORSToken(string(h)); err != nil {
				return valueProblem(fmt.Sprintf("%s.%s[%d]", field, l.name, i), err)
			}
		}
	}
	return ""
}

// checkHeaderMatch says why a header match at field could never match a
// request: the proxy takes no request field whose name is not a token or
// holds '_' (it drops those), nor a value with control characters or
// surrounding spaces.
func checkHeaderMatch(name, value string, regex bool, field string) string {
	if err := routetable.CheckFieldName(name); err != nil {
		return headerProblem(field, err)
	}
	if strings.IndexByte(name, '_') >= 0 {
		return fmt.Sprintf("%s.name: %q can never match: the proxy drops request headers whose names contain '_', which CGI backends cannot tell from '-': match a name without '_'", field, name)
	}
	if !regex {
		if err := routetable.CheckFieldValue(value); err != nil {
			return valueProblem(field+".value", err) + "; no request can carry such a value, so the match could never match"
		}
	}
	return ""
}
