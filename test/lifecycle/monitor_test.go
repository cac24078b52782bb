package lifecycle_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

const (
	roleLabel      = "gatehouse.dev/role"
	controllerName = "gatehouse.dev/gateway-controller"
	// Bounds of the load loop: requests from each worker, and the pause
	// between two, which keeps two cores free for the control planes.
	maxRequestsPerWorker = 100000
	loadWorkers          = 2
	loadPause            = 5 * time.Millisecond
	statusEvery          = 250 * time.Millisecond
)

// monitor watches what an operator would watch during an upgrade or a
// drain: requests through the proxy, the route's and Gateway's Programmed
// condition, which hub Pods carry the active label, which hub holds the
// Lease, and where the push and webhook Services send traffic.
type monitor struct {
	stop context.CancelFunc
	wg   sync.WaitGroup

	requests, failures atomic.Int64

	mu            sync.Mutex
	failed        []string // the first failed requests
	samples       int
	notProgrammed []string
	maxActive     int
	twoActive     []string
	minReady      int // hub Pods Ready and not being deleted, at the least
	maxEndpoints  map[string]int
	labelled      map[string]bool
	events        []event // in the order seen
}

// event is a change the monitor saw, when it saw it.
type event struct {
	at   time.Time
	kind string // "deleting", "holder", "labelled"
	pod  string
}

func (b *bed) monitor(ctx context.Context, s *scenario) *monitor {
	ctx, cancel := context.WithCancel(ctx)
	m := &monitor{stop: cancel, maxEndpoints: map[string]int{}, labelled: map[string]bool{}, minReady: -1}
	factory := informers.NewSharedInformerFactoryWithOptions(b.hub, 0, informers.WithNamespace(hubNamespace))
	pods := factory.Core().V1().Pods()
	slices := factory.Discovery().V1().EndpointSlices()
	leases := factory.Coordination().V1().Leases()
	handle := func(f func(any)) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, o any) { f(o) }, DeleteFunc: f}
	}
	_, _ = pods.Informer().AddEventHandler(handle(func(o any) { m.pods(o, pods.Lister().Pods(hubNamespace).List) }))
	_, _ = leases.Informer().AddEventHandler(handle(m.lease))
	_, _ = slices.Informer().AddEventHandler(handle(func(any) {
		for _, svc := range []string{release + "-push", release + "-webhook"} {
			list, _ := slices.Lister().EndpointSlices(hubNamespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc}))
			m.endpoints(svc, list)
		}
	}))
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	for range loadWorkers {
		m.wg.Go(func() { m.load(ctx, s) })
	}
	m.wg.Go(func() { m.status(ctx, s) })
	return m
}

// finish stops the load and the sampling.
func (m *monitor) finish() {
	m.stop()
	m.wg.Wait()
}

func (m *monitor) load(ctx context.Context, s *scenario) {
	for range maxRequestsPerWorker {
		if ctx.Err() != nil {
			return
		}
		got, err := s.gw.Get(s.host)
		m.requests.Add(1)
		if err != nil || got != s.answer {
			m.failures.Add(1)
			m.note(&m.failed, fmt.Sprintf("%s: %q %v", time.Now().Format("15:04:05.000"), got, err))
		}
		time.Sleep(loadPause)
	}
}

// status samples the route's and the Gateway's Programmed condition.
func (m *monitor) status(ctx context.Context, s *scenario) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var route gwv1.HTTPRoute
		var gw gwv1.Gateway
		errRoute := s.gw.Client.Get(ctx, client.ObjectKey{Namespace: s.tenant, Name: "web"}, &route)
		errGw := s.gw.Client.Get(ctx, client.ObjectKey{Namespace: env.GatewayNamespace, Name: env.GatewayName}, &gw)
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		m.samples++
		m.mu.Unlock()
		now := time.Now().Format("15:04:05.000")
		if errRoute != nil || errGw != nil {
			m.note(&m.notProgrammed, fmt.Sprintf("%s: reading status: %v %v", now, errRoute, errGw))
			continue
		}
		if c := routeProgrammed(&route); c == nil || c.Status != "True" {
			m.note(&m.notProgrammed, fmt.Sprintf("%s: route %s", now, describe(c)))
		}
		if c := meta.FindStatusCondition(gw.Status.Conditions, string(gwv1.GatewayConditionProgrammed)); c == nil || c.Status != "True" {
			m.note(&m.notProgrammed, fmt.Sprintf("%s: Gateway %s", now, describe(c)))
		}
	}
}

func routeProgrammed(r *gwv1.HTTPRoute) *metav1.Condition {
	for _, p := range r.Status.Parents {
		if p.ControllerName == controllerName {
			return meta.FindStatusCondition(p.Conditions, "Programmed")
		}
	}
	return nil
}

func describe(c *metav1.Condition) string {
	if c == nil {
		return "without Programmed"
	}
	return fmt.Sprintf("Programmed=%s %s: %s", c.Status, c.Reason, c.Message)
}

// pods records deletions, newly labelled Pods, and any moment with more
// than one Pod labelled active.
func (m *monitor) pods(o any, list func(labels.Selector) ([]*corev1.Pod, error)) {
	now := time.Now()
	all, err := list(labels.Everything())
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var active []string
	ready := 0
	for _, p := range all {
		if p.DeletionTimestamp == nil && podReady(p) {
			ready++
		}
		if p.Labels[roleLabel] == "active" {
			active = append(active, p.Name)
			if !m.labelled[p.Name] {
				m.events = append(m.events, event{now, "labelled", p.Name})
			}
		}
		if p.DeletionTimestamp != nil && !m.seen("deleting", p.Name) {
			m.events = append(m.events, event{now, "deleting", p.Name})
		}
	}
	m.labelled = map[string]bool{}
	for _, a := range active {
		m.labelled[a] = true
	}
	m.maxActive = max(m.maxActive, len(active))
	if m.minReady < 0 || ready < m.minReady {
		m.minReady = ready
	}
	if len(active) > 1 {
		m.twoActive = append(m.twoActive, fmt.Sprintf("%s: %s", now.Format("15:04:05.000"), strings.Join(active, ", ")))
	}
}

func (m *monitor) lease(o any) {
	l, ok := o.(*coordinationv1.Lease)
	if !ok || l.Name != "gatehouse-hub" {
		return
	}
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
		if i := strings.LastIndexByte(holder, '_'); i >= 0 {
			holder = holder[:i] // the hub names the holder POD_UUID
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if last := m.last("holder"); last == nil || last.pod != holder {
		m.events = append(m.events, event{time.Now(), "holder", holder})
	}
}

func (m *monitor) endpoints(svc string, slices []*discoveryv1.EndpointSlice) {
	ready := 0
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				ready++
			}
		}
	}
	m.mu.Lock()
	m.maxEndpoints[svc] = max(m.maxEndpoints[svc], ready)
	m.mu.Unlock()
}

func (m *monitor) seen(kind, pod string) bool {
	for _, e := range m.events {
		if e.kind == kind && e.pod == pod {
			return true
		}
	}
	return false
}

func (m *monitor) last(kind string) *event {
	for i := len(m.events) - 1; i >= 0; i-- {
		if m.events[i].kind == kind {
			return &m.events[i]
		}
	}
	return nil
}

// holder is the Pod the Lease names now.
func (m *monitor) holder() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.last("holder"); e != nil {
		return e.pod
	}
	return ""
}

// failover measures, from the moment the leader's Pod was seen deleting
// (the kubelet sends SIGTERM at once), how long until another Pod held the
// Lease and until another Pod carried the active label, and says whether
// the leader released the Lease (emptied its holder) before another took
// it, rather than leaving it to expire.
func (m *monitor) failover(leader string) (f failover, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var start time.Time
	for _, e := range m.events {
		switch {
		case e.kind == "deleting" && e.pod == leader && start.IsZero():
			start = e.at
		case start.IsZero() || e.pod == leader:
		case e.kind == "holder" && e.pod == "" && f.lease == 0:
			f.released = true
		case e.kind == "holder" && f.lease == 0:
			f.lease = e.at.Sub(start)
		case e.kind == "labelled" && f.label == 0:
			f.label = e.at.Sub(start)
		}
	}
	return f, !start.IsZero() && f.lease > 0 && f.label > 0
}

type failover struct {
	lease, label time.Duration
	released     bool
}

// note keeps the first few entries of a list of problems.
func (m *monitor) note(list *[]string, s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(*list) < 20 {
		*list = append(*list, s)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
