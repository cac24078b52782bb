package kubelet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const (
	// defaultMaxGrace caps the grace period of a deletion unless
	// Options.MaxGracePeriod says otherwise: test backends have nothing to
	// drain.
	defaultMaxGrace = 5 * time.Second
	// shutdownGrace is the grace of containers when the kubelet stops.
	shutdownGrace = 2 * time.Second
	// retryInterval paces retries of anything that failed or must wait,
	// such as a Secret a volume needs.
	retryInterval = time.Second
)

// podWorker owns everything the kubelet does for one Pod name: binding,
// running, status and deletion. Events only poke it; it reads the Pod from
// the informer cache, so it always acts on the latest state.
type podWorker struct {
	k                    *Kubelet
	key, namespace, name string
	kick                 chan struct{}
	placement            string // the last placement seen, to log changes only

	cur *podRun // what runs for the Pod; owned by the worker goroutine
}

// podRun is one incarnation (UID) of a Pod on this node.
type podRun struct {
	uid       types.UID
	dir       string
	ip        netip.Addr
	pooled    bool     // ip came from the pool
	sandbox   *sandbox // nil for hostNetwork Pods
	startTime metav1.Time
	volumes   map[string]string // volume name -> materialized directory

	ctx    context.Context // ends when the Pod's containers must stop
	cancel context.CancelFunc
	grace  atomic.Int64 // nanoseconds from the stop to SIGKILL
	hooks  atomic.Bool  // run preStop hooks: a graceful deletion
	wg     sync.WaitGroup

	mu             sync.Mutex
	containers     map[string]*containerState
	lastStatus     []byte // JSON of the status last written
	lastConditions []corev1.PodCondition
}

func newPodWorker(k *Kubelet, namespace, name string) *podWorker {
	return &podWorker{k: k, key: namespace + "/" + name, namespace: namespace, name: name, kick: make(chan struct{}, 1)}
}

// poke asks the worker to look at its Pod again.
func (w *podWorker) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *podWorker) run() {
	for {
		done, retry := w.sync()
		if done && w.k.workerDone(w) {
			return
		}
		if !w.wait(retry) {
			w.stopRun(shutdownGrace)
			w.k.workerDone(w)
			return
		}
	}
}

// wait blocks until the worker is poked or retry has passed (retry 0:
// only a poke); false means the kubelet is stopping.
func (w *podWorker) wait(retry time.Duration) bool {
	var timer <-chan time.Time
	if retry > 0 {
		t := time.NewTimer(retry)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-w.k.ctx.Done():
		return false
	case <-w.kick:
	case <-timer:
	}
	return true
}

// sync moves the Pod one step towards what the cluster wants. done means
// nothing runs for the Pod and nothing is left to do; retry asks to be
// called again after that long even without events.
func (w *podWorker) sync() (done bool, retry time.Duration) {
	pod, err := w.k.pods.Pods(w.namespace).Get(w.name)
	if apierrors.IsNotFound(err) {
		w.stopRun(shutdownGrace)
		return true, 0
	}
	if err != nil {
		return false, retryInterval
	}
	if w.cur != nil && w.cur.uid != pod.UID {
		w.stopRun(shutdownGrace) // a new Pod of the same name
	}
	switch {
	case pod.Spec.NodeName == "":
		if pod.DeletionTimestamp != nil || len(pod.Spec.SchedulingGates) > 0 {
			return true, 0 // gone soon, or not to be scheduled yet
		}
		return false, w.bind(pod)
	case pod.Spec.NodeName != w.k.opts.NodeName:
		w.stopRun(shutdownGrace)
		return true, 0
	case pod.DeletionTimestamp != nil:
		return w.finishDeletion(pod)
	}
	if w.cur == nil {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return true, 0 // finished before this kubelet started
		}
		if err := w.startRun(pod); err != nil {
			w.k.logf("pod %s: %v", w.key, err)
			return false, 2 * retryInterval
		}
	}
	retry = w.startContainers(pod)
	if err := w.writeStatus(pod); err != nil {
		w.k.logf("pod %s: writing status: %v", w.key, err)
		retry = retryInterval
	}
	return false, retry
}

// bind plays the scheduler for the Pods placed on this node; a Pod placed
// elsewhere is looked at again later, should that node's kubelet not bind
// it.
func (w *podWorker) bind(pod *corev1.Pod) time.Duration {
	node, err := w.k.placeOf(pod)
	if msg := fmt.Sprint(node, err); msg != w.placement {
		w.placement = msg
		if err != nil {
			w.k.logf("pod %s: %v", w.key, err)
		}
	}
	if node != w.k.opts.NodeName {
		return retryInterval
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: w.k.opts.NodeName},
	}
	err = w.k.client.CoreV1().Pods(pod.Namespace).Bind(w.k.ctx, binding, metav1.CreateOptions{})
	switch {
	case err == nil, apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return 0 // the update (or deletion) event follows
	default:
		w.k.logf("pod %s: binding to %s: %v", w.key, w.k.opts.NodeName, err)
		return 2 * retryInterval
	}
}

// finishDeletion completes a graceful deletion: the containers stop, the
// network goes, and the Pod object is deleted for good.
func (w *podWorker) finishDeletion(pod *corev1.Pod) (bool, time.Duration) {
	grace := w.k.opts.MaxGracePeriod
	if s := pod.DeletionGracePeriodSeconds; s != nil && time.Duration(*s)*time.Second < grace {
		grace = time.Duration(max(*s, 0)) * time.Second
	}
	if run := w.cur; run != nil {
		run.hooks.Store(true)
	}
	w.stopRun(grace)
	err := w.k.client.CoreV1().Pods(pod.Namespace).Delete(w.k.ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)),
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	switch {
	case err == nil:
		w.k.logf("pod %s: deleted", w.key)
	case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
		w.k.logf("pod %s: deleting: %v", w.key, err)
		return false, retryInterval
	}
	return true, 0
}

// startRun gives the Pod an address, a network namespace and a directory.
func (w *podWorker) startRun(pod *corev1.Pod) error {
	run := &podRun{
		uid:        pod.UID,
		dir:        w.k.podDir(pod.Namespace, pod.Name),
		startTime:  metav1.Now(),
		volumes:    map[string]string{},
		containers: map[string]*containerState{},
	}
	if pod.Status.StartTime != nil {
		run.startTime = *pod.Status.StartTime
	}
	if err := os.RemoveAll(run.dir); err != nil {
		return fmt.Errorf("clearing %s: %w", run.dir, err)
	}
	if err := os.MkdirAll(run.dir, 0o700); err != nil {
		return fmt.Errorf("creating the pod directory: %w", err)
	}
	if pod.Spec.HostNetwork {
		run.ip = w.k.nodeIP
	} else {
		preferred, _ := netip.ParseAddr(pod.Status.PodIP)
		ip, err := w.k.pool.allocate(preferred)
		if err != nil {
			return err
		}
		run.ip, run.pooled = ip, true
		if run.sandbox, err = w.k.createSandbox(ip); err != nil {
			w.k.pool.release(ip)
			return fmt.Errorf("creating the pod network: %w", err)
		}
	}
	for _, c := range pod.Spec.Containers {
		run.containers[c.Name] = newContainerState(c, filepath.Join(run.dir, "containers", c.Name))
	}
	if len(pod.Spec.InitContainers) > 0 {
		w.k.logf("pod %s: init containers are not supported; skipping them", w.key)
	}
	run.ctx, run.cancel = context.WithCancel(context.Background())
	w.cur = run
	w.k.logf("pod %s: network ready, IP %s", w.key, run.ip)
	return nil
}

// stopRun ends the containers (SIGTERM, SIGKILL after grace) and removes
// the Pod's network and directory.
func (w *podWorker) stopRun(grace time.Duration) {
	run := w.cur
	if run == nil {
		return
	}
	w.cur = nil
	run.grace.Store(int64(grace))
	run.cancel()
	run.wg.Wait()
	if run.sandbox != nil {
		if err := w.k.destroySandbox(run.sandbox); err != nil {
			w.k.logf("pod %s: removing the network: %v", w.key, err)
		}
	}
	if run.pooled {
		w.k.pool.release(run.ip)
	}
	if err := os.RemoveAll(run.dir); err != nil {
		w.k.logf("pod %s: removing %s: %v", w.key, run.dir, err)
	}
	w.k.logf("pod %s: stopped", w.key)
}

// startContainers launches every container that is not running yet and
// can be: its image is known and its volumes and environment resolve.
func (w *podWorker) startContainers(pod *corev1.Pod) time.Duration {
	run := w.cur
	var retry time.Duration
	for _, c := range pod.Spec.Containers {
		st := run.containers[c.Name]
		if st == nil || st.launched {
			continue
		}
		spec, err := w.prepare(pod, c)
		if err != nil {
			reason := "CreateContainerConfigError"
			var werr *waitingError
			if errors.As(err, &werr) {
				reason = werr.reason
			}
			if st.setWaiting(&run.mu, reason, err.Error()) {
				w.k.logf("pod %s: container %s: %s: %v", w.key, c.Name, reason, err)
			}
			retry = retryInterval
			continue
		}
		st.launched = true
		run.wg.Go(func() { w.supervise(run, st, spec, pod.Spec.RestartPolicy) })
	}
	return retry
}

// podDir is where a Pod keeps its volumes and logs.
func (k *Kubelet) podDir(namespace, name string) string {
	return filepath.Join(k.opts.Dir, "pods", namespace, name)
}

// writeStatus patches the Pod's status when it differs from what was last
// written. The UID in the patch makes it fail for a new Pod of that name.
func (w *podWorker) writeStatus(pod *corev1.Pod) error {
	run := w.cur
	status := w.podStatus(pod, run)
	body, err := json.Marshal(status)
	if err != nil {
		return err
	}
	run.mu.Lock()
	same := bytes.Equal(body, run.lastStatus)
	run.mu.Unlock()
	if same {
		return nil
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   json.RawMessage(body),
	})
	if err != nil {
		return err
	}
	_, err = w.k.client.CoreV1().Pods(pod.Namespace).Patch(w.k.ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return err
	}
	run.mu.Lock()
	run.lastStatus, run.lastConditions = body, status.Conditions
	run.mu.Unlock()
	return nil
}

// podStatus follows the kubelet's rules: the Pod is Pending while a
// container has never started, Running once all have, and Succeeded or
// Failed when every container has ended for good. A running container is
// ready (readiness probes are not run).
func (w *podWorker) podStatus(pod *corev1.Pod, run *podRun) corev1.PodStatus {
	run.mu.Lock()
	statuses := make([]corev1.ContainerStatus, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		if st := run.containers[c.Name]; st != nil {
			statuses = append(statuses, *st.status.DeepCopy())
		}
	}
	run.mu.Unlock()

	var unready []string
	for _, s := range statuses {
		if !s.Ready {
			unready = append(unready, s.Name)
		}
	}
	status := corev1.PodStatus{
		ObservedGeneration: pod.Generation,
		Phase:              podPhase(statuses, pod.Spec.RestartPolicy),
		HostIP:             w.k.opts.NodeIP,
		HostIPs:            []corev1.HostIP{{IP: w.k.opts.NodeIP}},
		PodIP:              run.ip.String(),
		PodIPs:             []corev1.PodIP{{IP: run.ip.String()}},
		StartTime:          &run.startTime,
		ContainerStatuses:  statuses,
	}
	containersReady := len(unready) == 0 && len(statuses) > 0
	run.mu.Lock()
	last := run.lastConditions
	run.mu.Unlock()
	status.Conditions = podConditions(pod, last, containersReady, unready)
	return status
}

func podPhase(statuses []corev1.ContainerStatus, policy corev1.RestartPolicy) corev1.PodPhase {
	var waiting, running, restarting, stopped, failed int
	for _, s := range statuses {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode != 0 {
				failed++
			}
		case s.LastTerminationState.Terminated != nil:
			restarting++
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0 || len(statuses) == 0:
		return corev1.PodPending
	case running > 0 || restarting > 0:
		return corev1.PodRunning
	case policy == corev1.RestartPolicyAlways, policy == corev1.RestartPolicyOnFailure && failed > 0:
		return corev1.PodRunning // about to restart
	case failed > 0:
		return corev1.PodFailed
	default:
		return corev1.PodSucceeded
	}
}

// podConditions are the kubelet's conditions, keeping transition times that
// did not change and any condition someone else owns (readiness gates).
func podConditions(pod *corev1.Pod, last []corev1.PodCondition, containersReady bool, unready []string) []corev1.PodCondition {
	old := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range pod.Status.Conditions {
		old[c.Type] = c
	}
	for _, c := range last { // what we wrote last, should the cache lag
		old[c.Type] = c
	}
	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, LastTransitionTime: now}
		if ok {
			c.Status = corev1.ConditionTrue
		} else {
			c.Reason, c.Message = reason, message
		}
		if o, found := old[t]; found && o.Status == c.Status {
			c.LastTransitionTime = o.LastTransitionTime
		}
		return c
	}
	message := fmt.Sprintf("containers with unready status: %v", unready)
	ready := containersReady
	gateMessage := ""
	for _, g := range pod.Spec.ReadinessGates {
		if c, found := old[g.ConditionType]; !found || c.Status != corev1.ConditionTrue {
			ready = false
			gateMessage = fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist or is not True", g.ConditionType)
		}
	}
	readyReason, readyMessage := "ContainersNotReady", message
	if containersReady && !ready {
		readyReason, readyMessage = "ReadinessGatesNotReady", gateMessage
	}
	conditions := []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, true, "", ""),
		cond(corev1.PodInitialized, true, "", ""),
		cond(corev1.PodReady, ready, readyReason, readyMessage),
		cond(corev1.ContainersReady, containersReady, "ContainersNotReady", message),
		cond(corev1.PodScheduled, true, "", ""),
	}
	ours := map[corev1.PodConditionType]bool{}
	for _, c := range conditions {
		ours[c.Type] = true
	}
	for _, c := range pod.Status.Conditions {
		if !ours[c.Type] {
			conditions = append(conditions, c)
		}
	}
	return conditions
}
