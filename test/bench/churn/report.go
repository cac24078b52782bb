package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report prints the tables of the run in markdown.
func report(c config, elapsed time.Duration, samples [][]sample, loads []*load, before, after []procSample) {
	fmt.Printf("\n%d member(s) × %d routes, %d changes per member (add, modify, delete in turn), all members at once; churn phase %v\n\n",
		c.members, c.routes, c.changes, elapsed.Round(time.Millisecond))
	fmt.Println("| operation | changes | write call p50 | apply → traffic p50 | p90 | p99 | max | apply → Programmed p50 | p90 | p99 | max | probe errors | timed out (traffic / status) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	all := slices.Concat(samples...)
	for _, op := range cycle {
		printRow(op, filter(all, func(s sample) bool { return s.op == op }))
	}
	printRow("all", all)
	if len(samples) > 1 {
		for _, ss := range samples {
			if len(ss) > 0 {
				printRow("all, "+ss[0].member, ss)
			}
		}
	}

	fmt.Println("\n| background load | requests | failed | requests/s | failures |")
	fmt.Println("|---|---:|---:|---:|---|")
	for i, l := range loads {
		fmt.Printf("| member-%d | %d | %d | %.0f | %s |\n", i+1, l.requests.Load(), l.failed.Load(),
			float64(l.requests.Load())/elapsed.Seconds(), l.reasonList())
	}

	fmt.Println("\n| process | CPU during the churn | share of one core | RSS at the end |")
	fmt.Println("|---|---:|---:|---:|")
	for i, a := range after {
		cpu := a.cpu - before[i].cpu
		fmt.Printf("| %s | %.2f s | %.0f%% | %d MiB |\n", a.name, cpu.Seconds(), 100*cpu.Seconds()/elapsed.Seconds(), a.rssKiB/1024)
	}
}

func filter(ss []sample, keep func(sample) bool) []sample {
	var out []sample
	for _, s := range ss {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

func printRow(label string, ss []sample) {
	var calls, traffic, status []time.Duration
	probeErrors, trafficLate, statusLate := 0, 0, 0
	for _, s := range ss {
		calls = append(calls, s.call)
		probeErrors += s.probeErrors
		if s.trafficOK {
			traffic = append(traffic, s.traffic)
		} else {
			trafficLate++
		}
		switch {
		case s.op == opDelete:
		case s.programmedOK:
			status = append(status, s.programmed)
		default:
			statusLate++
		}
	}
	fmt.Printf("| %s | %d | %s | %s | %s | %d | %d / %d |\n", label, len(ss), ms(percentile(calls, 0.5)),
		quantiles(traffic), quantiles(status), probeErrors, trafficLate, statusLate)
}

// quantiles are the p50, p90, p99 and max cells of a column.
func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "– | – | – | –"
	}
	return strings.Join([]string{ms(percentile(ds, 0.5)), ms(percentile(ds, 0.9)), ms(percentile(ds, 0.99)), ms(slices.Max(ds))}, " | ")
}

// percentile by nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func (l *load) reasonList() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(l.reasons)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", r, l.reasons[r]))
	}
	return strings.Join(parts, "; ")
}

// procSample is what /proc says of one process at one moment.
type procSample struct {
	name   string
	cpu    time.Duration
	rssKiB int
}

// sampleProcesses reads the CPU used so far and the resident memory of the
// hub and of every proxy.
func (b *bed) sampleProcesses() []procSample {
	out := []procSample{readProc("hub", b.hub.PID())}
	for _, g := range b.gws {
		out = append(out, readProc(g.Cluster.Name+" proxy", g.Proxy.PID()))
	}
	return out
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

func readProc(name string, pid int) procSample {
	s := procSample{name: name, rssKiB: -1024}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// The command name in parentheses may hold spaces: count the
		// fields after it. utime and stime are fields 14 and 15 of the
		// line, 12 and 13 after the name.
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 12 {
				user, _ := strconv.ParseInt(f[11], 10, 64)
				system, _ := strconv.ParseInt(f[12], 10, 64)
				s.cpu = time.Duration(user+system) * clockTick
			}
		}
	}
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for line := range strings.SplitSeq(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				s.rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			}
		}
	}
	return s
}

// scrapeHubMetrics reads the hub's histogram sums and counts and its
// counters, by series; nil when /metrics does not answer.
func scrapeHubMetrics(addr string) map[string]float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(text), "\n") {
		series, value, ok := strings.Cut(line, " ")
		name, _, _ := strings.Cut(series, "{")
		if !ok || !strings.HasPrefix(name, "gatehouse_hub_") ||
			!(strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_total")) {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[series] = v
		}
	}
	return out
}

// printHubMetrics prints what the hub counted during the churn: for each
// histogram the observations and their mean, and each counter's increase.
func printHubMetrics(before, after map[string]float64) {
	if after == nil {
		return
	}
	fmt.Println("\n| hub metric during the churn | observations or increase | mean |")
	fmt.Println("|---|---:|---:|")
	for _, series := range slices.Sorted(maps.Keys(after)) {
		name, labels, _ := strings.Cut(series, "{")
		switch {
		case strings.HasSuffix(name, "_total"):
			fmt.Printf("| %s | %.0f | |\n", series, after[series]-before[series])
		case strings.HasSuffix(name, "_count"):
			base := strings.TrimSuffix(name, "_count")
			sum := base + "_sum"
			if labels != "" {
				sum += "{" + labels
			}
			n := after[series] - before[series]
			mean := "–"
			if n > 0 {
				mean = ms(time.Duration((after[sum] - before[sum]) / n * float64(time.Second)))
			}
			fmt.Printf("| %s | %.0f | %s |\n", strings.Replace(series, "_count", "", 1), n, mean)
		}
	}
}
