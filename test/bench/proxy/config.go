package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// The routes both proxies serve: route i (1-based) matches the path prefix
// /svc-<i> and the header X-Tenant: t<i>, and forwards to the one upstream.
func routePrefix(i int) string { return fmt.Sprintf("/svc-%d", i) }
func routeTenant(i int) string { return fmt.Sprintf("t%d", i) }

// targetPath is the path the load asks for: below the prefix of route i.
func targetPath(i int) string { return routePrefix(i) + "/item" }

const (
	tenantHeader = "X-Tenant"
	backendName  = "bench/upstream:80"
)

// The key pair our proxy's HTTPS listener names; the benchmark hands it
// over with --key-pairs, as a mounted kubernetes.io/tls Secret would be.
const keyPairName = "bench/cert"

// routeTable builds the table of n routes for a cleartext listener on
// p.plain (HTTP/1.1 and HTTP/2 with prior knowledge), when p.tls is not 0
// an HTTPS listener with the same routes on p.tls, and the L4 listeners
// of the ports p has (streamListeners); every route forwards to the
// upstream.
func routeTable(n int, p ports, up upstreamPorts) *routetable.RouteTable {
	routes := make([]*routetable.Route, 0, n)
	for i := 1; i <= n; i++ {
		routes = append(routes, &routetable.Route{
			Source: &routetable.RouteSource{Kind: "HTTPRoute", Namespace: "bench", Name: fmt.Sprintf("svc-%d", i)},
			Match: &routetable.RouteMatch{
				Path:    &routetable.RouteMatch_Prefix{Prefix: routePrefix(i)},
				Headers: []*routetable.HeaderMatcher{{Name: tenantHeader, Value: &routetable.HeaderMatcher_Exact{Exact: routeTenant(i)}}},
			},
			Action: &routetable.Route_Route{Route: &routetable.RouteAction{
				Backends: []*routetable.WeightedBackend{{Backend: backendName, Weight: 1}},
			}},
		})
	}
	listeners := []*routetable.Listener{{
		Name:         "http",
		Port:         uint32(p.plain),
		Protocol:     routetable.Protocol_HTTP,
		VirtualHosts: []*routetable.VirtualHost{{Domain: "*", Routes: routes}},
	}}
	if p.tls != 0 {
		listeners = append(listeners, &routetable.Listener{
			Name:         "https",
			Port:         uint32(p.tls),
			Protocol:     routetable.Protocol_HTTPS,
			Tls:          &routetable.ListenerTLS{Certificates: []string{keyPairName}},
			VirtualHosts: []*routetable.VirtualHost{{Domain: "*", Routes: routes}},
		})
	}
	backends := []*routetable.Backend{{
		Name:      backendName,
		Protocol:  routetable.AppProtocol_HTTP1,
		Endpoints: []*routetable.Endpoint{{Address: "127.0.0.1", Port: uint32(up.plain)}},
	}}
	if p.pass != 0 {
		backends = append(backends, &routetable.Backend{
			Name:      tlsBackendName,
			Endpoints: []*routetable.Endpoint{{Address: "127.0.0.1", Port: uint32(up.tls)}},
		})
	}
	return &routetable.RouteTable{
		Gateway:   "bench/gw",
		Name:      "bench/bench/gw",
		Listeners: append(listeners, streamListeners(p)...),
		Backends:  backends,
	}
}

func writeTable(path string, t *routetable.RouteTable) error {
	data, err := protojson.Marshal(t)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// nginxModules says which optional modules the installed nginx has, from
// `nginx -V`: those with temp paths, and the stream module (L4 proxying),
// which Debian builds as a dynamic module of a package of its own
// (libnginx-mod-stream); streamModule is its file when it is dynamic.
type nginxModules struct {
	fastcgi, uwsgi, scgi bool
	stream               bool
	streamModule         string
}

func detectNginxModules(versionOutput string) nginxModules {
	args := strings.Fields(versionOutput)
	return nginxModules{
		fastcgi:      !strings.Contains(versionOutput, "--without-http_fastcgi_module"),
		uwsgi:        !strings.Contains(versionOutput, "--without-http_uwsgi_module"),
		scgi:         !strings.Contains(versionOutput, "--without-http_scgi_module"),
		stream:       slices.Contains(args, "--with-stream") || slices.Contains(args, "--with-stream=dynamic"),
		streamModule: nginxStreamModulePath(versionOutput),
	}
}

// nginxMain writes the parts every instance shares: foreground master, one
// process group of workers, all state in dir, no access log, and client
// keep-alive that does not end connections after 1,000 requests (Go's server
// has no such limit, so nginx's default would make it reconnect and look
// slower than it is).
func nginxMain(b *strings.Builder, dir string, workers int, mods nginxModules) {
	fmt.Fprintf(b, "worker_processes %d;\n", workers)
	b.WriteString("daemon off;\nmaster_process on;\n")
	fmt.Fprintf(b, "pid %s;\n", filepath.Join(dir, "nginx.pid"))
	fmt.Fprintf(b, "error_log %s warn;\n", filepath.Join(dir, "error.log"))
	b.WriteString("events {\n    worker_connections 8192;\n}\n")
	b.WriteString("http {\n")
	b.WriteString("    access_log off;\n")
	b.WriteString("    keepalive_timeout 120s;\n")
	b.WriteString("    keepalive_requests 10000000;\n")
	fmt.Fprintf(b, "    client_body_temp_path %s;\n", filepath.Join(dir, "body"))
	fmt.Fprintf(b, "    proxy_temp_path %s;\n", filepath.Join(dir, "proxy"))
	if mods.fastcgi {
		fmt.Fprintf(b, "    fastcgi_temp_path %s;\n", filepath.Join(dir, "fastcgi"))
	}
	if mods.uwsgi {
		fmt.Fprintf(b, "    uwsgi_temp_path %s;\n", filepath.Join(dir, "uwsgi"))
	}
	if mods.scgi {
		fmt.Fprintf(b, "    scgi_temp_path %s;\n", filepath.Join(dir, "scgi"))
	}
}

// upstreamBody is what the upstream answers every request with.
const upstreamBody = "ok\n"

// upstreamConfig is the nginx that every proxy forwards to: a fixed small
// 200 from memory, no file system, no logging; on up.tls (when not 0) the
// same over TLS, for the passthrough rows.
func upstreamConfig(dir string, up upstreamPorts, mods nginxModules, tf *tlsFiles) string {
	var b strings.Builder
	nginxMain(&b, dir, 1, mods)
	fmt.Fprintf(&b, "    server {\n        listen 127.0.0.1:%d backlog=4096;\n", up.plain)
	upstreamTLSConfig(&b, up.tls, tf)
	b.WriteString("        location / {\n            default_type text/plain;\n")
	fmt.Fprintf(&b, "            return 200 %q;\n", upstreamBody)
	b.WriteString("        }\n    }\n}\n")
	return b.String()
}

// ports a proxy under test listens on: plain serves HTTP/1.1, h2c HTTP/2
// with prior knowledge in cleartext, tls HTTP/1.1 and h2 over TLS (by
// ALPN); tcp relays connections to the upstream (L4), pass relays TLS
// sessions by SNI to the upstream's TLS port. 0: not served in this case.
// Our proxy serves h2c on its plain port, so its h2c equals plain.
type ports struct{ plain, h2c, tls, tcp, pass int }

// tlsFiles are the PEM files of the key pair every proxy presents.
type tlsFiles struct {
	cert, key string // certificate, PKCS #8 key (nginx)
	combined  string // certificate then key in one file (HAProxy)
	keyPairs  string // directory for our proxy's --key-pairs
}

// tlsSuite is the one TLS 1.3 cipher suite every proxy uses: the one Go's
// server picks on CPUs with AES instructions; nginx and HAProxy would
// follow OpenSSL clients' preference for AES-256-GCM otherwise.
const tlsSuite = "TLS_AES_128_GCM_SHA256"

// nginxProxyConfig is nginx configured with the same n routes as the table:
// one prefix location per route (nginx finds the longest matching prefix
// in its static location tree), and in it the header test as an `if` on
// $http_x_tenant that answers 404 when the tenant differs, like our proxy
// does when no route matches. `return` is the one directive that is safe
// and cheap inside `if`; the comparison is a single string compare against
// a variable nginx reads from the parsed request headers.
//
// Upstream keep-alive: an upstream block with keepalive, HTTP/1.1 and an
// empty Connection header. Headers sent upstream mirror what our proxy
// sends (original Host, X-Forwarded-For/-Host/-Proto).
//
// HTTP/2 uses the `listen ... http2` syntax of nginx before 1.25.1 (later
// versions still accept it, with a warning): on a cleartext port it means
// prior knowledge only, hence a port of its own; with ssl, ALPN offers h2
// and http/1.1 on one port.
func nginxProxyConfig(dir string, n int, p ports, up upstreamPorts, workers int, mods nginxModules, tf *tlsFiles) string {
	var b strings.Builder
	b.WriteString(nginxStreamModule(p, mods))
	nginxMain(&b, dir, workers, mods)
	b.WriteString("    upstream bench_upstream {\n")
	fmt.Fprintf(&b, "        server 127.0.0.1:%d;\n", up.plain)
	b.WriteString("        keepalive 256;\n        keepalive_requests 10000000;\n        keepalive_timeout 120s;\n    }\n")
	b.WriteString("    proxy_http_version 1.1;\n")
	b.WriteString("    proxy_set_header Connection \"\";\n")
	b.WriteString("    proxy_set_header Host $http_host;\n")
	b.WriteString("    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n")
	b.WriteString("    proxy_set_header X-Forwarded-Host $http_host;\n")
	b.WriteString("    proxy_set_header X-Forwarded-Proto $scheme;\n")
	fmt.Fprintf(&b, "    server {\n        listen 127.0.0.1:%d backlog=4096;\n", p.plain)
	if p.h2c != 0 {
		fmt.Fprintf(&b, "        listen 127.0.0.1:%d backlog=4096 http2;\n", p.h2c)
	}
	if p.tls != 0 && tf != nil {
		fmt.Fprintf(&b, "        listen 127.0.0.1:%d backlog=4096 ssl http2;\n", p.tls)
		fmt.Fprintf(&b, "        ssl_certificate %s;\n        ssl_certificate_key %s;\n", tf.cert, tf.key)
		b.WriteString("        ssl_protocols TLSv1.2 TLSv1.3;\n")
		fmt.Fprintf(&b, "        ssl_conf_command Ciphersuites %s;\n", tlsSuite)
	}
	b.WriteString("        location / {\n            return 404;\n        }\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "        location %s {\n", routePrefix(i))
		fmt.Fprintf(&b, "            if ($http_x_tenant != \"%s\") {\n                return 404;\n            }\n", routeTenant(i))
		b.WriteString("            proxy_pass http://bench_upstream;\n        }\n")
	}
	b.WriteString("    }\n}\n")
	nginxStreamConfig(&b, p, up)
	return b.String()
}

// haproxyMapEntry is route i's key in HAProxy's route map. HAProxy looks a
// request up by the X-Tenant value, '|', then the path with a '/'
// appended; the map holds "t<i>|/svc-<i>/" for route i, and map_beg finds
// the longest entry that is a prefix of the key in a prefix tree, so a
// request matches route i when its tenant is t<i> and its path is
// /svc-<i> or below it: the same segment-wise prefix match as ours,
// without walking N rules.
func haproxyMapEntry(i int) string { return routeTenant(i) + "|" + routePrefix(i) + "/" }

// haproxyMap is the route map: one line per route, key then backend.
func haproxyMap(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s upstream\n", haproxyMapEntry(i))
	}
	return b.String()
}

// haproxyConfig is HAProxy with the same n routes (mapPath holds
// haproxyMap(n)): one frontend in HTTP mode, threads instead of workers,
// no logging; the route key is built from the header and the path and
// looked up in the map, which names the backend; no entry (or no header)
// goes to a backend that answers 404. The upstream backend keeps its
// connections open and shares them between client connections (http-reuse
// always), and the headers sent upstream mirror ours: Host unchanged,
// X-Forwarded-For (option forwardfor), X-Forwarded-Host and
// X-Forwarded-Proto.
func haproxyConfig(mapPath string, p ports, up upstreamPorts, threads int, tf *tlsFiles) string {
	var b strings.Builder
	b.WriteString("global\n")
	fmt.Fprintf(&b, "    nbthread %d\n", threads)
	b.WriteString("    maxconn 4096\n")
	fmt.Fprintf(&b, "    ssl-default-bind-ciphersuites %s\n", tlsSuite)
	b.WriteString("    ssl-default-bind-options ssl-min-ver TLSv1.2\n")
	b.WriteString("defaults\n    mode http\n    option http-keep-alive\n    http-reuse always\n")
	b.WriteString("    timeout connect 5s\n    timeout client 120s\n    timeout server 120s\n    timeout http-keep-alive 120s\n")
	b.WriteString("frontend bench\n")
	fmt.Fprintf(&b, "    bind 127.0.0.1:%d backlog 4096\n", p.plain)
	if p.h2c != 0 {
		fmt.Fprintf(&b, "    bind 127.0.0.1:%d backlog 4096 proto h2\n", p.h2c)
	}
	if p.tls != 0 && tf != nil {
		fmt.Fprintf(&b, "    bind 127.0.0.1:%d backlog 4096 ssl crt %s alpn h2,http/1.1\n", p.tls, tf.combined)
	}
	b.WriteString("    option forwardfor\n")
	b.WriteString("    http-request set-header X-Forwarded-Host %[req.hdr(host)]\n")
	b.WriteString("    http-request set-header X-Forwarded-Proto %[ssl_fc,iif(https,http)]\n")
	b.WriteString("    http-request set-var(txn.path) path\n")
	fmt.Fprintf(&b, "    http-request set-var(txn.route) req.fhdr(%s),concat(|,txn.path,/)\n", strings.ToLower(tenantHeader))
	fmt.Fprintf(&b, "    use_backend %%[var(txn.route),map_beg(%s)]\n", mapPath)
	b.WriteString("    default_backend notfound\n")
	b.WriteString("backend upstream\n")
	fmt.Fprintf(&b, "    server up 127.0.0.1:%d\n", up.plain)
	b.WriteString("backend notfound\n    http-request return status 404\n")
	haproxyStreamConfig(&b, p, up)
	return b.String()
}
