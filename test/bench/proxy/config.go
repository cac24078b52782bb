package main

import (
	"fmt"
	"os"
	"path/filepath"
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

// routeTable builds the table of n routes for a listener on port, every
// route forwarding to the upstream on upstreamPort.
func routeTable(n int, port, upstreamPort int) *routetable.RouteTable {
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
	return &routetable.RouteTable{
		Gateway: "bench/gw",
		Name:    "bench/bench/gw",
		Listeners: []*routetable.Listener{{
			Name:         "http",
			Port:         uint32(port),
			Protocol:     routetable.Protocol_HTTP,
			VirtualHosts: []*routetable.VirtualHost{{Domain: "*", Routes: routes}},
		}},
		Backends: []*routetable.Backend{{
			Name:      backendName,
			Protocol:  routetable.AppProtocol_HTTP1,
			Endpoints: []*routetable.Endpoint{{Address: "127.0.0.1", Port: uint32(upstreamPort)}},
		}},
	}
}

func writeTable(path string, t *routetable.RouteTable) error {
	data, err := protojson.Marshal(t)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// nginxModules says which optional modules with temp paths the installed
// nginx has, from `nginx -V`.
type nginxModules struct{ fastcgi, uwsgi, scgi bool }

func detectNginxModules(versionOutput string) nginxModules {
	return nginxModules{
		fastcgi: !strings.Contains(versionOutput, "--without-http_fastcgi_module"),
		uwsgi:   !strings.Contains(versionOutput, "--without-http_uwsgi_module"),
		scgi:    !strings.Contains(versionOutput, "--without-http_scgi_module"),
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

// upstreamConfig is the nginx that both proxies forward to: a fixed small
// 200 from memory, no file system, no logging.
func upstreamConfig(dir string, port int, mods nginxModules) string {
	var b strings.Builder
	nginxMain(&b, dir, 1, mods)
	fmt.Fprintf(&b, "    server {\n        listen 127.0.0.1:%d backlog=4096;\n", port)
	b.WriteString("        location / {\n            default_type text/plain;\n")
	fmt.Fprintf(&b, "            return 200 %q;\n", upstreamBody)
	b.WriteString("        }\n    }\n}\n")
	return b.String()
}

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
func nginxProxyConfig(dir string, n, port, upstreamPort, workers int, mods nginxModules) string {
	var b strings.Builder
	nginxMain(&b, dir, workers, mods)
	b.WriteString("    upstream bench_upstream {\n")
	fmt.Fprintf(&b, "        server 127.0.0.1:%d;\n", upstreamPort)
	b.WriteString("        keepalive 256;\n        keepalive_requests 10000000;\n        keepalive_timeout 120s;\n    }\n")
	b.WriteString("    proxy_http_version 1.1;\n")
	b.WriteString("    proxy_set_header Connection \"\";\n")
	b.WriteString("    proxy_set_header Host $http_host;\n")
	b.WriteString("    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n")
	b.WriteString("    proxy_set_header X-Forwarded-Host $http_host;\n")
	b.WriteString("    proxy_set_header X-Forwarded-Proto $scheme;\n")
	fmt.Fprintf(&b, "    server {\n        listen 127.0.0.1:%d backlog=4096;\n", port)
	b.WriteString("        location / {\n            return 404;\n        }\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "        location %s {\n", routePrefix(i))
		fmt.Fprintf(&b, "            if ($http_x_tenant != \"%s\") {\n                return 404;\n            }\n", routeTenant(i))
		b.WriteString("            proxy_pass http://bench_upstream;\n        }\n")
	}
	b.WriteString("    }\n}\n")
	return b.String()
}
