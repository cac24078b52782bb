// Package hostnames is the Gateway API's hostname arithmetic: how a
// wildcard matches, and which hostnames a route serves on a listener.
package hostnames

import (
	"slices"
	"strings"
)

// Intersect returns the hostnames a route serves on a listener: those of
// the route that the listener's hostname admits, each narrowed to the more
// specific of the two. An empty listener hostname admits all; a route
// without hostnames takes the listener's. "*" stands for any hostname. The
// result is empty when nothing intersects.
func Intersect(listener string, route []string) []string {
	if len(route) == 0 {
		if listener == "" {
			return []string{"*"}
		}
		return []string{listener}
	}
	if listener == "" {
		return route
	}
	var out []string
	for _, h := range route {
		if n, ok := IntersectOne(listener, h); ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// IntersectOne intersects two hostnames, either possibly a wildcard.
func IntersectOne(a, b string) (string, bool) {
	aw, bw := strings.HasPrefix(a, "*."), strings.HasPrefix(b, "*.")
	switch {
	case !aw && !bw:
		return a, a == b
	case aw && !bw:
		return b, WildcardMatches(a, b)
	case !aw && bw:
		return a, WildcardMatches(b, a)
	}
	// Both wildcards: the longer suffix is the intersection when it lies
	// within the shorter.
	if len(a) < len(b) {
		a, b = b, a
	}
	if a == b || strings.HasSuffix(a, b[1:]) {
		return a, true
	}
	return "", false
}

// WildcardMatches reports whether "*.suffix" matches host: host ends with
// ".suffix" and has at least one label before it.
func WildcardMatches(wildcard, host string) bool {
	suffix := wildcard[1:] // ".suffix"
	return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
}

// CertificateCovers reports whether a certificate for dnsName (an exact
// name, or a wildcard "*.suffix") is valid for host as TLS clients check it
// (RFC 6125 section 6.4.3): unlike a listener's wildcard, a certificate's
// stands for exactly one label. A wildcard host is covered only by the same
// wildcard.
func CertificateCovers(dnsName, host string) bool {
	if dnsName == host {
		return true
	}
	if !strings.HasPrefix(dnsName, "*.") || strings.HasPrefix(host, "*") {
		return false
	}
	label, rest, ok := strings.Cut(host, ".")
	return ok && label != "" && "."+rest == dnsName[1:]
}
