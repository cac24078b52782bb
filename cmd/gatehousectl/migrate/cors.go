package migrate

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Defaults of ingress-nginx when enable-cors is "true" and a cors-* annotation
// is absent.
const (
	defaultCORSOrigin  = "*"
	defaultCORSMethods = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
	defaultCORSHeaders = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
	defaultCORSMaxAge  = 1728000
)

// corsOrigin is the pattern of gwv1.CORSOrigin.
var corsOrigin = regexp.MustCompile(`(^\*$)|(^(http(s)?):\/\/(((\*\.)?([a-zA-Z0-9\-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$)`)

var corsMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// corsFilter builds the CORS filter enable-cors asks for. Values HTTPRoute
// cannot hold are left out with a Note; nil when no origin remains.
func (c *converter) corsFilter(s *source) *gwv1.HTTPCORSFilter {
	value := func(name, def string) (string, string) {
		key := nginxPrefix + name
		if v, ok := s.ing.Annotations[key]; ok {
			return v, annotationField(key)
		}
		return def, annotationField(key)
	}
	f := &gwv1.HTTPCORSFilter{}

	origins, field := value("cors-allow-origin", defaultCORSOrigin)
	for _, o := range splitList(origins) {
		if !corsOrigin.MatchString(o) {
			c.note(s, field, "origin %q is not an origin HTTPRoute CORS accepts (scheme://host[:port], host may start with *.); it is not allowed any more: fix it", o)
			continue
		}
		f.AllowOrigins = append(f.AllowOrigins, gwv1.CORSOrigin(o))
	}
	if slices.Contains(f.AllowOrigins, "*") && len(f.AllowOrigins) > 1 {
		c.note(s, field, "\"*\" together with other origins: kept only \"*\", which allows every origin; list the origins without \"*\" if that was not intended")
		f.AllowOrigins = []gwv1.CORSOrigin{"*"}
	}
	if len(f.AllowOrigins) == 0 {
		c.note(s, annotationField(nginxPrefix+"enable-cors"), "no valid origin is left, so no CORS filter was created: cross-origin browser requests will fail until a valid cors-allow-origin is set")
		return nil
	}

	methods, field := value("cors-allow-methods", defaultCORSMethods)
	for _, m := range splitList(methods) {
		m = strings.ToUpper(m)
		if m != "*" && !slices.Contains(corsMethods, m) {
			c.note(s, field, "method %q is not an HTTP method HTTPRoute CORS knows; it was left out of allowMethods", m)
			continue
		}
		if !slices.Contains(f.AllowMethods, gwv1.HTTPMethodWithWildcard(m)) {
			f.AllowMethods = append(f.AllowMethods, gwv1.HTTPMethodWithWildcard(m))
		}
	}
	if slices.Contains(f.AllowMethods, "*") {
		f.AllowMethods = []gwv1.HTTPMethodWithWildcard{"*"}
	}

	headers, field := value("cors-allow-headers", defaultCORSHeaders)
	f.AllowHeaders = c.corsHeaders(s, field, headers, true)
	expose, field := value("cors-expose-headers", "")
	f.ExposeHeaders = c.corsHeaders(s, field, expose, false)

	credentials, field := value("cors-allow-credentials", "true")
	b, err := strconv.ParseBool(strings.TrimSpace(credentials))
	if err != nil {
		c.note(s, field, "%q is not a boolean; used true, the ingress-nginx default", credentials)
		b = true
	}
	f.AllowCredentials = ptr.To(b)

	maxAge, field := value("cors-max-age", strconv.Itoa(defaultCORSMaxAge))
	n, err := strconv.ParseInt(strings.TrimSpace(maxAge), 10, 32)
	if err != nil || n < 1 {
		c.note(s, field, "%q is not a positive number of seconds; used %d, the ingress-nginx default", maxAge, defaultCORSMaxAge)
		n = defaultCORSMaxAge
	}
	f.MaxAge = int32(n)
	return f
}

func (c *converter) corsHeaders(s *source, field, list string, wildcard bool) []gwv1.HTTPHeaderName {
	var out []gwv1.HTTPHeaderName
	for _, h := range splitList(list) {
		if (h != "*" || !wildcard) && !validHeaderName(h) {
			c.note(s, field, "%q is not a header name; it was left out", h)
			continue
		}
		if !slices.Contains(out, gwv1.HTTPHeaderName(h)) {
			out = append(out, gwv1.HTTPHeaderName(h))
		}
	}
	if slices.Contains(out, "*") {
		return []gwv1.HTTPHeaderName{"*"}
	}
	if len(out) > 64 {
		c.note(s, field, "more than 64 headers; only the first 64 were kept")
		out = out[:64]
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func corsFilter(f *gwv1.HTTPCORSFilter) gwv1.HTTPRouteFilter {
	return gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterCORS, CORS: f}
}
