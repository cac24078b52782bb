package lifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

const (
	// What the chart labels every proxy Pod with.
	proxyNameLabel = "app.kubernetes.io/name"
	proxyName      = "gatehouse-proxy"
	// How often the log of a stopping proxy is read, and at most how many
	// times in all.
	logReadEvery = 250 * time.Millisecond
	maxLogReads  = 4000
)

// proxyWatch sends the load through the proxies' Service and follows the
// proxy Pods: when each was seen deleting, left the Service's ready
// endpoints and was gone, and what it logged while it stopped.
type proxyWatch struct {
	b    *bed
	stop context.CancelFunc
	wg   sync.WaitGroup
	load fleetLoad

	mu        sync.Mutex
	pods      map[string]*proxyPod
	endpoints map[string]bool // Pods the Service has as ready endpoints now
}

type proxyPod struct {
	node                         string
	ready                        bool // Ready and not deleting
	deleting, endpointLeft, gone time.Time
	log                          []byte // the longest read while it stopped
}

func (b *bed) watchProxies(ctx context.Context, f *proxyFleet) *proxyWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &proxyWatch{b: b, stop: cancel, pods: map[string]*proxyPod{}, endpoints: map[string]bool{}}
	factory := informers.NewSharedInformerFactoryWithOptions(b.hub, 0, informers.WithNamespace(env.GatewayNamespace))
	pods := factory.Core().V1().Pods().Informer()
	slices := factory.Discovery().V1().EndpointSlices()
	_, _ = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.podChanged(o, false) },
		UpdateFunc: func(_, o any) { w.podChanged(o, false) },
		DeleteFunc: func(o any) { w.podChanged(o, true) },
	})
	resync := func(any) {
		list, _ := slices.Lister().EndpointSlices(env.GatewayNamespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: proxyFleetName}))
		w.endpointsSeen(list)
	}
	_, _ = slices.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: resync, UpdateFunc: func(_, o any) { resync(o) }, DeleteFunc: resync})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	for _, fresh := range []bool{false, true} {
		w.wg.Go(func() { w.send(ctx, f, fresh) })
	}
	w.wg.Go(func() { w.readLogs(ctx) })
	return w
}

// finish stops the load and the watching.
func (w *proxyWatch) finish() {
	w.stop()
	w.wg.Wait()
}

// send asks for the page again and again, on one kept-alive connection
// at a time or on a new connection each time.
func (w *proxyWatch) send(ctx context.Context, f *proxyFleet, fresh bool) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: fresh, MaxIdleConnsPerHost: 1}}
	defer c.CloseIdleConnections()
	for range maxRequestsPerWorker {
		if ctx.Err() != nil {
			return
		}
		w.load.add(fresh, f.get(c))
		time.Sleep(loadPause)
	}
}

func (w *proxyWatch) pod(name string) *proxyPod {
	p := w.pods[name]
	if p == nil {
		p = &proxyPod{}
		w.pods[name] = p
	}
	return p
}

// podChanged notes what became of a proxy Pod: its node, whether it is
// Ready, and when it was seen deleting and gone.
func (w *proxyWatch) podChanged(o any, gone bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	pod, ok := o.(*corev1.Pod)
	if !ok || pod.Labels[proxyNameLabel] != proxyName {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pod(pod.Name)
	p.node = pod.Spec.NodeName
	p.ready = !gone && podReady(pod) && pod.DeletionTimestamp == nil
	if pod.DeletionTimestamp != nil && p.deleting.IsZero() {
		p.deleting = now
	}
	if gone && p.gone.IsZero() {
		p.gone = now
	}
}

// endpointsSeen notes the Pods that left the Service's ready endpoints.
func (w *proxyWatch) endpointsSeen(list []*discoveryv1.EndpointSlice) {
	now := time.Now()
	ready := map[string]bool{}
	for _, s := range list {
		for _, e := range s.Endpoints {
			if e.TargetRef != nil && e.TargetRef.Kind == "Pod" && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				ready[e.TargetRef.Name] = true
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name := range w.endpoints {
		if p := w.pod(name); !ready[name] && p.endpointLeft.IsZero() {
			p.endpointLeft = now
		}
	}
	w.endpoints = ready
}

// readLogs keeps what each stopping proxy logs: the kubelet forgets a
// Pod's logs with the Pod.
func (w *proxyWatch) readLogs(ctx context.Context) {
	tick := time.NewTicker(logReadEvery)
	defer tick.Stop()
	for range maxLogReads {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, name := range w.stopping() {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			out, err := w.b.hub.CoreV1().Pods(env.GatewayNamespace).GetLogs(name, &corev1.PodLogOptions{Container: "proxy"}).DoRaw(rctx)
			cancel()
			w.mu.Lock()
			if p := w.pods[name]; err == nil && len(out) >= len(p.log) {
				p.log = out
			}
			w.mu.Unlock()
		}
	}
}

// stopping are the proxy Pods being deleted.
func (w *proxyWatch) stopping() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for name, p := range w.pods {
		if !p.deleting.IsZero() && p.gone.IsZero() {
			names = append(names, name)
		}
	}
	return names
}

// live are the proxy Pods not being deleted, on node unless it is "".
func (w *proxyWatch) live(node string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for name, p := range w.pods {
		if p.deleting.IsZero() && p.gone.IsZero() && (node == "" || p.node == node) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// waitGone waits until the Pods are deleted for good.
func (w *proxyWatch) waitGone(ctx context.Context, pods []string) {
	w.b.eventually(ctx, 2*time.Minute, fmt.Sprintf("proxy Pods %v gone", pods), func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		var left []string
		for _, name := range pods {
			if w.pods[name].gone.IsZero() {
				left = append(left, name)
			}
		}
		return len(left) == 0, fmt.Sprintf("%v still there", left)
	})
}

// logsOfGone is what the proxies taken away logged, for a failure's report.
func (w *proxyWatch) logsOfGone() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out strings.Builder
	for name, p := range w.pods {
		if !p.deleting.IsZero() {
			fmt.Fprintf(&out, "--- %s:\n%s\n", name, p.log)
		}
	}
	return out.String()
}

// fleetLoad counts the requests sent through the proxies' Service.
type fleetLoad struct {
	mu     sync.Mutex
	count  loadCount
	failed []string // the first failures
}

type loadCount struct {
	requests, failures int64
	keepAlive, fresh   int64 // requests on kept-alive connections, on new ones
}

func (l *fleetLoad) add(fresh bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count.requests++
	if fresh {
		l.count.fresh++
	} else {
		l.count.keepAlive++
	}
	if err != nil {
		l.count.failures++
		if len(l.failed) < 20 {
			l.failed = append(l.failed, fmt.Sprintf("%s (new connection: %v): %v", time.Now().Format("15:04:05.000"), fresh, err))
		}
	}
}

func (l *fleetLoad) snapshot() loadCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count
}

func (l *fleetLoad) failedList() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failed)
}

// since says what was sent since before.
func (l *fleetLoad) since(before loadCount) string {
	now := l.snapshot()
	return fmt.Sprintf("%d requests (%d on kept-alive connections, %d on new ones), %d failed",
		now.requests-before.requests, now.keepAlive-before.keepAlive, now.fresh-before.fresh, now.failures-before.failures)
}

// drainStart is when the proxy began to drain on SIGTERM, from its log
// (zero if it did not say). What follows, the listeners closing and the
// process ending, comes within milliseconds of the Pod's deletion for
// good: too late to read from the kubelet, which forgets the Pod's logs.
func drainStart(log []byte) time.Time {
	for _, line := range strings.Split(string(log), "\n") {
		var rec struct {
			Time  time.Time `json:"time"`
			Phase string    `json:"phase"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Phase == "delay" {
			return rec.Time
		}
	}
	return time.Time{}
}

// checkDrained checks that each Pod went as the chart means it to: out of
// the Service's ready endpoints first, SIGTERM after the preStop sleep,
// then the proxy's drain, and gone.
func (w *proxyWatch) checkDrained(t *testing.T, pods []string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, name := range pods {
		p := w.pods[name]
		sigterm := drainStart(p.log)
		switch {
		case sigterm.IsZero():
			t.Errorf("Pod %s: its log (%d bytes read while it stopped) shows no drain after SIGTERM", name, len(p.log))
			continue
		case p.endpointLeft.IsZero() || !p.endpointLeft.Before(sigterm):
			t.Errorf("Pod %s got SIGTERM (%s) before the Service's endpoints dropped it (%s): the preStop hook did not hold the signal back",
				name, clock(sigterm), clock(p.endpointLeft))
		}
		t.Logf("Pod %s on %s, from its deletion: out of the endpoints +%v, SIGTERM and drain +%v, gone +%v", name, p.node,
			p.endpointLeft.Sub(p.deleting).Round(time.Millisecond), sigterm.Sub(p.deleting).Round(time.Millisecond),
			p.gone.Sub(p.deleting).Round(time.Millisecond))
	}
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("15:04:05.000")
}

// nodeOfAProxy is the node of the first Ready proxy Pod, by name.
func (w *proxyWatch) nodeOfAProxy() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.pods))
	for name, p := range w.pods {
		if p.ready && p.deleting.IsZero() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		w.b.t.Fatal("no proxy Pod is Ready")
	}
	return w.pods[names[0]].node
}
