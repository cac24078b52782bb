// Package env starts a local fleet for integration tests, e2e tests and the
// demo: a hub and member clusters, each a real etcd and kube-apiserver, with
// the Gateway API CRDs installed and every member registered with the hub the
// way production registers it (a kubeconfig Secret that multicluster-runtime's
// kubeconfig provider reads).
package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"
)

// HubNamespace is where the hub keeps the kubeconfig Secrets of its members.
const HubNamespace = "gatehouse-system"

// Options shape a fleet. The zero value starts a hub and no members.
type Options struct {
	// Members is the number of member clusters, named member-1 … member-N.
	Members int
	// Dir is the directory under which every cluster keeps its state. When
	// empty, a new temporary directory is used and removed by Stop.
	Dir string
	// BinDir holds etcd and kube-apiserver; defaults to $GATEHOUSE_BIN_DIR,
	// else bin/ at the root of this repository.
	BinDir string
	// CRDPaths are extra CRD files or directories installed in every cluster.
	CRDPaths []string
	// WithoutCRDs starts every cluster as a new one is: no CRD at all (the
	// Gateway API's and Gatehouse's are not installed, CRDPaths neither).
	// Deleting CRDs after the start instead is slow and can hang: a CRD
	// deleted while its storage still initializes keeps its finalizer.
	WithoutCRDs bool
	// Log receives the control planes' output; nil discards it.
	Log io.Writer
	// StartTimeout bounds the start of one control plane.
	StartTimeout time.Duration
	// AdvertiseAddress is kube-apiserver's --advertise-address. Needed where
	// no default route exists (a private network namespace); any local,
	// non-loopback address works.
	AdvertiseAddress string
	// ServeOnAdvertiseAddress makes kube-apiserver listen on
	// AdvertiseAddress rather than on loopback, with a certificate that
	// names it, so that processes in network namespaces of their own (the
	// fake kubelet's Pods) reach it; Config and the kubeconfigs point there.
	ServeOnAdvertiseAddress bool
	// CertManager installs cert-manager's CRDs on the hub and runs the
	// cert-manager controller (bin/cert-manager-controller) against it.
	CertManager bool
}

// Fleet is a running hub and its members.
type Fleet struct {
	Hub     *Cluster
	Members []*Cluster
	// Dir holds the state of every cluster and the kubeconfig files.
	Dir string

	// CertManager is the cert-manager controller, when Options.CertManager.
	CertManager *Process

	opts     Options
	mu       sync.Mutex
	ownsDir  bool
	stopOnce sync.Once
	stopErr  error
}

// Start brings up the hub and the members in parallel, installs the CRDs and
// registers every member with the hub. On error, everything already started
// is stopped again.
func Start(ctx context.Context, opts Options) (*Fleet, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &Fleet{Dir: opts.Dir, opts: opts}
	if f.Dir == "" {
		if f.Dir, err = os.MkdirTemp("", "gatehouse-fleet-"); err != nil {
			return nil, err
		}
		f.ownsDir = true
	}

	names := []string{"hub"}
	for i := 1; i <= opts.Members; i++ {
		names = append(names, fmt.Sprintf("member-%d", i))
	}
	clusters := make([]*Cluster, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		var extraCRDs []string
		if name == "hub" && opts.CertManager {
			if extraCRDs, err = certManagerCRDs(); err != nil {
				return nil, err
			}
		}
		wg.Go(func() {
			clusters[i], errs[i] = startCluster(name, filepath.Join(f.Dir, name), opts, extraCRDs)
		})
	}
	wg.Wait()
	f.Hub, f.Members = clusters[0], clusters[1:]
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, f.Stop())
	}

	if err := f.registerMembers(ctx); err != nil {
		return nil, errors.Join(err, f.Stop())
	}
	if opts.CertManager {
		if err := f.startCertManager(ctx, opts); err != nil {
			return nil, errors.Join(err, f.Stop())
		}
	}
	return f, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Members < 0 {
		return o, fmt.Errorf("members must not be negative, got %d", o.Members)
	}
	if o.ServeOnAdvertiseAddress && o.AdvertiseAddress == "" {
		return o, fmt.Errorf("ServeOnAdvertiseAddress needs an AdvertiseAddress")
	}
	if o.BinDir == "" {
		o.BinDir = os.Getenv("GATEHOUSE_BIN_DIR")
	}
	if o.BinDir == "" {
		root, err := RepoRoot()
		if err != nil {
			return o, err
		}
		o.BinDir = filepath.Join(root, "bin")
	}
	bins := []string{"etcd", "kube-apiserver"}
	if o.CertManager {
		bins = append(bins, "cert-manager-controller")
	}
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return o, fmt.Errorf("%s not found in %s: run 'make tools' first", b, o.BinDir)
		}
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 90 * time.Second
	}
	return o, nil
}

// registerMembers stores each member's kubeconfig as a Secret in the hub,
// exactly as 'gatehousectl join' does: one Secret per member, named after it.
func (f *Fleet) registerMembers(ctx context.Context) error {
	hub, err := kubernetes.NewForConfig(f.Hub.Config)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: HubNamespace}}
	if _, err := hub.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s on the hub: %w", HubNamespace, err)
	}
	for _, m := range f.Members {
		if err := f.register(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fleet) register(ctx context.Context, m *Cluster) error {
	hub, err := kubernetes.NewForConfig(f.Hub.Config)
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      m.Name,
			Namespace: HubNamespace,
			Labels:    map[string]string{kubeconfig.DefaultKubeconfigSecretLabel: "true"},
		},
		Data: map[string][]byte{kubeconfig.DefaultKubeconfigSecretKey: m.Kubeconfig},
	}
	if _, err := hub.CoreV1().Secrets(HubNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("registering %s with the hub: %w", m.Name, err)
	}
	return nil
}

// AddMember starts one more member cluster while the fleet runs and
// registers it with the hub, the way a platform team joins a cluster.
func (f *Fleet) AddMember(ctx context.Context) (*Cluster, error) {
	f.mu.Lock()
	name := fmt.Sprintf("member-%d", len(f.Members)+1)
	f.mu.Unlock()
	c, err := startCluster(name, filepath.Join(f.Dir, name), f.opts, nil)
	f.mu.Lock()
	if c != nil {
		f.Members = append(f.Members, c)
	}
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return c, f.register(ctx, c)
}

// Unregister deletes a member's kubeconfig Secret from the hub: the cluster
// leaves the fleet (it keeps running until Stop).
func (f *Fleet) Unregister(ctx context.Context, name string) error {
	hub, err := kubernetes.NewForConfig(f.Hub.Config)
	if err != nil {
		return err
	}
	return hub.CoreV1().Secrets(HubNamespace).Delete(ctx, name, metav1.DeleteOptions{})
}

// Clusters returns the hub followed by the members.
func (f *Fleet) Clusters() []*Cluster {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Cluster{f.Hub}, f.Members...)
}

// Member returns the member with the given name, or nil.
func (f *Fleet) Member(name string) *Cluster {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// PIDs are the processes of every control plane in the fleet, and of the
// cert-manager controller when it runs.
func (f *Fleet) PIDs() []int {
	var pids []int
	for _, c := range f.Clusters() {
		if c != nil {
			pids = append(pids, c.PIDs...)
		}
	}
	if f.CertManager != nil {
		pids = append(pids, f.CertManager.PID())
	}
	return pids
}

// Stop stops every control plane and removes the fleet's directory if Start
// created it. It is safe to call more than once.
func (f *Fleet) Stop() error {
	f.stopOnce.Do(func() {
		var stopErrs []error
		if f.CertManager != nil {
			stopErrs = append(stopErrs, f.CertManager.Stop(10*time.Second))
		}
		var wg sync.WaitGroup
		clusters := f.Clusters()
		errs := make([]error, len(clusters))
		for i, c := range clusters {
			if c == nil {
				continue
			}
			wg.Go(func() { errs[i] = c.stop() })
		}
		wg.Wait()
		if f.ownsDir {
			errs = append(errs, os.RemoveAll(f.Dir))
		}
		f.stopErr = errors.Join(append(stopErrs, errs...)...)
	})
	return f.stopErr
}

// Cluster is one running control plane.
type Cluster struct {
	Name string
	// Config authenticates as a cluster administrator.
	Config *rest.Config
	// Kubeconfig is self-contained (certificates inline); KubeconfigPath is
	// the same content on disk.
	Kubeconfig     []byte
	KubeconfigPath string
	// PIDs are the etcd and kube-apiserver processes of this cluster.
	PIDs []int

	env *envtest.Environment
}

func startCluster(name, dir string, opts Options, extraCRDs []string) (*Cluster, error) {
	etcdDir, certDir := filepath.Join(dir, "etcd"), filepath.Join(dir, "apiserver")
	for _, d := range []string{etcdDir, certDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	var crds []string
	if !opts.WithoutCRDs {
		var err error
		if crds, err = crdPaths(append(extraCRDs, opts.CRDPaths...)); err != nil {
			return nil, err
		}
	}
	e := &envtest.Environment{
		BinaryAssetsDirectory:    opts.BinDir,
		CRDDirectoryPaths:        crds,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: opts.StartTimeout,
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	e.ControlPlane.Etcd = newEtcd(etcdDir, opts.Log)
	api := e.ControlPlane.GetAPIServer()
	api.CertDir = certDir
	if opts.AdvertiseAddress != "" {
		api.Configure().Set("advertise-address", opts.AdvertiseAddress)
	}
	if opts.ServeOnAdvertiseAddress {
		port, err := freePort(opts.AdvertiseAddress)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: a port on %s: %w", name, opts.AdvertiseAddress, err)
		}
		api.SecureServing.Address, api.SecureServing.Port = opts.AdvertiseAddress, port
	}
	if opts.Log != nil {
		api.Out, api.Err = prefixed(opts.Log, name+"/apiserver"), prefixed(opts.Log, name+"/apiserver")
	}

	c := &Cluster{Name: name, env: e}
	if _, err := e.Start(); err != nil {
		c.PIDs = processesUnder(dir)
		return c, fmt.Errorf("starting cluster %s: %w", name, err)
	}
	c.PIDs = processesUnder(dir)

	admin, err := e.AddUser(envtest.User{Name: "gatehouse-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return c, fmt.Errorf("cluster %s: adding the admin user: %w", name, err)
	}
	c.Config = rest.CopyConfig(admin.Config())
	c.Config.QPS, c.Config.Burst = 200, 400
	if c.Kubeconfig, err = admin.KubeConfig(); err != nil {
		return c, fmt.Errorf("cluster %s: writing kubeconfig: %w", name, err)
	}
	c.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.KubeconfigPath, c.Kubeconfig, 0o600); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Cluster) stop() error {
	if c.env == nil {
		return nil
	}
	if err := c.env.Stop(); err != nil {
		return fmt.Errorf("stopping cluster %s: %w", c.Name, err)
	}
	return nil
}

// freePort is a port nothing listens on at host, for now.
func freePort(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}
