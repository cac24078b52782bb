package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/migrate"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/migrate/migratetest"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The test bed that testdata/expectations.yaml of the migrate package
// describes: Gateway gateway-system/shared with an "http" listener on 80 and
// an "https" listener on 443 whose certificate covers *.example.com, served
// by one proxy; every Service a route names is backed by an echo server.
const (
	migrateGatewayNS   = "gateway-system"
	migrateGatewayName = "shared"
	migrateProxyIP     = "10.244.1.10"
	gatewayController  = "gatehouse.dev/gateway-controller"
	// splitRequests is how many requests measure a weighted split: enough
	// that a share of 0.5% is seen (it is missed once in 20000 runs) and
	// that 5 standard deviations of a 20% share are 4.5%.
	splitRequests = 2000
	// endpointsLag bounds how long a route may be served before the
	// endpoints of its Services are (see send).
	endpointsLag = 5 * time.Second
)

var migrateGateway = types.NamespacedName{Namespace: migrateGatewayNS, Name: migrateGatewayName}

// TestMigrateIngress: the routes converted from each Ingress file of the
// migrate package's testdata are Accepted and Programmed on a real hub and
// member, and a real proxy sends the requests of testdata/expectations.yaml
// where the expectations say the Ingress sent them. Files are applied one at
// a time, each file's objects deleted before the next.
func TestMigrateIngress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := env.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	testdata := filepath.Join(root, "cmd", "gatehousectl", "migrate", "testdata")
	exp := readExpectations(t, filepath.Join(testdata, "expectations.yaml"))
	bins := build(t, "gatehouse", "gatehouse-proxy")

	fleet, err := env.Start(ctx, env.Options{Members: 1, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	h := startHub(t, ctx, fleet, bins["gatehouse"])
	bed := setUpMigrationBed(t, ctx, fleet.Members[0], bins["gatehouse-proxy"], h.xdsAddr, h.caFile)

	covered := map[string]bool{}
	for _, f := range exp.Files {
		covered[f.File] = true
		t.Run(strings.TrimSuffix(f.File, ".yaml"), func(t *testing.T) {
			in := loadIngressFile(t, filepath.Join(testdata, "ingress", f.File))
			res := migrate.Convert(in.ingresses, in.services, in.opts)
			for _, n := range res.Notes {
				t.Logf("note: %s", n)
			}
			bed.apply(t, ctx, in, res.Routes)
			for _, e := range f.Requests {
				bed.check(t, e)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(testdata, "ingress", "*.yaml"))
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("testdata/ingress/%s has no requests in expectations.yaml: it is not checked", filepath.Base(f))
		}
	}
}

func readExpectations(t *testing.T, file string) migratetest.Expectations {
	t.Helper()
	exp, err := migratetest.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Gateway != migrateGateway.String() {
		t.Fatalf("%s is written for Gateway %s; this test bed has %s", file, exp.Gateway, migrateGateway)
	}
	return exp
}

// ingressFile is one file of testdata/ingress: its Ingresses, the Services
// it declares and the options on its "# migrate:" line.
type ingressFile struct {
	ingresses []networkingv1.Ingress
	services  map[types.NamespacedName]*corev1.Service
	opts      migrate.Options
}

func loadIngressFile(t *testing.T, file string) ingressFile {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	in := ingressFile{services: map[types.NamespacedName]*corev1.Service{}, opts: migrateOptions(t, file, data)}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return in
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var typ metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &typ); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		switch typ.Kind {
		case "": // a document of comments
		case "Ingress":
			var ing networkingv1.Ingress
			if err := yaml.UnmarshalStrict(doc, &ing); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			in.ingresses = append(in.ingresses, ing)
		case "Service":
			var svc corev1.Service
			if err := yaml.UnmarshalStrict(doc, &svc); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			in.services[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = &svc
		default:
			t.Fatalf("%s: a %s; the test knows Ingresses and Services", file, typ.Kind)
		}
	}
}

// migrateOptions reads the "# migrate: key=value ..." line, which holds the
// flags the file is converted with; the Gateway is always the shared one.
func migrateOptions(t *testing.T, file string, data []byte) migrate.Options {
	o := migrate.Options{Gateway: migrateGateway}
	for line := range strings.Lines(string(data)) {
		opts, ok := strings.CutPrefix(line, "# migrate:")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(opts) {
			switch k, v, _ := strings.Cut(kv, "="); k {
			case "ingressClass":
				o.IngressClass = v
			case "sectionName":
				o.SectionName = v
			default:
				t.Fatalf("%s: unknown option %q on the # migrate: line", file, k)
			}
		}
	}
	return o
}

// migrationBed is the member with the shared Gateway, its proxy and the
// echo backends.
type migrationBed struct {
	client client.Client
	https  *tls.Config // trusts the listener's certificate only

	mu       sync.Mutex
	ips      map[types.NamespacedName]string // one address per Service
	backends map[string]*http.Server         // by "ns/name:port"
	clients  map[string]*http.Client         // by scheme and host
}

func setUpMigrationBed(t *testing.T, ctx context.Context, c *env.Cluster, proxyBin, xdsAddr, caFile string) *migrationBed {
	t.Helper()
	cl, err := client.New(c.Config, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, roots := selfSignedCertificate(t, "*.example.com")
	b := &migrationBed{client: cl, https: &tls.Config{RootCAs: roots},
		ips: map[types.NamespacedName]string{}, backends: map[string]*http.Server{}, clients: map[string]*http.Client{}}
	t.Cleanup(b.close)
	for _, o := range gatewayObjects(certPEM, keyPEM) {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	token, err := env.ProxyToken(ctx, c, migrateGatewayNS, migrateGatewayName, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start(t, "proxy", proxyBin, "--xds-address", xdsAddr, "--cluster", c.Name, "--gateway", migrateGateway.String(),
		"--bind-address", migrateProxyIP, "--admin-address", "127.0.0.1:0", "--cache-dir", t.TempDir(), "--drain-delay", "0s", "--drain-timeout", "2s",
		"--token-file", token, "--xds-ca-file", caFile)
	b.waitGatewayProgrammed(t, ctx)
	return b
}

// gatewayObjects: an external-mode class whose address is the proxy's, and
// the shared Gateway with its certificate.
func gatewayObjects(certPEM, keyPEM []byte) []client.Object {
	all := gwv1.NamespacesFromAll
	allowed := &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}}
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: env.ParamsNamespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: migrateGatewayNS}},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-external", Namespace: env.ParamsNamespace},
			Data:       map[string]string{"mode": "external", "addresses": migrateProxyIP},
		},
		&gwv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"},
			Spec: gwv1.GatewayClassSpec{ControllerName: gatewayController, ParametersRef: &gwv1.ParametersReference{
				Kind: "ConfigMap", Name: "gatehouse-external", Namespace: ptr.To[gwv1.Namespace](env.ParamsNamespace)}},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "wildcard-example-com", Namespace: migrateGatewayNS},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
		},
		&gwv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: migrateGatewayName, Namespace: migrateGatewayNS},
			Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{
				{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType, AllowedRoutes: allowed},
				{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType, AllowedRoutes: allowed, TLS: &gwv1.ListenerTLSConfig{
					CertificateRefs: []gwv1.SecretObjectReference{{Name: "wildcard-example-com"}}}},
			}},
		},
	}
}

// selfSignedCertificate returns a certificate for dnsName, its key, both PEM,
// and a pool trusting the certificate.
func selfSignedCertificate(t *testing.T, dnsName string) (certPEM, keyPEM []byte, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), roots
}

// waitGatewayProgrammed waits for the Gateway and both listeners to be
// Programmed, the https one with its certificate resolved.
func (b *migrationBed) waitGatewayProgrammed(t *testing.T, ctx context.Context) {
	t.Helper()
	var gw gwv1.Gateway
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b.client.Get(ctx, migrateGateway, &gw) == nil && gatewayReady(&gw) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("Gateway %s not Programmed with both listeners within 60s; status: %s", migrateGateway, statusYAML(gw.Status))
}

func gatewayReady(gw *gwv1.Gateway) bool {
	c := meta.FindStatusCondition(gw.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != gw.Generation || len(gw.Status.Listeners) != 2 {
		return false
	}
	for _, l := range gw.Status.Listeners {
		if !meta.IsStatusConditionTrue(l.Conditions, string(gwv1.ListenerConditionProgrammed)) ||
			!meta.IsStatusConditionTrue(l.Conditions, string(gwv1.ListenerConditionResolvedRefs)) {
			return false
		}
	}
	return true
}

func statusYAML(status any) string {
	out, _ := yaml.Marshal(status)
	return "\n" + string(out)
}

// apply creates what the routes of one file need (namespaces, Services,
// EndpointSlices to echo backends), then the routes, and waits for the hub
// to accept them and the proxy to serve them. Everything but the namespaces
// is deleted when the test ends.
func (b *migrationBed) apply(t *testing.T, ctx context.Context, in ingressFile, routes []*gwv1.HTTPRoute) {
	t.Helper()
	services := servicesFor(in.services, routes)
	var objs []client.Object
	for _, svc := range services {
		objs = append(objs, svc, b.endpointsOf(t, svc))
	}
	for _, r := range routes {
		objs = append(objs, r)
	}
	t.Cleanup(func() { b.deleteAll(t, objs) })
	for _, ns := range namespacesOf(objs) {
		if err := b.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, o := range objs {
		if err := b.client.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s/%s: %v", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	for _, r := range routes {
		waitRouteServed(t, ctx, b.client, r)
	}
}

// servicesFor returns the file's own Services and, for every other Service
// a backendRef names, one with the ports the routes use.
func servicesFor(declared map[types.NamespacedName]*corev1.Service, routes []*gwv1.HTTPRoute) []*corev1.Service {
	ports := map[types.NamespacedName][]int32{}
	for _, r := range routes {
		for _, rule := range r.Spec.Rules {
			for _, ref := range rule.BackendRefs {
				key := types.NamespacedName{Namespace: r.Namespace, Name: string(ref.Name)}
				if ref.Namespace != nil {
					key.Namespace = string(*ref.Namespace)
				}
				if _, ok := declared[key]; ok || ref.Port == nil || slices.Contains(ports[key], int32(*ref.Port)) {
					continue
				}
				ports[key] = append(ports[key], int32(*ref.Port))
			}
		}
	}
	var out []*corev1.Service
	for _, svc := range declared {
		out = append(out, svc.DeepCopy())
	}
	for key, ps := range ports {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		for _, p := range ps {
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("port-%d", p), Port: p})
		}
		out = append(out, svc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name })
	return out
}

// endpointsOf starts an echo server for each port of svc, on an address of
// the Service's own and the Service's port number, and returns the
// EndpointSlice pointing at them.
func (b *migrationBed) endpointsOf(t *testing.T, svc *corev1.Service) *discoveryv1.EndpointSlice {
	t.Helper()
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	ip := b.addressOf(key)
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc.Name + "-echo", Namespace: svc.Namespace, Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	for _, p := range svc.Spec.Ports {
		if err := b.serveEcho(key, ip, p.Port); err != nil {
			t.Fatal(err)
		}
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.Port)})
	}
	return es
}

func (b *migrationBed) addressOf(svc types.NamespacedName) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ip, ok := b.ips[svc]
	if !ok {
		n := len(b.ips)
		ip = fmt.Sprintf("10.244.%d.%d", 2+n/250, 1+n%250)
		b.ips[svc] = ip
	}
	return ip
}

// echoReply is what an echo backend answers: who it is and what it got.
type echoReply struct {
	Service string            `json:"service"`
	Port    int32             `json:"port"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

// serveEcho runs the echo backend of Service port svc:port on ip:port, once;
// a Service of a later file with the same name reuses it.
func (b *migrationBed) serveEcho(svc types.NamespacedName, ip string, port int32) error {
	id := fmt.Sprintf("%s:%d", svc, port)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.backends[id]; ok {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("echo backend of %s: %w", id, err)
	}
	s := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply := echoReply{Service: svc.String(), Port: port, Path: r.URL.Path, Headers: map[string]string{"Host": r.Host}}
		for k, v := range r.Header {
			reply.Headers[k] = strings.Join(v, ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply)
	})}
	go func() { _ = s.Serve(ln) }()
	b.backends[id] = s
	return nil
}

func (b *migrationBed) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.backends {
		_ = s.Close()
	}
	for _, c := range b.clients {
		c.CloseIdleConnections()
	}
}

func namespacesOf(objs []client.Object) []string {
	var out []string
	for _, o := range objs {
		if !slices.Contains(out, o.GetNamespace()) {
			out = append(out, o.GetNamespace())
		}
	}
	return out
}

// deleteAll deletes objs, routes first, and waits until they are gone, so
// that the next file starts from the Gateway alone. Namespaces stay: nothing
// in this test bed would finish deleting them.
func (b *migrationBed) deleteAll(t *testing.T, objs []client.Object) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, o := range slices.Backward(objs) {
		if err := b.client.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %T %s/%s: %v", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	for _, o := range objs {
		waitFor(t, 30*time.Second, fmt.Sprintf("%T %s/%s to be deleted", o, o.GetNamespace(), o.GetName()), func() bool {
			return apierrors.IsNotFound(b.client.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object)))
		})
	}
}

// waitRouteServed waits until every parent of r has Accepted, ResolvedRefs
// and Programmed True from our controller for r's generation. Programmed
// means the proxy acknowledged a table carrying r, hence computed after the
// previous file's routes were deleted; ResolvedRefs, that the table was
// computed with r's Services in sight (a rule the converter left without
// backends has no refs to resolve).
func waitRouteServed(t *testing.T, ctx context.Context, c client.Client, r *gwv1.HTTPRoute) {
	t.Helper()
	var got gwv1.HTTPRoute
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c.Get(ctx, client.ObjectKeyFromObject(r), &got) == nil && routeServed(&got) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("route %s/%s not Accepted, ResolvedRefs and Programmed within 30s; spec.parentRefs %s status:%s",
		r.Namespace, r.Name, statusYAML(r.Spec.ParentRefs), statusYAML(got.Status))
}

func routeServed(r *gwv1.HTTPRoute) bool {
	var ours []gwv1.RouteParentStatus
	for _, p := range r.Status.Parents {
		if p.ControllerName == gatewayController {
			ours = append(ours, p)
		}
	}
	if len(ours) != len(r.Spec.ParentRefs) {
		return false
	}
	for _, p := range ours {
		for _, typ := range []gwv1.RouteConditionType{gwv1.RouteConditionAccepted, gwv1.RouteConditionResolvedRefs, "Programmed"} {
			c := meta.FindStatusCondition(p.Conditions, string(typ))
			if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != r.Generation {
				return false
			}
		}
	}
	return true
}

// answer is what the proxy replied to one request.
type answer struct {
	status   int
	location string
	header   http.Header
	echo     *echoReply // nil unless an echo backend wrote the body
	body     string
}

func (a answer) String() string {
	s := fmt.Sprintf("HTTP %d", a.status)
	if a.location != "" {
		s += " Location: " + a.location
	}
	if a.echo != nil {
		return s + fmt.Sprintf(" from %s port %d, path %s, Host %s", a.echo.Service, a.echo.Port, a.echo.Path, a.echo.Headers["Host"])
	}
	return s + fmt.Sprintf(" body %q", a.body)
}

// check sends e through the proxy and compares the answer with it.
func (b *migrationBed) check(t *testing.T, e migratetest.Expectation) {
	t.Helper()
	if len(e.WantSplit) > 0 {
		b.checkSplit(t, e)
		return
	}
	got, err := b.send(e)
	if err != nil {
		t.Errorf("%s: %v", e, err)
		return
	}
	if problems := compare(e, got, true); len(problems) > 0 {
		t.Errorf("%s: %s; got %s", e, strings.Join(problems, "; "), got)
	}
}

// checkSplit sends e splitRequests times; every answer must come from a
// backend of the split, each share seen and within 5 standard deviations
// of its weight.
func (b *migrationBed) checkSplit(t *testing.T, e migratetest.Expectation) {
	t.Helper()
	counts := map[string]int{}
	for range splitRequests {
		got, err := b.send(e)
		if err != nil {
			t.Errorf("%s: %v", e, err)
			return
		}
		if problems := compare(e, got, false); len(problems) > 0 {
			t.Errorf("%s: %s; got %s", e, strings.Join(problems, "; "), got)
			return
		}
		counts[fmt.Sprintf("%s:%d", got.echo.Service, got.echo.Port)]++
	}
	var total int32
	for _, s := range e.WantSplit {
		total += s.Weight
	}
	for _, s := range e.WantSplit {
		id := fmt.Sprintf("%s:%d", s.Service, s.Port)
		want, got := float64(s.Weight)/float64(total), float64(counts[id])/splitRequests
		tolerance := 5 * math.Sqrt(want*(1-want)/splitRequests)
		if math.Abs(got-want) > tolerance || (s.Weight > 0 && counts[id] == 0) {
			t.Errorf("%s: %s got %.2f%% of %d requests, want %.2f%% ± %.2f", e, id, 100*got, splitRequests, 100*want, 100*tolerance)
		}
		delete(counts, id)
	}
	if len(counts) > 0 {
		t.Errorf("%s: backends outside the split answered: %v", e, counts)
	}
	t.Logf("%s: split over %d requests as expected", e, splitRequests)
}

// compare lists how got differs from e; the backend's identity is checked
// when withBackend (a split checks it over many answers).
func compare(e migratetest.Expectation, got answer, withBackend bool) []string {
	var problems []string
	if got.status != e.WantStatus {
		problems = append(problems, fmt.Sprintf("status %d, want %d", got.status, e.WantStatus))
	}
	switch {
	case e.WantStatus == http.StatusOK && got.echo == nil:
		problems = append(problems, "the answer does not come from a backend")
	case e.WantStatus != http.StatusOK && got.echo != nil:
		problems = append(problems, fmt.Sprintf("a backend answered, want the Gateway's %d", e.WantStatus))
	case got.echo != nil:
		if withBackend && (got.echo.Service != e.WantService || got.echo.Port != e.WantPort) {
			problems = append(problems, fmt.Sprintf("reached %s port %d, want %s port %d", got.echo.Service, got.echo.Port, e.WantService, e.WantPort))
		}
		if got.echo.Path != e.WantPath {
			problems = append(problems, fmt.Sprintf("the backend got path %s, want %s", got.echo.Path, e.WantPath))
		}
	}
	if e.WantLocation != "" && got.location != e.WantLocation {
		problems = append(problems, fmt.Sprintf("Location %q, want %q", got.location, e.WantLocation))
	}
	for k, v := range e.WantResponseHeaders {
		if g := got.header.Values(k); len(g) != 1 || g[0] != v {
			problems = append(problems, fmt.Sprintf("response header %s %q, want %q", k, g, v))
		}
	}
	return problems
}

// send sends e to the proxy's listener for its scheme, with e's Host (and
// SNI), without following redirects. A 503 (no ready endpoint, which no
// expectation wants) is retried for endpointsLag: Programmed says the proxy
// serves the route, but the EndpointSlices of its Services reach the hub
// through watches of their own, so a table may carry the route first.
func (b *migrationBed) send(e migratetest.Expectation) (answer, error) {
	deadline := time.Now().Add(endpointsLag)
	for {
		a, err := b.sendOnce(e)
		if err != nil || a.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return a, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *migrationBed) sendOnce(e migratetest.Expectation) (answer, error) {
	port := "80"
	if e.RequestScheme() == "https" {
		port = "443"
	}
	req, err := http.NewRequest(http.MethodGet, e.RequestScheme()+"://"+net.JoinHostPort(migrateProxyIP, port)+e.Path, nil)
	if err != nil {
		return answer{}, err
	}
	req.Host = e.Host
	for k, v := range e.Headers {
		req.Header.Set(k, v)
	}
	resp, err := b.clientFor(e.RequestScheme(), e.Host).Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, location: resp.Header.Get("Location"), header: resp.Header, body: string(body)}
	var reply echoReply
	if json.Unmarshal(body, &reply) == nil && reply.Service != "" {
		a.echo = &reply
	}
	return a, nil
}

// clientFor returns a client that does not follow redirects and, for
// https, presents host as SNI and trusts the listener's certificate only.
func (b *migrationBed) clientFor(scheme, host string) *http.Client {
	id := scheme + "://" + host
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[id]; ok {
		return c
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	if scheme == "https" {
		tr.TLSClientConfig = b.https.Clone()
		tr.TLSClientConfig.ServerName = host
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b.clients[id] = c
	return c
}
