// Package proxy is the engine of gatehouse-proxy: it compiles route tables
// into lookup structures, serves them on their listeners, and swaps them
// atomically when a new version arrives.
package proxy

import (
	"crypto/tls"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// config is everything a request needs, compiled once per applied version
// and never modified afterwards: requests read it through one atomic load.
type config struct {
	ports    map[uint32]*portConfig
	backends map[string]*backend
	limits   *limits
	certs    map[string]*tls.Certificate
	// badKeys are key pairs that did not load, with why.
	badKeys map[string]error
	// failed are the listeners this version cannot serve, with why and
	// what to do; the others are served.
	failed map[listenerID]string
	// badRoutes are the routes left out because they did not compile,
	// with why; the other routes of their virtual hosts are served.
	badRoutes map[routeID]string
	// udp are the UDP listeners, by port (stream_udp.go).
	udp map[uint32]*streamListener
	// keyPairs are what certs and badKeys were loaded from, and http the
	// HTTP and HTTPS listeners: the next version takes from them what did
	// not change (reuse.go).
	keyPairs map[string]*routetable.KeyPair
	http     map[listenerID]*listenerConfig
	// kept counts the backends taken over from the version before, and
	// renewed names those compiled anew; keptAll and unmoved say what
	// follows from them (reuse.go).
	kept             int
	renewed          map[string]bool
	keptAll, unmoved bool
}

// listenerID names a listener of a route table: the table's push name (its
// Gateway's when it has none) and the listener's name in it.
type listenerID struct{ table, listener string }

// routeID names a route object of a route table by its key (see
// routetable.ObjectKey).
type routeID struct{ table, route string }

// portConfig holds the listeners that share one port, indexed by hostname.
type portConfig struct {
	port uint32
	kind portKind
	// https: connections begin with a TLS handshake (kind portTLS).
	https     bool
	hosts     hostIndex[*listenerConfig]
	listeners []listenerID
	// protocol is the first listener's, for conflicts.
	protocol routetable.Protocol
	// tcp is the listener of a portTCP port (stream.go).
	tcp *streamListener
	// sniff: a TLS listener shares the port, so each connection's
	// ClientHello is read first to tell where it goes (stream_tls.go).
	sniff bool
}

// portKind is what a port's connections begin with, which fixes how its
// socket is served: a port changes kind only by being bound again.
type portKind uint8

const (
	portHTTP portKind = iota
	// portTLS: HTTPS and TLS listeners, told apart by SNI.
	portTLS
	// portTCP: one TCP listener, whose bytes are relayed as they are.
	portTCP
)

// portKindOf is the kind of port a listener of protocol p needs; false
// for a protocol this proxy does not serve.
func portKindOf(p routetable.Protocol) (portKind, bool) {
	switch p {
	case routetable.Protocol_HTTP:
		return portHTTP, true
	case routetable.Protocol_HTTPS, routetable.Protocol_TLS:
		return portTLS, true
	case routetable.Protocol_TCP:
		return portTCP, true
	}
	return 0, false
}

type listenerConfig struct {
	name     string
	hostname string
	certs    []*tls.Certificate
	vhosts   hostIndex[*vhost]
	// notServed, when set, says why this listener is not served: it holds
	// its hostname on the port so that its requests and handshakes fail
	// instead of reaching a less specific listener.
	notServed string
	// stream is a TLS listener's routes (stream_tls.go); nil for HTTPS.
	stream *streamListener
	// client is how an HTTPS listener checks client certificates, nil
	// when it does not; tls is its handshakes' configuration, nil when it
	// is not served (handshake.go).
	client *clientAuth
	tls    *tls.Config
}

// hostIndex finds the most specific entry for a hostname: exact names, then
// wildcards by longest suffix, then the catch-all.
type hostIndex[T any] struct {
	exact    map[string]T
	wildcard map[string]T // by suffix without "*", e.g. ".example.com"
	// suffix lengths present in wildcard, longest first
	lengths  []int
	catchAll T
	hasAll   bool
}

func (h *hostIndex[T]) add(host string, v T) {
	switch {
	case host == "" || host == "*":
		if !h.hasAll {
			h.catchAll, h.hasAll = v, true
		}
	case strings.HasPrefix(host, "*."):
		if h.wildcard == nil {
			h.wildcard = map[string]T{}
		}
		suffix := host[1:]
		if _, ok := h.wildcard[suffix]; !ok {
			h.wildcard[suffix] = v
			h.lengths = append(h.lengths, len(suffix))
			sort.Sort(sort.Reverse(sort.IntSlice(h.lengths)))
			h.lengths = dedupe(h.lengths)
		}
	default:
		if h.exact == nil {
			h.exact = map[string]T{}
		}
		if _, ok := h.exact[host]; !ok {
			h.exact[host] = v
		}
	}
}

func dedupe(s []int) []int {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// entry is the entry added under host itself (the first, as add keeps),
// not the one a request for host would find.
func (h *hostIndex[T]) entry(host string) (T, bool) {
	switch {
	case host == "" || host == "*":
		return h.catchAll, h.hasAll
	case strings.HasPrefix(host, "*."):
		v, ok := h.wildcard[host[1:]]
		return v, ok
	}
	v, ok := h.exact[host]
	return v, ok
}

// lookup returns the most specific entry for host (lower case, no port).
func (h *hostIndex[T]) lookup(host string) (T, bool) {
	if v, ok := h.exact[host]; ok {
		return v, true
	}
	for _, n := range h.lengths {
		// A wildcard needs at least one label before its suffix.
		if len(host) > n {
			if v, ok := h.wildcard[host[len(host)-n:]]; ok {
				return v, true
			}
		}
	}
	return h.catchAll, h.hasAll
}

// compile turns route tables and key pairs into a config, or says why it
// cannot (the version is then NACKed and the previous one keeps serving).
// A listener that cannot be served (its port, its certificate) costs only
// that listener: it is listed in failed. A route that does not compile
// costs only that route: it is left out and listed in badRoutes, since
// failing the version would let one tenant's route freeze every tenant of
// the Gateway. A backend that does not compile still fails the version.
//
// prev is the config served now, nil for none: what the new version has
// of it unchanged is taken over rather than compiled again (reuse.go), so
// that a change costs what changed, not the size of the table.
func compile(prev *config, tables []*routetable.RouteTable, keyPairs map[string]*routetable.KeyPair) (*config, error) {
	n := 0
	for _, t := range tables {
		n += len(t.Backends)
	}
	c := &config{ports: map[uint32]*portConfig{}, backends: make(map[string]*backend, n), certs: map[string]*tls.Certificate{},
		badKeys: map[string]error{}, failed: map[listenerID]string{}, badRoutes: map[routeID]string{}, limits: compileLimits(tables),
		keyPairs: maps.Clone(keyPairs), http: map[listenerID]*listenerConfig{}, renewed: map[string]bool{}}
	c.loadKeyPairs(prev)
	all := c.backends
	views := make([]map[string]*backend, len(tables))
	for i, t := range tables {
		var err error
		if views[i], err = c.tableBackends(t, all, prev); err != nil {
			return nil, err
		}
	}
	c.noteBackends(prev, tables)
	regexes := map[string]*routetable.Regex{}
	for i, t := range tables {
		// A table's listeners reach backends by the names it gives them.
		c.backends = views[i]
		for _, l := range t.Listeners {
			c.addListener(t, l, prev, regexes)
		}
	}
	c.backends = all
	return c, nil
}

// tableName is the name listeners are reported under: the push name the
// hub gives a table, or its Gateway for a table read from a file.
func tableName(t *routetable.RouteTable) string {
	if t.Name != "" {
		return t.Name
	}
	return t.Gateway
}

// addListener compiles a listener onto its port. A listener that cannot
// be served is recorded in c.failed, a route that does not compile in
// c.badRoutes.
func (c *config) addListener(t *routetable.RouteTable, l *routetable.Listener, prev *config, regexes map[string]*routetable.Regex) {
	id := listenerID{table: tableName(t), listener: l.Name}
	if l.Port == 0 || l.Port > 65535 {
		c.failed[id] = fmt.Sprintf("port %d is out of range: use a port from 1 to 65535", l.Port)
		return
	}
	if l.Protocol == routetable.Protocol_UDP {
		c.addUDP(id, t, l)
		return
	}
	kind, ok := portKindOf(l.Protocol)
	if !ok {
		// Serving a listener as another protocol would answer its clients
		// with what they did not ask for: it is not served, and says so.
		c.failed[id] = fmt.Sprintf("protocol %s is not served by this proxy: use a proxy version that serves it", l.Protocol)
		return
	}
	https := kind == portTLS
	pc := c.ports[l.Port]
	if pc == nil {
		pc = &portConfig{port: l.Port, kind: kind, https: https, protocol: l.Protocol}
		c.ports[l.Port] = pc
	} else if pc.kind != kind {
		c.failed[id] = fmt.Sprintf("port %d is used for both %s and %s: give this listener another port", l.Port, pc.protocol, l.Protocol)
		return
	}
	switch l.Protocol {
	case routetable.Protocol_TCP:
		c.addTCP(pc, id, t, l)
		return
	case routetable.Protocol_TLS:
		c.addTLS(pc, id, t, l)
		return
	}
	lc := &listenerConfig{name: t.Gateway + "/" + l.Name, hostname: l.Hostname}
	// Sized at once: growing a map of thousands of hostnames costs more
	// than filling it.
	lc.vhosts.exact = make(map[string]*vhost, len(l.VirtualHosts))
	was := prev.httpListener(id)
	for _, vh := range l.VirtualHosts {
		v, bad := c.vhost(vh, was, regexes)
		for _, b := range bad {
			c.routeNotServed(routeID{table: id.table, route: b.route}, b.err.Error())
		}
		lc.vhosts.add(vh.Domain, v)
	}
	if https {
		lc.tls = c.terminating(lc, l)
	}
	c.http[id] = lc
	c.place(pc, id, lc)
}

// terminating is the handshakes' configuration of a listener that
// terminates TLS: its key pairs and its client validation; nil, with
// lc.notServed saying why, when it cannot be served.
func (c *config) terminating(lc *listenerConfig, l *routetable.Listener) *tls.Config {
	lc.certs, lc.notServed = c.certificates(l)
	if lc.notServed == "" {
		lc.client, lc.notServed = compileClientAuth(l.GetTls().GetClientValidation())
	}
	if lc.notServed != "" {
		return nil
	}
	return listenerTLS(lc)
}

// place puts a listener on its port, served or, with why, not.
func (c *config) place(pc *portConfig, id listenerID, lc *listenerConfig) {
	if lc.notServed != "" {
		c.failed[id] = lc.notServed
	} else {
		pc.listeners = append(pc.listeners, id)
	}
	pc.hosts.add(lc.hostname, lc)
}

// routeNotServed records why a route is left out; a route that fails in
// several places (matches, hostnames) is reported once with each reason.
func (c *config) routeNotServed(id routeID, why string) {
	switch prev, ok := c.badRoutes[id]; {
	case !ok:
		c.badRoutes[id] = why
	case !strings.Contains(prev, why):
		c.badRoutes[id] = prev + "; " + why
	}
}

// certificates are an HTTPS listener's loaded key pairs, or why it cannot
// be served.
func (c *config) certificates(l *routetable.Listener) ([]*tls.Certificate, string) {
	var certs []*tls.Certificate
	for _, name := range l.GetTls().GetCertificates() {
		if err, bad := c.badKeys[name]; bad {
			return nil, fmt.Sprintf("key pair %s does not load: %v: the certificate Secret must hold a PEM certificate chain and its matching private key", name, err)
		}
		cert, ok := c.certs[name]
		if !ok {
			return nil, fmt.Sprintf("key pair %s has not been received: the hub sends it once the certificate Secret exists and is valid", name)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, "an HTTPS listener needs a certificate: give it certificateRefs or an issuer"
	}
	return certs, ""
}
