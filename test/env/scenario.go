package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The shared-gateway scenario used by the e2e tests and the demo: in a
// member, a platform Gateway "infra/shared" for *.apps.example.test in
// external mode, tenants with a backend each, and a proxy process serving
// the Gateway. Backends need pod-like addresses (10.244.0.0/16), so the
// scenario runs in a network namespace where that range is routed locally.
const (
	GatewayNamespace = "infra"
	GatewayName      = "shared"
	ListenerPort     = 8080
	ParamsNamespace  = "gatehouse-system"
)

// Tenant is a namespace with one backend and one route to it.
type Tenant struct {
	Namespace string
	Hostname  string
	// Answer is what its backend replies to every request.
	Answer string
}

// SharedGateway is the scenario set up in one member.
type SharedGateway struct {
	Index   int
	Cluster *Cluster
	Client  client.Client
	// Address is where the Gateway answers (its proxy), "ip:port".
	Address string
	Tenants []Tenant
	Proxy   *Process
	// TokenFile holds the proxy's ServiceAccount token.
	TokenFile string
	backends  []*http.Server
}

// ProxyOptions say how to run the member's proxy.
type ProxyOptions struct {
	Binary, XDSAddress, CacheDir string
	// CAFile verifies the hub's push server (see PushCABundle).
	CAFile string
	Log    io.Writer
	// Admin is the proxy's /metrics and health address; a free loopback
	// port when empty.
	Admin string
}

// SetUpSharedGateway creates the scenario's objects in member number index
// (1-based, which picks its addresses 10.244.<index>.x), starts the tenants'
// backends and the proxy.
func SetUpSharedGateway(ctx context.Context, index int, c *Cluster, tenants []Tenant, proxy ProxyOptions) (*SharedGateway, error) {
	cl, err := client.New(c.Config, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, err
	}
	proxyIP := fmt.Sprintf("10.244.%d.10", index)
	g := &SharedGateway{Index: index, Cluster: c, Client: cl, Address: fmt.Sprintf("%s:%d", proxyIP, ListenerPort), Tenants: tenants}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ParamsNamespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: GatewayNamespace}},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-external", Namespace: ParamsNamespace},
			Data:       map[string]string{"mode": "external", "addresses": proxyIP},
		},
		&gwv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"},
			Spec: gwv1.GatewayClassSpec{ControllerName: "gatehouse.dev/gateway-controller", ParametersRef: &gwv1.ParametersReference{
				Kind: "ConfigMap", Name: "gatehouse-external", Namespace: ptr.To[gwv1.Namespace](ParamsNamespace)}},
		},
		SharedGatewayObject(),
	}
	for i, t := range tenants {
		backendIP := fmt.Sprintf("10.244.%d.%d", index, 20+i)
		srv, err := ServeAnswer(backendIP+":9000", t.Answer)
		if err != nil {
			g.Close()
			return nil, err
		}
		g.backends = append(g.backends, srv)
		objs = append(objs, TenantObjects(t, backendIP)...)
	}
	for _, o := range objs {
		if err := cl.Create(ctx, o); err != nil {
			g.Close()
			return nil, fmt.Errorf("%s: creating %T %s: %w", c.Name, o, o.GetName(), err)
		}
	}
	if proxy.Binary != "" {
		if g.TokenFile, err = ProxyToken(ctx, c, GatewayNamespace, GatewayName, proxy.CacheDir); err != nil {
			g.Close()
			return nil, err
		}
		if g.Proxy, err = StartProxy(c.Name+"/proxy", proxy, c.Name, proxyIP, g.TokenFile); err != nil {
			g.Close()
			return nil, err
		}
	}
	return g, nil
}

// StartProxy runs gatehouse-proxy for the shared Gateway of cluster,
// listening on ip, presenting the token in tokenFile.
func StartProxy(name string, proxy ProxyOptions, cluster, ip, tokenFile string) (*Process, error) {
	admin := proxy.Admin
	if admin == "" {
		admin = "127.0.0.1:0"
	}
	return StartProcess(name, proxy.Binary, []string{
		"--xds-address", proxy.XDSAddress, "--cluster", cluster, "--gateway", GatewayNamespace + "/" + GatewayName,
		"--bind-address", ip, "--admin-address", admin, "--cache-dir", proxy.CacheDir, "--drain-delay", "0s", "--drain-timeout", "2s",
		"--token-file", tokenFile, "--xds-ca-file", proxy.CAFile,
	}, proxy.Log)
}

// ProxyToken creates the proxy ServiceAccount of a Gateway in its cluster,
// as the hub's managed mode does, mints a token for it with the audience the
// hub accepts (as a projected token volume would) and writes it to a file in
// dir.
func ProxyToken(ctx context.Context, c *Cluster, namespace, gateway, dir string) (string, error) {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return "", err
	}
	sa := "gatehouse-proxy-" + gateway
	_, err = cs.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("%s: creating ServiceAccount %s/%s: %w", c.Name, namespace, sa, err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600), Audiences: []string{"gatehouse"}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("%s: requesting a token for %s/%s: %w", c.Name, namespace, sa, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "token")
	return path, os.WriteFile(path, []byte(tr.Status.Token), 0o600)
}

// SharedGatewayObject is the scenario's Gateway: one HTTP listener for
// *.apps.example.test on ListenerPort, routes from every namespace.
func SharedGatewayObject() *gwv1.Gateway {
	all := gwv1.NamespacesFromAll
	return &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: GatewayName, Namespace: GatewayNamespace},
		Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{{
			Name: "http", Port: ListenerPort, Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.apps.example.test"),
			AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}},
		}}},
	}
}

// TenantObjects are a tenant's namespace, its echo Service with one
// endpoint, backendIP:9000, and its route (TenantRoute "web").
func TenantObjects(t Tenant, backendIP string) []client.Object {
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.Namespace}},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: t.Namespace},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "echo-1", Namespace: t.Namespace, Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{backendIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](9000)}},
		},
		TenantRoute(t.Namespace, "web", t.Hostname),
	}
}

// TenantRoute is an HTTPRoute on the shared Gateway for host, to the
// tenant's echo Service.
func TenantRoute(namespace, name, host string) *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{
				Name: GatewayName, Namespace: ptr.To[gwv1.Namespace](GatewayNamespace)}}},
			Hostnames: []gwv1.Hostname{gwv1.Hostname(host)},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptr.To[gwv1.PortNumber](80)}}}}}},
		},
	}
}

// Close stops the proxy and the backends.
func (g *SharedGateway) Close() error {
	var errs []error
	if g.Proxy != nil {
		errs = append(errs, g.Proxy.Stop(10*time.Second))
	}
	for _, b := range g.backends {
		errs = append(errs, b.Close())
	}
	return errors.Join(errs...)
}

var demoClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// Get sends GET / for host through the Gateway and returns the answer, or ""
// with the reason.
func (g *SharedGateway) Get(host string) (string, error) {
	req, _ := http.NewRequest("GET", "http://"+g.Address+"/", nil)
	req.Host = host
	resp, err := demoClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return string(body), nil
}

// ServeAnswer serves answer to every request on addr until the server is
// closed.
func ServeAnswer(addr, answer string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w (run inside the test network namespace)", addr, err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, answer) }), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.Serve(ln) }()
	return s, nil
}
