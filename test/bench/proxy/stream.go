package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// The stream rows send the same HTTP/1.1 exchange as the HTTP/1.1 rows
// (request and answer of about a hundred bytes each) to the same upstream,
// but through each proxy's L4 listeners, which relay bytes and read none
// of them: a TCP listener, and a TLS listener that passes the session
// through by its SNI to a TLS port of the upstream. The upstream's HTTP
// parser and wrk's are then the exchange's two ends, and what each proxy
// spends per exchange is what it costs to relay it.

// passthroughSNI is the server name the TLS passthrough rows send (wrk
// sends its URL's host) and every proxy routes by; the upstream's
// certificate holds it.
const passthroughSNI = "localhost"

// tlsBackendName is our table's backend for the upstream's TLS port.
const tlsBackendName = "bench/upstream:443"

// upstreamPorts are the upstream's ports: plain serves HTTP/1.1 in
// cleartext, tls HTTP/1.1 over TLS for the passthrough rows (0: not
// served).
type upstreamPorts struct{ plain, tls int }

// l4 says whether the proxy has L4 listeners in this case.
func (p ports) l4() bool { return p.tcp != 0 || p.pass != 0 }

// streamListeners are our table's L4 listeners for the ports p has: a TCP
// listener whose one route takes every connection to the upstream, and a
// TLS passthrough listener whose one route takes the SNI passthroughSNI
// to the upstream's TLS port (a connection with another SNI is closed).
func streamListeners(p ports) []*routetable.Listener {
	source := func(kind string) *routetable.RouteSource {
		return &routetable.RouteSource{Kind: kind, Namespace: "bench", Name: strings.ToLower(kind)}
	}
	var out []*routetable.Listener
	if p.tcp != 0 {
		out = append(out, &routetable.Listener{
			Name: "tcp", Port: uint32(p.tcp), Protocol: routetable.Protocol_TCP,
			StreamRoutes: []*routetable.StreamRoute{{
				Source:   source("TCPRoute"),
				Backends: []*routetable.WeightedBackend{{Backend: backendName, Weight: 1}},
			}},
		})
	}
	if p.pass != 0 {
		out = append(out, &routetable.Listener{
			Name: "passthrough", Port: uint32(p.pass), Protocol: routetable.Protocol_TLS,
			Tls: &routetable.ListenerTLS{Passthrough: true},
			StreamRoutes: []*routetable.StreamRoute{{
				Source:   source("TLSRoute"),
				Domain:   passthroughSNI,
				Backends: []*routetable.WeightedBackend{{Backend: tlsBackendName, Weight: 1}},
			}},
		})
	}
	return out
}

// nginxStreamModule is the load_module line the stream rows need when
// the installed nginx has its stream module as a dynamic module ("" when
// it is built in, or when the rows are not run).
func nginxStreamModule(p ports, mods nginxModules) string {
	if !p.l4() || mods.streamModule == "" {
		return ""
	}
	return fmt.Sprintf("load_module %s;\n", mods.streamModule)
}

// nginxStreamConfig is nginx's stream block for the ports p has: a server
// that passes every connection to the upstream, and one that reads the
// ClientHello (ssl_preread) and passes the session on by its SNI, through
// a map whose only entry is passthroughSNI. Another SNI maps to an empty
// upstream, which nginx cannot connect to: it closes the connection, as
// our proxy and HAProxy do.
func nginxStreamConfig(b *strings.Builder, p ports, up upstreamPorts) {
	if !p.l4() {
		return
	}
	b.WriteString("stream {\n")
	if p.tcp != 0 {
		fmt.Fprintf(b, "    upstream bench_tcp {\n        server 127.0.0.1:%d;\n    }\n", up.plain)
		fmt.Fprintf(b, "    server {\n        listen 127.0.0.1:%d backlog=4096;\n        proxy_pass bench_tcp;\n    }\n", p.tcp)
	}
	if p.pass != 0 {
		fmt.Fprintf(b, "    upstream bench_tls {\n        server 127.0.0.1:%d;\n    }\n", up.tls)
		fmt.Fprintf(b, "    map $ssl_preread_server_name $bench_sni_upstream {\n        %s bench_tls;\n        default \"\";\n    }\n", passthroughSNI)
		fmt.Fprintf(b, "    server {\n        listen 127.0.0.1:%d backlog=4096;\n        ssl_preread on;\n        proxy_pass $bench_sni_upstream;\n    }\n", p.pass)
	}
	b.WriteString("}\n")
}

// haproxyStreamConfig is HAProxy's TCP-mode proxies for the ports p has,
// after a defaults section of their own (the HTTP defaults would not
// apply to them): a frontend whose every connection goes to the upstream,
// and one that waits for the ClientHello and sends a session whose SNI is
// passthroughSNI to the upstream's TLS port; another SNI finds no backend
// and HAProxy closes the connection.
func haproxyStreamConfig(b *strings.Builder, p ports, up upstreamPorts) {
	if !p.l4() {
		return
	}
	b.WriteString("defaults stream\n    mode tcp\n")
	b.WriteString("    timeout connect 5s\n    timeout client 120s\n    timeout server 120s\n")
	if p.tcp != 0 {
		fmt.Fprintf(b, "frontend tcp\n    bind 127.0.0.1:%d backlog 4096\n    default_backend upstream_tcp\n", p.tcp)
		fmt.Fprintf(b, "backend upstream_tcp\n    server up 127.0.0.1:%d\n", up.plain)
	}
	if p.pass != 0 {
		fmt.Fprintf(b, "frontend passthrough\n    bind 127.0.0.1:%d backlog 4096\n", p.pass)
		b.WriteString("    tcp-request inspect-delay 5s\n")
		b.WriteString("    tcp-request content accept if { req.ssl_hello_type 1 }\n")
		fmt.Fprintf(b, "    use_backend upstream_tls if { req.ssl_sni -i %s }\n", passthroughSNI)
		fmt.Fprintf(b, "backend upstream_tls\n    server up 127.0.0.1:%d\n", up.tls)
	}
}

// upstreamTLSConfig is the upstream's TLS server, for the passthrough
// rows: the benchmark's certificate and TLS 1.3 suite, as the proxies
// that terminate TLS in the HTTPS rows have.
func upstreamTLSConfig(b *strings.Builder, port int, tf *tlsFiles) {
	if port == 0 || tf == nil {
		return
	}
	fmt.Fprintf(b, "        listen 127.0.0.1:%d backlog=4096 ssl;\n", port)
	fmt.Fprintf(b, "        ssl_certificate %s;\n        ssl_certificate_key %s;\n", tf.cert, tf.key)
	b.WriteString("        ssl_protocols TLSv1.2 TLSv1.3;\n")
	fmt.Fprintf(b, "        ssl_conf_command Ciphersuites %s;\n", tlsSuite)
}

// checkStream checks, before any load, that a proxy's L4 listener for l
// (at url, as l.url gives it) reaches the upstream: two exchanges (on one
// connection, or on one each for the rows with a connection per exchange)
// get the upstream's 200 and body; over TLS the handshake verifies the
// upstream's certificate for passthroughSNI, and a ClientHello with
// another SNI gets no handshake.
func checkStream(ctx context.Context, l load, url string, n int, roots *x509.CertPool) error {
	// Go's client sends the SNI of its TLS configuration; it dials
	// 127.0.0.1 as wrk does.
	base := strings.Replace(url, "://"+passthroughSNI+":", "://127.0.0.1:", 1)
	t := &http.Transport{DisableKeepAlives: l.perConn(), MaxConnsPerHost: 1}
	if l.passthrough() {
		t.TLSClientConfig = &tls.Config{ServerName: passthroughSNI, RootCAs: roots}
	}
	defer t.CloseIdleConnections()
	client := &http.Client{Timeout: 5 * time.Second, Transport: t}
	conns := map[string]bool{}
	for range 2 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+targetPath(n), nil)
		req.Header.Set(tenantHeader, routeTenant(n))
		var local string
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { local = i.Conn.LocalAddr().String() },
		}))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || string(body) != upstreamBody {
			return fmt.Errorf("GET %s: %d %q, want 200 %q", targetPath(n), resp.StatusCode, body, upstreamBody)
		}
		conns[local] = true
	}
	if want := map[bool]int{false: 1, true: 2}[l.perConn()]; len(conns) != want {
		return fmt.Errorf("two exchanges went over %d connection(s), want %d", len(conns), want)
	}
	if l.passthrough() {
		return checkSNIRefused(ctx, strings.TrimPrefix(base, "https://"))
	}
	return nil
}

// checkSNIRefused says whether a TLS session for a name no route takes is
// refused at addr (host:port).
func checkSNIRefused(ctx context.Context, addr string) error {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{ServerName: "other.invalid", InsecureSkipVerify: true}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.Close()
		return fmt.Errorf("a TLS session for SNI other.invalid was passed on")
	}
	return nil
}

// nginxStreamModulePath is where the stream module of an nginx built with
// --with-stream=dynamic is, from its configure arguments: the modules
// path, or the prefix's modules directory without one.
func nginxStreamModulePath(versionOutput string) string {
	dynamic, dir, prefix := false, "", "/usr/local/nginx"
	for _, f := range strings.Fields(versionOutput) {
		switch {
		case f == "--with-stream=dynamic":
			dynamic = true
		case strings.HasPrefix(f, "--modules-path="):
			dir = strings.TrimPrefix(f, "--modules-path=")
		case strings.HasPrefix(f, "--prefix="):
			prefix = strings.TrimPrefix(f, "--prefix=")
		}
	}
	if !dynamic {
		return ""
	}
	if dir == "" {
		dir = filepath.Join(prefix, "modules")
	}
	return filepath.Join(dir, "ngx_stream_module.so")
}
