package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// TLS listeners share their ports with each other and with HTTPS
// listeners, told apart by the ClientHello's SNI. On a port that has one,
// the proxy reads each connection's ClientHello before anything else,
// keeping the bytes: the listener that owns the name then passes them on
// as they are (passthrough), serves the handshake itself and relays the
// plaintext (terminate), or, for an HTTPS listener, hands the connection
// with those bytes to the HTTP path, which handshakes as on any HTTPS
// port.

// maxHelloBytes bounds what is read to find a ClientHello: crypto/tls
// takes a handshake message of up to 64 KiB; the records around it add
// a little.
const maxHelloBytes = 64<<10 + 4<<10

var (
	errHelloRead    = errors.New("ClientHello read")
	errHelloTooLong = errors.New("no ClientHello within the first bytes")
)

// refusedHandshake: no ClientHello could be read, or the handshake the
// proxy serves failed.
const refusedHandshake = "handshake"

// addTLS compiles a TLS listener onto its port.
func (c *config) addTLS(pc *portConfig, id listenerID, t *routetable.RouteTable, l *routetable.Listener) {
	lc := &listenerConfig{name: t.Gateway + "/" + l.Name, hostname: l.Hostname}
	lc.stream = c.compileStreamListener(id, t, l)
	pc.sniff = true
	switch {
	case lc.stream.passthrough:
	case len(l.GetTls().GetCertificates()) == 0:
		lc.notServed = "a TLS listener that terminates needs a certificate: give it certificateRefs, or make it Passthrough"
	default:
		if cfg := c.terminating(lc, l); cfg != nil {
			// The plaintext goes to the backend as it is: no application
			// protocol is offered that the backend might not speak.
			cfg.NextProtos = nil
			lc.stream.terminate = cfg
		}
	}
	c.place(pc, id, lc)
}

// chooseCertificate is the first key pair valid for the handshake, or the
// first.
func chooseCertificate(certs []*tls.Certificate, hello *tls.ClientHelloInfo) *tls.Certificate {
	for _, c := range certs {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	return certs[0]
}

// serveTLS routes a connection on a port with TLS listeners by its SNI.
// A connection without a ClientHello, without SNI, or whose SNI no
// listener or route takes is closed: a TLS port answers nothing else.
func (p *Proxy) serveTLS(f *front, c net.Conn) {
	start := time.Now()
	sni, hello, err := readClientHello(c, p.cfg.Load().limits.server.readHeaderTimeout)
	if err != nil {
		c.Close()
		p.metrics.stream.refused("", "", refusedHandshake)
		return
	}
	pc := p.cfg.Load().ports[f.port]
	if pc == nil {
		c.Close()
		return
	}
	l, ok := pc.hosts.lookup(sni)
	switch {
	case ok && l.stream == nil:
		// An HTTPS listener's, or no SNI where the catch-all is one.
		f.serveHTTP(&replayConn{Conn: c, pending: hello})
		return
	case !ok || sni == "" || l.notServed != "":
		c.Close()
		name := ""
		if ok {
			name = l.name
		}
		p.metrics.stream.refused(name, "", refusedNoRoute)
		return
	}
	sl := l.stream
	if sl.passthrough {
		p.relayStream(f, c, hello, sl, sni)
		return
	}
	tc := tls.Server(&replayConn{Conn: c, pending: hello}, sl.terminate)
	if d := p.cfg.Load().limits.server.readHeaderTimeout; d > 0 {
		c.SetDeadline(start.Add(d))
	}
	if err := tc.Handshake(); err != nil {
		c.Close()
		p.metrics.stream.refused(sl.name, "", refusedHandshake)
		return
	}
	c.SetDeadline(time.Time{})
	p.relayStream(f, tc, nil, sl, sni)
}

// readClientHello reads a connection's ClientHello within timeout (zero:
// none), and returns its server name in lower case with every byte read.
// crypto/tls parses it: a handshake that stops as soon as it has the
// ClientHello, on a connection that records what it reads and sends
// nothing.
func readClientHello(c net.Conn, timeout time.Duration) (string, []byte, error) {
	if timeout > 0 {
		c.SetReadDeadline(time.Now().Add(timeout))
		defer c.SetReadDeadline(time.Time{})
	}
	rec := &helloRecorder{Conn: c}
	var sni string
	read := false
	err := tls.Server(rec, &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		sni, read = hello.ServerName, true
		return nil, errHelloRead
	}}).Handshake()
	if !read {
		return "", nil, err
	}
	return strings.ToLower(sni), rec.read, nil
}

// helloRecorder is a connection whose reads are kept, up to
// maxHelloBytes, and whose writes (the alert of the stopped handshake)
// go nowhere.
type helloRecorder struct {
	net.Conn
	read []byte
}

func (h *helloRecorder) Read(b []byte) (int, error) {
	room := maxHelloBytes - len(h.read)
	if room <= 0 {
		return 0, errHelloTooLong
	}
	n, err := h.Conn.Read(b[:min(len(b), room)])
	h.read = append(h.read, b[:n]...)
	return n, err
}

func (h *helloRecorder) Write(b []byte) (int, error) { return len(b), nil }
