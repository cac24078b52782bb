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
	proxyBin   string
	nginxBin   string
	wrkBin     string
	routes     []int
	threads    int
	conns      int
	duration   time.Duration
	warmup     time.Duration
	procs      int
	pin        bool
	rounds     int
	out        string
	cpuprofile string
	keep       bool
	timeout    time.Duration
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
	var routes string
	flag.StringVar(&o.proxyBin, "proxy", "bin/gatehouse-proxy", "gatehouse-proxy binary")
	flag.StringVar(&o.nginxBin, "nginx", "", "nginx binary (default: from PATH or /usr/sbin/nginx)")
	flag.StringVar(&o.wrkBin, "wrk", "wrk", "wrk binary")
	flag.StringVar(&routes, "routes", "1,1000,10000", "route counts, comma-separated")
	flag.IntVar(&o.threads, "threads", 1, "wrk threads")
	flag.IntVar(&o.conns, "connections", 32, "wrk connections (kept alive)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured wrk run, whole seconds")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured wrk run before each measured one, whole seconds")
	flag.IntVar(&o.procs, "procs", 1, "nginx worker_processes and gatehouse-proxy GOMAXPROCS")
	flag.BoolVar(&o.pin, "pin", true, "pin the proxy under test to the first -procs CPUs and wrk + upstream to the others (taskset), when there are CPUs left")
	flag.IntVar(&o.rounds, "rounds", 1, "measured runs per server and route count, alternating which server goes first; the table shows medians")
	flag.StringVar(&o.out, "out", "", "also write the report (markdown) to this file")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "directory for CPU profiles of our proxy, one per route count; the proxy engine then runs in-process in `bench-proxy serve` instead of the -proxy binary")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs)")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "stop everything after this long")
	flag.Parse()
	for _, f := range strings.Split(routes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fatalf("-routes: %q is not a positive count", f)
		}
		o.routes = append(o.routes, n)
	}
	if o.duration < time.Second || o.rounds < 1 || o.procs < 1 || o.threads < 1 || o.conns < o.threads {
		fatalf("need -duration >= 1s, -rounds >= 1, -procs >= 1 and -connections >= -threads >= 1")
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

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-proxy: "+format+"\n", args...)
	os.Exit(2)
}

// servers under test, in report order.
const (
	nginxName = "nginx"
	oursName  = "gatehouse-proxy"
)

type caseResult struct {
	routes int
	runs   map[string][]wrkResult
	rssKB  map[string]int64
}

type env struct {
	o            options
	dir          string
	serverCPUs   string
	loadCPUs     string
	mods         nginxModules
	nginxVersion string
	wrkVersion   string
	upstreamPort int
	selfBin      string
}

func run(ctx context.Context, o options) (int, error) {
	e := &env{o: o}
	var err error
	if e.o.nginxBin == "" {
		if e.o.nginxBin, err = exec.LookPath("nginx"); err != nil {
			e.o.nginxBin = "/usr/sbin/nginx"
		}
	}
	if _, err := os.Stat(e.o.nginxBin); err != nil {
		return 0, fmt.Errorf("nginx not found (%v): run test/bench/proxy/deps.sh", err)
	}
	if _, err := exec.LookPath(o.wrkBin); err != nil {
		return 0, fmt.Errorf("wrk not found: run test/bench/proxy/deps.sh")
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
	v, _ := exec.Command(e.o.nginxBin, "-V").CombinedOutput()
	e.mods = detectNginxModules(string(v))
	e.nginxVersion = strings.TrimSpace(strings.TrimPrefix(firstLine(string(v)), "nginx version:"))
	wv, _ := exec.Command(o.wrkBin, "-v").CombinedOutput() // exits 1 after printing its version
	e.wrkVersion = strings.TrimSpace(firstLine(string(wv)))
	if i := strings.Index(e.wrkVersion, " Copyright"); i > 0 {
		e.wrkVersion = e.wrkVersion[:i]
	}

	ncpu := runtime.NumCPU()
	if o.pin && o.procs < ncpu {
		if _, err := exec.LookPath("taskset"); err == nil {
			e.serverCPUs = cpuRange(0, o.procs-1)
			e.loadCPUs = cpuRange(o.procs, ncpu-1)
		}
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

	loadBefore := loadAvg()
	fmt.Fprintf(os.Stderr, "bench-proxy: load average before: %s; %d CPUs; server CPUs %q, wrk+upstream CPUs %q\n", loadBefore, ncpu, e.serverCPUs, e.loadCPUs)

	// The upstream both proxies forward to.
	if e.upstreamPort, err = freePort(); err != nil {
		return 0, err
	}
	upDir := filepath.Join(e.dir, "upstream")
	if err := os.MkdirAll(upDir, 0o755); err != nil {
		return 0, err
	}
	up, err := e.startNginx("upstream nginx", upDir, upstreamConfig(upDir, e.upstreamPort, e.mods), e.loadCPUs)
	if err != nil {
		return 0, err
	}
	defer up.stop()
	if err := waitHTTP(ctx, up, fmt.Sprintf("http://127.0.0.1:%d/", e.upstreamPort), 200, 10*time.Second); err != nil {
		return 0, withLog(err, filepath.Join(upDir, "error.log"))
	}

	// How much the load CPUs can do with no proxy in between: wrk and the
	// upstream do the same work per request when a proxy is in between, so
	// a proxy far below this figure is bound by itself, not by them.
	n := o.routes[len(o.routes)-1]
	fmt.Fprintln(os.Stderr, "bench-proxy: upstream direct")
	direct, err := e.measure(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", e.upstreamPort, targetPath(n)), n, nil)
	if err != nil {
		return 0, err
	}

	var results []caseResult
	for _, n := range o.routes {
		r, err := e.runCase(ctx, n)
		if err != nil {
			return 0, fmt.Errorf("%d routes: %w", n, err)
		}
		results = append(results, r)
	}

	report := e.report(results, direct, loadBefore, loadAvg())
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return 0, err
		}
		fmt.Fprintln(os.Stderr, "bench-proxy: report written to", o.out)
	}
	for _, r := range results {
		for _, name := range []string{nginxName, oursName} {
			for _, w := range r.runs[name] {
				if w.Non2xx3xx > 0 {
					return 1, fmt.Errorf("%s at %d routes answered %d non-2xx/3xx responses: the figures are not valid", name, r.routes, w.Non2xx3xx)
				}
			}
		}
	}
	return 0, nil
}

// runCase starts both proxies with n routes, checks that they route, and
// measures each.
func (e *env) runCase(ctx context.Context, n int) (caseResult, error) {
	res := caseResult{routes: n, runs: map[string][]wrkResult{}, rssKB: map[string]int64{}}
	dir := filepath.Join(e.dir, strconv.Itoa(n))
	ngDir, ghDir := filepath.Join(dir, "nginx"), filepath.Join(dir, "gatehouse")
	for _, d := range []string{ngDir, ghDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return res, err
		}
	}
	ngPort, err := freePort()
	if err != nil {
		return res, err
	}
	ghPort, err := freePort()
	if err != nil {
		return res, err
	}
	adminPort, err := freePort()
	if err != nil {
		return res, err
	}

	fmt.Fprintf(os.Stderr, "bench-proxy: %d routes: starting nginx and gatehouse-proxy\n", n)
	ng, err := e.startNginx("nginx", ngDir, nginxProxyConfig(ngDir, n, ngPort, e.upstreamPort, e.o.procs, e.mods), e.serverCPUs)
	if err != nil {
		return res, err
	}
	defer ng.stop()
	if err := waitHTTP(ctx, ng, fmt.Sprintf("http://127.0.0.1:%d/", ngPort), 404, 30*time.Second); err != nil {
		return res, withLog(err, filepath.Join(ngDir, "error.log"))
	}

	tablePath := filepath.Join(ghDir, "table.json")
	if err := writeTable(tablePath, routeTable(n, ghPort, e.upstreamPort)); err != nil {
		return res, err
	}
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	ghLog := filepath.Join(ghDir, "proxy.log")
	var gh *proc
	goEnv := []string{"GOMAXPROCS=" + strconv.Itoa(e.o.procs)}
	if e.o.cpuprofile != "" {
		prof := filepath.Join(e.o.cpuprofile, fmt.Sprintf("gatehouse-proxy-%d-routes.pprof", n))
		gh, err = startProc(oursName, ghLog, e.serverCPUs, goEnv, e.selfBin, "serve",
			"-table", tablePath, "-admin-address", admin, "-bind-address", "127.0.0.1", "-cpuprofile", prof)
	} else {
		gh, err = startProc(oursName, ghLog, e.serverCPUs, goEnv, e.o.proxyBin,
			"--table", tablePath, "--admin-address", admin, "--bind-address", "127.0.0.1",
			"--log-level", "warn", "--drain-delay", "0s", "--drain-timeout", "2s")
	}
	if err != nil {
		return res, err
	}
	defer gh.stop()
	if err := waitHTTP(ctx, gh, "http://"+admin+"/readyz", 200, 60*time.Second); err != nil {
		return res, withLog(err, ghLog)
	}

	procs := map[string]*proc{nginxName: ng, oursName: gh}
	urls := map[string]string{
		nginxName: fmt.Sprintf("http://127.0.0.1:%d", ngPort),
		oursName:  fmt.Sprintf("http://127.0.0.1:%d", ghPort),
	}
	for _, name := range []string{nginxName, oursName} {
		if err := checkRouting(ctx, urls[name], n); err != nil {
			return res, fmt.Errorf("%s does not route as configured: %w", name, err)
		}
	}

	for round := 0; round < e.o.rounds; round++ {
		order := []string{nginxName, oursName}
		if round%2 == 1 {
			order = []string{oursName, nginxName}
		}
		for _, name := range order {
			fmt.Fprintf(os.Stderr, "bench-proxy: %d routes: %s (round %d/%d)\n", n, name, round+1, e.o.rounds)
			w, err := e.measure(ctx, urls[name]+targetPath(n), n, procs[name])
			if err != nil {
				return res, err
			}
			res.runs[name] = append(res.runs[name], w)
		}
	}
	res.rssKB[nginxName] = treeRSSKB(ng.pid())
	res.rssKB[oursName] = rssKB(gh.pid())
	return res, nil
}

// measure runs wrk for the warmup, then for the measured duration, against
// route n's target.
func (e *env) measure(ctx context.Context, url string, n int, server *proc) (wrkResult, error) {
	w := wrkRun{
		bin: e.o.wrkBin, cpus: e.loadCPUs, threads: e.o.threads, conns: e.o.conns,
		url: url, headers: []string{tenantHeader + ": " + routeTenant(n)},
	}
	if e.o.warmup >= time.Second {
		w.duration = e.o.warmup
		if _, err := w.run(ctx); err != nil {
			return wrkResult{}, err
		}
	}
	w.duration = e.o.duration
	var before usage
	if server != nil {
		before = treeUsage(server.pid())
	}
	r, err := w.run(ctx)
	if err == nil && server != nil && r.Requests > 0 {
		used := treeUsage(server.pid()).sub(before)
		r.CPUPerReq = used.cpu / time.Duration(r.Requests)
		r.ReadsPerReq = float64(used.syscr) / float64(r.Requests)
		r.WritesPerReq = float64(used.syscw) / float64(r.Requests)
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

// checkRouting asks for the first and the last route with and without the
// right header, before any load: 200 with the upstream's body, or 404.
func checkRouting(ctx context.Context, base string, n int) error {
	client := &http.Client{Timeout: 5 * time.Second}
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

func withLog(err error, path string) error {
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

// median of a server's runs: rps and p99 taken separately.
func median(runs []wrkResult) (rps float64, p99 time.Duration, err error) {
	if len(runs) == 0 {
		return 0, 0, errNoRuns
	}
	r := make([]float64, len(runs))
	p := make([]time.Duration, len(runs))
	for i, w := range runs {
		r[i], p[i] = w.RPS, w.p(99)
	}
	slices.Sort(r)
	slices.Sort(p)
	if len(runs)%2 == 1 {
		return r[len(r)/2], p[len(p)/2], nil
	}
	m := len(runs) / 2
	return (r[m-1] + r[m]) / 2, (p[m-1] + p[m]) / 2, nil
}
