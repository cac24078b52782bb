package kubelet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const (
	// defaultPath is the PATH of a container that sets none.
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// maxBackoff caps the delay before a crashed container restarts.
	maxBackoff = 20 * time.Second
	// stableRun resets the backoff: a container that ran this long did
	// not crash-loop.
	stableRun = 10 * time.Second
)

// waitingError keeps a container waiting with the given reason, like
// ErrImagePull or ContainerCreating.
type waitingError struct {
	reason, message string
}

func (e *waitingError) Error() string { return e.message }

func waiting(reason, format string, args ...any) error {
	return &waitingError{reason: reason, message: fmt.Sprintf(format, args...)}
}

// containerState is what the kubelet knows about one container of a run;
// status is guarded by the run's mutex.
type containerState struct {
	name     string
	logDir   string
	launched bool // a supervisor runs it; set by the worker only
	status   corev1.ContainerStatus
}

func newContainerState(c corev1.Container, logDir string) *containerState {
	return &containerState{
		name:   c.Name,
		logDir: logDir,
		status: corev1.ContainerStatus{
			Name:  c.Name,
			Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		},
	}
}

// setWaiting reports whether the waiting state changed.
func (st *containerState) setWaiting(mu *sync.Mutex, reason, message string) bool {
	mu.Lock()
	defer mu.Unlock()
	w := st.status.State.Waiting
	if w != nil && w.Reason == reason && w.Message == message {
		return false
	}
	st.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	st.status.Ready, st.status.Started = false, ptr.To(false)
	return true
}

// launchSpec is a container resolved against the cluster, ready to start
// any number of times.
type launchSpec struct {
	binary string
	args   []string
	env    []string
	script string // sets up mounts and hostname, then runs "$@"
	life   lifecycle
}

// prepare resolves a container: its image's binary, its environment, its
// volumes and its mount script.
func (w *podWorker) prepare(pod *corev1.Pod, c corev1.Container) (*launchSpec, error) {
	binary, ok := w.k.opts.Images[imageBaseName(c.Image)]
	if !ok {
		return nil, waiting("ErrImagePull", "image %q is not available to the fake kubelet (no binary for %q)", c.Image, imageBaseName(c.Image))
	}
	life, err := newLifecycle(pod, c, w.k.opts.MaxGracePeriod)
	if err != nil {
		return nil, err
	}
	env, lookup, err := w.resolveEnv(pod, c)
	if err != nil {
		return nil, err
	}
	mounts, err := w.prepareMounts(pod, c)
	if err != nil {
		return nil, err
	}
	scratch := filepath.Join(w.cur.dir, "containers", c.Name, "scratch")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", scratch, err)
	}
	script, err := w.k.containerScript(mounts, scratch, podHostname(pod), c.WorkingDir, binary)
	if err != nil {
		return nil, waiting("CreateContainerConfigError", "%v", err)
	}
	// The binary is the image's entrypoint: a command replaces it, so only
	// the command's arguments are kept.
	var args []string
	if len(c.Command) > 0 {
		args = append(args, c.Command[1:]...)
	}
	args = append(args, c.Args...)
	for i := range args {
		args[i] = expand(args[i], lookup)
	}
	return &launchSpec{binary: binary, args: args, env: env, script: script, life: life}, nil
}

// imageBaseName is the last path element of an image without tag or
// digest: registry.k8s.io/x/echo-basic:v0.1.0 -> echo-basic.
func imageBaseName(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	base := image[strings.LastIndexByte(image, '/')+1:]
	if i := strings.IndexByte(base, ':'); i >= 0 {
		base = base[:i]
	}
	return base
}

// podHostname is the Pod's hostname, as the kubelet derives it.
func podHostname(pod *corev1.Pod) string {
	name := pod.Name
	if pod.Spec.Hostname != "" {
		name = pod.Spec.Hostname
	}
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-.")
	}
	return name
}

// supervise runs a container until its run ends, restarting it as the
// restart policy says, with a doubling backoff.
func (w *podWorker) supervise(run *podRun, st *containerState, spec *launchSpec, policy corev1.RestartPolicy) {
	backoff := time.Second
	for {
		started := time.Now()
		exitCode, err := w.runOnce(run, st, spec)
		if run.ctx.Err() != nil {
			return
		}
		if err != nil {
			w.k.logf("pod %s: container %s: %v", w.key, st.name, err)
		}
		w.k.logf("pod %s: container %s exited with code %d", w.key, st.name, exitCode)
		if policy == corev1.RestartPolicyNever || policy == corev1.RestartPolicyOnFailure && exitCode == 0 {
			return
		}
		if time.Since(started) > stableRun {
			backoff = time.Second
		}
		run.mu.Lock()
		if st.status.State.Terminated != nil {
			st.status.LastTerminationState = st.status.State
		}
		st.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", backoff, st.name, w.name),
		}}
		run.mu.Unlock()
		w.poke()
		select {
		case <-run.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
		run.mu.Lock()
		st.status.RestartCount++
		run.mu.Unlock()
	}
}

// runOnce starts the container, probes it while it runs, waits for it to
// exit or for the run to end (then preStop, SIGTERM, and SIGKILL after the
// grace), and records the states. Its output goes to a log file per
// restart.
func (w *podWorker) runOnce(run *podRun, st *containerState, spec *launchSpec) (int, error) {
	run.mu.Lock()
	restarts := st.status.RestartCount
	run.mu.Unlock()
	logs, err := createLogFile(filepath.Join(st.logDir, fmt.Sprintf("%d.log", restarts)))
	if err != nil {
		st.setWaiting(&run.mu, "RunContainerError", err.Error())
		return -1, err
	}
	defer logs.Close()
	stdout, stderr := logs.stream("stdout"), logs.stream("stderr")
	cmd := w.k.containerCommand(run, spec)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := startProcess(cmd); err != nil {
		st.setWaiting(&run.mu, "RunContainerError", err.Error())
		return -1, fmt.Errorf("starting: %w", err)
	}
	id := containerID()
	startedAt := metav1.Now()
	run.mu.Lock()
	st.status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: startedAt}}
	st.status.ContainerID, st.status.ImageID = id, "local://"+spec.binary
	// Without a readiness probe a running container is ready.
	st.status.Ready, st.status.Started = spec.life.readiness == nil, ptr.To(true)
	run.mu.Unlock()
	w.poke()
	w.k.logf("pod %s: container %s started (pid %d, restarts %d)", w.key, st.name, cmd.Process.Pid, restarts)

	t := target{ip: run.ip, pid: cmd.Process.Pid, k: w.k}
	running, exited := context.WithCancel(run.ctx)
	probes := w.probeContainer(running, run, st, spec.life, t, killer(cmd.Process.Pid, spec.life.killGrace, running))
	waitErr := w.stopContainer(cmd, run, spec.life, t)
	exited()
	probes.Wait()
	stdout.flush()
	stderr.flush()
	code := exitCode(cmd)
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	run.mu.Lock()
	st.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, StartedAt: startedAt, FinishedAt: metav1.Now(), ContainerID: id,
	}}
	st.status.Ready, st.status.Started = false, ptr.To(false)
	run.mu.Unlock()
	w.poke()
	var exit *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exit) {
		return code, waitErr
	}
	return code, nil
}

// exitCode is the process's exit code, 128+signal when a signal ended it.
func exitCode(cmd *exec.Cmd) int {
	if cmd.ProcessState == nil {
		return -1
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

func containerID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "gatehouse-fake://" + hex.EncodeToString(b)
}

// containerCommand runs the mount script in a new mount and UTS
// namespace, in the Pod's network namespace (nsenter), in a process
// group of its own; the script then becomes the binary.
func (k *Kubelet) containerCommand(run *podRun, spec *launchSpec) *exec.Cmd {
	var argv []string
	if run.sandbox != nil {
		argv = append(argv, k.tools.nsenter, netnsFlag(run.sandbox.pid()), "--")
	}
	argv = append(argv, k.tools.sh, "-c", spec.script, "sh", spec.binary)
	argv = append(argv, spec.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = spec.env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
		// Go makes / private (recursively) in the new mount namespace, so
		// nothing mounted there leaks out.
		Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
	}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}
