package proxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// Request hygiene: what a client's request must satisfy, or is made to
// satisfy, before it is routed. Each rule is one that a backend or a
// front load balancer could read differently from the proxy; the choices
// and the peers they follow are in docs/adversarial.md.

// screen cleans a request before routing and refuses what cannot be
// served safely. It returns the status it answered, or 0 to go on.
func screen(w http.ResponseWriter, r *http.Request) int {
	if r.ProtoMajor == 1 && (r.ProtoMinor == 0 || len(r.TransferEncoding) > 0) {
		// RFC 9112 §6.1: after a request with both Content-Length and
		// Transfer-Encoding, or an HTTP/1.0 request with
		// Transfer-Encoding, the server MUST close the connection.
		// net/http deletes both fields before the handler sees the
		// request (and does not close: golang/go#80942), so the proxy
		// closes after every chunked HTTP/1.1 request and every HTTP/1.0
		// request; the client reconnects, nothing else changes.
		w.Header().Set("Connection", "close")
	}
	if !validHost(r.Host) {
		return respond(w, http.StatusBadRequest, fmt.Sprintf(
			"the Host %q is not a valid host[:port] (RFC 9112 §3.2): send a DNS name, an IPv4 address or a bracketed IPv6 address, optionally followed by ':' and a port number", r.Host))
	}
	if strings.IndexByte(r.URL.Path, 0) >= 0 {
		return respond(w, http.StatusBadRequest, "the path contains a NUL character (%00): no backend can serve it; remove it")
	}
	dropUnderscoreHeaders(r.Header)
	stripH2CUpgrade(r.Header)
	return 0
}

// validHost reports whether h is an RFC 3986 authority without userinfo:
// a reg-name, an IPv4 address or a bracketed IPv6 address, and an optional
// port. An empty Host (HTTP/1.0, or an empty authority) is valid.
func validHost(h string) bool {
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		if a, err := netip.ParseAddr(h[1:end]); err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
		rest := h[end+1:]
		if rest == "" {
			return true
		}
		return rest[0] == ':' && validPort(rest[1:])
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if !validPort(port) {
			return false
		}
	}
	for i := 0; i < len(host); i++ {
		if !regNameByte[host[i]] {
			return false
		}
	}
	return true
}

// validPort: empty (RFC 3986 allows "host:") or a decimal port up to 65535.
func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// regNameByte: RFC 3986 reg-name = *( unreserved / pct-encoded / sub-delims ),
// less pct-encoded, which no peer decodes in a Host and a route could
// never name.
var regNameByte = func() (t [256]bool) {
	for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=" {
		t[c] = true
	}
	return t
}()

// dropUnderscoreHeaders removes header fields whose names contain '_':
// CGI, WSGI and PHP backends read X_User as X-User, next to the X-User the
// route may set or match. nginx ignores such fields by default
// (underscores_in_headers off); Envoy can drop them
// (headers_with_underscores_action: DROP_HEADER).
func dropUnderscoreHeaders(h http.Header) {
	for name := range h {
		if strings.IndexByte(name, '_') >= 0 {
			delete(h, name)
		}
	}
}

// stripH2CUpgrade removes the h2c token from Upgrade, and HTTP2-Settings:
// a backend that accepted the upgrade would give the client an HTTP/2
// connection of its own, on which every later request bypasses the route
// table. RFC 9113 §3.1 retired the upgrade; Envoy and nginx strip it.
// Other upgrades (WebSocket) go on.
func stripH2CUpgrade(h http.Header) {
	delete(h, "Http2-Settings")
	ups, ok := h["Upgrade"]
	if !ok {
		return
	}
	var keep []string
	for _, v := range ups {
		for _, tok := range strings.Split(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok != "" && !strings.EqualFold(tok, "h2c") {
				keep = append(keep, tok)
			}
		}
	}
	if len(keep) == 0 {
		delete(h, "Upgrade")
		return
	}
	h["Upgrade"] = []string{strings.Join(keep, ", ")}
}

// routingPath is the path routes match and backends receive: the path as
// the client escaped it, with percent-encoded unreserved characters decoded
// and other escapes kept in upper-case hex (RFC 3986 §6.2.2), then dot
// segments removed and slashes merged. A reserved character the client
// encoded, such as %2F or %3F, stays encoded: it is data, not a separator,
// for matching, for the backend and in a redirect's Location. This is
// Envoy's normalize_path with merge_slashes, and %2F kept unchanged.
func routingPath(u *url.URL) string {
	return cleanPath(routetable.CanonicalEscapes(u.EscapedPath()))
}

// setPath points u at an escaped path such as routingPath returns, so that
// it is written exactly so: net/http writes RawPath when it is a valid
// escaping of Path.
func setPath(u *url.URL, escaped string) {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		u.Path, u.RawPath = escaped, ""
		return
	}
	u.Path, u.RawPath = p, escaped
}
