package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// serverTLS is the TLS configuration of an HTTPS port, which net/http and
// the fast path both start their handshakes with. It holds no certificate
// of its own: each handshake takes the configuration of the listener its
// SNI selects, in the config applied when the handshake starts, so that a
// table swap applies new certificates and client CAs to new handshakes.
//
// Session tickets are sealed with this configuration's keys whichever
// listener issued them; crypto/tls resumes a session only when the
// listener's configuration would accept the client certificate it
// carries now (none where one is required, one that does not chain to
// its current ClientCAs), so a ticket never carries a client past a
// validation it would fail.
func (p *Proxy) serverTLS(port uint32) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			l, err := p.handshakeListener(port, hello)
			if err != nil {
				return nil, err
			}
			return l.tls, nil
		},
	}
}

// handshakeListener is the listener that owns the SNI on this port.
func (p *Proxy) handshakeListener(port uint32, hello *tls.ClientHelloInfo) (*listenerConfig, error) {
	cfg := p.cfg.Load()
	if cfg == nil || cfg.ports[port] == nil {
		return nil, errors.New("no listener on this port")
	}
	name := strings.ToLower(hello.ServerName)
	l, ok := cfg.ports[port].hosts.lookup(name)
	if !ok || l.tls == nil {
		return nil, fmt.Errorf("no listener served for %q", name)
	}
	return l, nil
}

// listenerTLS is the configuration of the handshakes of one served HTTPS
// listener: its key pairs and, when its Gateway validates client
// certificates on its port, which clients it lets in.
func listenerTLS(l *listenerConfig) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return chooseCertificate(l.certs, hello), nil
		},
	}
	if a := l.client; a != nil {
		c.ClientCAs = a.pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
		if a.fallback {
			// AllowInsecureFallback: the certificate is asked for, and a
			// client without one, or with one that does not verify, is
			// served all the same.
			c.ClientAuth = tls.RequestClientCert
		}
	}
	return c
}

// clientAuth is how an HTTPS listener checks the certificates clients
// present: its Gateway's spec.tls.frontend for the listener's port.
type clientAuth struct {
	pool *x509.CertPool
	// anchors are the CAs of pool, by their DER bytes, to check at each
	// request that the connection's client verified against one of them.
	anchors  map[string]bool
	fallback bool
}

// compileClientAuth reads a listener's client validation; nil for none.
// A validation without a CA would refuse every client, or with fallback
// let every client in unverified: the listener is not served, and says
// why.
func compileClientAuth(v *routetable.ClientValidation) (*clientAuth, string) {
	if v == nil {
		return nil, ""
	}
	certs, err := routetable.ParseCertificates([]byte(v.CaPem))
	switch {
	case errors.Is(err, routetable.ErrNoCertificate):
		return nil, "its client-certificate validation has no CA certificate: the listener would refuse every client; give the Gateway's spec.tls.frontend a CA bundle that resolves"
	case err != nil:
		return nil, fmt.Sprintf("a CA certificate of its client-certificate validation does not parse: %v: the CA bundle must hold PEM certificates only", err)
	}
	a := &clientAuth{pool: x509.NewCertPool(), anchors: map[string]bool{}, fallback: v.InsecureFallback}
	for _, c := range certs {
		a.pool.AddCert(c)
		a.anchors[string(c.Raw)] = true
	}
	return a, ""
}

// admits reports whether a request on a connection with this TLS state
// may be served. Verification happened at the handshake, against the CAs
// of the config applied then; a connection kept open across a swap that
// removed its CA, or that added validation to its listener, must not keep
// serving the client.
func (a *clientAuth) admits(state *tls.ConnectionState) bool {
	if a == nil || a.fallback {
		return true
	}
	if state == nil {
		return false
	}
	for _, chain := range state.VerifiedChains {
		if len(chain) > 0 && a.anchors[string(chain[len(chain)-1].Raw)] {
			return true
		}
	}
	return false
}
