package routetable

import (
	"fmt"
	"net/netip"
	"strings"
)

// What a route table puts into a request or a response header (header
// filters, host rewrites, redirects, CORS) is checked here, by the hub for
// each route it compiles and by the proxy for each route it loads: a value
// the proxy cannot send as written is refused, never sent mangled, dropped
// or ignored.

// HeaderError says which part of a header entry is wrong ("name" or
// "value"), what is wrong with it and what to change.
type HeaderError struct {
	Part string
	Msg  string
}

func (e *HeaderError) Error() string { return e.Part + ": " + e.Msg }

// CheckFieldName says why name cannot be an HTTP field name: it must be a
// token (RFC 9110 §5.1).
func CheckFieldName(name string) error {
	if name == "" {
		return &HeaderError{"name", "is empty; name the header"}
	}
	for i := 0; i < len(name); i++ {
		if !tokenByte[name[i]] {
			return &HeaderError{"name", fmt.Sprintf("%q: %s is not allowed in a header name, which is a token (RFC 9110 §5.1): use letters, digits and !#$%%&'*+-.^_`|~ only",
				name, describeByte(name, i))}
		}
	}
	return nil
}

// CheckFieldValue says why value cannot be an HTTP field value (RFC 9110
// §5.5): visible characters, with spaces and tabs between them. A control
// character (CR and LF above all) would end the field or the whole head
// early, and a leading or trailing space or tab is not part of the value
// a recipient reads.
func CheckFieldValue(value string) error {
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return &HeaderError{"value", describeByte(value, i) +
				" cannot be part of a header value (RFC 9110 §5.5: visible characters, spaces and tabs): write the value on one line, without control characters"}
		}
	}
	if value != strings.Trim(value, " \t") {
		return &HeaderError{"value", fmt.Sprintf("%q starts or ends with a space or a tab, which recipients strip (RFC 9110 §5.5): remove it", value)}
	}
	return nil
}

// describeByte names s[i] and where it is.
func describeByte(s string, i int) string {
	c := s[i]
	name := ""
	switch {
	case c == 0:
		name = "a NUL"
	case c == '\n':
		name = "a line feed"
	case c == '\r':
		name = "a carriage return"
	case c == ' ':
		name = "a space"
	case c < 0x20 || c == 0x7f:
		name = "a control character"
	case c >= 0x80:
		name = "a non-ASCII byte"
	default:
		name = fmt.Sprintf("%q", c)
	}
	return fmt.Sprintf("character %d, %s (0x%02X),", i+1, name, c)
}

// tokenByte: RFC 9110 tchar.
var tokenByte = func() (t [256]bool) {
	for _, c := range "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
		t[c] = true
	}
	return t
}()

// CheckHostname says why h cannot be the host of a Host header or of a
// redirect's Location: a DNS name or IPv4 address (RFC 3986 reg-name
// characters) or a bracketed IPv6 address, without a port.
func CheckHostname(h string) error {
	if h == "" {
		return &HeaderError{"value", "is empty; name a host"}
	}
	if strings.HasPrefix(h, "[") {
		if a, err := netip.ParseAddr(strings.TrimSuffix(h[1:], "]")); err == nil && a.Is6() && a.Zone() == "" && strings.HasSuffix(h, "]") {
			return nil
		}
		return &HeaderError{"value", fmt.Sprintf("%q is not a bracketed IPv6 address: write it as [2001:db8::1]", h)}
	}
	for i := 0; i < len(h); i++ {
		if !hostByte[h[i]] {
			return &HeaderError{"value", fmt.Sprintf("%q: %s is not allowed in a host name (RFC 3986 §3.2.2): write a DNS name such as www.example.com or an IP address", h, describeByte(h, i))}
		}
	}
	return nil
}

// CheckHost says why h cannot be a Host header (RFC 9110 §7.2): a host
// name (CheckHostname) with an optional port.
func CheckHost(h string) error {
	host := h
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		host = h[:i]
		port := h[i+1:]
		if len(port) == 0 || len(port) > 5 || strings.Trim(port, "0123456789") != "" || atoi(port) > 65535 {
			return &HeaderError{"value", fmt.Sprintf("%q: the port %q is not a number from 0 to 65535: write host or host:port", h, port)}
		}
	}
	return CheckHostname(host)
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// hostByte: RFC 3986 reg-name characters less pct-encoded, as the proxy
// takes them in a request's Host.
var hostByte = func() (t [256]bool) {
	for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=" {
		t[c] = true
	}
	return t
}()

// HeaderOp is what a header filter does with a field.
type HeaderOp int

const (
	OpSet HeaderOp = iota
	OpAdd
	OpRemove
)

func (op HeaderOp) String() string {
	return [...]string{"set", "add", "remove"}[op]
}

// Ownership of fields: some the proxy writes itself on every message, from
// the connection and the body, so a filter cannot set, add or remove them.
var (
	// framingFields carry the body's length and encoding (RFC 9112 §6).
	framingFields = []string{"Content-Length", "Transfer-Encoding", "Trailer"}
	// hopFields describe one connection (RFC 9110 §7.6.1, RFC 9113
	// §8.2.2): the proxy drops the ones it receives and writes its own.
	// Removing them is what the proxy does anyway.
	hopFields = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade", "Http2-Settings"}
)

// CheckHeaderEdit says why a header filter entry cannot be served as
// written: a field name that is no token, a value no field can carry, or a
// field the proxy owns. request says whether the filter edits the request
// to the backend (true) or the response to the client.
//
// A request's Host is never a header edit in the table: setting it is the
// host rewrite of a route or backend (CheckHost), and it can be neither
// added to (it carries one value) nor removed (every request has one).
func CheckHeaderEdit(request bool, op HeaderOp, name, value string) error {
	if err := CheckFieldName(name); err != nil {
		return err
	}
	if op != OpRemove {
		if err := CheckFieldValue(value); err != nil {
			return err
		}
	}
	what := "the response"
	if request {
		what = "the request"
	}
	switch {
	case request && strings.EqualFold(name, "Host"):
		switch op {
		case OpSet:
			return &HeaderError{"name", "Host is set by a host rewrite: move the value to the host rewrite"}
		case OpAdd:
			return &HeaderError{"name", "Host carries a single value (RFC 9110 §7.2) and cannot be added to: use set to replace it"}
		}
		return &HeaderError{"name", "Host cannot be removed: every HTTP/1.1 request carries one (RFC 9112 §3.2): remove this entry, or use set to replace the Host"}
	case hasFold(framingFields, name):
		return &HeaderError{"name", fmt.Sprintf("%s cannot be %s: the proxy writes the framing of %s itself, from its body (RFC 9112 §6): remove this entry", name, opDone(op), what)}
	case op != OpRemove && hasFold(hopFields, name):
		return &HeaderError{"name", fmt.Sprintf("%s cannot be %s: it is a hop-by-hop field the proxy writes itself for each connection (RFC 9110 §7.6.1), and HTTP/2 forbids it (RFC 9113 §8.2.2): remove this entry", name, opDone(op))}
	case request && op != OpRemove && strings.EqualFold(name, "Expect"):
		return &HeaderError{"name", "Expect cannot be set or added: the proxy answers 100-continue itself and does not forward Expect: remove this entry"}
	case !request && op == OpRemove && (strings.EqualFold(name, "Date") || strings.EqualFold(name, "Content-Type")):
		return &HeaderError{"name", fmt.Sprintf("%s cannot be removed from the response: the proxy writes one itself when the response has none (RFC 9110 §6.6.1, §8.3): set it to the value you want instead", name)}
	}
	return nil
}

func opDone(op HeaderOp) string {
	return [...]string{"set", "added", "removed"}[op]
}

func hasFold(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// CheckMutation checks every entry of m (CheckHeaderEdit).
func CheckMutation(m *HeaderMutation, request bool) error {
	for i, h := range m.GetSet() {
		if err := CheckHeaderEdit(request, OpSet, h.GetName(), h.GetValue()); err != nil {
			return fmt.Errorf("set[%d].%w", i, err)
		}
	}
	for i, h := range m.GetAdd() {
		if err := CheckHeaderEdit(request, OpAdd, h.GetName(), h.GetValue()); err != nil {
			return fmt.Errorf("add[%d].%w", i, err)
		}
	}
	for i, n := range m.GetRemove() {
		if err := CheckHeaderEdit(request, OpRemove, n, ""); err != nil {
			return fmt.Errorf("remove[%d].%w", i, err)
		}
	}
	return nil
}

// CheckCORSToken says why v cannot be one entry of a CORS allow or expose
// list, which the proxy sends as a comma-separated list of tokens: a
// method or a header name, or "*".
func CheckCORSToken(v string) error {
	if v == "*" {
		return nil
	}
	return CheckFieldName(v)
}

// CheckEmitted says why the proxy cannot send what r puts into requests
// and responses as written: its header filters and its backends', its
// host rewrites, its redirect and its CORS policy. Nil when it can.
func (r *Route) CheckEmitted() error {
	if err := CheckMutation(r.GetRequestHeaders(), true); err != nil {
		return fmt.Errorf("request headers: %w", err)
	}
	if err := CheckMutation(r.GetResponseHeaders(), false); err != nil {
		return fmt.Errorf("response headers: %w", err)
	}
	if rd := r.GetRedirect(); rd != nil {
		switch rd.GetScheme() {
		case "", "http", "https":
		default:
			return fmt.Errorf("redirect scheme %q: write http or https", rd.GetScheme())
		}
		if h := rd.GetHostname(); h != "" {
			if err := CheckHostname(h); err != nil {
				return fmt.Errorf("redirect hostname: %w", err)
			}
		}
		if err := checkRewrite(rd.GetPath()); err != nil {
			return fmt.Errorf("redirect path: %w", err)
		}
	}
	if ra := r.GetRoute(); ra != nil {
		if h := ra.GetHostRewrite(); h != "" {
			if err := CheckHost(h); err != nil {
				return fmt.Errorf("host rewrite: %w", err)
			}
		}
		for i, b := range ra.GetBackends() {
			if err := b.checkEmitted(); err != nil {
				return fmt.Errorf("backend %d: %w", i, err)
			}
		}
	}
	if c := r.GetCors(); c != nil {
		for _, l := range []struct {
			name string
			vs   []string
		}{{"allow methods", c.GetAllowMethods()}, {"allow headers", c.GetAllowHeaders()}, {"expose headers", c.GetExposeHeaders()}} {
			for i, v := range l.vs {
				if err := CheckCORSToken(v); err != nil {
					return fmt.Errorf("cors %s[%d] %w", l.name, i, err)
				}
			}
		}
		for i, o := range c.GetAllowOrigins() {
			if err := CheckFieldValue(o); err != nil {
				return fmt.Errorf("cors allow origins[%d] %w", i, err)
			}
		}
	}
	return nil
}

func (b *WeightedBackend) checkEmitted() error {
	if err := CheckMutation(b.GetRequestHeaders(), true); err != nil {
		return fmt.Errorf("request headers: %w", err)
	}
	if err := CheckMutation(b.GetResponseHeaders(), false); err != nil {
		return fmt.Errorf("response headers: %w", err)
	}
	if h := b.GetHostRewrite(); h != "" {
		if err := CheckHost(h); err != nil {
			return fmt.Errorf("host rewrite: %w", err)
		}
	}
	return nil
}

// checkRewrite: a redirect's path goes into its Location header.
func checkRewrite(p *PathRewrite) error {
	switch x := p.GetRewrite().(type) {
	case *PathRewrite_Full:
		return CheckFieldValue(x.Full)
	case *PathRewrite_Prefix:
		return CheckFieldValue(x.Prefix)
	}
	return nil
}
