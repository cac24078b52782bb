package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// maxNameLength keeps route names valid as DNS-1123 labels too, since
// implementations put route names into labels and stat names.
const maxNameLength = 63

// routeName joins parts into a DNS-1123 name of at most maxNameLength
// characters; a name that had to be cut ends in a hash of the whole.
func routeName(parts ...string) string {
	full := strings.Join(parts, "-")
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(full) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
			dash = false
		default:
			if !dash {
				b.WriteByte('-')
			}
			dash = true
		}
	}
	name := strings.Trim(b.String(), "-.")
	if name == "" {
		name = "route"
	}
	if len(name) <= maxNameLength {
		return name
	}
	suffix := shortHash(full)
	return strings.TrimRight(name[:maxNameLength-len(suffix)-1], "-.") + "-" + suffix
}

// hostLabel is how a host appears in a route name.
func hostLabel(host string) string {
	switch {
	case host == "":
		return "any-host"
	case strings.HasPrefix(host, "*."):
		return "wildcard-" + strings.ReplaceAll(host[2:], ".", "-")
	default:
		return strings.ReplaceAll(host, ".", "-")
	}
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

var (
	hostnamePattern        = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	preciseHostnamePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	headerNamePattern      = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+\\-.^_`|~]+$")
	pathCharacters         = regexp.MustCompile(`^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$`)
)

func validHostname(h string) bool {
	return len(h) <= 253 && hostnamePattern.MatchString(h)
}

func validPreciseHostname(h string) bool {
	return len(h) <= 253 && preciseHostnamePattern.MatchString(h)
}

func validHeaderName(h string) bool {
	return len(h) <= 256 && headerNamePattern.MatchString(h)
}

// validPath reports whether p is accepted by HTTPRoute as an Exact or
// PathPrefix value (the CEL rules of HTTPPathMatch).
func validPath(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) > 1024 || !pathCharacters.MatchString(p) {
		return false
	}
	for _, bad := range []string{"//", "/./", "/../", "%2f", "%2F", "#"} {
		if strings.Contains(p, bad) {
			return false
		}
	}
	return !strings.HasSuffix(p, "/..") && !strings.HasSuffix(p, "/.")
}
