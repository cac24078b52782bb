// Command proxy is `make bench-proxy`: a load comparison of gatehouse-proxy
// with nginx, both configured with the same N "prefix + header" routes and
// forwarding to the same upstream, measured with wrk in one run at each
// route count. See README.md beside this file for what is measured and why.
//
//	go build -o bin/gatehouse-proxy ./cmd/gatehouse-proxy
//	go run ./test/bench/proxy -proxy bin/gatehouse-proxy [-out FILE]
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	proxyBin    string
	nginxBin    string
	haproxyBin  string
	wrkBin      string
	h2loadBin   string
	perfBin     string
	routes      []int
	procs       []int
	protoRoutes int
	https       bool
	h2          bool
	tcp         bool
	passthrough bool
	haproxy     bool
	threads     int
	conns       int
	streams     int
	duration    time.Duration
	warmup      time.Duration
	pin         bool
	rounds      int
	out         string
	cpuprofile  string
	keep        bool
	timeout     time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serveMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench-proxy serve:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var routes, procs string
	flag.StringVar(&o.proxyBin, "proxy", "bin/gatehouse-proxy", "gatehouse-proxy binary")
	flag.StringVar(&o.nginxBin, "nginx", "", "nginx binary (default: from PATH or /usr/sbin/nginx)")
	flag.StringVar(&o.haproxyBin, "haproxy-bin", "", "haproxy binary (default: from PATH or /usr/sbin/haproxy)")
	flag.StringVar(&o.wrkBin, "wrk", "wrk", "wrk binary")
	flag.StringVar(&o.h2loadBin, "h2load", "h2load", "h2load binary")
	flag.StringVar(&o.perfBin, "perf", "perf", "perf binary, to count the proxies' system calls during each warmup (\"\": do not count)")
	flag.StringVar(&routes, "routes", "1,1000,10000", "route counts of the HTTP/1.1 rows, comma-separated")
	flag.StringVar(&procs, "procs", "1,2", "comma-separated: for each, the HTTP/1.1 rows run with that many nginx worker_processes, HAProxy nbthread and gatehouse-proxy GOMAXPROCS; the HTTPS, HTTP/2, TCP and passthrough rows use the first")
	flag.IntVar(&o.protoRoutes, "proto-routes", 1000, "route count of the HTTPS and HTTP/2 rows")
	flag.BoolVar(&o.https, "https", true, "HTTPS rows: HTTP/1.1 over TLS (wrk), TLS terminated at the proxy")
	flag.BoolVar(&o.h2, "h2", true, "HTTP/2 rows (h2load): h2c with prior knowledge, and h2 over TLS")
	flag.BoolVar(&o.tcp, "tcp", true, "TCP rows: the HTTP/1.1 exchange relayed by each proxy's L4 listener (nginx stream, HAProxy mode tcp, our TCP listener), on kept-alive connections and with a new connection per exchange")
	flag.BoolVar(&o.passthrough, "passthrough", true, "TLS passthrough rows: the exchange over TLS to the upstream, relayed by SNI undecrypted, on kept-alive connections and with a new connection per exchange")
	flag.BoolVar(&o.haproxy, "haproxy", true, "compare with HAProxy too")
	flag.IntVar(&o.threads, "threads", 1, "wrk and h2load threads")
	flag.IntVar(&o.conns, "connections", 32, "wrk and h2load connections (kept alive)")
	flag.IntVar(&o.streams, "streams", 10, "h2load concurrent streams per connection")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured run, whole seconds")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured run before each measured one, whole seconds")
	flag.BoolVar(&o.pin, "pin", true, "pin the proxy under test to the first -procs CPUs and the load generator + upstream to the others (taskset), when there are CPUs left")
	flag.IntVar(&o.rounds, "rounds", 1, "measured runs per server and row, rotating which server goes first; the summary shows medians")
	flag.StringVar(&o.out, "out", "", "also write the report (markdown) to this file")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "directory for CPU profiles of our proxy, one per route count and -procs value; the proxy engine then runs in-process in `bench-proxy serve` instead of the -proxy binary")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs)")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "stop everything after this long")
	flag.Parse()
	var err error
	if o.routes, err = parseCounts(routes); err != nil {
		fatalf("-routes: %v", err)
	}
	if o.procs, err = parseCounts(procs); err != nil {
		fatalf("-procs: %v", err)
	}
	if o.duration < time.Second || o.rounds < 1 || o.threads < 1 || o.conns < o.threads || o.streams < 1 || o.protoRoutes < 1 {
		fatalf("need -duration >= 1s, -rounds >= 1, -connections >= -threads >= 1, -streams >= 1 and -proto-routes >= 1")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	code, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-proxy:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// parseCounts reads a comma-separated list of positive counts.
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-proxy: "+format+"\n", args...)
	os.Exit(2)
}

// servers under test, in report order.
const (
	nginxName   = "nginx"
	haproxyName = "haproxy"
	oursName    = "gatehouse-proxy"
)

// load is what a row measures: a protocol and the tool that drives it.
type load int

const (
	loadH1    load = iota // HTTP/1.1 in cleartext, wrk
	loadHTTPS             // HTTP/1.1 over TLS, wrk
	loadH2C               // HTTP/2 with prior knowledge in cleartext, h2load
	loadH2                // HTTP/2 over TLS (ALPN h2), h2load
	// The L4 rows (stream.go): wrk's HTTP/1.1 exchange relayed as bytes.
	loadTCP      // through a TCP listener, on kept-alive connections
	loadTCPConn  // through a TCP listener, a new connection per exchange
	loadPass     // over TLS through a passthrough listener (by SNI), kept alive
	loadPassConn // the same, a new connection and TLS session per exchange
)

func (l load) String() string {
	return [...]string{"HTTP/1.1", "HTTPS (HTTP/1.1 over TLS)", "h2c (prior knowledge)", "h2 (TLS)",
		"TCP (keep-alive)", "TCP (connection per exchange)", "TLS passthrough (keep-alive)", "TLS passthrough (connection per exchange)"}[l]
}

// tls: the proxy ends TLS; passthrough: the upstream does, through an L4
// proxy; stream: the proxy relays bytes (L4).
func (l load) tls() bool         { return l == loadHTTPS || l == loadH2 }
func (l load) h2() bool          { return l == loadH2C || l == loadH2 }
func (l load) stream() bool      { return l >= loadTCP }
func (l load) passthrough() bool { return l == loadPass || l == loadPassConn }

// perConn: every exchange on a new connection (wrk sends Connection:
// close, the upstream closes after answering, wrk connects again).
func (l load) perConn() bool { return l == loadTCPConn || l == loadPassConn }

// url of the proxy's port that serves l. Passthrough goes to localhost,
// which wrk sends as the SNI (passthroughSNI).
func (l load) url(p ports) string {
	switch l {
	case loadHTTPS, loadH2:
		return fmt.Sprintf("https://127.0.0.1:%d", p.tls)
	case loadH2C:
		return fmt.Sprintf("http://127.0.0.1:%d", p.h2c)
	case loadTCP, loadTCPConn:
		return fmt.Sprintf("http://127.0.0.1:%d", p.tcp)
	case loadPass, loadPassConn:
		return fmt.Sprintf("https://%s:%d", passthroughSNI, p.pass)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", p.plain)
}

// direct is the load that does l's exchange with the upstream when it
// is sent to the upstream itself; false for the loads whose exchange with
// the upstream differs from the client's (the proxy ends TLS or HTTP/2).
func (l load) direct() (load, bool) {
	switch l {
	case loadH1, loadTCP:
		return loadH1, true
	case loadTCPConn, loadPass, loadPassConn:
		return l, true
	}
	return 0, false
}

// upstreamURL is the upstream's port for a direct load.
func (l load) upstreamURL(up upstreamPorts) string {
	if l.passthrough() {
		return fmt.Sprintf("https://%s:%d", passthroughSNI, up.tls)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", up.plain)
}

// caseSpec is one start of the proxies: their processes, route count, and
// the loads measured against them.
type caseSpec struct {
	procs, routes int
	loads         []load
}

// plan lists the cases of a run: HTTP/1.1 at every route count for every
// -procs value, and the HTTPS and HTTP/2 loads with the first -procs value
// at -proto-routes, in the same start as HTTP/1.1 when that count is one
// of -routes. The TCP and passthrough loads have a start of their own with
// the first -procs value: one HTTP route (which tells when a proxy is up),
// and the L4 listeners, each with its one route.
func plan(o options) []caseSpec {
	var extra []load
	if o.https {
		extra = append(extra, loadHTTPS)
	}
	if o.h2 {
		extra = append(extra, loadH2C, loadH2)
	}
	var cases []caseSpec
	for pi, p := range o.procs {
		placed := false
		for _, n := range o.routes {
			c := caseSpec{procs: p, routes: n, loads: []load{loadH1}}
			if pi == 0 && n == o.protoRoutes {
				c.loads = append(c.loads, extra...)
				placed = true
			}
			cases = append(cases, c)
		}
		if pi == 0 && !placed && len(extra) > 0 {
			cases = append(cases, caseSpec{procs: p, routes: o.protoRoutes, loads: extra})
		}
		if pi == 0 {
			var streams []load
			if o.tcp {
				streams = append(streams, loadTCP, loadTCPConn)
			}
			if o.passthrough {
				streams = append(streams, loadPass, loadPassConn)
			}
			if len(streams) > 0 {
				cases = append(cases, caseSpec{procs: p, routes: 1, loads: streams})
			}
		}
	}
	return cases
}

// suffix tells the start of the L4 loads from the HTTP/1.1 start with
// the same route count and procs, in file names.
func (c caseSpec) suffix() string {
	if slices.ContainsFunc(c.loads, load.stream) {
		return "-l4"
	}
	return ""
}

type caseResult struct {
	caseSpec
	runs  map[load]map[string][]loadResult
	rssKB map[string]int64
}

// layout is where the processes run for a -procs value.
type layout struct {
	procs      int
	serverCPUs string // taskset list for the proxy under test; "": not pinned
	loadCPUs   string // for the load generator and the upstream
	upstream   *proc
	up         upstreamPorts
	// direct: the upstream with no proxy in between, by the load whose
	// exchange it does (load.direct).
	direct map[load]loadResult
}

// newLayout pins the proxy to the first procs CPUs and the rest to the
// others, when pinning is on and CPUs are left for the rest; otherwise
// nothing is pinned.
func newLayout(procs, ncpu int, pin bool) layout {
	l := layout{procs: procs}
	if pin && procs < ncpu {
		l.serverCPUs, l.loadCPUs = cpuRange(0, procs-1), cpuRange(procs, ncpu-1)
	}
	return l
}

type env struct {
	o              options
	dir            string
	mods           nginxModules
	nginxVersion   string
	haproxyVersion string
	wrkVersion     string
	h2loadVersion  string
	selfBin        string
	perf           bool
	tls            *tlsFiles
	roots          *x509.CertPool
	servers        []string
}

func run(ctx context.Context, o options) (int, error) {
	e := &env{o: o}
	var err error
	if e.o.nginxBin, err = findBin(o.nginxBin, "nginx"); err != nil {
		return 0, err
	}
	if o.haproxy {
		if e.o.haproxyBin, err = findBin(o.haproxyBin, "haproxy"); err != nil {
			return 0, err
		}
	}
	if _, err := exec.LookPath(o.wrkBin); err != nil {
		return 0, fmt.Errorf("wrk not found: run test/bench/proxy/deps.sh")
	}
	if o.h2 {
		if _, err := exec.LookPath(o.h2loadBin); err != nil {
			return 0, fmt.Errorf("h2load not found: run test/bench/proxy/deps.sh")
		}
	}
	if o.cpuprofile == "" {
		if _, err := os.Stat(o.proxyBin); err != nil {
			return 0, fmt.Errorf("gatehouse-proxy binary: %w (go build -o bin/gatehouse-proxy ./cmd/gatehouse-proxy)", err)
		}
	} else {
		if err := os.MkdirAll(o.cpuprofile, 0o755); err != nil {
			return 0, err
		}
		if e.selfBin, err = os.Executable(); err != nil {
			return 0, err
		}
	}
	e.servers = []string{nginxName}
	if o.haproxy {
		e.servers = append(e.servers, haproxyName)
	}
	e.servers = append(e.servers, oursName)
	e.versions()
	if e.perf = perfWorks(o.perfBin) && o.warmup >= time.Second; !e.perf {
		fmt.Fprintln(os.Stderr, "bench-proxy: perf cannot count system calls here (or -warmup is under 1s): the syscalls/req column stays empty")
	}

	if e.dir, err = os.MkdirTemp("", "bench-proxy-"); err != nil {
		return 0, err
	}
	// nginx workers drop root for nobody: let them reach their temp dirs.
	_ = os.Chmod(e.dir, 0o755)
	if o.keep {
		fmt.Fprintln(os.Stderr, "bench-proxy: keeping", e.dir)
	} else {
		defer os.RemoveAll(e.dir)
	}
	if o.https || o.h2 || o.passthrough {
		if e.tls, e.roots, err = writeKeyPair(filepath.Join(e.dir, "tls")); err != nil {
			return 0, err
		}
	}

	loadBefore := loadAvg()
	ncpu := runtime.NumCPU()
	_, tasksetErr := exec.LookPath("taskset")
	fmt.Fprintf(os.Stderr, "bench-proxy: load average before: %s; %d CPUs\n", loadBefore, ncpu)

	cases := plan(o)
	var layouts []layout
	var results []caseResult
	for _, p := range o.procs {
		lay := newLayout(p, ncpu, o.pin && tasksetErr == nil)
		fmt.Fprintf(os.Stderr, "bench-proxy: %d proc(s): server CPUs %q, load generator + upstream CPUs %q\n", p, lay.serverCPUs, lay.loadCPUs)
		var mine []caseSpec
		for _, c := range cases {
			if c.procs == p {
				mine = append(mine, c)
			}
		}
		rs, err := e.runLayout(ctx, &lay, mine)
		layouts = append(layouts, lay)
		results = append(results, rs...)
		if err != nil {
			return 0, err
		}
	}

	report := e.report(results, layouts, loadBefore, loadAvg())
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return 0, err
		}
		fmt.Fprintln(os.Stderr, "bench-proxy: report written to", o.out)
	}
	for _, r := range results {
		for l, byServer := range r.runs {
			for _, name := range e.servers {
				for _, w := range byServer[name] {
					if w.Non2xx3xx > 0 {
						return 1, fmt.Errorf("%s, %s, %d routes, %d proc(s): %d non-2xx/3xx responses: the figures are not valid", name, l, r.routes, r.procs, w.Non2xx3xx)
					}
				}
			}
		}
	}
	return 0, nil
}

// findBin is the binary given, or name from PATH or /usr/sbin.
func findBin(given, name string) (string, error) {
	bin := given
	if bin == "" {
		var err error
		if bin, err = exec.LookPath(name); err != nil {
			bin = "/usr/sbin/" + name
		}
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s not found (%v): run test/bench/proxy/deps.sh", name, err)
	}
	return bin, nil
}

// versions records what the tools say of themselves, for the report.
func (e *env) versions() {
	v, _ := exec.Command(e.o.nginxBin, "-V").CombinedOutput()
	e.mods = detectNginxModules(string(v))
	if _, err := os.Stat(e.mods.streamModule); e.mods.streamModule != "" && err != nil {
		e.mods.stream = false
	}
	if !e.mods.stream && (e.o.tcp || e.o.passthrough) {
		fmt.Fprintln(os.Stderr, "bench-proxy: this nginx has no stream module (Debian: libnginx-mod-stream; test/bench/proxy/deps.sh installs it): the TCP and passthrough rows leave nginx out")
	}
	e.nginxVersion = strings.TrimSpace(strings.TrimPrefix(firstLine(string(v)), "nginx version:"))
	if e.o.haproxy {
		hv, _ := exec.Command(e.o.haproxyBin, "-v").CombinedOutput()
		e.haproxyVersion = strings.TrimSpace(firstLine(string(hv)))
		if i := strings.Index(e.haproxyVersion, " - "); i > 0 {
			e.haproxyVersion = e.haproxyVersion[:i]
		}
	}
	wv, _ := exec.Command(e.o.wrkBin, "-v").CombinedOutput() // exits 1 after printing its version
	e.wrkVersion = strings.TrimSpace(firstLine(string(wv)))
	if i := strings.Index(e.wrkVersion, " Copyright"); i > 0 {
		e.wrkVersion = e.wrkVersion[:i]
	}
	if e.o.h2 {
		h2v, _ := exec.Command(e.o.h2loadBin, "--version").CombinedOutput()
		e.h2loadVersion = strings.TrimSpace(firstLine(string(h2v)))
	}
}

// runLayout starts the upstream on the layout's load CPUs, measures it
// without a proxy in between, and runs the cases.
func (e *env) runLayout(ctx context.Context, lay *layout, cases []caseSpec) ([]caseResult, error) {
	var err error
	if lay.up.plain, err = freePort(); err != nil {
		return nil, err
	}
	for _, c := range cases {
		for _, l := range c.loads {
			if l.passthrough() && lay.up.tls == 0 {
				if lay.up.tls, err = freePort(); err != nil {
					return nil, err
				}
			}
		}
	}
	upDir := filepath.Join(e.dir, fmt.Sprintf("upstream-%dprocs", lay.procs))
	if err := os.MkdirAll(upDir, 0o755); err != nil {
		return nil, err
	}
	up, err := e.startNginx("upstream nginx", upDir, upstreamConfig(upDir, lay.up, e.mods, e.tls), lay.loadCPUs)
	if err != nil {
		return nil, err
	}
	defer up.stop()
	lay.upstream = up
	if err := waitHTTP(ctx, up, fmt.Sprintf("http://127.0.0.1:%d/", lay.up.plain), 200, 10*time.Second); err != nil {
		return nil, withLog(err, filepath.Join(upDir, "error.log"))
	}

	// How much the load CPUs can do with no proxy in between: wrk and the
	// upstream do the same work per request when a proxy is in between, so
	// a proxy far below this figure is bound by itself, not by them.
	n := e.o.routes[len(e.o.routes)-1]
	lay.direct = map[load]loadResult{}
	for _, l := range directLoads(cases) {
		fmt.Fprintf(os.Stderr, "bench-proxy: %d proc(s): upstream direct, %s\n", lay.procs, l)
		if lay.direct[l], err = e.measure(ctx, lay, l, l.upstreamURL(lay.up)+targetPath(n), n, nil); err != nil {
			return nil, err
		}
	}
	var results []caseResult
	for _, c := range cases {
		r, err := e.runCase(ctx, lay, c)
		if err != nil {
			return results, fmt.Errorf("%d routes, %d proc(s): %w", c.routes, c.procs, err)
		}
		results = append(results, r)
	}
	return results, nil
}

// directLoads are the loads the upstream is measured with directly for
// cases: HTTP/1.1 always, and those of the cases' L4 loads.
func directLoads(cases []caseSpec) []load {
	out := []load{loadH1}
	for _, c := range cases {
		for _, l := range c.loads {
			if d, ok := l.direct(); ok && !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	return out
}

// serversFor are the servers that run load l: nginx runs the L4 loads
// only with its stream module.
func (e *env) serversFor(l load) []string {
	if l.stream() && !e.mods.stream {
		return slices.DeleteFunc(slices.Clone(e.servers), func(s string) bool { return s == nginxName })
	}
	return e.servers
}

// runCase starts the proxies with the case's routes and processes, checks
// that they route on every port the case uses, and measures each load.
func (e *env) runCase(ctx context.Context, lay *layout, c caseSpec) (caseResult, error) {
	res := caseResult{caseSpec: c, runs: map[load]map[string][]loadResult{}, rssKB: map[string]int64{}}
	dir := filepath.Join(e.dir, fmt.Sprintf("%dprocs-%droutes%s", c.procs, c.routes, c.suffix()))
	needTLS, needH2C, needTCP, needPass := false, false, false, false
	for _, l := range c.loads {
		needTLS = needTLS || l.tls()
		needH2C = needH2C || l == loadH2C
		needTCP = needTCP || l == loadTCP || l == loadTCPConn
		needPass = needPass || l.passthrough()
	}
	portsOf := map[string]ports{}
	for _, name := range e.servers {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			return res, err
		}
		var p ports
		var err error
		if p.plain, err = freePort(); err != nil {
			return res, err
		}
		if needTLS {
			if p.tls, err = freePort(); err != nil {
				return res, err
			}
		}
		if needH2C {
			p.h2c = p.plain // ours: cleartext HTTP/2 on the same port
			if name != oursName {
				if p.h2c, err = freePort(); err != nil {
					return res, err
				}
			}
		}
		if needTCP {
			if p.tcp, err = freePort(); err != nil {
				return res, err
			}
		}
		if needPass {
			if p.pass, err = freePort(); err != nil {
				return res, err
			}
		}
		if name == nginxName && !e.mods.stream {
			p.tcp, p.pass = 0, 0
		}
		portsOf[name] = p
	}

	fmt.Fprintf(os.Stderr, "bench-proxy: %d routes, %d proc(s): starting %s\n", c.routes, c.procs, strings.Join(e.servers, ", "))
	procs := map[string]*proc{}
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, name := range e.servers {
		p, err := e.startServer(ctx, name, filepath.Join(dir, name), c, portsOf[name], lay.up, lay.serverCPUs)
		if p != nil {
			procs[name] = p
		}
		if err != nil {
			return res, err
		}
	}

	for _, l := range c.loads {
		for _, name := range e.serversFor(l) {
			var err error
			if l.stream() {
				err = checkStream(ctx, l, l.url(portsOf[name]), c.routes, e.roots)
			} else {
				err = checkRouting(ctx, e.client(l), l.url(portsOf[name]), c.routes, l.h2())
			}
			if err != nil {
				return res, fmt.Errorf("%s does not route %s as configured: %w", name, l, err)
			}
		}
	}

	for _, l := range c.loads {
		res.runs[l] = map[string][]loadResult{}
		servers := e.serversFor(l)
		for round := 0; round < e.o.rounds; round++ {
			// Rotate which server goes first.
			order := append(slices.Clone(servers[round%len(servers):]), servers[:round%len(servers)]...)
			for _, name := range order {
				fmt.Fprintf(os.Stderr, "bench-proxy: %d routes, %d proc(s), %s: %s (round %d/%d)\n", c.routes, c.procs, l, name, round+1, e.o.rounds)
				w, err := e.measure(ctx, lay, l, l.url(portsOf[name])+targetPath(c.routes), c.routes, procs[name])
				if err != nil {
					return res, err
				}
				res.runs[l][name] = append(res.runs[l][name], w)
			}
		}
	}
	for name, p := range procs {
		res.rssKB[name] = treeRSSKB(p.pid())
	}
	return res, nil
}

// startServer writes a proxy's configuration into dir, starts it and waits
// until it answers.
func (e *env) startServer(ctx context.Context, name, dir string, c caseSpec, p ports, up upstreamPorts, cpus string) (*proc, error) {
	url404 := fmt.Sprintf("http://127.0.0.1:%d/", p.plain)
	switch name {
	case nginxName:
		ng, err := e.startNginx(name, dir, nginxProxyConfig(dir, c.routes, p, up, c.procs, e.mods, e.tls), cpus)
		if err != nil {
			return nil, err
		}
		return ng, withLog(waitHTTP(ctx, ng, url404, 404, 30*time.Second), filepath.Join(dir, "error.log"))
	case haproxyName:
		mapPath, confPath := filepath.Join(dir, "routes.map"), filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(mapPath, []byte(haproxyMap(c.routes)), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(confPath, []byte(haproxyConfig(mapPath, p, up, c.procs, e.tls)), 0o644); err != nil {
			return nil, err
		}
		logPath := filepath.Join(dir, "haproxy.log")
		hp, err := startProc(name, logPath, cpus, nil, e.o.haproxyBin, "-db", "-f", confPath)
		if err != nil {
			return nil, err
		}
		return hp, withLog(waitHTTP(ctx, hp, url404, 404, 30*time.Second), logPath)
	}
	tablePath := filepath.Join(dir, "table.json")
	if err := writeTable(tablePath, routeTable(c.routes, p, up)); err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	logPath := filepath.Join(dir, "proxy.log")
	goEnv := []string{"GOMAXPROCS=" + strconv.Itoa(c.procs)}
	var gh *proc
	if e.o.cpuprofile != "" {
		prof := filepath.Join(e.o.cpuprofile, fmt.Sprintf("gatehouse-proxy-%d-routes-%dprocs%s.pprof", c.routes, c.procs, c.suffix()))
		args := []string{"serve", "-table", tablePath, "-admin-address", admin, "-bind-address", "127.0.0.1", "-cpuprofile", prof}
		if p.tls != 0 {
			args = append(args, "-tls-cert", e.tls.cert, "-tls-key", e.tls.key, "-tls-name", keyPairName)
		}
		gh, err = startProc(name, logPath, cpus, goEnv, e.selfBin, args...)
	} else {
		args := []string{"--table", tablePath, "--admin-address", admin, "--bind-address", "127.0.0.1",
			"--log-level", "warn", "--drain-delay", "0s", "--drain-timeout", "2s"}
		if p.tls != 0 {
			args = append(args, "--key-pairs", e.tls.keyPairs)
		}
		gh, err = startProc(name, logPath, cpus, goEnv, e.o.proxyBin, args...)
	}
	if err != nil {
		return nil, err
	}
	return gh, withLog(waitHTTP(ctx, gh, "http://"+admin+"/readyz", 200, 60*time.Second), logPath)
}

// measure runs the load generator for the warmup, then for the measured
// duration, against route n's target; server's CPU time and system calls
// are read around the measured run.
func (e *env) measure(ctx context.Context, lay *layout, l load, url string, n int, server *proc) (loadResult, error) {
	w := loadRun{
		bin: e.o.wrkBin, cpus: lay.loadCPUs, threads: e.o.threads, conns: e.o.conns,
		url: url, headers: []string{tenantHeader + ": " + routeTenant(n)},
	}
	if l.perConn() {
		w.headers = append(w.headers, "Connection: close")
	}
	if l.h2() {
		// HTTP/2 header names are lower case.
		w.bin, w.h2, w.streams = e.o.h2loadBin, true, e.o.streams
		w.headers = []string{strings.ToLower(tenantHeader) + ": " + routeTenant(n)}
	}
	// System calls are counted during the warmup: perf's tracepoint makes
	// each call dearer, which the measured run's CPU time should not see.
	var warm loadResult
	if e.o.warmup >= time.Second {
		var perf *proc
		perfLog := filepath.Join(e.dir, "perf.log")
		if server != nil && e.perf {
			var err error
			if perf, err = countSyscalls(e.o.perfBin, server.pid(), perfLog); err != nil {
				return loadResult{}, err
			}
		}
		w.duration = e.o.warmup
		var err error
		warm, err = w.run(ctx)
		var n int64
		if perf != nil {
			n = readSyscallCount(perf, perfLog)
		}
		if err != nil {
			return loadResult{}, err
		}
		if warm.Requests > 0 {
			warm.SyscallsPerReq = float64(n) / float64(warm.Requests)
		}
	}
	w.duration = e.o.duration
	var before usage
	if server != nil {
		before = treeUsage(server.pid())
	}
	upBefore, busyBefore := treeUsage(lay.upstream.pid()), machineBusy()
	r, err := w.run(ctx)
	if err == nil {
		others := machineBusy() - busyBefore - treeUsage(lay.upstream.pid()).sub(upBefore).cpu - r.GenCPU
		if server != nil {
			others -= treeUsage(server.pid()).sub(before).cpu
		}
		r.OtherCPUs = max(others.Seconds(), 0) / e.o.duration.Seconds()
	}
	if err == nil && server != nil && r.Requests > 0 {
		used := treeUsage(server.pid()).sub(before)
		r.CPUPerReq = used.cpu / time.Duration(r.Requests)
		r.ReadsPerReq = float64(used.syscr) / float64(r.Requests)
		r.WritesPerReq = float64(used.syscw) / float64(r.Requests)
		r.SyscallsPerReq = warm.SyscallsPerReq
	}
	return r, err
}

func (e *env) startNginx(name, dir, conf, cpus string) (*proc, error) {
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return startProc(name, filepath.Join(dir, "stderr.log"), cpus, nil, e.o.nginxBin,
		"-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
}

// client is the HTTP client the routing checks use for a load: HTTP/1.1 or
// HTTP/2 only, TLS trusting the benchmark's certificate, h2c with prior
// knowledge.
func (e *env) client(l load) *http.Client {
	var p http.Protocols
	t := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}}
	switch l {
	case loadH1, loadHTTPS:
		p.SetHTTP1(true)
	case loadH2C:
		p.SetUnencryptedHTTP2(true)
	case loadH2:
		p.SetHTTP2(true)
	}
	t.Protocols = &p
	return &http.Client{Timeout: 5 * time.Second, Transport: t}
}

// checkRouting asks for the first, the middle and the last route with and
// without the right header, before any load: 200 with the upstream's body,
// or 404; over HTTP/2 when h2 is set.
func checkRouting(ctx context.Context, client *http.Client, base string, n int, h2 bool) error {
	defer client.CloseIdleConnections()
	get := func(path, tenant string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if tenant != "" {
			req.Header.Set(tenantHeader, tenant)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		if got := resp.ProtoMajor == 2; got != h2 {
			return 0, "", fmt.Errorf("GET %s answered over %s", path, resp.Proto)
		}
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	for _, i := range slices.Compact([]int{1, (n + 1) / 2, n}) {
		code, body, err := get(targetPath(i), routeTenant(i))
		if err != nil {
			return err
		}
		if code != 200 || body != upstreamBody {
			return fmt.Errorf("GET %s with %s: %s: %d %q, want 200 %q", targetPath(i), tenantHeader, routeTenant(i), code, body, upstreamBody)
		}
		for _, tenant := range []string{"", routeTenant(i + 1)} {
			code, _, err := get(targetPath(i), tenant)
			if err != nil {
				return err
			}
			if code != 404 {
				return fmt.Errorf("GET %s with %s: %q: %d, want 404", targetPath(i), tenantHeader, tenant, code)
			}
		}
	}
	return nil
}

// withLog adds the end of a log file to err (nil stays nil).
func withLog(err error, path string) error {
	if err == nil {
		return nil
	}
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	if len(data) == 0 {
		return err
	}
	return fmt.Errorf("%w\n--- %s:\n%s", err, path, data)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func cpuRange(lo, hi int) string {
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], ", ")
}

var errNoRuns = errors.New("no runs")

// median of a server's runs: rps, the compared latency (p99, or the mean
// for h2load) and CPU per request, each taken separately.
func median(runs []loadResult) (rps float64, tail, cpu time.Duration, err error) {
	if len(runs) == 0 {
		return 0, 0, 0, errNoRuns
	}
	r := make([]float64, len(runs))
	p := make([]time.Duration, len(runs))
	c := make([]time.Duration, len(runs))
	for i, w := range runs {
		r[i], p[i], c[i] = w.RPS, w.tail(), w.CPUPerReq
	}
	slices.Sort(r)
	slices.Sort(p)
	slices.Sort(c)
	m := len(runs) / 2
	if len(runs)%2 == 1 {
		return r[m], p[m], c[m], nil
	}
	return (r[m-1] + r[m]) / 2, (p[m-1] + p[m]) / 2, (c[m-1] + c[m]) / 2, nil
}
