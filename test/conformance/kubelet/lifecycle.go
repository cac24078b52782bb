package kubelet

import (
	"context"
	"os/exec"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// hookExtension is the extra time a container gets for SIGTERM when its
// preStop hook used up the grace period, as the kubelet gives it.
const hookExtension = 2 * time.Second

// lifecycle is what the kubelet does around a container's process beside
// running it: probes while it runs, a preStop hook before it is stopped.
type lifecycle struct {
	readiness, liveness *probe
	preStop             *handler
	// killGrace is the time between SIGTERM and SIGKILL when a liveness
	// probe fails.
	killGrace time.Duration
}

// newLifecycle resolves a container's probes and hooks; what the fake
// kubelet cannot carry out keeps the container from starting, with a
// message saying so.
func newLifecycle(pod *corev1.Pod, c corev1.Container, maxGrace time.Duration) (lifecycle, error) {
	var l lifecycle
	var err error
	if c.StartupProbe != nil {
		return l, waiting("CreateContainerConfigError", "startup probes are not supported by the fake kubelet")
	}
	if l.readiness, err = newProbe(c.ReadinessProbe, c); err != nil {
		return l, waiting("CreateContainerConfigError", "readinessProbe: %v", err)
	}
	if l.liveness, err = newProbe(c.LivenessProbe, c); err != nil {
		return l, waiting("CreateContainerConfigError", "livenessProbe: %v", err)
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		h, err := newHook(*c.Lifecycle.PreStop, c)
		if err != nil {
			return l, waiting("CreateContainerConfigError", "lifecycle.preStop: %v", err)
		}
		l.preStop = &h
	}
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		return l, waiting("CreateContainerConfigError", "postStart hooks are not supported by the fake kubelet")
	}
	l.killGrace = gracePeriod(pod.Spec.TerminationGracePeriodSeconds, maxGrace)
	if c.LivenessProbe != nil && c.LivenessProbe.TerminationGracePeriodSeconds != nil {
		l.killGrace = gracePeriod(c.LivenessProbe.TerminationGracePeriodSeconds, maxGrace)
	}
	return l, nil
}

// gracePeriod is seconds as a duration, the API's default of 30 s when
// unset, capped at maxGrace.
func gracePeriod(seconds *int64, maxGrace time.Duration) time.Duration {
	g := 30 * time.Second
	if seconds != nil {
		g = time.Duration(max(*seconds, 0)) * time.Second
	}
	return min(g, maxGrace)
}

// probeContainer runs the container's probes until ctx ends: readiness
// sets the container's Ready (false until it first passes), liveness
// kills the process when it fails (the restart policy then applies).
func (w *podWorker) probeContainer(ctx context.Context, run *podRun, st *containerState, l lifecycle, t target, kill func()) *sync.WaitGroup {
	var wg sync.WaitGroup
	if p := l.readiness; p != nil {
		wg.Go(func() {
			p.watch(ctx, t, false, func(ok bool, err error) {
				run.mu.Lock()
				st.status.Ready = ok
				run.mu.Unlock()
				if !ok {
					w.k.logf("pod %s: container %s: readiness probe failed: %v", w.key, st.name, err)
				}
				w.poke()
			})
		})
	}
	if p := l.liveness; p != nil {
		wg.Go(func() {
			p.watch(ctx, t, true, func(ok bool, err error) {
				if !ok {
					w.k.logf("pod %s: container %s: liveness probe failed, restarting it: %v", w.key, st.name, err)
					kill()
				}
			})
		})
	}
	return &wg
}

// stopContainer waits for the process; when the run ends first it runs the
// preStop hook (for a graceful deletion), sends SIGTERM to the process
// group, and SIGKILL once the run's grace is over. Any process left in the
// group is killed either way.
func (w *podWorker) stopContainer(cmd *exec.Cmd, run *podRun, l lifecycle, t target) error {
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }()
	select {
	case err := <-done:
		return err
	case <-run.ctx.Done():
	}
	deadline := time.Now().Add(time.Duration(run.grace.Load()))
	if l.preStop != nil && run.hooks.Load() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		hook := make(chan error, 1)
		go func() { hook <- l.preStop.run(ctx, t) }()
		select {
		case err := <-done: // the process ended during its hook
			cancel()
			return err
		case err := <-hook:
			if err != nil {
				w.k.logf("pod %s: preStop hook: %v", w.key, err)
			}
		}
		cancel()
		deadline = maxTime(deadline, time.Now().Add(hookExtension))
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(time.Until(deadline)):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return <-done
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// killer ends a process group as the kubelet ends a container whose
// liveness probe failed: SIGTERM, then SIGKILL after grace, unless the
// process has exited by then (exited ends).
func killer(pgid int, grace time.Duration, exited context.Context) func() {
	return func() {
		if exited.Err() != nil {
			return
		}
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		time.AfterFunc(grace, func() {
			if exited.Err() == nil {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
		})
	}
}
