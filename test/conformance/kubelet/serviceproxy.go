package kubelet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// ServiceProxy stands in for kube-proxy: for every TCP and UDP port of
// every Service it listens on clusterIP:port and on each address its load
// balancer was given (status.loadBalancer.ingress), in the current network
// namespace (where the Service range and the load balancer's addresses
// must be routed locally, see env.EnterNetwork), and hands each connection
// to one endpoint of the Service's EndpointSlices, chosen at random among
// the ready ones, or among the serving and terminating ones when none is
// ready, as kube-proxy does. A connection keeps its endpoint for its life;
// a Service without endpoints closes the connections it accepts. UDP
// datagrams from one client address are a session with one endpoint,
// ended after udpSessionIdle without a datagram either way.
type ServiceProxy struct {
	slices discoverylisters.EndpointSliceLister
	log    io.Writer

	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup

	mu        sync.Mutex
	listeners map[string]*serviceListener // by protocol/address:port
	logMu     sync.Mutex
}

type serviceListener struct {
	ln      net.Listener   // TCP
	pc      net.PacketConn // UDP
	service string         // namespace/name
	port    corev1.ServicePort
}

func (l *serviceListener) close() {
	if l.ln != nil {
		_ = l.ln.Close()
	}
	if l.pc != nil {
		_ = l.pc.Close()
	}
}

// udpSessionIdle ends a UDP session that carried no datagram for so long,
// as kube-proxy's conntrack entries for UDP time out.
const udpSessionIdle = 30 * time.Second

// StartServiceProxy proxies the Services of the cluster config reaches
// until Stop; log receives what it does (nil discards it).
func StartServiceProxy(ctx context.Context, config *rest.Config, log io.Writer) (*ServiceProxy, error) {
	if err := checkPrivateNetwork(); err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	client, err := kubernetes.NewForConfig(rest.CopyConfig(config))
	if err != nil {
		return nil, err
	}
	p := &ServiceProxy{log: log, listeners: map[string]*serviceListener{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	p.slices = factory.Discovery().V1().EndpointSlices().Lister()
	slices := factory.Discovery().V1().EndpointSlices().Informer()
	resync := func(any) {
		if list, err := services.Lister().List(labels.Everything()); err == nil {
			p.sync(list)
		}
	}
	if _, err := services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: resync, UpdateFunc: func(_, o any) { resync(o) }, DeleteFunc: resync,
	}); err != nil {
		return nil, err
	}
	p.bg.Go(func() { services.Informer().Run(p.ctx.Done()) })
	p.bg.Go(func() { slices.Run(p.ctx.Done()) })
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), services.Informer().HasSynced, slices.HasSynced) {
		p.Stop()
		return nil, errors.New("service proxy: the Service and EndpointSlice caches did not sync")
	}
	return p, nil
}

// Stop closes every listener and connection.
func (p *ServiceProxy) Stop() {
	p.cancel()
	p.mu.Lock()
	for key, l := range p.listeners {
		l.close()
		delete(p.listeners, key)
	}
	p.mu.Unlock()
	p.bg.Wait()
}

// sync opens a listener for each Service port and address that has none
// and closes the ones whose Service port or address went.
func (p *ServiceProxy) sync(services []*corev1.Service) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return
	}
	want := map[string]serviceListener{}
	for _, s := range services {
		for _, ip := range serviceIPs(s) {
			for _, port := range s.Spec.Ports {
				protocol := strings.ToLower(string(cmp.Or(port.Protocol, corev1.ProtocolTCP)))
				if protocol == "tcp" || protocol == "udp" {
					want[protocol+"/"+net.JoinHostPort(ip, strconv.Itoa(int(port.Port)))] = serviceListener{service: s.Namespace + "/" + s.Name, port: port}
				}
			}
		}
	}
	for key, l := range p.listeners {
		if w, ok := want[key]; !ok || w.service != l.service || w.port.Name != l.port.Name {
			l.close()
			delete(p.listeners, key)
		}
	}
	for key, w := range want {
		if _, ok := p.listeners[key]; ok {
			continue
		}
		protocol, addr, _ := strings.Cut(key, "/")
		l := &serviceListener{service: w.service, port: w.port}
		var err error
		if protocol == "udp" {
			l.pc, err = net.ListenPacket("udp", addr)
		} else {
			l.ln, err = net.Listen("tcp", addr)
		}
		if err != nil {
			p.logf("service %s port %d/%s on %s: %v", w.service, w.port.Port, protocol, addr, err)
			continue
		}
		p.listeners[key] = l
		if l.pc != nil {
			p.bg.Go(func() { p.serveUDP(l) })
		} else {
			p.bg.Go(func() { p.serve(l) })
		}
	}
}

// serviceIPs are the addresses kube-proxy serves a Service on: its cluster
// IP and the IPs its load balancer was given.
func serviceIPs(s *corev1.Service) []string {
	var ips []string
	if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
		ips = append(ips, s.Spec.ClusterIP)
	}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				ips = append(ips, ing.IP)
			}
		}
	}
	return ips
}

func (p *ServiceProxy) serve(l *serviceListener) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		p.bg.Go(func() { p.forward(c, l) })
	}
}

// forward connects c to one endpoint of the Service and copies both ways
// until both sides are done.
func (p *ServiceProxy) forward(c net.Conn, l *serviceListener) {
	defer c.Close()
	endpoints := p.endpoints(l)
	if len(endpoints) == 0 {
		p.logf("service %s port %d: no endpoint", l.service, l.port.Port)
		return
	}
	addr := endpoints[rand.IntN(len(endpoints))]
	var d net.Dialer
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	upstream, err := d.DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		p.logf("service %s port %d: %v", l.service, l.port.Port, err)
		return
	}
	defer upstream.Close()
	stop := context.AfterFunc(p.ctx, func() { _ = c.Close(); _ = upstream.Close() })
	defer stop()
	var wg sync.WaitGroup
	for _, pair := range [][2]net.Conn{{upstream, c}, {c, upstream}} {
		wg.Go(func() {
			_, _ = io.Copy(pair[0], pair[1])
			if tc, ok := pair[0].(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		})
	}
	wg.Wait()
}

// serveUDP relays the datagrams of each client address to one endpoint,
// chosen at the session's first datagram, and the endpoint's answers back
// from the Service's address.
func (p *ServiceProxy) serveUDP(l *serviceListener) {
	var mu sync.Mutex
	sessions := map[string]net.Conn{}
	defer func() {
		mu.Lock()
		for _, c := range sessions {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := l.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		key := from.String()
		mu.Lock()
		upstream := sessions[key]
		mu.Unlock()
		if upstream == nil {
			endpoints := p.endpoints(l)
			if len(endpoints) == 0 {
				p.logf("service %s port %d/udp: no endpoint", l.service, l.port.Port)
				continue
			}
			if upstream, err = net.Dial("udp", endpoints[rand.IntN(len(endpoints))]); err != nil {
				p.logf("service %s port %d/udp: %v", l.service, l.port.Port, err)
				continue
			}
			mu.Lock()
			sessions[key] = upstream
			mu.Unlock()
			p.bg.Go(func() {
				defer func() {
					mu.Lock()
					if sessions[key] == upstream {
						delete(sessions, key)
					}
					mu.Unlock()
					_ = upstream.Close()
				}()
				answer := make([]byte, 64<<10)
				for {
					_ = upstream.SetReadDeadline(time.Now().Add(udpSessionIdle))
					n, err := upstream.Read(answer)
					if err != nil {
						return
					}
					if _, err := l.pc.WriteTo(answer[:n], from); err != nil {
						return
					}
				}
			})
		}
		_, _ = upstream.Write(buf[:n])
	}
}

// endpoints lists the addresses (ip:port) a connection to l may go to.
func (p *ServiceProxy) endpoints(l *serviceListener) []string {
	namespace, name, _ := strings.Cut(l.service, "/")
	slices, err := p.slices.EndpointSlices(namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return nil
	}
	return pickEndpoints(slices, l.port.Name)
}

// pickEndpoints are the ready endpoints of the port named portName, or
// when there is none the serving and terminating ones.
func pickEndpoints(slices []*discoveryv1.EndpointSlice, portName string) []string {
	var ready, terminating []string
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port := -1
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				port = int(*p.Port)
			}
		}
		if port < 0 {
			continue
		}
		for _, e := range s.Endpoints {
			c := e.Conditions
			for _, a := range e.Addresses {
				addr := net.JoinHostPort(a, strconv.Itoa(port))
				switch {
				case c.Ready == nil || *c.Ready:
					ready = append(ready, addr)
				case c.Serving != nil && *c.Serving && c.Terminating != nil && *c.Terminating:
					terminating = append(terminating, addr)
				}
			}
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return terminating
}

func (p *ServiceProxy) logf(format string, args ...any) {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	fmt.Fprintf(p.log, "%s service proxy: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
