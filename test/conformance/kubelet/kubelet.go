// Package kubelet is a fake kubelet for conformance runs on a machine without
// a container runtime: it registers a Node, binds the unscheduled Pods it
// places there (see place; several kubelets make several Nodes), and runs
// each container whose image it knows as a local binary, in a
// network namespace of the Pod's own (one address per Pod, reachable from the
// test network) and a mount namespace of the container's own (Secret,
// ConfigMap, downward API, projected (ServiceAccount tokens too) and
// emptyDir volumes appear at their mountPath). It writes Pod
// status the way a kubelet does, runs readiness and liveness probes,
// restarts exited containers, finishes graceful deletions (preStop hooks,
// then SIGTERM, then SIGKILL after the grace period), and serves container
// logs to kube-apiserver. ServiceProxy stands in for kube-proxy.
//
// It changes network settings, so it refuses to run outside a private
// network namespace (see env.EnterNetwork), and it needs root.
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Options configure a fake kubelet.
type Options struct {
	// Config gives administrator access to the cluster.
	Config *rest.Config
	// NodeName is the name of the Node to register, e.g. "conformance-node".
	NodeName string
	// NodeIP is the Node's InternalIP; the kubelet API listens there. It is
	// added to the loopback device unless it is local already.
	NodeIP string
	// Port is the kubelet API port; 0 means 10250.
	Port int
	// PodCIDR is where Pod addresses come from, one /32 per Pod; it must not
	// be routed locally. Addresses ending in .0 or .255 are skipped.
	PodCIDR string
	// Images maps an image's repository base name (the last path element,
	// without tag or digest, e.g. "echo-basic") to a local binary that plays
	// that image.
	Images map[string]string
	// Dir holds per-Pod state: volumes and container logs.
	Dir string
	// Log receives the kubelet's own diagnostics; nil discards them.
	Log io.Writer
	// MaxGracePeriod caps the time a deleted Pod's containers get from the
	// deletion (preStop hooks, then SIGTERM) to SIGKILL; 0 means 5 s,
	// enough for test backends. Lifecycle tests give the real grace.
	MaxGracePeriod time.Duration
	// ServiceAccountTokens gives containers what a cluster gives Pods to
	// reach its API: a token of their ServiceAccount, the API server's CA
	// and their namespace at /var/run/secrets/kubernetes.io/serviceaccount
	// (unless automountServiceAccountToken is false), and
	// KUBERNETES_SERVICE_HOST and _PORT naming the API server of Config.
	// The test bed's API server runs without the ServiceAccount admission
	// plugin that would add the volume, and without kube-proxy for the
	// kubernetes Service, so the kubelet does both; the API server must
	// listen where Pods reach it (see env.Options).
	ServiceAccountTokens bool
}

// Kubelet is a running fake kubelet. Stop it with Stop.
type Kubelet struct {
	opts   Options
	nodeIP netip.Addr
	client kubernetes.Interface
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	pool   *ipPool
	tools  tools

	ctx    context.Context
	cancel context.CancelFunc
	server *http.Server
	bg     sync.WaitGroup // informer, heartbeat and server goroutines

	mu       sync.Mutex
	workers  map[string]*podWorker // by namespace/name
	workerWG sync.WaitGroup

	logMu sync.Mutex

	stopOnce sync.Once
	stopErr  error
}

// tools are the absolute paths of the commands the kubelet runs.
type tools struct {
	ip, nsenter, sh, mount, mkdir, touch, sleep string
}

// defaultPort is the kubelet's well-known port.
const defaultPort = 10250

// Start registers the Node, serves the kubelet API and starts running the
// Pods bound to the Node. ctx bounds the start only; Stop ends the kubelet.
func Start(ctx context.Context, o Options) (*Kubelet, error) {
	o, nodeIP, err := o.validate()
	if err != nil {
		return nil, err
	}
	if err := checkPrivateNetwork(); err != nil {
		return nil, err
	}
	t, err := findTools()
	if err != nil {
		return nil, err
	}
	pool, err := newIPPool(o.PodCIDR)
	if err != nil {
		return nil, err
	}
	config := rest.CopyConfig(o.Config)
	config.UserAgent = "gatehouse-fake-kubelet"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("kubelet: creating the client: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "pods"), 0o700); err != nil {
		return nil, fmt.Errorf("kubelet: creating the state directory: %w", err)
	}
	k := &Kubelet{opts: o, nodeIP: nodeIP, client: client, pool: pool, tools: t, workers: map[string]*podWorker{}}
	if err := k.prepareHostNetwork(); err != nil {
		return nil, err
	}
	listener, err := k.listen()
	if err != nil {
		return nil, err
	}
	if err := k.registerNode(ctx); err != nil {
		_ = listener.Close()
		return nil, err
	}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	k.serve(listener)
	if err := k.watchPods(ctx); err != nil {
		return nil, errors.Join(err, k.Stop())
	}
	k.bg.Go(func() { k.heartbeat(k.ctx) })
	k.logf("node %s registered with InternalIP %s, kubelet API on port %d", o.NodeName, o.NodeIP, o.Port)
	return k, nil
}

func (o Options) validate() (Options, netip.Addr, error) {
	if o.Config == nil {
		return o, netip.Addr{}, errors.New("kubelet: Options.Config is required")
	}
	if o.NodeName == "" {
		return o, netip.Addr{}, errors.New("kubelet: Options.NodeName is required")
	}
	if o.Dir == "" {
		return o, netip.Addr{}, errors.New("kubelet: Options.Dir is required")
	}
	ip, err := netip.ParseAddr(o.NodeIP)
	if err != nil || !ip.Is4() {
		return o, netip.Addr{}, fmt.Errorf("kubelet: Options.NodeIP %q is not an IPv4 address", o.NodeIP)
	}
	if o.Port == 0 {
		o.Port = defaultPort
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, netip.Addr{}, fmt.Errorf("kubelet: Options.Port %d is out of range", o.Port)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.MaxGracePeriod <= 0 {
		o.MaxGracePeriod = defaultMaxGrace
	}
	for name, bin := range o.Images {
		if _, err := os.Stat(bin); err != nil {
			return o, netip.Addr{}, fmt.Errorf("kubelet: binary for image %q: %w", name, err)
		}
	}
	return o, ip, nil
}

func findTools() (tools, error) {
	var t tools
	for _, f := range []struct {
		name string
		dst  *string
	}{{"ip", &t.ip}, {"nsenter", &t.nsenter}, {"sh", &t.sh}, {"mount", &t.mount}, {"mkdir", &t.mkdir}, {"touch", &t.touch}, {"sleep", &t.sleep}} {
		path, err := exec.LookPath(f.name)
		if err != nil {
			return t, fmt.Errorf("kubelet: %s is required: %w", f.name, err)
		}
		if *f.dst, err = filepath.Abs(path); err != nil {
			return t, fmt.Errorf("kubelet: locating %s: %w", f.name, err)
		}
	}
	return t, nil
}

// watchPods starts the Pod and Node informers and waits for their caches;
// Nodes are read to place Pods (see place).
func (k *Kubelet) watchPods(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(k.client, 0)
	informer := factory.Core().V1().Pods().Informer()
	k.pods = factory.Core().V1().Pods().Lister()
	nodes := factory.Core().V1().Nodes().Informer()
	k.nodes = factory.Core().V1().Nodes().Lister()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    k.onPod,
		UpdateFunc: func(_, obj any) { k.onPod(obj) },
		DeleteFunc: k.onPod,
	}); err != nil {
		return fmt.Errorf("kubelet: watching pods: %w", err)
	}
	k.bg.Go(func() { informer.Run(k.ctx.Done()) })
	k.bg.Go(func() { nodes.Run(k.ctx.Done()) })
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), informer.HasSynced, nodes.HasSynced) {
		return errors.New("kubelet: the pod and node caches did not sync")
	}
	return nil
}

// onPod hands a Pod event to the Pod's worker when the Pod is unscheduled,
// bound to this node, or already known to the kubelet.
func (k *Kubelet) onPod(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	key := pod.Namespace + "/" + pod.Name
	mine := pod.Spec.NodeName == "" || pod.Spec.NodeName == k.opts.NodeName
	k.mu.Lock()
	defer k.mu.Unlock()
	w := k.workers[key]
	if w == nil {
		if !mine || k.ctx.Err() != nil {
			return
		}
		w = newPodWorker(k, pod.Namespace, pod.Name)
		k.workers[key] = w
		k.workerWG.Go(w.run)
	}
	w.poke()
}

// workerDone removes a worker that has nothing left to do, unless an event
// arrived meanwhile; it reports whether the worker may exit.
func (k *Kubelet) workerDone(w *podWorker) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(w.kick) > 0 && k.ctx.Err() == nil {
		return false
	}
	delete(k.workers, w.key)
	return true
}

// Stop ends every container (SIGTERM, then SIGKILL), removes the Pods'
// network namespaces and addresses, and stops serving. Pods stay in the
// cluster as they are. It is safe to call more than once.
func (k *Kubelet) Stop() error {
	k.stopOnce.Do(func() {
		k.mu.Lock()
		k.cancel()
		k.mu.Unlock()
		k.workerWG.Wait()
		if k.server != nil {
			k.stopErr = k.server.Close()
			if errors.Is(k.stopErr, net.ErrClosed) {
				k.stopErr = nil
			}
		}
		k.bg.Wait()
	})
	return k.stopErr
}

func (k *Kubelet) logf(format string, args ...any) {
	k.logMu.Lock()
	defer k.logMu.Unlock()
	fmt.Fprintf(k.opts.Log, "%s kubelet: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// spawnRequests carries processes to start to the spawner thread.
var (
	spawnOnce     sync.Once
	spawnRequests chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// startProcess starts cmd from one OS thread that lives as long as the
// program. Pdeathsig, which ends Pod processes should the program die, fires
// when the thread that forked the child ends, and Go ends a thread whenever a
// goroutine exits while locked to it (a common way to enter a namespace).
func startProcess(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnRequests = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // for good: this goroutine never returns
			for r := range spawnRequests {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnRequests <- spawnRequest{cmd: cmd, done: done}
	return <-done
}
