// Package proxy is the engine of gatehouse-proxy: it compiles route tables
// into lookup structures, serves them on their listeners, and swaps them
// atomically when a new version arrives.
package proxy

import (
	"crypto/tls"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// config is everything a request needs, compiled once per applied version
// and never modified afterwards: requests read it through one atomic load.
type config struct {
	ports    map[uint32]*portConfig
	backends map[string]*backend
	certs    map[string]*tls.Certificate
}

// portConfig holds the listeners that share one port, indexed by hostname.
type portConfig struct {
	port  uint32
	https bool
	hosts hostIndex[*listenerConfig]
}

type listenerConfig struct {
	name     string
	hostname string
	certs    []*tls.Certificate
	vhosts   hostIndex[*vhost]
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
func compile(tables []*routetable.RouteTable, keyPairs map[string]*routetable.KeyPair) (*config, error) {
	c := &config{ports: map[uint32]*portConfig{}, backends: map[string]*backend{}, certs: map[string]*tls.Certificate{}}
	for name, kp := range keyPairs {
		cert, err := tls.X509KeyPair(kp.CertificateChain, kp.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("key pair %s: %w", name, err)
		}
		c.certs[name] = &cert
	}
	regexes := map[string]*regexp.Regexp{}
	for _, t := range tables {
		for _, b := range t.Backends {
			if _, ok := c.backends[b.Name]; ok {
				continue
			}
			nb, err := newBackend(b)
			if err != nil {
				return nil, fmt.Errorf("table %s: backend %s: %w", t.Gateway, b.Name, err)
			}
			c.backends[b.Name] = nb
		}
		for _, l := range t.Listeners {
			if err := c.addListener(t, l, regexes); err != nil {
				return nil, fmt.Errorf("table %s: listener %s: %w", t.Gateway, l.Name, err)
			}
		}
	}
	return c, nil
}

func (c *config) addListener(t *routetable.RouteTable, l *routetable.Listener, regexes map[string]*regexp.Regexp) error {
	if l.Port == 0 || l.Port > 65535 {
		return fmt.Errorf("port %d is out of range", l.Port)
	}
	https := l.Protocol == routetable.Protocol_HTTPS
	pc := c.ports[l.Port]
	if pc == nil {
		pc = &portConfig{port: l.Port, https: https}
		c.ports[l.Port] = pc
	} else if pc.https != https {
		return fmt.Errorf("port %d is used for both HTTP and HTTPS", l.Port)
	}
	lc := &listenerConfig{name: t.Gateway + "/" + l.Name, hostname: l.Hostname}
	if https {
		for _, name := range l.GetTls().GetCertificates() {
			cert, ok := c.certs[name]
			if !ok {
				return fmt.Errorf("key pair %s has not been received", name)
			}
			lc.certs = append(lc.certs, cert)
		}
		if len(lc.certs) == 0 {
			return fmt.Errorf("an HTTPS listener needs a certificate")
		}
	}
	for _, vh := range l.VirtualHosts {
		v, err := compileVhost(vh, c.backends, regexes)
		if err != nil {
			return fmt.Errorf("virtual host %s: %w", vh.Domain, err)
		}
		lc.vhosts.add(vh.Domain, v)
	}
	pc.hosts.add(l.Hostname, lc)
	return nil
}
