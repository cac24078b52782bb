package translate

import "strings"

// intersectHostnames returns the hostnames a route serves on a listener:
// those of the route that the listener's hostname admits, each narrowed to
// the more specific of the two. An empty listener hostname admits all; a
// route without hostnames takes the listener's. "*" stands for any hostname.
// The result is empty when nothing intersects.
func intersectHostnames(listener string, route []string) []string {
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
		if n, ok := intersectHostname(listener, h); ok && !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// intersectHostname intersects two hostnames, either possibly a wildcard.
func intersectHostname(a, b string) (string, bool) {
	aw, bw := strings.HasPrefix(a, "*."), strings.HasPrefix(b, "*.")
	switch {
	case !aw && !bw:
		return a, a == b
	case aw && !bw:
		return b, wildcardMatches(a, b)
	case !aw && bw:
		return a, wildcardMatches(b, a)
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

// wildcardMatches reports whether "*.suffix" matches host: host ends with
// ".suffix" and has at least one label before it.
func wildcardMatches(wildcard, host string) bool {
	suffix := wildcard[1:] // ".suffix"
	return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// hostnameRank orders virtual hosts: exact names first, then wildcards by
// decreasing suffix length, then the catch-all.
func hostnameRank(h string) (class int, length int) {
	switch {
	case h == "*":
		return 2, 0
	case strings.HasPrefix(h, "*."):
		return 1, -len(h)
	default:
		return 0, -len(h)
	}
}
