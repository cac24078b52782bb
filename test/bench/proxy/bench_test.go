package main

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

const wrkSample = `Running 10s test @ http://127.0.0.1:18080/svc-10000/item
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  420.11us  12.03ms   91.20%
    Req/Sec    21.07k     1.02k   23.11k    70.00%
  Latency Distribution
     50%    1.43ms
     75%  812.50us
     90%    2.01ms
     99%    1.20s
  209671 requests in 10.00s, 30.19MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 1, timeout 4
Requests/sec:  20966.83
Transfer/sec:      3.02MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 20966.83 {
		t.Errorf("rps %v", r.RPS)
	}
	want := map[int]time.Duration{50: 1430 * time.Microsecond, 75: 812500 * time.Nanosecond, 90: 2010 * time.Microsecond, 99: 1200 * time.Millisecond}
	for p, d := range want {
		if got := r.p(p); got != d {
			t.Errorf("p%d = %v, want %v", p, got, d)
		}
	}
	if r.Requests != 209671 || r.Non2xx3xx != 3 || r.Errors != [4]int64{0, 2, 1, 4} || r.socketErrors() != 7 {
		t.Errorf("counts %d %d %v", r.Requests, r.Non2xx3xx, r.Errors)
	}

	// Without --latency there is no 99% line: an error, not a zero.
	noLatency := strings.Replace(wrkSample, "     99%    1.20s\n", "", 1)
	if _, err := parseWrk(noLatency); err == nil {
		t.Error("missing 99% line accepted")
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("failed run accepted")
	}
}

const h2loadSample = `starting benchmark...
spawning thread #0: 32 total client(s). Timing-based test with 0s of warm-up time and 10s of main duration for measurements.
Application protocol: h2c

finished in 10.00s, 41234.50 req/s, 1.52MB/s
requests: 412400 total, 412420 started, 412400 done, 412345 succeeded, 55 failed, 5 errored, 0 timeout
status codes: 412345 2xx, 0 3xx, 50 4xx, 0 5xx
traffic: 15.21MB (15949000) total, 4.12MB (4321000) headers (space savings 90.12%), 1.18MB (1237035) data
                     min         max         mean         sd        +/- sd
time for request:       94us     12.03ms      7.75ms       1.20ms    85.00%
time for connect:       81us       129us       112us        21us    75.00%
time to 1st byte:     1.68ms      1.71ms      1.70ms        15us    75.00%
req/s           :    1269.78    1300.00    1288.58       8.92    75.00%
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadSample)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 41234.5 || r.Requests != 412395 || r.Non2xx3xx != 50 || r.socketErrors() != 5 {
		t.Errorf("rps %v requests %d non-2xx %d errors %v", r.RPS, r.Requests, r.Non2xx3xx, r.Errors)
	}
	if r.Mean != 7750*time.Microsecond || r.SD != 1200*time.Microsecond || r.Max != 12030*time.Microsecond {
		t.Errorf("times: mean %v sd %v max %v", r.Mean, r.SD, r.Max)
	}
	if r.percentiles() || r.tail() != r.Mean {
		t.Error("h2load has no percentiles: the compared latency is the mean")
	}
	if _, err := parseH2load("starting benchmark...\nconnect: Connection refused\n"); err == nil {
		t.Error("failed run accepted")
	}
}

func TestConfigs(t *testing.T) {
	up := upstreamPorts{plain: 18090}
	tbl := routeTable(3, ports{plain: 18080, tls: 18443}, up)
	data, err := protojson.Marshal(tbl)
	if err != nil {
		t.Fatal(err)
	}
	back := &routetable.RouteTable{}
	if err := protojson.Unmarshal(data, back); err != nil {
		t.Fatal(err)
	}
	if len(back.Listeners) != 2 {
		t.Fatalf("listeners: %s", data)
	}
	for _, l := range back.Listeners {
		rs := l.VirtualHosts[0].Routes
		if len(rs) != 3 || rs[2].Match.GetPrefix() != "/svc-3" || rs[2].Match.Headers[0].GetExact() != "t3" {
			t.Errorf("table: %s", data)
		}
	}
	if l := back.Listeners[1]; l.Protocol != routetable.Protocol_HTTPS || l.Port != 18443 || len(l.Tls.GetCertificates()) != 1 || l.Tls.Certificates[0] != keyPairName {
		t.Errorf("HTTPS listener: %v", l)
	}
	if n := len(routeTable(3, ports{plain: 18080}, up).Listeners); n != 1 {
		t.Errorf("no TLS port, %d listeners", n)
	}

	tf := &tlsFiles{cert: "/tmp/x/tls.crt", key: "/tmp/x/tls.key", combined: "/tmp/x/combined.pem"}
	p := ports{plain: 18081, h2c: 18082, tls: 18083}
	conf := nginxProxyConfig("/tmp/x", 3, p, up, 2, nginxModules{}, tf)
	for _, s := range []string{"location /svc-3 {", `if ($http_x_tenant != "t3")`, "server 127.0.0.1:18090;", "keepalive 256;", `proxy_set_header Connection "";`, "worker_processes 2;",
		"listen 127.0.0.1:18082 backlog=4096 http2;", "listen 127.0.0.1:18083 backlog=4096 ssl http2;", "ssl_certificate /tmp/x/tls.crt;", "Ciphersuites " + tlsSuite} {
		if !strings.Contains(conf, s) {
			t.Errorf("nginx config lacks %q:\n%s", s, conf)
		}
	}
	if plain := nginxProxyConfig("/tmp/x", 3, ports{plain: 18081}, up, 1, nginxModules{}, nil); strings.Contains(plain, "http2") || strings.Contains(plain, "ssl") || strings.Contains(plain, "\nstream {") {
		t.Errorf("nginx config without h2c and TLS ports:\n%s", plain)
	}

	hc := haproxyConfig("/tmp/x/routes.map", p, up, 2, tf)
	for _, s := range []string{"nbthread 2", "bind 127.0.0.1:18081 ", "bind 127.0.0.1:18082 backlog 4096 proto h2", "ssl crt /tmp/x/combined.pem alpn h2,http/1.1",
		"http-reuse always", "option forwardfor", "X-Forwarded-Host", "X-Forwarded-Proto", "map_beg(/tmp/x/routes.map)", "server up 127.0.0.1:18090", "http-request return status 404"} {
		if !strings.Contains(hc, s) {
			t.Errorf("HAProxy config lacks %q:\n%s", s, hc)
		}
	}
	if strings.Contains(hc, "\n    log ") || strings.Contains(hc, "mode tcp") {
		t.Errorf("HAProxy config logs or has TCP proxies without their ports:\n%s", hc)
	}
	if m := haproxyMap(3); m != "t1|/svc-1/ upstream\nt2|/svc-2/ upstream\nt3|/svc-3/ upstream\n" {
		t.Errorf("HAProxy map:\n%s", m)
	}
}

// TestConfigsValid has the installed nginx and HAProxy check the
// configurations the benchmark writes, TLS and h2c ports included.
func TestConfigsValid(t *testing.T) {
	dir := t.TempDir()
	tf, _, err := writeKeyPair(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	p := ports{plain: 18081, h2c: 18082, tls: 18083, tcp: 18084, pass: 18085}
	up := upstreamPorts{plain: 18090, tls: 18091}
	t.Run("haproxy", func(t *testing.T) {
		bin, err := exec.LookPath("haproxy")
		if err != nil {
			t.Skip("haproxy not installed")
		}
		mapPath, confPath := filepath.Join(dir, "routes.map"), filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(mapPath, []byte(haproxyMap(100)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(confPath, []byte(haproxyConfig(mapPath, p, up, 1, tf)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-c", "-f", confPath).CombinedOutput(); err != nil || strings.Contains(string(out), "WARNING") {
			t.Errorf("haproxy -c: %v\n%s", err, out)
		}
	})
	t.Run("nginx", func(t *testing.T) {
		bin, err := exec.LookPath("nginx")
		if err != nil {
			if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
				t.Skip("nginx not installed")
			}
		}
		v, _ := exec.Command(bin, "-V").CombinedOutput()
		mods := detectNginxModules(string(v))
		if _, err := os.Stat(mods.streamModule); mods.streamModule != "" && err != nil {
			t.Logf("no stream module (%v): the L4 ports are left out", err)
			mods.stream = false
		}
		np := p
		if !mods.stream {
			np.tcp, np.pass = 0, 0
		}
		for name, conf := range map[string]func(dir string) string{
			"proxy":    func(dir string) string { return nginxProxyConfig(dir, 100, np, up, 1, mods, tf) },
			"upstream": func(dir string) string { return upstreamConfig(dir, up, mods, tf) },
		} {
			ngDir := filepath.Join(dir, "nginx-"+name)
			if err := os.MkdirAll(ngDir, 0o755); err != nil {
				t.Fatal(err)
			}
			confPath := filepath.Join(ngDir, "nginx.conf")
			if err := os.WriteFile(confPath, []byte(conf(ngDir)), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-t", "-p", ngDir, "-c", confPath, "-e", filepath.Join(ngDir, "error.log")).CombinedOutput(); err != nil {
				t.Errorf("nginx -t, %s: %v\n%s", name, err, out)
			}
		}
	})
}

func TestPlan(t *testing.T) {
	o := options{routes: []int{1, 1000, 10000}, procs: []int{1, 2}, protoRoutes: 1000, https: true, h2: true}
	got := plan(o)
	if len(got) != 6 {
		t.Fatalf("%d cases: %v", len(got), got)
	}
	for _, c := range got {
		want := []load{loadH1}
		if c.procs == 1 && c.routes == 1000 {
			want = []load{loadH1, loadHTTPS, loadH2C, loadH2}
		}
		if !slices.Equal(c.loads, want) {
			t.Errorf("%d procs, %d routes: %v, want %v", c.procs, c.routes, c.loads, want)
		}
	}
	// A -proto-routes count not among -routes gets a case of its own.
	o.routes, o.procs, o.h2 = []int{1}, []int{1}, false
	got = plan(o)
	if len(got) != 2 || got[1].routes != 1000 || !slices.Equal(got[1].loads, []load{loadHTTPS}) {
		t.Errorf("plan: %v", got)
	}
	// Without HTTPS and HTTP/2, HTTP/1.1 only.
	o.https = false
	if got = plan(o); len(got) != 1 || !slices.Equal(got[0].loads, []load{loadH1}) {
		t.Errorf("plan: %v", got)
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := fmtInt(in); got != want {
			t.Errorf("fmtInt(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePerfCount(t *testing.T) {
	out := "\n123456,,raw_syscalls:sys_enter,2001234567,100.00,,\n"
	if n := parsePerfCount(out); n != 123456 {
		t.Errorf("count %d", n)
	}
	if n := parsePerfCount("<not counted>,,raw_syscalls:sys_enter,0,0.00,,\n"); n != 0 {
		t.Errorf("not counted: %d", n)
	}
}

func TestPlanStreamRows(t *testing.T) {
	o := options{routes: []int{1, 1000}, procs: []int{1, 2}, protoRoutes: 1000, tcp: true, passthrough: true}
	var l4 []caseSpec
	for _, c := range plan(o) {
		if slices.ContainsFunc(c.loads, load.stream) {
			l4 = append(l4, c)
		}
	}
	// One start of its own, with the first procs count and one route.
	want := []load{loadTCP, loadTCPConn, loadPass, loadPassConn}
	if len(l4) != 1 || l4[0].procs != 1 || l4[0].routes != 1 || !slices.Equal(l4[0].loads, want) || l4[0].suffix() != "-l4" {
		t.Fatalf("L4 cases: %v", l4)
	}
	o.passthrough = false
	if got := plan(o); !slices.ContainsFunc(got, func(c caseSpec) bool { return slices.Equal(c.loads, []load{loadTCP, loadTCPConn}) }) {
		t.Errorf("TCP only: %v", got)
	}
	o.tcp = false
	for _, c := range plan(o) {
		if slices.ContainsFunc(c.loads, load.stream) || c.suffix() != "" {
			t.Errorf("no L4 rows asked for: %v", c)
		}
	}
	// Each L4 load is measured against the upstream directly with the
	// exchange it relays; keep-alive TCP is the HTTP/1.1 run's.
	if got := directLoads(plan(options{routes: []int{1}, procs: []int{1}, tcp: true, passthrough: true})); !slices.Equal(got, []load{loadH1, loadTCPConn, loadPass, loadPassConn}) {
		t.Errorf("direct loads: %v", got)
	}
}

func TestNginxStreamModule(t *testing.T) {
	debian := "nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx --modules-path=/usr/lib/nginx/modules --with-stream=dynamic --with-stream_ssl_preread_module"
	if m := detectNginxModules(debian); !m.stream || m.streamModule != "/usr/lib/nginx/modules/ngx_stream_module.so" {
		t.Errorf("Debian build: %+v", m)
	}
	if m := detectNginxModules("configure arguments: --prefix=/opt/ngx --with-stream=dynamic"); m.streamModule != "/opt/ngx/modules/ngx_stream_module.so" {
		t.Errorf("no --modules-path: %+v", m)
	}
	if m := detectNginxModules("configure arguments: --with-stream --with-stream_ssl_preread_module"); !m.stream || m.streamModule != "" {
		t.Errorf("built in: %+v", m)
	}
	if m := detectNginxModules("configure arguments: --with-http_ssl_module"); m.stream {
		t.Errorf("no stream module: %+v", m)
	}
}

func TestStreamConfigs(t *testing.T) {
	p := ports{plain: 18081, tcp: 18084, pass: 18085}
	up := upstreamPorts{plain: 18090, tls: 18091}
	tbl := routeTable(1, p, up)
	var tcp, pass *routetable.Listener
	for _, l := range tbl.Listeners {
		switch l.Protocol {
		case routetable.Protocol_TCP:
			tcp = l
		case routetable.Protocol_TLS:
			pass = l
		}
	}
	if tcp == nil || tcp.Port != 18084 || len(tcp.StreamRoutes) != 1 || tcp.StreamRoutes[0].Backends[0].Backend != backendName {
		t.Errorf("TCP listener: %v", tcp)
	}
	if pass == nil || pass.Port != 18085 || !pass.Tls.GetPassthrough() || len(pass.StreamRoutes) != 1 ||
		pass.StreamRoutes[0].Domain != passthroughSNI || pass.StreamRoutes[0].Backends[0].Backend != tlsBackendName {
		t.Errorf("passthrough listener: %v", pass)
	}
	if len(tbl.Backends) != 2 || tbl.Backends[1].Name != tlsBackendName || tbl.Backends[1].Endpoints[0].Port != 18091 {
		t.Errorf("backends: %v", tbl.Backends)
	}

	mods := nginxModules{stream: true, streamModule: "/usr/lib/nginx/modules/ngx_stream_module.so"}
	conf := nginxProxyConfig("/tmp/x", 1, p, up, 1, mods, nil)
	if !strings.HasPrefix(conf, "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n") {
		t.Errorf("nginx config does not load the stream module first:\n%s", conf)
	}
	for _, s := range []string{"\nstream {\n", "listen 127.0.0.1:18084 backlog=4096;", "server 127.0.0.1:18090;", "listen 127.0.0.1:18085 backlog=4096;", "ssl_preread on;", passthroughSNI + " bench_tls;", "server 127.0.0.1:18091;"} {
		if !strings.Contains(conf, s) {
			t.Errorf("nginx config lacks %q:\n%s", s, conf)
		}
	}
	hc := haproxyConfig("/tmp/x/routes.map", p, up, 1, nil)
	for _, s := range []string{"defaults stream\n    mode tcp\n", "bind 127.0.0.1:18084 backlog 4096", "server up 127.0.0.1:18090", "bind 127.0.0.1:18085 backlog 4096",
		"req.ssl_hello_type 1", "use_backend upstream_tls if { req.ssl_sni -i " + passthroughSNI + " }", "server up 127.0.0.1:18091"} {
		if !strings.Contains(hc, s) {
			t.Errorf("HAProxy config lacks %q:\n%s", s, hc)
		}
	}
	if uc := upstreamConfig("/tmp/x", up, nginxModules{}, &tlsFiles{cert: "/tmp/x/tls.crt", key: "/tmp/x/tls.key"}); !strings.Contains(uc, "listen 127.0.0.1:18091 backlog=4096 ssl;") {
		t.Errorf("upstream config has no TLS port:\n%s", uc)
	}
}

// TestStreamChecksThroughOurProxy runs the L4 rows' checks against our
// proxy engine serving the benchmark's table, in front of a Go upstream
// that answers as the benchmark's does, over TLS with the benchmark's
// certificate: both L4 listeners reach the upstream, on one connection or
// one per exchange, the TLS session verified is the upstream's, and a
// session for another name is refused.
func TestStreamChecksThroughOurProxy(t *testing.T) {
	tf, roots, err := writeKeyPair(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(tf.cert, tf.key)
	if err != nil {
		t.Fatal(err)
	}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, upstreamBody) })}
	go srv.Serve(plainLn)
	go srv.Serve(tlsLn)
	t.Cleanup(func() { srv.Close() })
	up := upstreamPorts{plain: plainLn.Addr().(*net.TCPAddr).Port, tls: tlsLn.Addr().(*net.TCPAddr).Port}

	var p ports
	for _, port := range []*int{&p.plain, &p.tcp, &p.pass} {
		if *port, err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	px := proxy.New(proxy.Options{BindAddress: "127.0.0.1", Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), DrainTimeout: time.Second})
	if err := px.Apply("bench", []*routetable.RouteTable{routeTable(1, p, up)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		px.Close(ctx)
	})

	ctx := context.Background()
	for _, l := range []load{loadTCP, loadTCPConn, loadPass, loadPassConn} {
		if err := checkStream(ctx, l, l.url(p), 1, roots); err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}
	// The upstream's own TLS port takes any name: the check says so.
	if err := checkSNIRefused(ctx, tlsLn.Addr().String()); err == nil {
		t.Error("a TLS server that takes every name passed the SNI check")
	}
}
