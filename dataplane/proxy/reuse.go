package proxy

import (
	"bytes"
	"crypto/tls"
	"slices"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// A new version of a table is mostly the version before it: compiling it
// whole would make adding one route to a Gateway of thousands cost as much
// as compiling them all. compile takes over from the config served now
// what the new version has unchanged: key pairs of the same bytes, and
// backends, virtual hosts and routes compiled from the same messages.
//
// Messages are recognized by identity, not content: comparing content
// costs about as much as compiling it. The push client decodes each
// version reusing the messages of the one before whose encoding did not
// change (routetable.Decoder), so what did not change arrives as the same
// messages. Apply's callers therefore never modify a message once applied.
//
// What is taken over is what compiling the message again would give: a
// route only when the backends it reaches are the same, a virtual host
// only when all its routes are and all of them compiled. Only the lookup
// structures of what holds a change (a listener's hosts, a changed
// virtual host's path index) are built again.

// loadKeyPairs loads c.keyPairs into certs and badKeys, taking from prev
// those of the same bytes, so that listeners and backends that present
// them keep the same certificates.
func (c *config) loadKeyPairs(prev *config) {
	for name, kp := range c.keyPairs {
		if cert, err, ok := prev.loadedKeyPair(name, kp); ok {
			if err != nil {
				c.badKeys[name] = err
			} else {
				c.certs[name] = cert
			}
			continue
		}
		cert, err := tls.X509KeyPair(kp.CertificateChain, kp.PrivateKey)
		if err != nil {
			c.badKeys[name] = err
			continue
		}
		c.certs[name] = &cert
	}
}

// loadedKeyPair is what c made of the key pair name if it had the same
// bytes as kp.
func (c *config) loadedKeyPair(name string, kp *routetable.KeyPair) (*tls.Certificate, error, bool) {
	if c == nil {
		return nil, nil, false
	}
	was, ok := c.keyPairs[name]
	if !ok || !bytes.Equal(was.CertificateChain, kp.CertificateChain) || !bytes.Equal(was.PrivateKey, kp.PrivateKey) {
		return nil, nil, false
	}
	if err, bad := c.badKeys[name]; bad {
		return nil, err, true
	}
	return c.certs[name], nil, true
}

// sameBackend is prev's backend under key if compiling b now would give
// it again, nil otherwise.
func (c *config) sameBackend(prev *config, key string, b *routetable.Backend) *backend {
	if prev == nil {
		return nil
	}
	was, ok := prev.backends[key]
	if !ok || was.spec != b || was.limits != c.limits.backend {
		return nil
	}
	var cert *tls.Certificate
	if name := b.GetTls().GetClientCertificate(); name != "" {
		if cert = c.certs[name]; cert == nil {
			return nil
		}
	}
	if cert != was.clientCert {
		return nil
	}
	return was
}

// httpListener is the HTTP or HTTPS listener id of c, nil for none.
func (c *config) httpListener(id listenerID) *listenerConfig {
	if c == nil {
		return nil
	}
	return c.http[id]
}

// vhost compiles a virtual host of a listener, or takes was's virtual host
// of its domain when it was compiled from the same message and compiling
// it again would give it again.
func (c *config) vhost(vh *routetable.VirtualHost, was *listenerConfig, regexes map[string]*routetable.Regex) (*vhost, []routeError) {
	var old *vhost
	if was != nil {
		old, _ = was.vhosts.entry(vh.Domain)
	}
	if old != nil && old.spec == vh && !old.partial && !slices.ContainsFunc(old.routes, c.moved) {
		return old, nil
	}
	return compileVhost(vh, c.backends, regexes, old, func(r *route) bool { return !c.moved(r) })
}

// moved: a route of the version before would not reach the same backends
// if compiled now. When the version before had every backend this one has
// unchanged (c.unmoved), only the names renewed need looking at.
func (c *config) moved(r *route) bool {
	ra := r.spec.GetRoute()
	for i, wb := range ra.GetBackends() {
		if wb.Backend != "" && c.movedBackend(wb.Backend, r.action.backends[i].backend) {
			return true
		}
	}
	for i, m := range ra.GetMirrors() {
		if c.movedBackend(m.Backend, r.action.mirrors[i].backend) {
			return true
		}
	}
	return false
}

func (c *config) movedBackend(name string, was *backend) bool {
	if c.unmoved {
		return c.renewed[name]
	}
	return c.backends[name] != was
}

// noteBackends records, once a version's backends are compiled, whether
// every backend of prev is still served unchanged (then no breaker or
// pool is left without its backend), and whether in addition a route
// reaches other backends only through the names renewed: so when one
// table is served, since its names reach the backends kept under them.
func (c *config) noteBackends(prev *config, tables []*routetable.RouteTable) {
	c.keptAll = prev != nil && c.kept == len(prev.backends)
	c.unmoved = c.keptAll && len(tables) == 1
}

// earlier finds the routes of a virtual host's version before (old, nil
// for none) by the messages they were compiled from. Routes keep their
// order from one version to the next, with a few added, changed or
// removed: each is looked for just after the last one found, and only
// after two misses in a row, which a block of routes removed causes, by
// an index of all of them.
type earlier struct {
	old    *vhost
	next   int
	misses int
	byMsg  map[*routetable.Route]int
}

// window is how many routes after the last one found are looked at.
const window = 4

func (e *earlier) find(rt *routetable.Route) *route {
	if e.old == nil {
		return nil
	}
	routes := e.old.routes
	for k := e.next; k < min(e.next+window, len(routes)); k++ {
		if routes[k].spec == rt {
			return e.found(k)
		}
	}
	if e.misses++; e.misses < 2 {
		return nil
	}
	if e.byMsg == nil {
		e.byMsg = make(map[*routetable.Route]int, len(routes))
		for k, r := range routes {
			e.byMsg[r.spec] = k
		}
	}
	if k, ok := e.byMsg[rt]; ok {
		return e.found(k)
	}
	return nil
}

func (e *earlier) found(k int) *route {
	e.next, e.misses = k+1, 0
	return e.old.routes[k]
}
