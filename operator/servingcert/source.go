// Package servingcert supplies the hub webhook's serving certificate and the
// CA bundle that member clusters' kube-apiservers must trust to call it:
// either from a CA the hub manages and rotates itself (Authority) or from
// files another issuer keeps up to date, such as a mounted cert-manager
// Secret (Files).
package servingcert

import (
	"crypto/tls"
)

// Source supplies the serving certificate and the CA bundle clients must trust.
type Source interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// CABundle is PEM, one or more CA certificates.
	CABundle() []byte
	// Changed receives (a non-blocking send, buffered 1) whenever CABundle or
	// the serving certificate changes.
	Changed() <-chan struct{}
}

var (
	_ Source = (*Authority)(nil)
	_ Source = (*Files)(nil)
)

// signal is a Changed channel: buffered so that a change made while nobody
// listens is not lost, and sent to without blocking so that several changes
// before the next receive collapse into one.
type signal chan struct{}

func newSignal() signal { return make(signal, 1) }

func (s signal) notify() {
	select {
	case s <- struct{}{}:
	default:
	}
}
