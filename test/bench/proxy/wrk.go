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

// loadResult is what one load run (wrk or h2load) reports.
type loadResult struct {
	RPS float64
	// wrk: latency by percentile (50, 75, 90, 99). h2load gives no
	// percentiles, only the mean, standard deviation and maximum of its
	// request times.
	Latency       map[int]time.Duration
	Mean, SD, Max time.Duration
	Requests      int64
	Non2xx3xx     int64
	// wrk: socket errors (connect, read, write, timeout); h2load: requests
	// failed, errored and timed out.
	Errors [4]int64
	Raw    string
	// What the proxy under test used per request during the measured run
	// (CPU time of all its processes and threads; read and write system
	// calls from /proc/PID/io); zero when not measured.
	CPUPerReq                 time.Duration
	ReadsPerReq, WritesPerReq float64
	// Every system call of the proxy per request, counted by perf during
	// the warmup run; zero when not counted.
	SyscallsPerReq float64
	// CPU time of the load generator itself (from its rusage).
	GenCPU time.Duration
	// CPUs' worth of user and system time that neither the proxy, the load
	// generator nor the upstream used during the run: other work on the
	// machine, which makes rps and latency less trustworthy.
	OtherCPUs float64
}

func (r loadResult) p(n int) time.Duration { return r.Latency[n] }

// percentiles says whether the run has latency percentiles (wrk) or only
// the mean (h2load).
func (r loadResult) percentiles() bool { return len(r.Latency) > 0 }

// tail is the latency the summary compares: p99 from wrk, the mean from
// h2load.
func (r loadResult) tail() time.Duration {
	if r.percentiles() {
		return r.p(99)
	}
	return r.Mean
}

func (r loadResult) socketErrors() int64 {
	return r.Errors[0] + r.Errors[1] + r.Errors[2] + r.Errors[3]
}

var (
	reRPS      = regexp.MustCompile(`(?m)^\s*Requests/sec:\s+([0-9.]+)\s*$`)
	rePct      = regexp.MustCompile(`(?m)^\s*(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	reRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	reNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$`)
	reSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$`)
)

// wrk and h2load print times with these units ("m" and "h" only for very
// long times).
var timeUnits = map[string]time.Duration{
	"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
}

func parseTime(v, unit string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, err
	}
	u, ok := timeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown time unit %q", unit)
	}
	return time.Duration(math.Round(f * float64(u))), nil
}

// parseWrk reads the output of `wrk --latency`.
func parseWrk(out string) (loadResult, error) {
	r := loadResult{Latency: map[int]time.Duration{}, Raw: out}
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
		if r.Latency[pct], err = parseTime(m[2], m[3]); err != nil {
			return r, fmt.Errorf("latency %q: %w", m[0], err)
		}
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

// loadRun is one run of the load generator: wrk for HTTP/1.1 (cleartext or
// TLS), h2load for HTTP/2.
type loadRun struct {
	bin      string
	h2       bool   // h2load instead of wrk
	cpus     string // taskset CPU list, "" for no pinning
	threads  int
	conns    int
	streams  int // h2load: concurrent streams per connection
	duration time.Duration
	url      string
	headers  []string
}

func (w loadRun) seconds() string {
	return strconv.Itoa(int(w.duration.Round(time.Second) / time.Second))
}

func (w loadRun) args() []string {
	var args []string
	if w.h2 {
		args = []string{"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns), "-m", strconv.Itoa(w.streams), "-D", w.seconds()}
	} else {
		args = []string{
			"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns), "-d", w.seconds() + "s",
			"--timeout", "5s", "--latency",
		}
	}
	for _, h := range w.headers {
		args = append(args, "-H", h)
	}
	return append(args, w.url)
}

func (w loadRun) tool() string {
	if w.h2 {
		return "h2load"
	}
	return "wrk"
}

func (w loadRun) commandLine() string {
	return w.tool() + " " + strings.Join(quoteArgs(w.args()), " ")
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \"'$") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

// run starts the load generator and waits for it, bounded by its duration
// plus a margin.
func (w loadRun) run(ctx context.Context) (loadResult, error) {
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
		return loadResult{Raw: string(out)}, fmt.Errorf("%s: %w\n%s", w.commandLine(), err, out)
	}
	parse := parseWrk
	if w.h2 {
		parse = parseH2load
	}
	r, err := parse(string(out))
	r.GenCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, err
}
