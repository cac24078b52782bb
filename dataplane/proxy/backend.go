package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// backend is a set of endpoints reached with one protocol and TLS setting.
type backend struct {
	name      string
	spec      *routetable.Backend // as the table describes it
	protocol  routetable.AppProtocol
	endpoints []*endpoint
	tls       *tls.Config // nil for plaintext
	// transportKey identifies the connection pool this backend uses, so that
	// pools survive table swaps that do not change how backends are reached.
	transportKey string
	transport    http.RoundTripper
	// upgrades (WebSocket and the like) need http.Transport's hijackable bodies.
	upgrade http.RoundTripper
	// limits are the backend's circuit breaker settings; compile sets
	// them (defaultBackendLimits unless the table says otherwise), and
	// Apply gives the backend its breaker.
	limits  backendLimits
	breaker *breaker
	// clientCert is the certificate its handshakes present, nil for none.
	clientCert *tls.Certificate
}

type endpoint struct {
	addr     string // host:port
	inflight atomic.Int32
}

// tableBackends compiles a table's backends into all and returns them by
// the names the table gives them. The tables of one cluster describe a
// backend alike, except for the client certificate their Gateways present
// (spec.tls.backend): a backend that a table describes otherwise than one
// compiled before under its name is compiled again, under a key qualified
// by the table, so that each Gateway's requests present its own
// certificate and no other's.
//
// A backend of prev compiled from the same message, with the same limits
// and client certificate, is taken as it is.
func (c *config) tableBackends(t *routetable.RouteTable, all map[string]*backend, prev *config) (map[string]*backend, error) {
	view := make(map[string]*backend, len(t.Backends))
	for _, b := range t.Backends {
		key := b.Name
		if prev, ok := all[key]; ok && !proto.Equal(prev.spec, b) {
			key = tableName(t) + "|" + b.Name
		}
		nb, ok := all[key]
		if !ok {
			if nb = c.sameBackend(prev, key, b); nb != nil {
				c.kept++
			} else {
				var err error
				if nb, err = newBackend(b, c.keyPair); err != nil {
					return nil, fmt.Errorf("table %s: backend %s: %w", t.Gateway, b.Name, err)
				}
				nb.limits = c.limits.backend
				c.renewed[b.Name] = true
			}
			all[key] = nb
		}
		view[b.Name] = nb
	}
	return view, nil
}

// keyPair is a key pair the proxy received, loaded, or why it cannot be
// used.
func (c *config) keyPair(name string) (*tls.Certificate, error) {
	if err, bad := c.badKeys[name]; bad {
		return nil, fmt.Errorf("key pair %s does not load: %v", name, err)
	}
	cert, ok := c.certs[name]
	if !ok {
		return nil, fmt.Errorf("key pair %s has not been received", name)
	}
	return cert, nil
}

func newBackend(b *routetable.Backend, keyPair func(string) (*tls.Certificate, error)) (*backend, error) {
	nb := &backend{name: b.Name, protocol: b.Protocol, limits: defaultBackendLimits, spec: b}
	for _, e := range b.Endpoints {
		if net.ParseIP(e.Address) == nil {
			return nil, fmt.Errorf("endpoint address %q is not an IP address", e.Address)
		}
		if e.Port == 0 || e.Port > 65535 {
			return nil, fmt.Errorf("endpoint port %d is out of range", e.Port)
		}
		nb.endpoints = append(nb.endpoints, &endpoint{addr: net.JoinHostPort(e.Address, strconv.Itoa(int(e.Port)))})
	}
	nb.transportKey = b.Protocol.String()
	if t := b.Tls; t != nil {
		cfg, err := backendTLSConfig(t)
		if err != nil {
			return nil, err
		}
		nb.tls = cfg
		nb.transportKey += "|" + t.Sni + "|" + t.CaPem + "|" + fmt.Sprint(t.UseSystemRoots, t.SubjectAltNames)
		if name := t.ClientCertificate; name != "" {
			cert, err := keyPair(name)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			presentClientCertificate(cfg, cert)
			nb.clientCert = cert
			// A renewed certificate under the same name must reach new
			// connections: its pool is another one.
			sum := sha256.Sum256(cert.Certificate[0])
			nb.transportKey += "|client " + name + " " + hex.EncodeToString(sum[:])
		}
	}
	return nb, nil
}

// presentClientCertificate makes the handshakes of cfg present cert
// whenever the backend asks for a client certificate, whatever issuers the
// backend says it accepts: a backend that does not trust it then says so
// in its alert, instead of seeing no certificate at all.
func presentClientCertificate(cfg *tls.Config, cert *tls.Certificate) {
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
}

// backendTLSConfig verifies the backend's certificate against the policy's
// CAs (or the system's) for the SNI, or for one of the subject alt names.
func backendTLSConfig(t *routetable.BackendTLS) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.Sni, MinVersion: tls.VersionTLS12}
	var roots *x509.CertPool
	switch {
	case t.UseSystemRoots:
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("system roots: %w", err)
		}
		roots = sys
	case t.CaPem != "":
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM([]byte(t.CaPem)) {
			return nil, errors.New("backend TLS: no certificate in the CA bundle")
		}
	default:
		// No trust anchor: the policy is invalid and every handshake fails.
		roots = x509.NewCertPool()
	}
	names := t.SubjectAltNames
	cfg.InsecureSkipVerify = true // verified below, against SANs when given
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("backend presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		if len(names) == 0 {
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: t.Sni})
			return err
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
			return err
		}
		for _, n := range names {
			if leaf.VerifyHostname(n) == nil || slices.ContainsFunc(leaf.URIs, func(u *url.URL) bool { return u.String() == n }) {
				return nil
			}
		}
		return fmt.Errorf("backend certificate matches none of %v", names)
	}
	return cfg, nil
}

// pick chooses an endpoint: the less loaded of two drawn at random (power of
// two choices over outstanding requests), skipping the one just tried.
func (b *backend) pick(avoid *endpoint) *endpoint {
	n := len(b.endpoints)
	switch n {
	case 0:
		return nil
	case 1:
		return b.endpoints[0]
	}
	i, j := rand.IntN(n), rand.IntN(n-1)
	if j >= i {
		j++
	}
	a, c := b.endpoints[i], b.endpoints[j]
	if a == avoid {
		return c
	}
	if c == avoid {
		return a
	}
	if c.inflight.Load() < a.inflight.Load() {
		return c
	}
	return a
}

// transports keeps one connection pool per way of reaching backends, across
// table versions.
type transports struct {
	mu sync.Mutex
	m  map[string]http.RoundTripper
}

// get returns the transport for requests to b, and the one for upgrades.
func (ts *transports) get(b *backend) (http.RoundTripper, http.RoundTripper) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.m == nil {
		ts.m = map[string]http.RoundTripper{}
	}
	std, ok := ts.m[b.transportKey]
	if !ok {
		std = newTransport(b)
		ts.m[b.transportKey] = std
	}
	if b.protocol != routetable.AppProtocol_HTTP1 || b.tls != nil {
		return std, std
	}
	lean, ok := ts.m["lean|"+b.transportKey]
	if !ok {
		lean = newH1Transport()
		ts.m["lean|"+b.transportKey] = lean
	}
	return lean, std
}

func newTransport(b *backend) *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		TLSClientConfig:       b.tls,
	}
	var p http.Protocols
	switch b.protocol {
	case routetable.AppProtocol_H2C:
		p.SetUnencryptedHTTP2(true)
	case routetable.AppProtocol_H2:
		p.SetHTTP2(true)
	default:
		p.SetHTTP1(true)
	}
	t.Protocols = &p
	return t
}

// backendLimits are a backend's circuit breaker. Each request in flight to
// the backend holds one backend connection (an HTTP/1.1 exchange, or an
// HTTP/2 stream) until its response is read.
type backendLimits struct {
	// maxConnections bounds the requests in flight to the backend.
	maxConnections int
	// maxPending bounds the requests waiting for one of those; a request
	// beyond both is answered 503 at once.
	maxPending int
}

// defaultBackendLimits are Envoy's cluster defaults (1024 connections,
// 1024 pending requests).
var defaultBackendLimits = backendLimits{maxConnections: 1024, maxPending: 1024}

// errOverflow answers a request its backend has no room for.
var errOverflow = errors.New("backend overflow: its connections and its queue are full")

// breaker enforces a backend's limits. Its slots are the connections in
// use; pending counts the requests waiting for one, in arrival order.
type breaker struct {
	name     string
	limits   backendLimits
	slots    chan struct{}
	pending  atomic.Int64
	overflow prometheus.Counter
	log      *slog.Logger
	lastLog  atomic.Int64 // unix nanoseconds of the last overflow logged
}

// overflowLogEvery bounds the overflow log to one line per backend per
// period, whatever the rate of refused requests.
const overflowLogEvery = 10 * time.Second

// acquire takes a connection slot, waiting in the queue when there is
// room in it, or fails with errOverflow at once.
func (b *breaker) acquire(ctx context.Context) error {
	select {
	case b.slots <- struct{}{}:
		return nil
	default:
	}
	if b.pending.Add(1) > int64(b.limits.maxPending) {
		b.pending.Add(-1)
		b.overflowed()
		return errOverflow
	}
	defer b.pending.Add(-1)
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *breaker) release() { <-b.slots }

func (b *breaker) overflowed() {
	b.overflow.Inc()
	now, last := time.Now().UnixNano(), b.lastLog.Load()
	if now-last < int64(overflowLogEvery) || !b.lastLog.CompareAndSwap(last, now) {
		return
	}
	b.log.Warn("backend overflow: requests answered 503 because all its connections are in use and its queue is full; "+
		"scale the backend (more endpoints, faster answers) or raise its GatewayClass's backend limits if it can take more",
		"backend", b.name, "maxConnections", b.limits.maxConnections, "maxPending", b.limits.maxPending)
}

// breakers keeps one breaker per backend name across table versions, so
// that the requests of the previous version still count; a backend whose
// limits change gets a new breaker, and one no longer in the table is
// dropped.
type breakers struct {
	mu sync.Mutex
	m  map[string]*breaker
}

// assign gives each backend of a new config its breaker, and with prune
// drops those of backends it does not have. A backend taken over from the
// config served has its breaker already, and requests read it: it is not
// written again.
func (bs *breakers) assign(backends map[string]*backend, prune bool, m *metrics, log *slog.Logger) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.m == nil {
		bs.m = make(map[string]*breaker, len(backends))
	}
	for name, b := range backends {
		if b.breaker != nil {
			continue
		}
		br, ok := bs.m[name]
		if !ok || br.limits != b.limits {
			br = &breaker{name: name, limits: b.limits, slots: make(chan struct{}, max(b.limits.maxConnections, 1)),
				overflow: m.backendOverflow.WithLabelValues(name), log: log}
			bs.m[name] = br
		}
		b.breaker = br
	}
	if !prune {
		return
	}
	for name := range bs.m {
		if _, ok := backends[name]; !ok {
			delete(bs.m, name)
			m.backendOverflow.DeleteLabelValues(name)
		}
	}
}
