package routetable

import "strings"

// CanonicalEscapes writes an escaped path's percent-encodings one way
// (RFC 3986 §6.2.2): an encoded unreserved character is decoded ("%7E" is
// "~"), every other escape is kept, in upper-case hex ("%2f" is "%2F"). The
// proxy applies it to each request's path before routing, and the hub to
// each route's path values, so that "/caf%c3%a9" in a route matches the
// request "/caf%C3%A9". A '%' that starts no valid escape is data: "%25".
func CanonicalEscapes(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		v, ok := byte(0), false
		if i+2 < len(p) {
			v, ok = unhex(p[i+1], p[i+2])
		}
		switch {
		case !ok:
			b.WriteString("%25")
			continue
		case unreservedByte(v):
			b.WriteByte(v)
		default:
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[v>>4])
			b.WriteByte(hex[v&15])
		}
		i += 2
	}
	return b.String()
}

func unreservedByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(a, b byte) (byte, bool) {
	hi, ok1 := hexVal(a)
	lo, ok2 := hexVal(b)
	return hi<<4 | lo, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
