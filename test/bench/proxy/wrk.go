package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	RPS       float64
	Latency   map[int]time.Duration // by percentile: 50, 75, 90, 99
	Requests  int64
	Non2xx3xx int64
	// Socket errors: connect, read, write, timeout.
	Errors [4]int64
	Raw    string
	// What the proxy under test used per request during the measured run
	// (CPU time of all its processes and threads; read and write system
	// calls from /proc/PID/io); zero when not measured.
	CPUPerReq                 time.Duration
	ReadsPerReq, WritesPerReq float64
}

func (r wrkResult) p(n int) time.Duration { return r.Latency[n] }

func (r wrkResult) socketErrors() int64 { return r.Errors[0] + r.Errors[1] + r.Errors[2] + r.Errors[3] }

var (
	reRPS      = regexp.MustCompile(`(?m)^\s*Requests/sec:\s+([0-9.]+)\s*$`)
	rePct      = regexp.MustCompile(`(?m)^\s*(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	reRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	reNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$`)
	reSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$`)
)

// wrk prints times with the units of its format_time_us: "us", "ms", "s",
// and for very long times "m" and "h".
var wrkUnits = map[string]time.Duration{
	"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
}

// parseWrk reads the output of `wrk --latency`.
func parseWrk(out string) (wrkResult, error) {
	r := wrkResult{Latency: map[int]time.Duration{}, Raw: out}
	m := reRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec line in wrk output:\n%s", out)
	}
	rps, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return r, fmt.Errorf("Requests/sec %q: %w", m[1], err)
	}
	r.RPS = rps
	for _, m := range rePct.FindAllStringSubmatch(out, -1) {
		pct, _ := strconv.Atoi(m[1])
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return r, fmt.Errorf("latency %q: %w", m[0], err)
		}
		r.Latency[pct] = time.Duration(math.Round(v * float64(wrkUnits[m[3]])))
	}
	if _, ok := r.Latency[99]; !ok {
		return r, fmt.Errorf("no 99%% latency line in wrk output (was --latency given?):\n%s", out)
	}
	if m := reRequests.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx3xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reSocket.FindStringSubmatch(out); m != nil {
		for i := range r.Errors {
			r.Errors[i], _ = strconv.ParseInt(m[i+1], 10, 64)
		}
	}
	return r, nil
}

// wrkRun is one load run.
type wrkRun struct {
	bin      string
	cpus     string // taskset CPU list, "" for no pinning
	threads  int
	conns    int
	duration time.Duration
	url      string
	headers  []string
}

func (w wrkRun) args() []string {
	args := []string{
		"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns),
		"-d", fmt.Sprintf("%ds", int(w.duration.Round(time.Second)/time.Second)),
		"--timeout", "5s", "--latency",
	}
	for _, h := range w.headers {
		args = append(args, "-H", h)
	}
	return append(args, w.url)
}

func (w wrkRun) commandLine() string {
	return "wrk " + strings.Join(quoteArgs(w.args()), " ")
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \"'$") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return out
}

// run starts wrk and waits for it, bounded by its duration plus a margin.
func (w wrkRun) run(ctx context.Context) (wrkResult, error) {
	ctx, cancel := context.WithTimeout(ctx, w.duration+30*time.Second)
	defer cancel()
	name, args := w.bin, w.args()
	if w.cpus != "" {
		name, args = "taskset", append([]string{"-c", w.cpus, w.bin}, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = childAttrs()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{Raw: string(out)}, fmt.Errorf("%s: %w\n%s", w.commandLine(), err, out)
	}
	return parseWrk(string(out))
}
