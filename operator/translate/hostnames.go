package translate

import "strings"

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
