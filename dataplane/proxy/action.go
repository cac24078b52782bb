package proxy

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// action is what a matched route does, compiled.
type action struct {
	backends    []weighted
	totalWeight uint32
	pathRewrite *routetable.PathRewrite
	hostRewrite string
	reqTimeout  time.Duration // 0: none; timeoutUnset: the limits' default
	beTimeout   time.Duration // 0: none; timeoutUnset: the limits' default
	retry       *retryPolicy
	mirrors     []mirror
	redirect    *routetable.RedirectAction
	direct      *routetable.DirectResponse
	reqHeaders  *mutation
	respHeaders *mutation
	cors        *corsPolicy
}

type weighted struct {
	backend     *backend // nil: invalid share, answered 500
	weight      uint32
	reqHeaders  *mutation
	respHeaders *mutation
	// pathRewrite and hostRewrite, when set, replace the route's.
	pathRewrite *routetable.PathRewrite
	hostRewrite string
	counters    *shareCounters
}

type retryPolicy struct {
	codes    map[int]bool
	attempts int
	backoff  time.Duration
}

type mirror struct {
	backend                *backend
	numerator, denominator uint32
}

type mutation struct {
	set    []header
	add    []header
	remove []string
}

type header struct{ name, value string }

func compileMutation(m *routetable.HeaderMutation) *mutation {
	if m == nil || (len(m.Set) == 0 && len(m.Add) == 0 && len(m.Remove) == 0) {
		return nil
	}
	out := &mutation{remove: make([]string, 0, len(m.Remove))}
	for _, h := range m.Set {
		out.set = append(out.set, header{http.CanonicalHeaderKey(h.Name), h.Value})
	}
	for _, h := range m.Add {
		out.add = append(out.add, header{http.CanonicalHeaderKey(h.Name), h.Value})
	}
	for _, n := range m.Remove {
		out.remove = append(out.remove, http.CanonicalHeaderKey(n))
	}
	return out
}

// apply sets, appends (joined with what is there, see joiner) and removes
// headers.
func (m *mutation) apply(h http.Header) {
	if m == nil {
		return
	}
	for _, s := range m.set {
		h[s.name] = []string{s.value}
	}
	for _, a := range m.add {
		old := h[a.name]
		switch sep, join := joiner(a.name); {
		case len(old) == 0:
			h[a.name] = []string{a.value}
		case !join:
			h[a.name] = append(slices.Clip(old), a.value)
		default:
			h[a.name] = []string{strings.Join(old, sep) + sep + a.value}
		}
	}
	for _, r := range m.remove {
		delete(h, r)
	}
}

// joiner says how an added value joins the field's values already there:
// with a comma (RFC 9110 §5.3), as the Gateway API's header filters say;
// a Cookie's with "; " (RFC 6265 §5.4); a Set-Cookie not at all, as a field
// of its own, since a cookie's attributes may hold commas and a client
// reads one cookie per field (RFC 6265 §3). name is canonical.
func joiner(name string) (sep string, join bool) {
	switch name {
	case "Set-Cookie":
		return "", false
	case "Cookie":
		return "; ", true
	}
	return ",", true
}

func compileAction(rt *routetable.Route, backends map[string]*backend) (*action, error) {
	// What the route would write into requests and responses must go out
	// as the table says: a value that would end a header early or that the
	// proxy writes itself is refused, not sent mangled or dropped.
	if err := rt.CheckEmitted(); err != nil {
		return nil, err
	}
	a := &action{reqHeaders: compileMutation(rt.RequestHeaders), respHeaders: compileMutation(rt.ResponseHeaders),
		reqTimeout: timeoutUnset, beTimeout: timeoutUnset}
	if rt.Cors != nil {
		a.cors = compileCORS(rt.Cors)
	}
	switch act := rt.Action.(type) {
	case *routetable.Route_Redirect:
		a.redirect = act.Redirect
	case *routetable.Route_DirectResponse:
		a.direct = act.DirectResponse
	case *routetable.Route_Route:
		ra := act.Route
		for _, wb := range ra.Backends {
			w := weighted{weight: wb.Weight, reqHeaders: compileMutation(wb.RequestHeaders), respHeaders: compileMutation(wb.ResponseHeaders),
				pathRewrite: wb.PathRewrite, hostRewrite: wb.HostRewrite, counters: &shareCounters{}}
			if wb.Backend != "" {
				b, ok := backends[wb.Backend]
				if !ok {
					return nil, fmt.Errorf("backend %s is not in the table", wb.Backend)
				}
				w.backend = b
			}
			a.totalWeight += w.weight
			a.backends = append(a.backends, w)
		}
		a.pathRewrite, a.hostRewrite = ra.PathRewrite, ra.HostRewrite
		if ra.RequestTimeout != nil {
			a.reqTimeout = ra.RequestTimeout.Std()
		}
		if ra.BackendTimeout != nil {
			a.beTimeout = ra.BackendTimeout.Std()
		}
		if r := ra.Retry; r != nil {
			p := &retryPolicy{codes: map[int]bool{}, attempts: int(r.Attempts)}
			for _, c := range r.Codes {
				p.codes[int(c)] = true
			}
			if r.Backoff != nil {
				p.backoff = time.Duration(r.Backoff.Milliseconds) * time.Millisecond
			}
			a.retry = p
		}
		for _, m := range ra.Mirrors {
			b, ok := backends[m.Backend]
			if !ok {
				return nil, fmt.Errorf("mirror backend %s is not in the table", m.Backend)
			}
			num, den := m.Numerator, m.Denominator
			if den == 0 {
				num, den = 1, 1
			}
			a.mirrors = append(a.mirrors, mirror{backend: b, numerator: num, denominator: den})
		}
		if a.totalWeight == 0 {
			a.direct = &routetable.DirectResponse{Status: http.StatusInternalServerError, Body: "no backend can serve this route"}
		}
	default:
		return nil, fmt.Errorf("route has no action")
	}
	return a, nil
}

// redirectLocation builds the Location of a redirect per the spec: the
// scheme, host and path default to the request's; the port to the
// listener's unless the scheme changed, and a scheme's well-known port is
// left out.
func redirectLocation(rd *routetable.RedirectAction, r *http.Request, host string, listenerPort uint32, matchedPrefix string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	port := listenerPort
	if rd.Scheme != "" && rd.Scheme != scheme {
		scheme = rd.Scheme
		port = 0
	}
	if rd.Hostname != "" {
		host = rd.Hostname
	}
	if rd.Port != 0 {
		port = rd.Port
	}
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		port = 0
	}
	path := rewritePath(r.URL.Path, rd.Path, matchedPrefix)
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(port)))
	}
	b.WriteString(path)
	if r.URL.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(r.URL.RawQuery)
	}
	return b.String()
}

// rewritePath applies a full or prefix replacement.
func rewritePath(path string, rw *routetable.PathRewrite, matchedPrefix string) string {
	if rw == nil {
		return path
	}
	switch x := rw.Rewrite.(type) {
	case *routetable.PathRewrite_Full:
		return x.Full
	case *routetable.PathRewrite_Prefix:
		rest := path
		if matchedPrefix != "/" {
			rest = strings.TrimPrefix(path, matchedPrefix)
		}
		repl := strings.TrimSuffix(x.Prefix, "/")
		switch {
		case rest == "" && repl == "":
			return "/"
		case rest == "":
			return repl
		case !strings.HasPrefix(rest, "/"):
			return repl + "/" + rest
		}
		return repl + rest
	}
	return path
}
