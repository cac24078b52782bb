package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// LoadBalancerOptions configure a LoadBalancer.
type LoadBalancerOptions struct {
	// Config gives administrator access to the cluster.
	Config *rest.Config
	// First and Last bound the pool addresses are given from, in order.
	First, Last netip.Addr
	// Static are addresses given only to a Service that asks for one of
	// them by spec.loadBalancerIP, as a reserved static address is.
	Static []netip.Addr
	// Log receives what it does; nil discards it.
	Log io.Writer
}

// LoadBalancer stands in for the load balancer controller of a cloud or of
// a bare-metal cluster: every Service of type LoadBalancer gets one IPv4
// address in status.loadBalancer.ingress, the next of its pool, or the one
// its spec.loadBalancerIP asks for when that is a free address of the pool
// or one of the static addresses. A Service that asks for any other
// address gets none, and keeps waiting, as with a cloud that cannot give
// it. Pool addresses are not reused within a run, so a client never
// reaches a new Service on an address it knew for an old one. ServiceProxy
// serves the addresses given, as kube-proxy serves load balancer addresses.
type LoadBalancer struct {
	opts     LoadBalancerOptions
	client   kubernetes.Interface
	services corelisters.ServiceLister

	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
	kick   chan struct{}

	mu       sync.Mutex
	next     netip.Addr
	given    map[types.UID]netip.Addr
	taken    map[netip.Addr]types.UID
	released map[netip.Addr]bool // pool addresses not to give again
	logMu    sync.Mutex
}

// StartLoadBalancer gives addresses to the LoadBalancer Services of the
// cluster config reaches until Stop.
func StartLoadBalancer(ctx context.Context, opts LoadBalancerOptions) (*LoadBalancer, error) {
	if !opts.First.Is4() || !opts.Last.Is4() || opts.Last.Less(opts.First) {
		return nil, fmt.Errorf("load balancer: the pool %s-%s is not a range of IPv4 addresses", opts.First, opts.Last)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	client, err := kubernetes.NewForConfig(rest.CopyConfig(opts.Config))
	if err != nil {
		return nil, err
	}
	lb := &LoadBalancer{opts: opts, client: client, next: opts.First, kick: make(chan struct{}, 1),
		given: map[types.UID]netip.Addr{}, taken: map[netip.Addr]types.UID{}, released: map[netip.Addr]bool{}}
	lb.ctx, lb.cancel = context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	lb.services = services.Lister()
	if _, err := services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: lb.poke, UpdateFunc: func(_, o any) { lb.poke(o) }, DeleteFunc: lb.poke,
	}); err != nil {
		return nil, err
	}
	lb.bg.Go(func() { services.Informer().Run(lb.ctx.Done()) })
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), services.Informer().HasSynced) {
		lb.Stop()
		return nil, errors.New("load balancer: the Service cache did not sync")
	}
	lb.bg.Go(lb.run)
	return lb, nil
}

// Stop stops giving addresses; those given stay in the Services' status.
func (lb *LoadBalancer) Stop() {
	lb.cancel()
	lb.bg.Wait()
}

func (lb *LoadBalancer) poke(any) {
	select {
	case lb.kick <- struct{}{}:
	default:
	}
}

// run reconciles every Service after each change, and every second, so
// that a status write lost to a conflict is made again.
func (lb *LoadBalancer) run() {
	for {
		select {
		case <-lb.ctx.Done():
			return
		case <-lb.kick:
		case <-time.After(time.Second):
		}
		list, err := lb.services.List(labels.Everything())
		if err != nil {
			continue
		}
		lb.reconcile(list)
	}
}

func (lb *LoadBalancer) reconcile(list []*corev1.Service) {
	live := map[types.UID]bool{}
	for _, s := range list {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.DeletionTimestamp == nil {
			live[s.UID] = true
		}
	}
	lb.mu.Lock()
	for uid, a := range lb.given {
		if !live[uid] {
			lb.release(uid, a)
		}
	}
	lb.mu.Unlock()
	for _, s := range list {
		if !live[s.UID] {
			continue
		}
		want, why := lb.assign(s)
		var ingress []corev1.LoadBalancerIngress
		if want.IsValid() {
			ingress = []corev1.LoadBalancerIngress{{IP: want.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
		}
		if slices.EqualFunc(ingress, s.Status.LoadBalancer.Ingress, func(a, b corev1.LoadBalancerIngress) bool { return a.IP == b.IP }) {
			continue
		}
		updated := s.DeepCopy()
		updated.Status.LoadBalancer.Ingress = ingress
		if _, err := lb.client.CoreV1().Services(s.Namespace).UpdateStatus(lb.ctx, updated, metav1.UpdateOptions{}); err != nil {
			lb.logf("service %s/%s: writing its address %v: %v", s.Namespace, s.Name, want, err)
			continue
		}
		if want.IsValid() {
			lb.logf("service %s/%s: given %s", s.Namespace, s.Name, want)
		} else {
			lb.logf("service %s/%s: no address: %s", s.Namespace, s.Name, why)
		}
	}
}

// assign is the address s gets: the one it has, else the one it asks for,
// else the pool's next; or none, and why.
func (lb *LoadBalancer) assign(s *corev1.Service) (netip.Addr, string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	had, ok := lb.given[s.UID]
	if asked := s.Spec.LoadBalancerIP; asked != "" {
		a, err := netip.ParseAddr(asked)
		switch {
		case err != nil || !a.Is4():
			if ok {
				lb.release(s.UID, had)
			}
			return netip.Addr{}, fmt.Sprintf("spec.loadBalancerIP %q is not an IPv4 address", asked)
		case ok && had == a:
			return a, ""
		case !slices.Contains(lb.opts.Static, a) && !lb.inPool(a):
			if ok {
				lb.release(s.UID, had)
			}
			return netip.Addr{}, fmt.Sprintf("spec.loadBalancerIP %s is neither in the pool %s-%s nor a static address", a, lb.opts.First, lb.opts.Last)
		case lb.taken[a] != "" || lb.released[a]:
			if ok {
				lb.release(s.UID, had)
			}
			return netip.Addr{}, fmt.Sprintf("spec.loadBalancerIP %s is in use, or was", a)
		}
		if ok {
			lb.release(s.UID, had)
		}
		lb.take(s.UID, a)
		return a, ""
	}
	if ok {
		return had, ""
	}
	for lb.next.IsValid() && !lb.opts.Last.Less(lb.next) {
		a := lb.next
		lb.next = a.Next()
		if lb.taken[a] == "" && !lb.released[a] {
			lb.take(s.UID, a)
			return a, ""
		}
	}
	return netip.Addr{}, "the pool is used up"
}

func (lb *LoadBalancer) inPool(a netip.Addr) bool {
	return !a.Less(lb.opts.First) && !lb.opts.Last.Less(a)
}

func (lb *LoadBalancer) take(uid types.UID, a netip.Addr) {
	lb.given[uid] = a
	lb.taken[a] = uid
}

// release frees a; a pool address is never given again, a static one is.
func (lb *LoadBalancer) release(uid types.UID, a netip.Addr) {
	delete(lb.given, uid)
	delete(lb.taken, a)
	if lb.inPool(a) {
		lb.released[a] = true
	}
}

func (lb *LoadBalancer) logf(format string, args ...any) {
	lb.logMu.Lock()
	defer lb.logMu.Unlock()
	fmt.Fprintf(lb.opts.Log, "%s load balancer: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
