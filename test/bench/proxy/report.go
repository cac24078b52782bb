package main

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

func (e *env) report(results []caseResult, layouts []layout, loadBefore, loadAfter string) string {
	var b strings.Builder
	o := e.o
	host, _ := os.Hostname()
	title := "nginx"
	if o.haproxy {
		title = "nginx vs HAProxy"
	}
	fmt.Fprintf(&b, "## gatehouse-proxy vs %s: prefix + header routes\n\n", title)
	fmt.Fprintf(&b, "- %s, host %s, %d CPUs, load average (1, 5, 15 min) before %s, after %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), loadBefore, loadAfter)
	ours := "bin/gatehouse-proxy (" + o.proxyBin + ")"
	if o.cpuprofile != "" {
		ours = "dataplane/proxy in-process (`bench-proxy serve`, CPU profile on)"
	}
	fmt.Fprintf(&b, "- ours: %s, %s, GOMAXPROCS = procs; nginx: %s, worker_processes = procs, access_log off", ours, runtime.Version(), e.nginxVersion)
	if o.haproxy {
		fmt.Fprintf(&b, "; HAProxy: %s, nbthread = procs, no log", strings.TrimPrefix(e.haproxyVersion, "HAProxy version "))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- HTTP/1.1 and HTTPS: %s, `wrk -t%d -c%d -d%s --latency -H '%s: t<N>' http[s]://127.0.0.1:PORT/svc-<N>/item`\n",
		e.wrkVersion, o.threads, o.conns, o.duration, tenantHeader)
	if o.h2 {
		fmt.Fprintf(&b, "- h2c and h2: %s, `h2load -t%d -c%d -m%d -D%d -H 'x-tenant: t<N>' http[s]://127.0.0.1:PORT/svc-<N>/item`; h2load prints no percentiles: for these rows p50 shows its mean and p99 its maximum, and the summary compares means\n",
			e.h2loadVersion, o.threads, o.conns, o.streams, int(o.duration/time.Second))
	}
	fmt.Fprintf(&b, "- every measured run follows a %s warmup of the same; %d round(s)%s\n", o.warmup, o.rounds, medianNote(o.rounds))
	b.WriteString("- routes: route i matches prefix `/svc-<i>` and header `X-Tenant: t<i>`; the load targets the last route (N)\n")
	b.WriteString("- nginx: one prefix `location /svc-<i>` per route with `if ($http_x_tenant != \"t<i>\") { return 404; }` then `proxy_pass` to an `upstream` block with `keepalive 256`, `proxy_http_version 1.1`, `proxy_set_header Connection \"\"`; h2c on a port of its own (`listen ... http2`)\n")
	if o.haproxy {
		b.WriteString("- HAProxy: key `<X-Tenant>|<path>/` looked up with `map_beg` (prefix tree) in a map of `t<i>|/svc-<i>/ upstream`, `use_backend` the result, else a backend answering 404; `http-reuse always`, `option forwardfor`; h2c on a `proto h2` bind\n")
	}
	if hasStreamRows(results) {
		fmt.Fprintf(&b, "- TCP and TLS passthrough (L4): the same wrk command (route 1's path and header) to each proxy's L4 listeners, which relay bytes to the upstream: `http://127.0.0.1:PORT/...` through a TCP listener (nginx `stream` with `proxy_pass`, HAProxy `mode tcp`, ours a TCP listener with one route), `https://%[1]s:PORT/...` (SNI `%[1]s`) through a listener that reads the ClientHello and passes the session undecrypted to the upstream's TLS port (nginx `ssl_preread` and a `map` of the SNI, HAProxy `tcp-request inspect-delay` and `use_backend if { req.ssl_sni -i %[1]s }`, ours a TLS listener with `passthrough` and one route for `%[1]s`); a session with another SNI is closed by all three. The \"connection per exchange\" rows add `-H 'Connection: close'`: the upstream closes after each answer and wrk connects again, so their rps is connections per second, each with its TLS handshake in the passthrough row; wrk's latency starts at the request's write, after wrk's connect, and so includes the proxy's accept and its own connect to the upstream\n", passthroughSNI)
	}
	if o.https || o.h2 || hasStreamRows(results) {
		fmt.Fprintf(&b, "- TLS: self-signed ECDSA P-256 certificate, TLS 1.3 with %s on all three, connections kept alive (one handshake per connection)\n", tlsSuite)
	}
	for _, l := range layouts {
		if l.serverCPUs != "" {
			fmt.Fprintf(&b, "- %d proc(s): pinned with taskset: proxy under test on CPU %s, load generator and upstream on CPU %s", l.procs, l.serverCPUs, l.loadCPUs)
		} else {
			fmt.Fprintf(&b, "- %d proc(s): not pinned: proxy, load generator and upstream share all %d CPUs, so rps and latency measure the machine as much as the proxy; CPU/req compares the proxies", l.procs, runtime.NumCPU())
		}
		fmt.Fprintf(&b, "; upstream (nginx, 1 worker, `return 200 %q`) direct, no proxy:", upstreamBody)
		for i, dl := range slices.Sorted(maps.Keys(l.direct)) {
			d := l.direct[dl]
			if i > 0 {
				b.WriteString(";")
			}
			fmt.Fprintf(&b, " %s %s rps, p99 %s (others' CPU %.2f)", directName(dl), fmtRPS(d.RPS), fmtDur(d.p(99)), d.OtherCPUs)
		}
		b.WriteString("\n")
	}

	others := slices.DeleteFunc(slices.Clone(e.servers), func(s string) bool { return s == oursName })
	b.WriteString("\nSummary")
	if o.rounds > 1 {
		b.WriteString(" (medians)")
	}
	b.WriteString(": each cell lists " + strings.Join(e.servers, " · ") + "; ratios are ours over theirs (rps above 1, p99 and CPU/req below 1 favour us); others' CPU: see below.\n\n")
	b.WriteString("| load | procs | routes | rps | p99 (h2: mean) | CPU/req µs |")
	for _, s := range others {
		fmt.Fprintf(&b, " ours/%s rps · p99 · CPU |", s)
	}
	b.WriteString(" others' CPU (max) |\n|---|---:|---:|---:|---:|---:|" + strings.Repeat("---:|", len(others)) + "---:|\n")
	for _, r := range results {
		for _, l := range r.loads {
			rps, tail, cpu := map[string]float64{}, map[string]time.Duration{}, map[string]time.Duration{}
			var rc, tc, cc []string
			var busiest float64
			for _, s := range e.servers {
				for _, w := range r.runs[l][s] {
					busiest = max(busiest, w.OtherCPUs)
				}
				var err error
				if rps[s], tail[s], cpu[s], err = median(r.runs[l][s]); err != nil {
					// Not run (nginx without its stream module).
					rc, tc, cc = append(rc, "—"), append(tc, "—"), append(cc, "—")
					continue
				}
				rc = append(rc, fmtRPS(rps[s]))
				tc = append(tc, fmtDur(tail[s]))
				cc = append(cc, fmt.Sprintf("%.1f", float64(cpu[s])/float64(time.Microsecond)))
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |", l, r.procs, fmtInt(int64(r.routes)),
				strings.Join(rc, " · "), strings.Join(tc, " · "), strings.Join(cc, " · "))
			for _, s := range others {
				fmt.Fprintf(&b, " %s · %s · %s |", ratio(rps[oursName], rps[s]), ratio(float64(tail[oursName]), float64(tail[s])), ratio(float64(cpu[oursName]), float64(cpu[s])))
			}
			fmt.Fprintf(&b, " %.2f |\n", busiest)
		}
	}

	b.WriteString("\nEvery run (CPU/req: user+system time of the proxy's processes and threads during the measured run over its requests; ")
	b.WriteString("syscalls/req: every system call of the proxy's processes, counted by perf (" + syscallEvent + ") during the warmup run so that tracing costs the measured run nothing; ")
	b.WriteString("read+write/req: syscr/syscw of /proc/PID/io over the measured run, which count read(2)/write(2)/readv/writev but not recv/send, so nginx's socket reads and HAProxy's socket I/O show as 0; ")
	b.WriteString("errors: wrk socket errors, h2load requests that got no response; RSS after the case's runs; ")
	b.WriteString("others' CPU: user+system time of the machine not used by the proxy, the load generator or the upstream during the run, in CPUs (other work on the machine; well above 0.05, rps and latency are disturbed)):\n\n")
	b.WriteString("| load | procs | routes | server | round | rps | p50 (h2: mean) | p99 (h2: max) | requests | non-2xx | errors | CPU/req | syscalls/req | read+write/req | RSS after | others' CPU |\n")
	b.WriteString("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		for _, l := range r.loads {
			for _, name := range e.servers {
				for i, w := range r.runs[l][name] {
					p50, p99 := w.Mean, w.Max
					if w.percentiles() {
						p50, p99 = w.p(50), w.p(99)
					}
					fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %s | %s | %s | %s | %d | %d | %.1f µs | %s | %.2f + %.2f | %s | %.2f |\n",
						l, r.procs, fmtInt(int64(r.routes)), name, i+1, fmtRPS(w.RPS), fmtDur(p50), fmtDur(p99),
						fmtInt(w.Requests), w.Non2xx3xx, w.socketErrors(), float64(w.CPUPerReq)/float64(time.Microsecond),
						fmtCalls(w.SyscallsPerReq), w.ReadsPerReq, w.WritesPerReq, fmtMiB(r.rssKB[name]), w.OtherCPUs)
				}
			}
		}
	}
	return b.String()
}

func hasStreamRows(results []caseResult) bool {
	for _, r := range results {
		if slices.ContainsFunc(r.loads, load.stream) {
			return true
		}
	}
	return false
}

// directName names a direct run of the upstream by the exchange it does.
func directName(l load) string {
	switch l {
	case loadTCPConn:
		return "HTTP/1.1 with a new connection per request"
	case loadPass:
		return "HTTP/1.1 over TLS, kept alive"
	case loadPassConn:
		return "HTTP/1.1 over TLS with a new connection per request"
	}
	return "HTTP/1.1 kept alive"
}

// ratio of a to b with two decimals, "?" when b is 0.
func ratio(a, b float64) string {
	if b == 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func medianNote(rounds int) string {
	if rounds > 1 {
		return " (table: medians)"
	}
	return ""
}

func fmtRPS(v float64) string { return fmtInt(int64(v + 0.5)) }

func fmtInt(v int64) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "?"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func fmtCalls(v float64) string {
	if v == 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtMiB(kb int64) string {
	if kb == 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f MiB", float64(kb)/1024)
}
