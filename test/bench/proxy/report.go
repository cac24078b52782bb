package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

func (e *env) report(results []caseResult, direct wrkResult, loadBefore, loadAfter string) string {
	var b strings.Builder
	o := e.o
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "## gatehouse-proxy vs nginx: prefix + header routes\n\n")
	fmt.Fprintf(&b, "- %s, host %s, %d CPUs, load average (1, 5, 15 min) before %s, after %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), loadBefore, loadAfter)
	ours := "bin/gatehouse-proxy (" + o.proxyBin + ")"
	if o.cpuprofile != "" {
		ours = "dataplane/proxy in-process (`bench-proxy serve`, CPU profile on)"
	}
	fmt.Fprintf(&b, "- ours: %s, GOMAXPROCS=%d, %s; nginx: %s, worker_processes %d, access_log off\n",
		ours, o.procs, runtime.Version(), e.nginxVersion, o.procs)
	if e.serverCPUs != "" {
		fmt.Fprintf(&b, "- pinned with taskset: proxy under test on CPU %s, wrk and the upstream on CPU %s\n", e.serverCPUs, e.loadCPUs)
	} else {
		b.WriteString("- not pinned: proxy, wrk and upstream share all CPUs\n")
	}
	fmt.Fprintf(&b, "- load: %s, `wrk -t%d -c%d -d%s --latency -H '%s: t<N>' http://127.0.0.1:PORT%s` after a %s warmup, %d round(s)%s\n",
		e.wrkVersion, o.threads, o.conns, o.duration, tenantHeader, "/svc-<N>/item", o.warmup, o.rounds, medianNote(o.rounds))
	b.WriteString("- routes: route i matches prefix `/svc-<i>` and header `X-Tenant: t<i>`; the load targets the last route (N)\n")
	b.WriteString("- nginx: one prefix `location /svc-<i>` per route with `if ($http_x_tenant != \"t<i>\") { return 404; }` then `proxy_pass` to an `upstream` block with `keepalive 256`, `proxy_http_version 1.1`, `proxy_set_header Connection \"\"`\n")
	fmt.Fprintf(&b, "- upstream (shared): nginx, 1 worker, `return 200 %q`; direct (no proxy): %s rps, p99 %s\n\n",
		upstreamBody, fmtRPS(direct.RPS), fmtDur(direct.p(99)))

	b.WriteString("| routes | nginx rps | gatehouse rps | rps ours/nginx | nginx p99 | gatehouse p99 | p99 ours/nginx |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		nr, np, _ := median(r.runs[nginxName])
		gr, gp, _ := median(r.runs[oursName])
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %s | %s | %.2f |\n",
			fmtInt(int64(r.routes)), fmtRPS(nr), fmtRPS(gr), gr/nr, fmtDur(np), fmtDur(gp), float64(gp)/float64(np))
	}

	b.WriteString("\nEvery run (CPU/req: user+system time of the proxy's processes during the measured run over its requests; ")
	b.WriteString("calls/req: syscr/syscw of /proc/PID/io, which count read(2)/write(2)/readv/writev but not recv/send, so nginx's socket reads show as 0):\n\n")
	b.WriteString("| routes | server | round | rps | p50 | p90 | p99 | requests | non-2xx | socket errors | CPU/req | read()+write() calls/req | RSS after |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		for _, name := range []string{nginxName, oursName} {
			for i, w := range r.runs[name] {
				fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %d | %d | %.1f µs | %.2f + %.2f | %s |\n",
					fmtInt(int64(r.routes)), name, i+1, fmtRPS(w.RPS), fmtDur(w.p(50)), fmtDur(w.p(90)), fmtDur(w.p(99)),
					fmtInt(w.Requests), w.Non2xx3xx, w.socketErrors(), float64(w.CPUPerReq)/float64(time.Microsecond),
					w.ReadsPerReq, w.WritesPerReq, fmtMiB(r.rssKB[name]))
			}
		}
	}
	return b.String()
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

func fmtMiB(kb int64) string {
	if kb == 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f MiB", float64(kb)/1024)
}
