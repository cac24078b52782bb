// Package adversarial holds the proxy to the rules a hostile client or a
// hostile backend tries to break. Every case runs the real gatehouse-proxy
// binary on loopback ports, serving a route table from a file, with clients
// and backends that speak raw bytes over real sockets. How to run it and how
// to add a case: docs/adversarial.md.
package adversarial

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// proxyBinary is the gatehouse-proxy built once for the whole package.
var proxyBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-adversarial-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "adversarial: creating a directory for the proxy binary:", err)
		os.Exit(1)
	}
	bins, err := env.BuildCommands(dir, "gatehouse-proxy")
	if err != nil {
		fmt.Fprintln(os.Stderr, "adversarial: the suite runs the real binary; fix the build first:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	proxyBinary = bins["gatehouse-proxy"]
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// adversarialCase is one hostile behaviour and the rule the proxy is held
// to. make adversarial prints one line per case: its result, class/name and
// rule.
type adversarialCase struct {
	name string
	// rule is the RFC section or peer behaviour (Envoy, nginx) the case
	// holds the proxy to, in a few words.
	rule string
	run  func(t *testing.T)
}

// runCases runs a class's cases as subtests and, under -v, prints the line
// make adversarial reports.
func runCases(t *testing.T, class string, cases []adversarialCase) {
	t.Helper()
	for _, c := range cases {
		var skipped bool
		ok := t.Run(c.name, func(t *testing.T) {
			defer func() { skipped = t.Skipped() }()
			c.run(t)
		})
		if testing.Verbose() {
			status := "PASS"
			switch {
			case skipped:
				status = "SKIP"
			case !ok:
				status = "FAIL"
			}
			fmt.Printf("%s  %-40s %s\n", status, class+"/"+c.name, c.rule)
		}
	}
}

// freePort is a loopback port nothing listens on right now.
func freePort(t testing.TB) uint32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

// proxyProcess is a running gatehouse-proxy.
type proxyProcess struct {
	cmd   *exec.Cmd
	admin string
	log   *os.File
	done  chan struct{}
}

// proxyOptions are what a test may change about how the proxy runs.
type proxyOptions struct {
	// keyPairs are written as --key-pairs, one directory per name.
	keyPairs map[string]keyPair
	// args are extra flags.
	args []string
}

// startProxy runs gatehouse-proxy serving tables, waits until it reports
// ready and every listener port accepts connections, and stops it when
// the test ends.
func startProxy(t testing.TB, opts proxyOptions, tables ...*routetable.RouteTable) *proxyProcess {
	t.Helper()
	dir := t.TempDir()
	args := []string{"--bind-address", "127.0.0.1", "--drain-delay", "0s", "--drain-timeout", "1s", "--log-level", "debug"}
	for i, tbl := range tables {
		data, err := protojson.Marshal(tbl)
		if err != nil {
			t.Fatalf("encoding route table: %v", err)
		}
		f := filepath.Join(dir, "table-"+strconv.Itoa(i)+".json")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--table", f)
	}
	if len(opts.keyPairs) > 0 {
		kd := filepath.Join(dir, "keys")
		for name, kp := range opts.keyPairs {
			d := filepath.Join(kd, filepath.FromSlash(name))
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "tls.crt"), kp.certPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "tls.key"), kp.keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		args = append(args, "--key-pairs", kd)
	}
	p := &proxyProcess{admin: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(freePort(t)))), done: make(chan struct{})}
	args = append(args, "--admin-address", p.admin)
	args = append(args, opts.args...)
	logf, err := os.Create(filepath.Join(dir, "proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.log = logf
	p.cmd = exec.Command(proxyBinary, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting gatehouse-proxy: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			t.Logf("gatehouse-proxy log:\n%s", data)
		}
		logf.Close()
	})
	p.waitReady(t, tables)
	return p
}

func (p *proxyProcess) waitReady(t testing.TB, tables []*routetable.RouteTable) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.done:
			data, _ := os.ReadFile(p.log.Name())
			t.Fatalf("gatehouse-proxy exited before it was ready:\n%s", data)
		default:
		}
		resp, err := client.Get("http://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatehouse-proxy not ready after 20s (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tbl := range tables {
		for _, l := range tbl.Listeners {
			addr := listenerAddr(l.Port)
			for {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("listener %s (%s) does not accept connections: %v", l.Name, addr, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// stop ends the proxy by its PID: SIGTERM, then SIGKILL after 5s.
func (p *proxyProcess) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// alive reports whether the proxy process still runs.
func (p *proxyProcess) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// logText is what the proxy logged so far.
func (p *proxyProcess) logText() string {
	data, _ := os.ReadFile(p.log.Name())
	return string(data)
}

func listenerAddr(port uint32) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
}

// --- route tables ---

// table is a Gateway's route table with the given listeners and backends.
func table(listeners []*routetable.Listener, backends ...*routetable.Backend) *routetable.RouteTable {
	return &routetable.RouteTable{Gateway: "adversarial/gw", Listeners: listeners, Backends: backends}
}

// httpListener is a plaintext listener.
func httpListener(name string, port uint32, hostname string, vhosts ...*routetable.VirtualHost) *routetable.Listener {
	return &routetable.Listener{Name: name, Port: port, Protocol: routetable.Protocol_HTTP, Hostname: hostname, VirtualHosts: vhosts}
}

// httpsListener is a TLS listener served with the named key pairs.
func httpsListener(name string, port uint32, hostname string, certs []string, vhosts ...*routetable.VirtualHost) *routetable.Listener {
	l := httpListener(name, port, hostname, vhosts...)
	l.Protocol = routetable.Protocol_HTTPS
	l.Tls = &routetable.ListenerTLS{Certificates: certs}
	return l
}

func vhost(domain string, routes ...*routetable.Route) *routetable.VirtualHost {
	return &routetable.VirtualHost{Domain: domain, Routes: routes}
}

// prefixRoute forwards a path prefix to one backend.
func prefixRoute(name, prefix, backend string) *routetable.Route {
	return &routetable.Route{
		Source: &routetable.RouteSource{Kind: "HTTPRoute", Namespace: "adversarial", Name: name},
		Match:  &routetable.RouteMatch{Path: &routetable.RouteMatch_Prefix{Prefix: prefix}},
		Action: &routetable.Route_Route{Route: &routetable.RouteAction{
			Backends: []*routetable.WeightedBackend{{Backend: backend, Weight: 1}},
		}},
	}
}

// backendAt is a backend with one endpoint at addr ("host:port").
func backendAt(t testing.TB, name, addr string) *routetable.Backend {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	// HTTP1, as the hub writes it for a Service without appProtocol: the
	// lean pooled transport every plain backend goes through.
	return &routetable.Backend{Name: name, Protocol: routetable.AppProtocol_HTTP1, Endpoints: []*routetable.Endpoint{{Address: host, Port: uint32(n)}}}
}

// --- key pairs ---

type keyPair struct{ certPEM, keyPEM []byte }

// selfSigned is a key pair for the given DNS names.
func selfSigned(t testing.TB, names ...string) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
}

// --- backends ---

// rawBackend is a TCP server whose every connection a test scripts.
type rawBackend struct {
	ln   net.Listener
	addr string
	mu   sync.Mutex
	// conns counts accepted connections.
	conns int
}

// startRawBackend accepts connections on loopback and hands each to
// handle on its own goroutine; the listener and open connections close
// when the test ends.
func startRawBackend(t testing.TB, handle func(c net.Conn)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln, addr: ln.Addr().String()}
	var open sync.Map
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns++
			b.mu.Unlock()
			open.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer open.Delete(c)
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return b
}

func (b *rawBackend) connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns
}

// seenRequest is a request as it reached a backend: the raw head bytes
// and the body read by its framing.
type seenRequest struct {
	head string
	req  *http.Request
	body []byte
}

// httpBackend reads requests off each connection, sends each on the
// returned channel (dropped when nobody reads), and lets answer write the
// response; answer returns false to end the connection.
func httpBackend(t testing.TB, answer func(c net.Conn, br *bufio.Reader, sr seenRequest) bool) (*rawBackend, <-chan seenRequest) {
	seen := make(chan seenRequest, 64)
	b := startRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			sr, err := readRequest(br)
			if err != nil {
				return
			}
			select {
			case seen <- sr:
			default:
			}
			if !answer(c, br, sr) {
				return
			}
		}
	})
	return b, seen
}

// echoBackend answers every request with 200 and, as the body, the raw
// request head it received; it keeps connections open.
func echoBackend(t testing.TB) (*rawBackend, <-chan seenRequest) {
	return httpBackend(t, func(c net.Conn, _ *bufio.Reader, sr seenRequest) bool {
		echo(c, sr)
		return true
	})
}

func echo(c net.Conn, sr seenRequest) {
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(sr.head), sr.head)
}

// readRequest reads one request off a backend connection: the head up to
// the empty line as sent, then the body by its framing.
func readRequest(br *bufio.Reader) (seenRequest, error) {
	var head bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		head.Write(line)
		if err != nil {
			return seenRequest{}, err
		}
		if len(line) <= 2 && strings.TrimRight(string(line), "\r\n") == "" {
			break
		}
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head.Bytes())))
	if err != nil {
		return seenRequest{}, err
	}
	var body []byte
	switch {
	case len(req.TransferEncoding) > 0:
		body, err = io.ReadAll(httputil.NewChunkedReader(br))
		if err == nil {
			// The trailer section ends with an empty line.
			for {
				line, lerr := br.ReadSlice('\n')
				if lerr != nil || len(strings.TrimRight(string(line), "\r\n")) == 0 {
					break
				}
			}
		}
	case req.ContentLength > 0:
		body = make([]byte, req.ContentLength)
		_, err = io.ReadFull(br, body)
	}
	return seenRequest{head: head.String(), req: req, body: body}, err
}

// --- clients ---

// rawClient is one client connection that writes bytes as given and reads
// responses as they come.
type rawClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

// dialRaw connects to a plaintext listener.
func dialRaw(t testing.TB, port uint32) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", listenerAddr(port), 5*time.Second)
	if err != nil {
		t.Fatalf("connecting to the proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

// dialTLS connects to an HTTPS listener with the given SNI ("" sends none)
// and ALPN protocols, trusting any certificate.
func dialTLS(t testing.TB, port uint32, sni string, alpn ...string) *rawClient {
	t.Helper()
	if len(alpn) == 0 {
		alpn = []string{"http/1.1"}
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", listenerAddr(port), &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: alpn})
	if err != nil {
		t.Fatalf("TLS handshake with the proxy (SNI %q): %v", sni, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes s as it is.
func (c *rawClient) send(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("writing to the proxy: %v", err)
	}
}

// response reads one response to a request of the given method, with its
// body read whole; it fails the test if none comes within 10s.
func (c *rawClient) response(method string) (*http.Response, string) {
	c.t.Helper()
	resp, body, err := c.tryResponse(method)
	if err != nil {
		c.t.Fatalf("reading the proxy's response: %v", err)
	}
	return resp, body
}

func (c *rawClient) tryResponse(method string) (*http.Response, string, error) {
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), err
}

// roundTrip sends raw request bytes and reads one response.
func (c *rawClient) roundTrip(raw string) (*http.Response, string) {
	c.t.Helper()
	c.send(raw)
	method, _, _ := strings.Cut(raw, " ")
	return c.response(method)
}

// closedWithin reports whether the proxy closes the connection within d
// once everything it sent has been read: a read returns EOF or a reset
// rather than timing out. Bytes read meanwhile are returned.
func (c *rawClient) closedWithin(d time.Duration) (bool, string) {
	c.c.SetReadDeadline(time.Now().Add(d))
	data, err := io.ReadAll(c.br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false, string(data)
	}
	return true, string(data)
}

// get is a well-formed GET on a fresh connection, for checks that the proxy
// still serves others.
func get(t testing.TB, port uint32, host, path string) (*http.Response, string) {
	t.Helper()
	c := dialRaw(t, port)
	return c.roundTrip("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")
}

// eventually polls cond until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestHarness checks the harness itself: a proxy from a table file serves
// plaintext and, with --key-pairs, HTTPS listeners through to a backend.
func TestHarness(t *testing.T) {
	be, seen := echoBackend(t)
	httpPort, httpsPort := freePort(t), freePort(t)
	tbl := table([]*routetable.Listener{
		httpListener("http", httpPort, "", vhost("*", prefixRoute("r", "/", "ns/echo:80"))),
		httpsListener("https", httpsPort, "secure.example.com", []string{"adversarial/secure-cert"},
			vhost("secure.example.com", prefixRoute("r", "/", "ns/echo:80"))),
	}, backendAt(t, "ns/echo:80", be.addr))
	kp := selfSigned(t, "secure.example.com")
	startProxy(t, proxyOptions{keyPairs: map[string]keyPair{"adversarial/secure-cert": kp}}, tbl)

	runCases(t, "harness", []adversarialCase{
		{"http", "the harness reaches a backend through a table file", func(t *testing.T) {
			resp, body := get(t, httpPort, "a.example.com", "/hello")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "GET /hello HTTP/1.1\r\n") {
				t.Fatalf("got %d %q, want 200 with the request echoed", resp.StatusCode, body)
			}
			sr := <-seen
			if sr.req.Host != "a.example.com" {
				t.Fatalf("backend saw Host %q", sr.req.Host)
			}
		}},
		{"https-key-pairs", "--key-pairs serves a file table's HTTPS listener", func(t *testing.T) {
			c := dialTLS(t, httpsPort, "secure.example.com")
			state := c.c.(*tls.Conn).ConnectionState()
			leaf := state.PeerCertificates[0]
			if leaf.Subject.CommonName != "secure.example.com" {
				t.Fatalf("served certificate for %q", leaf.Subject.CommonName)
			}
			resp, _ := c.roundTrip("GET / HTTP/1.1\r\nHost: secure.example.com\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d, want 200", resp.StatusCode)
			}
		}},
	})
}
