// Package wire parses HTTP/1.1 message heads in place, without allocating,
// for the proxy's fast path.
//
// It takes only a strict subset of HTTP/1.1: the forms that well-behaved
// clients and backends send every day, each of which net/http reads the
// same way. Everything else (other versions, absolute-form targets,
// Transfer-Encoding on a request, obs-fold, control characters, duplicate
// Host or Content-Length, hop-by-hop fields other than Connection) is
// reported as Other, and the caller hands the bytes, unread, to net/http,
// which decides exactly as it always has. So the parser never accepts what
// net/http would refuse, and where it accepts, it reads what net/http
// reads; the differential fuzz targets beside it hold it to that.
package wire

import "bytes"

// Verdict is what a parse found.
type Verdict uint8

const (
	// Complete: the head was parsed; it is the first n bytes.
	Complete Verdict = iota
	// Incomplete: the head does not end within the bytes given.
	Incomplete
	// Other: the message is not in the subset this package reads.
	Other
)

// Field is one header field as received: slices of the parsed buffer,
// the value without its surrounding whitespace.
type Field struct{ Name, Value []byte }

// MaxFields bounds the fields of a head; a head with more is Other.
const MaxFields = 64

// Request is a request head. Its slices point into the parsed buffer and
// are valid until that buffer is reused.
type Request struct {
	Method []byte
	// Target is the origin-form request-target; Path and Query split it
	// at the first '?' (HasQuery says whether there was one).
	Target, Path, Query []byte
	HasQuery            bool
	Host                []byte
	// Fields are every field in order, Host included.
	Fields []Field
	// ContentLength is the body's length; 0 without a Content-Length.
	ContentLength int64
	// Close: the client sent Connection: close.
	Close bool
	// HeaderBytes counts the fields as net/http's limit does: name, ": ",
	// value and CRLF of each, Host included.
	HeaderBytes int
	fields      [MaxFields]Field
}

// Response is a response head, read as Request is.
type Response struct {
	Status int
	Fields []Field
	// ContentLength is the body's length, -1 when the head gives none.
	ContentLength int64
	Chunked       bool
	Close         bool
	fields        [MaxFields]Field
}

// methods are the request methods the fast path takes. HEAD, CONNECT and
// the rest (whose responses or semantics differ) are Other.
var methods = [][]byte{[]byte("GET"), []byte("POST"), []byte("PUT"), []byte("DELETE"), []byte("PATCH"), []byte("OPTIONS")}

// ParseRequest parses the request head at the start of buf.
func (r *Request) ParseRequest(buf []byte) (int, Verdict) {
	line, rest, n, v := splitHead(buf)
	if v != Complete {
		return 0, v
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return 0, Other
	}
	method := line[:sp]
	known := false
	for _, m := range methods {
		if bytes.Equal(method, m) {
			known = true
			break
		}
	}
	if !known {
		return 0, Other
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp < 0 || !bytes.Equal(line[sp+1:], http11) {
		return 0, Other
	}
	target := line[:sp]
	if len(target) == 0 || target[0] != '/' {
		return 0, Other
	}
	path, query, hasQuery := target, []byte(nil), false
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		path, query, hasQuery = target[:q], target[q+1:], true
	}
	if !validEscapes(path, &pathByte) || !validEscapes(query, &queryByte) || bytes.Contains(path, pctNUL) {
		return 0, Other
	}
	*r = Request{Method: method, Target: target, Path: path, Query: query, HasQuery: hasQuery, Fields: r.fields[:0]}
	fields, ok := parseFields(rest, r.fields[:0])
	if !ok {
		return 0, Other
	}
	r.Fields = fields
	hosts, lengths := 0, 0
	for _, f := range fields {
		r.HeaderBytes += len(f.Name) + len(f.Value) + 4
		switch special(f.Name) {
		case fieldHost:
			hosts++
			r.Host = f.Value
			for _, c := range f.Value {
				if !hostByte[c] {
					return 0, Other
				}
			}
		case fieldContentLength:
			lengths++
			cl, ok := parseLength(f.Value)
			if !ok {
				return 0, Other
			}
			r.ContentLength = cl
		case fieldConnection:
			closing, ok := connectionOption(f.Value)
			if !ok {
				return 0, Other
			}
			r.Close = r.Close || closing
		case fieldTransferEncoding, fieldTrailer, fieldHop, fieldRequestOnly:
			return 0, Other
		}
	}
	if hosts != 1 || lengths > 1 {
		return 0, Other
	}
	return n, Complete
}

// ParseResponse parses the response head at the start of buf. Interim
// (1xx) responses, HTTP/1.0 and any transfer coding but chunked are Other.
func (r *Response) ParseResponse(buf []byte) (int, Verdict) {
	line, rest, n, v := splitHead(buf)
	if v != Complete {
		return 0, v
	}
	if len(line) < 12 || !bytes.HasPrefix(line, http11) || line[8] != ' ' {
		return 0, Other
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, Other
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || (len(line) > 12 && line[12] != ' ') {
		return 0, Other
	}
	for _, c := range line[12:] {
		if !valueByte[c] {
			return 0, Other
		}
	}
	*r = Response{Status: code, ContentLength: -1, Fields: r.fields[:0]}
	fields, ok := parseFields(rest, r.fields[:0])
	if !ok {
		return 0, Other
	}
	r.Fields = fields
	lengths, codings := 0, 0
	for _, f := range fields {
		switch special(f.Name) {
		case fieldContentLength:
			lengths++
			cl, ok := parseLength(f.Value)
			if !ok {
				return 0, Other
			}
			r.ContentLength = cl
		case fieldTransferEncoding:
			codings++
			if !EqualFold(f.Value, tokChunked) {
				return 0, Other
			}
			r.Chunked = true
		case fieldConnection:
			closing, ok := connectionOption(f.Value)
			if !ok {
				return 0, Other
			}
			r.Close = r.Close || closing
		case fieldTrailer:
			return 0, Other
		}
	}
	if lengths > 1 || codings > 1 || (lengths > 0 && codings > 0) {
		return 0, Other
	}
	switch {
	case code == 204 || code == 304:
		// No body, whatever the fields say (RFC 9112 §6.3 (1)).
		r.ContentLength, r.Chunked = 0, false
	case r.Chunked:
		r.ContentLength = -1
	}
	return n, Complete
}

var (
	crlfcrlf = []byte("\r\n\r\n")
	http11   = []byte("HTTP/1.1")
	pctNUL   = []byte("%00")
)

const (
	tokClose     = "close"
	tokKeepAlive = "keep-alive"
	tokChunked   = "chunked"
)

// splitHead finds the head at the start of buf: its first line, the field
// lines after it (each with its CRLF), and its length.
func splitHead(buf []byte) (line, fields []byte, n int, v Verdict) {
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		if bytes.IndexByte(buf, '\n') >= 0 && !onlyCRLFLines(buf) {
			return nil, nil, 0, Other
		}
		return nil, nil, 0, Incomplete
	}
	line, fields, ok := cutLine(buf[:end+2])
	if !ok {
		return nil, nil, 0, Other
	}
	return line, fields, end + 4, Complete
}

// connectionOption reads a Connection field: "close" or "keep-alive";
// anything else (fields named hop-by-hop) is not taken.
func connectionOption(v []byte) (closing, ok bool) {
	switch {
	case EqualFold(v, tokClose):
		return true, true
	case EqualFold(v, tokKeepAlive):
		return false, true
	}
	return false, false
}

// onlyCRLFLines reports whether every LF in buf ends a CRLF: a bare LF
// ends a line for net/http but not here.
func onlyCRLFLines(buf []byte) bool {
	for i, c := range buf {
		if c == '\n' && (i == 0 || buf[i-1] != '\r') {
			return false
		}
	}
	return true
}

// cutLine splits the first CRLF-terminated line off head; a CR or LF
// elsewhere in the line fails.
func cutLine(head []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(head, '\n')
	if i < 1 || head[i-1] != '\r' {
		return nil, nil, false
	}
	line = head[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, head[i+1:], true
}

// parseFields parses CRLF-terminated "name: value" lines.
func parseFields(b []byte, out []Field) ([]Field, bool) {
	for len(b) > 0 {
		line, rest, ok := cutLine(b)
		if !ok || len(out) == cap(out) {
			return nil, false
		}
		b = rest
		colon := bytes.IndexByte(line, ':')
		if colon < 1 {
			return nil, false
		}
		name := line[:colon]
		for _, c := range name {
			if !nameByte[c] {
				return nil, false
			}
		}
		value := line[colon+1:]
		for _, c := range value {
			if !valueByte[c] {
				return nil, false
			}
		}
		out = append(out, Field{Name: name, Value: trimOWS(value)})
	}
	return out, true
}

// ValidField reports whether line (without its CRLF) is a field line the
// parser takes: a token name, a colon, and visible ASCII, space or tab.
func ValidField(line []byte) bool {
	_, ok := parseFields(append(line[:len(line):len(line)], '\r', '\n'), make([]Field, 0, 1))
	return ok
}

func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// parseLength reads a Content-Length: 1 to 18 digits.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validEscapes reports whether every byte of s is allowed and every '%'
// starts a two-digit hex escape.
func validEscapes[T string | []byte](s T, allowed *[256]bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
			continue
		}
		if !allowed[c] {
			return false
		}
	}
	return true
}

// PlainPath reports whether an escaped path is one this package would
// take in a request target: a '/', path characters and valid escapes.
func PlainPath(p string) bool {
	return len(p) > 0 && p[0] == '/' && validEscapes(p, &pathByte)
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

type fieldKind uint8

const (
	fieldOther fieldKind = iota
	fieldHost
	fieldContentLength
	fieldConnection
	fieldTransferEncoding
	fieldTrailer
	// fieldHop: hop-by-hop fields a proxy must not forward, besides
	// Connection and Transfer-Encoding.
	fieldHop
	// fieldRequestOnly: request fields that change how the exchange goes
	// (Expect, Upgrade, an h2c upgrade's settings).
	fieldRequestOnly
)

var specials = []struct {
	name string
	kind fieldKind
}{
	{"host", fieldHost},
	{"content-length", fieldContentLength},
	{"connection", fieldConnection},
	{"transfer-encoding", fieldTransferEncoding},
	{"trailer", fieldTrailer},
	{"te", fieldHop},
	{"keep-alive", fieldHop},
	{"proxy-connection", fieldHop},
	{"proxy-authenticate", fieldHop},
	{"proxy-authorization", fieldHop},
	{"upgrade", fieldHop},
	{"expect", fieldRequestOnly},
	{"http2-settings", fieldRequestOnly},
}

// special says which of the fields the parser acts on name is.
func special(name []byte) fieldKind {
	if len(name) < 2 || len(name) > 19 {
		return fieldOther
	}
	for _, s := range specials {
		if len(s.name) == len(name) && EqualFold(name, s.name) {
			return s.kind
		}
	}
	return fieldOther
}

// IsHopByHop reports whether a response field is one a proxy drops:
// Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization,
// Te, Upgrade, and Connection and Transfer-Encoding, whose meaning the
// proxy re-states itself.
func IsHopByHop(name []byte) bool {
	switch special(name) {
	case fieldHop, fieldConnection, fieldTransferEncoding:
		return true
	}
	return false
}

// EqualFold compares a received name with a name of the route table
// case-insensitively (ASCII).
func EqualFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// nameByte: RFC 9110 tchar, less '_' (the proxy drops such fields, on
// net/http's path).
var nameByte = charset("!#$%&'*+-.^`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

// valueByte: visible ASCII, space and tab.
var valueByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	t['\t'] = true
	return t
}()

// hostByte: what an RFC 3986 authority without userinfo is made of (the
// proxy checks its form); every one is a byte net/http's server takes in
// a Host.
var hostByte = charset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:[]")

// pathByte: RFC 3986 pchar and '/', less pct-encoded (handled apart).
var pathByte = charset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,=:@/")

// queryByte: RFC 3986 query characters less ';', which net/http's
// reverse proxy removes with the pair it is in.
var queryByte = charset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,=:@/?")

func charset(s string) (t [256]bool) {
	for i := 0; i < len(s); i++ {
		t[s[i]] = true
	}
	return t
}
