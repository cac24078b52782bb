package migrate

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// readRedirect reads permanent-redirect, permanent-redirect-code and
// temporal-redirect together (the first of them met does the work).
// ingress-nginx prefers temporal-redirect when both are set.
func (c *converter) readRedirect(s *source) {
	if s.cfg.redirectRead {
		return
	}
	s.cfg.redirectRead = true
	ann := s.ing.Annotations
	temporal, hasTemporal := ann[nginxPrefix+"temporal-redirect"]
	permanent, hasPermanent := ann[nginxPrefix+"permanent-redirect"]
	codeValue, hasCode := ann[nginxPrefix+"permanent-redirect-code"]
	codeField := annotationField(nginxPrefix + "permanent-redirect-code")
	switch {
	case hasTemporal && strings.TrimSpace(temporal) != "":
		s.cfg.redirectField = nginxPrefix + "temporal-redirect"
		s.cfg.redirect = c.redirectTo(s, s.cfg.redirectField, temporal, 302)
		if hasPermanent {
			c.note(s, annotationField(nginxPrefix+"permanent-redirect"), "ignored: temporal-redirect is also set and ingress-nginx prefers it; remove one of them")
		}
	case hasPermanent && strings.TrimSpace(permanent) != "":
		code := 301
		if hasCode {
			n, err := strconv.Atoi(strings.TrimSpace(codeValue))
			switch {
			case err == nil && (n == 301 || n == 302 || n == 303 || n == 307 || n == 308):
				code = n
			default:
				c.note(s, codeField, "%q is not a redirect status HTTPRoute supports (301, 302, 303, 307, 308); used 301", codeValue)
			}
		}
		s.cfg.redirectField = nginxPrefix + "permanent-redirect"
		s.cfg.redirect = c.redirectTo(s, s.cfg.redirectField, permanent, code)
	case hasCode:
		c.note(s, codeField, "ignored without permanent-redirect (as in ingress-nginx); remove it")
	}
}

// redirectTo builds the RequestRedirect filter for a redirect annotation:
// nginx answers `return <code> <url>`, so the whole URL replaces scheme, host,
// port and path of the request.
func (c *converter) redirectTo(s *source, key, raw string, code int) *gwv1.HTTPRequestRedirectFilter {
	field := annotationField(key)
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil {
		c.note(s, field, "%q is not a URL; the Ingress's paths were converted without the redirect: fix the annotation and convert again, or add a RequestRedirect filter by hand", raw)
		return nil
	}
	f := &gwv1.HTTPRequestRedirectFilter{StatusCode: ptr.To(code)}
	switch {
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/"):
		// A path: same scheme, host and port.
	case u.Scheme == "http" || u.Scheme == "https":
		host := strings.ToLower(u.Hostname())
		if !validPreciseHostname(host) {
			c.note(s, field, "host %q of %q cannot be a redirect hostname; the Ingress's paths were converted without the redirect: add a RequestRedirect filter by hand", host, raw)
			return nil
		}
		f.Scheme = ptr.To(u.Scheme)
		f.Hostname = ptr.To(gwv1.PreciseHostname(host))
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				c.note(s, field, "port %q of %q is not a port number; the Ingress's paths were converted without the redirect: fix the URL", p, raw)
				return nil
			}
			f.Port = ptr.To(gwv1.PortNumber(n))
		}
	default:
		c.note(s, field, "%q is neither an http(s) URL nor a path; the Ingress's paths were converted without the redirect: fix the annotation and convert again", raw)
		return nil
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	f.Path = &gwv1.HTTPPathModifier{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To(path)}
	if u.RawQuery != "" || u.Fragment != "" {
		c.note(s, field, "the query and fragment of %q cannot be part of an HTTPRoute redirect and were left out; the redirect keeps the request's query instead: make the target page work without them", raw)
	}
	return f
}

// httpsRedirect decides whether plain-HTTP requests for host are redirected,
// as ingress-nginx does: force-ssl-redirect always, ssl-redirect (default
// true) when spec.tls covers the host. The second result names the reason.
func httpsRedirect(s *source, host string) (bool, string) {
	if s.cfg.forceSSLRedirect {
		return true, annotationField(nginxPrefix + "force-ssl-redirect")
	}
	if s.cfg.sslRedirect != nil && !*s.cfg.sslRedirect || host == "" {
		return false, ""
	}
	for i, t := range s.ing.Spec.TLS {
		if len(t.Hosts) == 0 {
			return true, fmt.Sprintf("spec.tls[%d]", i)
		}
		for _, h := range t.Hosts {
			if hostCovers(h, host) {
				return true, fmt.Sprintf("spec.tls[%d]", i)
			}
		}
	}
	return false, ""
}

// hostCovers reports whether a TLS host (possibly a wildcard) covers host.
func hostCovers(tlsHost, host string) bool {
	if tlsHost == host {
		return true
	}
	suffix, ok := strings.CutPrefix(tlsHost, "*")
	if !ok || strings.HasPrefix(host, "*") {
		return false
	}
	label, rest, _ := strings.Cut(host, ".")
	return label != "" && "."+rest == suffix
}

func redirectFilter(f *gwv1.HTTPRequestRedirectFilter) gwv1.HTTPRouteFilter {
	return gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: f}
}
