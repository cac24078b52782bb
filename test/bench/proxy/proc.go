package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childAttrs makes a child die with the benchmark if the benchmark is killed
// before it can stop it.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// proc is a server the benchmark started; it is stopped by its PID only.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProc starts bin (pinned to cpus when given) with its output in
// logPath.
func startProc(name, logPath, cpus string, env []string, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if cpus != "" {
		// taskset execs bin: the PID we hold is bin's.
		args = append([]string{"-c", cpus, bin}, args...)
		bin = "taskset"
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process (nginx: fast shutdown of master and
// workers; HAProxy: immediate stop; gatehouse-proxy: drain), then SIGKILL
// if it is still there after a few seconds.
func (p *proc) stop() { p.stopWith(syscall.SIGTERM) }

// stopWith sends sig, then SIGKILL if the process is still there after 10 s.
func (p *proc) stopWith(sig os.Signal) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// freePort asks the kernel for a loopback port that is free now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers with want (0: any status), the
// process exits, or the timeout passes.
func waitHTTP(ctx context.Context, p *proc, url string, want int, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited while starting: %v", p.name, p.err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if want == 0 || resp.StatusCode == want {
				return nil
			}
			err = errors.New(resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready at %s after %s: %v", p.name, url, timeout, last)
}

// rssKB is the resident memory of a process, from /proc.
func rssKB(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		var kb int64
		if n, _ := fmt.Sscanf(line, "VmRSS: %d kB", &kb); n == 1 {
			return kb
		}
	}
	return 0
}

// childPIDs are a process's children (nginx: the master's workers).
func childPIDs(pid int) []int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if c, err := strconv.Atoi(f); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// treeRSSKB is the resident memory of a process and its children.
func treeRSSKB(pid int) int64 {
	total := rssKB(pid)
	for _, c := range childPIDs(pid) {
		total += rssKB(c)
	}
	return total
}

// usage is what a process (all its threads) has used so far.
type usage struct {
	cpu          time.Duration // user + system
	syscr, syscw int64         // read and write system calls (/proc/PID/io)
}

func (u usage) sub(v usage) usage {
	return usage{cpu: u.cpu - v.cpu, syscr: u.syscr - v.syscr, syscw: u.syscw - v.syscw}
}

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture the project runs on).
const userHZ = 100

func procUsage(pid int) usage {
	var u usage
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command, which is in parentheses and may hold spaces.
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			// f[0] is field 3 (state); utime and stime are fields 14 and 15.
			if len(f) > 12 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				u.cpu = time.Duration(ut+st) * time.Second / userHZ
			}
		}
	}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch k {
			case "syscr":
				u.syscr = n
			case "syscw":
				u.syscw = n
			}
		}
	}
	return u
}

// treeUsage adds a process's children (nginx: master and workers).
func treeUsage(pid int) usage {
	u := procUsage(pid)
	for _, c := range childPIDs(pid) {
		cu := procUsage(c)
		u.cpu += cu.cpu
		u.syscr += cu.syscr
		u.syscw += cu.syscw
	}
	return u
}

// machineBusy is the CPU time all CPUs have spent in user and system mode
// (/proc/stat; interrupt and softirq time left out, since a process's
// own network work lands there too).
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(firstLine(string(data)))
	if len(f) < 4 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, v := range f[1:4] { // user, nice, system
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ
}

// perfWorks says whether perf can count system call entries here (it needs
// the tracepoint and, for other users' processes, privileges).
func perfWorks(bin string) bool {
	if bin == "" {
		return false
	}
	out, err := exec.Command(bin, "stat", "-x,", "-e", syscallEvent, "--", "true").CombinedOutput()
	return err == nil && parsePerfCount(string(out)) > 0
}

const syscallEvent = "raw_syscalls:sys_enter"

// countSyscalls starts perf counting the system calls of a process and its
// children (every thread of each), writing to logPath; stopping it with
// SIGINT makes perf print the count (readSyscallCount).
func countSyscalls(bin string, pid int, logPath string) (*proc, error) {
	pids := []string{strconv.Itoa(pid)}
	for _, c := range childPIDs(pid) {
		pids = append(pids, strconv.Itoa(c))
	}
	p, err := startProc("perf", logPath, "", nil, bin, "stat", "-x,", "-e", syscallEvent, "-p", strings.Join(pids, ","))
	if err != nil {
		return nil, err
	}
	// perf attaches to the threads right after it starts; give it that.
	time.Sleep(300 * time.Millisecond)
	return p, nil
}

// readSyscallCount stops perf and reads its count; 0 when it printed none.
func readSyscallCount(p *proc, logPath string) int64 {
	p.stopWith(os.Interrupt)
	data, _ := os.ReadFile(logPath)
	return parsePerfCount(string(data))
}

// parsePerfCount reads the count of `perf stat -x,` for the syscall event.
func parsePerfCount(out string) int64 {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ",")
		if len(f) > 2 && f[2] == syscallEvent {
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return 0
}
