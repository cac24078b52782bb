package proxy

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

type corsPolicy struct {
	allowAll    bool
	origins     map[string]bool
	patterns    []*regexp.Regexp
	methods     string
	allMethods  bool
	headers     string
	allHeaders  bool
	expose      string
	credentials bool
	maxAge      string
}

func compileCORS(c *routetable.CorsPolicy) *corsPolicy {
	p := &corsPolicy{origins: map[string]bool{}, credentials: c.AllowCredentials}
	for _, o := range c.AllowOrigins {
		switch {
		case o == "*":
			p.allowAll = true
		case strings.Contains(o, "*"):
			// "*" stands for one or more labels of the host.
			re := "^" + strings.ReplaceAll(regexp.QuoteMeta(o), `\*`, `[^/]+`) + "$"
			if r, err := regexp.Compile(re); err == nil {
				p.patterns = append(p.patterns, r)
			}
		default:
			p.origins[o] = true
		}
	}
	for _, m := range c.AllowMethods {
		if m == "*" {
			p.allMethods = true
		}
	}
	p.methods = strings.Join(c.AllowMethods, ", ")
	for _, h := range c.AllowHeaders {
		if h == "*" {
			p.allHeaders = true
		}
	}
	p.headers = strings.Join(c.AllowHeaders, ", ")
	p.expose = strings.Join(c.ExposeHeaders, ", ")
	if c.MaxAgeSeconds > 0 {
		p.maxAge = strconv.Itoa(int(c.MaxAgeSeconds))
	}
	return p
}

func (p *corsPolicy) allows(origin string) bool {
	if p.allowAll || p.origins[origin] {
		return true
	}
	for _, r := range p.patterns {
		if r.MatchString(origin) {
			return true
		}
	}
	return false
}

// isPreflight reports a CORS preflight, which the proxy answers itself.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a preflight: 204, with the allow headers when the origin
// is allowed and without them when it is not.
func (p *corsPolicy) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	h := w.Header()
	if p.allows(origin) {
		p.allowOrigin(h, origin)
		switch {
		case p.allMethods && p.credentials:
			h.Set("Access-Control-Allow-Methods", r.Header.Get("Access-Control-Request-Method"))
		case p.methods != "":
			h.Set("Access-Control-Allow-Methods", p.methods)
		}
		switch {
		case p.allHeaders && p.credentials:
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
		case p.headers != "":
			h.Set("Access-Control-Allow-Headers", p.headers)
		}
		if p.maxAge != "" {
			h.Set("Access-Control-Max-Age", p.maxAge)
		}
		if p.expose != "" {
			h.Set("Access-Control-Expose-Headers", p.expose)
		}
	}
	h.Add("Vary", "Origin")
	w.WriteHeader(http.StatusNoContent)
}

// decorate adds the CORS headers of an actual (non-preflight) response.
func (p *corsPolicy) decorate(h http.Header, origin string) {
	if origin == "" || !p.allows(origin) {
		return
	}
	p.allowOrigin(h, origin)
	if p.expose != "" {
		h.Set("Access-Control-Expose-Headers", p.expose)
	}
	h.Add("Vary", "Origin")
}

func (p *corsPolicy) allowOrigin(h http.Header, origin string) {
	if p.allowAll && !p.credentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}
