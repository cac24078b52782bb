package migrate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const nginxPrefix = "nginx.ingress.kubernetes.io/"

// source is one selected Ingress with its ingress-nginx settings read.
type source struct {
	ing *networkingv1.Ingress
	key types.NamespacedName
	cfg nginxConfig
	// groups are the Ingress's rules by host, in order of first appearance.
	groups []*hostGroup
	// noted are the Service ports a backend-protocol Note was written for.
	noted map[string]bool
}

// nginxConfig is what the ingress-nginx annotations of one Ingress ask for.
type nginxConfig struct {
	rewriteTarget *string
	useRegex      bool
	// sslRedirect is nil when unset: ingress-nginx then redirects hosts that
	// have TLS.
	sslRedirect      *bool
	forceSSLRedirect bool
	backendProtocol  string
	// redirect answers every request of the Ingress (permanent-redirect,
	// temporal-redirect); redirectField is the annotation it came from.
	redirect      *gwv1.HTTPRequestRedirectFilter
	redirectField string
	redirectRead  bool
	appRoot       string
	timeouts      *gwv1.HTTPRouteTimeouts
	cors          *gwv1.HTTPCORSFilter
	canary        canaryConfig
}

type canaryConfig struct {
	enabled bool
	// weight is nil when canary-weight is unset.
	weight      *int32
	total       int32
	header      string
	headerValue string
}

func annotationField(key string) string { return "metadata.annotations[" + key + "]" }

// read parses the annotations of ing and notes the ones it cannot convert.
func (c *converter) read(ing *networkingv1.Ingress) *source {
	s := &source{ing: ing, key: types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}}
	ann := ing.Annotations
	if b := c.boolAnnotation(s, "canary"); b != nil && *b {
		s.cfg.canary.enabled = true
		c.readCanary(s)
		return s
	}
	keys := make([]string, 0, len(ann))
	for k := range ann {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		name, ok := strings.CutPrefix(key, nginxPrefix)
		if !ok {
			c.foreignAnnotation(s, key)
			continue
		}
		c.nginxAnnotation(s, name, ann[key])
	}
	if s.cfg.rewriteTarget != nil && s.cfg.redirect != nil {
		c.note(s, annotationField(nginxPrefix+"rewrite-target"), "ignored: %s answers every request of this Ingress with a redirect, so nothing is rewritten (as in ingress-nginx); remove the annotation", s.cfg.redirectField)
	}
	c.tlsNotes(s)
	return s
}

// nginxAnnotation handles one nginx.ingress.kubernetes.io annotation of a
// primary Ingress.
func (c *converter) nginxAnnotation(s *source, name, value string) {
	key := nginxPrefix + name
	field := annotationField(key)
	switch {
	case name == "rewrite-target":
		v := value
		s.cfg.rewriteTarget = &v
	case name == "use-regex":
		b := c.boolAnnotation(s, name)
		s.cfg.useRegex = b != nil && *b
	case name == "ssl-redirect":
		s.cfg.sslRedirect = c.boolAnnotation(s, name)
	case name == "force-ssl-redirect":
		b := c.boolAnnotation(s, name)
		s.cfg.forceSSLRedirect = b != nil && *b
	case name == "backend-protocol":
		s.cfg.backendProtocol = strings.ToUpper(strings.TrimSpace(value))
	case name == "permanent-redirect", name == "temporal-redirect", name == "permanent-redirect-code":
		c.readRedirect(s)
	case name == "app-root":
		if !strings.HasPrefix(value, "/") || !validPath(value) {
			c.note(s, field, "app-root %q is not an absolute path; no redirect of \"/\" was created: redirect \"/\" yourself with a rule matching Exact \"/\" and a RequestRedirect filter", value)
			return
		}
		s.cfg.appRoot = value
	case name == "proxy-read-timeout", name == "proxy-send-timeout":
		c.readTimeouts(s, name)
	case name == "enable-cors":
		if b := c.boolAnnotation(s, name); b != nil && *b {
			s.cfg.cors = c.corsFilter(s)
		}
	case strings.HasPrefix(name, "cors-"):
		// Read together with enable-cors; without it ingress-nginx ignores them.
	case name == "canary-by-header", name == "canary-by-header-value", name == "canary-weight", name == "canary-weight-total",
		name == "canary-by-cookie", name == "canary-by-header-pattern":
		c.note(s, field, "ignored: the Ingress is not a canary (nginx.ingress.kubernetes.io/canary is not \"true\"), so ingress-nginx ignored it too; remove it")
	case name == "canary":
		// "false": an ordinary Ingress.
	default:
		c.note(s, field, "%s", unsupportedNginx(name, value))
	}
}

// unsupportedNginx is the Note for an ingress-nginx annotation that has no
// HTTPRoute counterpart.
func unsupportedNginx(name, value string) string {
	switch {
	case strings.HasSuffix(name, "-snippet"):
		return "raw nginx configuration cannot be converted; re-create its effect with HTTPRoute filters (RequestHeaderModifier, ResponseHeaderModifier, URLRewrite, RequestRedirect) or ask the platform team, then delete it"
	case strings.HasPrefix(name, "auth-") || name == "enable-global-auth" || name == "satisfy":
		return "authentication at the proxy is not converted: the route sends requests to the backend unauthenticated; add authentication in the application or get a policy from the platform team before moving traffic"
	case strings.HasSuffix(name, "source-range"):
		return fmt.Sprintf("client address restriction %q is not converted: the route accepts every client; ask the platform team for an equivalent policy before moving traffic", value)
	case strings.HasPrefix(name, "limit-") || strings.HasPrefix(name, "global-rate-limit"):
		return "rate limiting is not converted: the route is not rate limited; ask the platform team for a rate-limit policy or limit in the application"
	case name == "affinity" || name == "affinity-mode" || strings.HasPrefix(name, "session-cookie-"):
		return "session affinity is not converted (HTTPRoute sessionPersistence is not in the standard channel); requests are balanced across endpoints, so make the application tolerate that"
	case name == "ssl-passthrough":
		return "TLS passthrough needs a TLS listener and a TLSRoute, not an HTTPRoute; ask the platform team for a passthrough listener and write a TLSRoute"
	case name == "proxy-connect-timeout":
		return fmt.Sprintf("connect timeout of %s seconds is not converted: HTTPRoute has no connect timeout, the Gateway's default applies; nothing to do unless the backend is slow to accept connections", value)
	case name == "proxy-body-size":
		return fmt.Sprintf("request body limit %q is not converted: the Gateway's limit applies; ask the platform team if clients upload more than that", value)
	case name == "upstream-vhost":
		return fmt.Sprintf("not converted: to send Host %q to the backend, add a URLRewrite filter with hostname %q to the route's rules", value, value)
	case name == "x-forwarded-prefix":
		return fmt.Sprintf("not converted: add a RequestHeaderModifier filter that sets X-Forwarded-Prefix: %q to the route's rules", value)
	case strings.HasPrefix(name, "proxy-ssl-"):
		return "backend TLS settings are not converted: describe the backend's TLS with a BackendTLSPolicy (validation.hostname and caCertificateRefs or wellKnownCACertificates)"
	default:
		return fmt.Sprintf("ingress-nginx setting %q has no HTTPRoute equivalent and was not converted; check whether the application depends on it and ask the platform team for a Gateway-level setting if it does", value)
	}
}

// foreignAnnotation notes annotations read by other controllers; anything
// else (kubectl, Helm, Argo CD, labels of tools) is not routing and is left
// behind without a Note.
func (c *converter) foreignAnnotation(s *source, key string) {
	domain, _, _ := strings.Cut(key, "/")
	field := annotationField(key)
	switch {
	case key == classAnnotation:
	case domain == "cert-manager.io" || strings.HasSuffix(domain, ".cert-manager.io"):
		c.note(s, field, "cert-manager issues certificates for Gateway listeners, not for routes; ask the platform team to cover these hosts on the shared Gateway's HTTPS listener")
	case strings.Contains(domain, "ingress") || domain == "nginx.org" || domain == "external-dns.alpha.kubernetes.io":
		c.note(s, field, "annotation of another controller, not carried over to the HTTPRoute; configure its equivalent for the route or the shared Gateway if you still need it")
	}
}

// boolAnnotation reads an ingress-nginx boolean annotation; nil when absent
// or not a boolean (which is noted).
func (c *converter) boolAnnotation(s *source, name string) *bool {
	v, ok := s.ing.Annotations[nginxPrefix+name]
	if !ok {
		return nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		c.note(s, annotationField(nginxPrefix+name), "%q is not a boolean, so ingress-nginx ignored it and so does the conversion; write \"true\" or \"false\"", v)
		return nil
	}
	return &b
}

func (c *converter) readCanary(s *source) {
	ann := s.ing.Annotations
	cc := &s.cfg.canary
	cc.total = 100
	if v, ok := ann[nginxPrefix+"canary-weight-total"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n <= 0 {
			c.note(s, annotationField(nginxPrefix+"canary-weight-total"), "%q is not a positive integer; used 100, the ingress-nginx default", v)
		} else {
			cc.total = int32(n)
		}
	}
	if v, ok := ann[nginxPrefix+"canary-weight"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 0 {
			c.note(s, annotationField(nginxPrefix+"canary-weight"), "%q is not a non-negative integer; the canary gets no weighted traffic: fix the weight", v)
		} else {
			w := int32(min(n, int64(cc.total)))
			cc.weight = &w
		}
	}
	cc.header = strings.TrimSpace(ann[nginxPrefix+"canary-by-header"])
	cc.headerValue = ann[nginxPrefix+"canary-by-header-value"]
	if cc.header != "" && !validHeaderName(cc.header) {
		c.note(s, annotationField(nginxPrefix+"canary-by-header"), "%q is not a valid HTTP header name; no header rule was created for the canary", cc.header)
		cc.header = ""
	}

	keys := make([]string, 0, len(ann))
	for k := range ann {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		name, ok := strings.CutPrefix(key, nginxPrefix)
		if !ok {
			c.foreignAnnotation(s, key)
			continue
		}
		field := annotationField(key)
		switch name {
		case "canary", "canary-weight", "canary-weight-total", "canary-by-header":
		case "canary-by-header-value":
			if cc.header == "" {
				c.note(s, field, "ignored without canary-by-header (as in ingress-nginx); add canary-by-header to route by this value")
			}
		case "canary-by-header-pattern":
			if cc.header != "" && cc.headerValue == "" {
				c.note(s, field, "header pattern %q is not converted (HTTPRoute regular-expression header matches are implementation-specific): list the values with canary-by-header-value, or add a RegularExpression header match by hand", ann[key])
			}
		case "canary-by-cookie":
			c.note(s, field, "cookie %q cannot select the canary (HTTPRoute matches whole headers, not single cookies): send a header instead and use canary-by-header", ann[key])
		default:
			c.note(s, field, "ignored on a canary Ingress: ingress-nginx applies the primary Ingress's settings to canary traffic and so does the converted route; move it to the primary Ingress if it is needed")
		}
	}
	if cc.weight == nil && cc.header == "" {
		c.note(s, annotationField(nginxPrefix+"canary"), "the canary has no weight and no header rule, so it receives no traffic (ingress-nginx's default weight is 0); set canary-weight or canary-by-header to send it traffic")
	}
	if len(s.ing.Spec.TLS) > 0 {
		c.note(s, "spec.tls", "ignored on a canary Ingress (the primary's hosts carry TLS); nothing to do")
	}
	if s.ing.Spec.DefaultBackend != nil {
		c.note(s, "spec.defaultBackend", "a canary defaultBackend is not converted: only paths that match a path of the primary Ingress are split; add an explicit path \"/\" to both Ingresses if the default backend needs a canary")
	}
}

func (c *converter) readTimeouts(s *source, name string) {
	if s.cfg.timeouts != nil {
		return // both annotations are read the first time
	}
	var secs int64
	var fields []string
	for _, n := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
		v, ok := s.ing.Annotations[nginxPrefix+n]
		if !ok {
			continue
		}
		t, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || t <= 0 {
			c.note(s, annotationField(nginxPrefix+n), "%q is not a positive number of seconds, so ingress-nginx used its default (60s); no timeout was set", v)
			continue
		}
		secs = max(secs, t)
		fields = append(fields, n)
	}
	if secs == 0 {
		s.cfg.timeouts = &gwv1.HTTPRouteTimeouts{} // read, nothing to set
		return
	}
	d := duration(secs)
	s.cfg.timeouts = &gwv1.HTTPRouteTimeouts{BackendRequest: &d}
	c.note(s, annotationField(nginxPrefix+name), "%s became timeouts.backendRequest %s on every rule: nginx limits the pause between two reads or writes, the route limits the whole backend request, so a response streaming longer than %s is now cut; raise it for such endpoints", strings.Join(fields, " and "), d, d)
}

// duration formats seconds as a Gateway API duration (at most 5 digits per
// unit).
func duration(secs int64) gwv1.Duration {
	if secs < 100000 {
		return gwv1.Duration(fmt.Sprintf("%ds", secs))
	}
	h, m, sec := secs/3600, secs%3600/60, secs%60
	out := fmt.Sprintf("%dh", min(h, 99999))
	if m > 0 {
		out += fmt.Sprintf("%dm", m)
	}
	if sec > 0 {
		out += fmt.Sprintf("%ds", sec)
	}
	return gwv1.Duration(out)
}

// tlsNotes says, per spec.tls entry, what the shared Gateway has to provide.
func (c *converter) tlsNotes(s *source) {
	for i, t := range s.ing.Spec.TLS {
		hosts := strings.Join(t.Hosts, ", ")
		if hosts == "" {
			hosts = "the hosts of this Ingress"
		}
		secret := "no Secret"
		if t.SecretName != "" {
			secret = fmt.Sprintf("Secret %s/%s", s.key.Namespace, t.SecretName)
		}
		c.note(s, fmt.Sprintf("spec.tls[%d]", i), "TLS (%s for %s) belongs to the Gateway listener, not to a route: ask the platform team for an HTTPS listener on the shared Gateway whose certificate covers %s (reuse the Secret through a ReferenceGrant, or let the hub issue one), or confirm an existing one does", secret, hosts, hosts)
	}
}
