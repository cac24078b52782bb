package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	gatehousehub "github.com/gatehouse-dev/gatehouse/operator/hub"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

const tenantHost = "shop.apps.example.test"

// member is one member cluster with its shared Gateway, proxy and backend.
type member struct {
	*env.SharedGateway
	index int
}

// TestHubServesTheFleet: routes applied in members are accepted, programmed
// and served by each member's proxy; a cluster that joins later is served; a
// cluster that leaves stops receiving updates; the hub can be killed under
// load without a failed request or a Programmed condition going False.
func TestHubServesTheFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse", "gatehouse-proxy")

	fleet, err := env.Start(ctx, env.Options{Members: 3, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })

	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hubArgs := []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", xdsAddr,
		"--metrics-address", "0", "--health-address", "0", "--debounce", "20ms", "--startup-grace", "30s",
		"--proxy-image", "gatehouse-proxy:e2e"}
	hub := start(t, "hub", bins["gatehouse"], hubArgs...)
	caFile := pushCA(t, ctx, fleet)

	var members []*member
	for i, c := range fleet.Members {
		members = append(members, setUpMember(t, ctx, i+1, c, bins["gatehouse-proxy"], xdsAddr, caFile))
	}

	t.Run("routes are accepted, programmed and served in every member", func(t *testing.T) {
		for _, m := range members {
			waitServed(t, m, fmt.Sprintf("member-%d", m.index))
			waitRouteAccepted(t, ctx, m)
			waitProgrammed(t, ctx, m)
		}
		waitFor(t, 30*time.Second, "an event telling the tenant their route is programmed", func() bool {
			var events corev1.EventList
			if err := members[0].Client.List(ctx, &events, client.InNamespace("shop")); err != nil {
				return false
			}
			for _, e := range events.Items {
				if e.InvolvedObject.Kind == "HTTPRoute" && e.InvolvedObject.Name == "web" && strings.HasPrefix(e.Message, "Programmed=True") {
					return true
				}
			}
			return false
		})
	})

	t.Run("proxies without their Gateway's token get nothing", func(t *testing.T) {
		// Nor do they count among the Gateway's proxies.
		flaps := watchProgrammed(ctx, members[:1])
		defer func() {
			if falses := flaps.stop(); len(falses) > 0 {
				t.Errorf("impostors made member-1's Programmed go False: %v", falses)
			}
		}()
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad-token")
		if err := os.WriteFile(bad, []byte("not-a-token"), 0o600); err != nil {
			t.Fatal(err)
		}
		// A token member-1 issued, but for another ServiceAccount.
		other, err := env.ProxyToken(ctx, members[0].Cluster, "shop", "someone-else", filepath.Join(dir, "other"))
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct{ what, token string }{
			{"a malformed token", bad},
			{"member-2's proxy token", members[1].TokenFile},
			{"another ServiceAccount's token", other},
		}
		for i, c := range cases {
			ip, token := fmt.Sprintf("10.244.1.%d", 30+i), c.token
			p, err := env.StartProxy("member-1/impostor", env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: xdsAddr, CAFile: caFile, CacheDir: t.TempDir(), Log: testLog{t}},
				"member-1", ip, token)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Second)
			if got := get(fmt.Sprintf("%s:%d", ip, env.ListenerPort), tenantHost); got != "" {
				t.Errorf("a proxy with %s was given member-1's table: it answers %q", c.what, got)
			}
			_ = p.Stop(5 * time.Second)
		}
		waitServed(t, members[0], "member-1")
	})

	t.Run("managed mode creates the proxies' objects in the member", func(t *testing.T) {
		testManagedMode(t, ctx, members[0])
	})

	outer := t // the new member lives as long as the whole test
	t.Run("a cluster that joins at runtime is served", func(t *testing.T) {
		c, err := fleet.AddMember(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := setUpMember(outer, ctx, 4, c, bins["gatehouse-proxy"], xdsAddr, caFile)
		members = append(members, m)
		waitServed(t, m, "member-4")
		waitProgrammed(t, ctx, m)
	})

	t.Run("a cluster that leaves gets no more updates", func(t *testing.T) {
		m := members[2]
		if err := fleet.Unregister(ctx, "member-3"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // let the hub disengage
		addRoute(t, ctx, m, "late", "late.apps.example.test")
		time.Sleep(2 * time.Second)
		if got := get(m.Address, "late.apps.example.test"); got != "" {
			t.Errorf("a route created after the cluster left is served: %q", got)
		}
		if got := get(m.Address, tenantHost); got != "member-3" {
			t.Errorf("the cluster's proxy stopped serving what it had: %q", got)
		}
	})

	t.Run("the hub killed under load: no failed request, no Programmed flap", func(t *testing.T) {
		serving := []*member{members[0], members[1], members[3]}
		load := startLoad(serving)
		flaps := watchProgrammed(ctx, serving)
		time.Sleep(500 * time.Millisecond)
		hub.Kill()
		time.Sleep(time.Second)
		hub = start(outer, "hub", bins["gatehouse"], hubArgs...)
		for _, m := range serving {
			waitServed(t, m, fmt.Sprintf("member-%d", m.index))
		}
		// Proxies reconnect and acknowledge; status must stay True throughout.
		time.Sleep(5 * time.Second)
		ok, failed, firstErr := load.stop()
		falses := flaps.stop()
		t.Logf("%d requests during the hub's restart, %d failed", ok+failed, failed)
		if failed != 0 {
			t.Errorf("%d of %d requests failed while the hub restarted; first: %v", failed, ok+failed, firstErr)
		}
		if ok < 100 {
			t.Errorf("only %d requests ran: the load loop did not load", ok)
		}
		if len(falses) > 0 {
			t.Errorf("Programmed went False during the restart: %v", falses)
		}
		for _, m := range serving {
			waitProgrammed(t, ctx, m)
		}
	})
}

func setUpMember(t *testing.T, ctx context.Context, i int, c *env.Cluster, proxyBin, xdsAddr, caFile string) *member {
	t.Helper()
	g, err := env.SetUpSharedGateway(ctx, i, c,
		[]env.Tenant{{Namespace: "shop", Hostname: tenantHost, Answer: fmt.Sprintf("member-%d", i)}},
		env.ProxyOptions{Binary: proxyBin, XDSAddress: xdsAddr, CAFile: caFile, CacheDir: t.TempDir(), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return &member{SharedGateway: g, index: i}
}

func addRoute(t *testing.T, ctx context.Context, m *member, name, host string) {
	t.Helper()
	if err := m.Client.Create(ctx, env.TenantRoute("shop", name, host)); err != nil {
		t.Fatalf("member-%d: creating route %s: %v", m.index, name, err)
	}
}

func waitServed(t *testing.T, m *member, want string) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("member-%d's proxy to serve %s", m.index, tenantHost), func() bool {
		return get(m.Address, tenantHost) == want
	})
}

func waitRouteAccepted(t *testing.T, ctx context.Context, m *member) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("member-%d: route Accepted, ResolvedRefs and Programmed", m.index), func() bool {
		var r gwv1.HTTPRoute
		if err := m.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &r); err != nil || len(r.Status.Parents) != 1 {
			return false
		}
		p := r.Status.Parents[0]
		return p.ControllerName == "gatehouse.dev/gateway-controller" && meta.IsStatusConditionTrue(p.Conditions, "Accepted") &&
			meta.IsStatusConditionTrue(p.Conditions, "ResolvedRefs") && meta.IsStatusConditionTrue(p.Conditions, "Programmed")
	})
}

func waitProgrammed(t *testing.T, ctx context.Context, m *member) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("member-%d: Gateway Programmed with its address", m.index), func() bool {
		var gw gwv1.Gateway
		if err := m.Client.Get(ctx, client.ObjectKey{Namespace: "infra", Name: "shared"}, &gw); err != nil {
			return false
		}
		c := meta.FindStatusCondition(gw.Status.Conditions, "Programmed")
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gw.Generation &&
			len(gw.Status.Addresses) == 1 && gw.Status.Addresses[0].Value == strings.Split(m.Address, ":")[0] &&
			len(gw.Status.Listeners) == 1 && gw.Status.Listeners[0].AttachedRoutes >= 1
	})
}

// watchProgrammed records every time a Gateway's Programmed is seen False.
type flapWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	falses []string
}

func watchProgrammed(ctx context.Context, ms []*member) *flapWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &flapWatch{cancel: cancel}
	for _, m := range ms {
		w.wg.Go(func() {
			for ctx.Err() == nil {
				var gw gwv1.Gateway
				if err := m.Client.Get(ctx, client.ObjectKey{Namespace: "infra", Name: "shared"}, &gw); err == nil {
					if c := meta.FindStatusCondition(gw.Status.Conditions, "Programmed"); c == nil || c.Status != metav1.ConditionTrue {
						w.mu.Lock()
						w.falses = append(w.falses, fmt.Sprintf("member-%d: %+v", m.index, c))
						w.mu.Unlock()
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	return w
}

func (w *flapWatch) stop() []string {
	w.cancel()
	w.wg.Wait()
	return w.falses
}

type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func startLoad(ms []*member) *load {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	l := &load{cancel: cancel}
	for _, m := range ms {
		want := fmt.Sprintf("member-%d", m.index)
		l.wg.Go(func() {
			for ctx.Err() == nil {
				if got := get(m.Address, tenantHost); got != want {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, fmt.Sprintf("%s answered %q", m.Address, got))
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

func (l *load) stop() (int64, int64, any) {
	l.cancel()
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.firstErr.Load()
}

var httpClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// get returns the body of GET / for host through addr, or "" on failure.
func get(addr, host string) string { return getWith(addr, host, "", "") }

// getWith is get with one request header, when header is not "".
func getWith(addr, host, header, value string) string {
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = host
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(body)
}

// runningHub is the hub binary running against a fleet: where proxies reach
// its push server, and the CA bundle they verify it with.
type runningHub struct {
	xdsAddr, caFile string
	proc            *env.Process
}

// startHub runs the hub against fleet with the test bed's flags — the push
// server on a free loopback port, no metrics, health or webhook server, a
// short debounce and startup grace — then extra, whose flags win over
// those (the last of a repeated flag counts).
func startHub(t *testing.T, ctx context.Context, fleet *env.Fleet, bin string, extra ...string) runningHub {
	t.Helper()
	h := runningHub{xdsAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	args := append([]string{"--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", h.xdsAddr, "--metrics-address", "0",
		"--health-address", "0", "--webhook-address", "0", "--debounce", "20ms", "--startup-grace", "5s"}, extra...)
	h.proc = start(t, "hub", bin, args...)
	h.caFile = pushCA(t, ctx, fleet)
	return h
}

// pushCA waits for the hub's push CA bundle and returns the file proxies
// verify the hub with.
func pushCA(t *testing.T, ctx context.Context, fleet *env.Fleet) string {
	t.Helper()
	path, err := env.PushCABundle(ctx, fleet.Hub, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func start(t *testing.T, name, bin string, args ...string) *env.Process {
	t.Helper()
	p, err := env.StartProcess(name, bin, args, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	return p
}

// testLog sends process output to the test log, shown when a test fails or
// with -v.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // output after the test ended
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func build(t *testing.T, cmds ...string) map[string]string {
	t.Helper()
	out, err := env.BuildCommands(t.TempDir(), cmds...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testManagedMode: a Gateway of a class without parameters (managed mode)
// gets its proxies' ServiceAccount, Deployment and LoadBalancer Service in
// the member, carrying spec.infrastructure's labels and annotations; the
// Service's load-balancer address becomes the Gateway's. Nothing runs the
// pods here: the test plays the load balancer.
func testManagedMode(t *testing.T, ctx context.Context, m *member) {
	c := m.Client
	if err := c.Create(ctx, &gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-managed"},
		Spec:       gwv1.GatewayClassSpec{ControllerName: "gatehouse.dev/gateway-controller"},
	}); err != nil {
		t.Fatal(err)
	}
	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "managed", Namespace: "infra"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: "gatehouse-managed",
			Infrastructure: &gwv1.GatewayInfrastructure{
				Labels:      map[gwv1.LabelKey]gwv1.LabelValue{"team": "platform"},
				Annotations: map[gwv1.AnnotationKey]gwv1.AnnotationValue{"example.com/lb-class": "internal"},
			},
			Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}
	if err := c.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	name := client.ObjectKey{Namespace: "infra", Name: "gatehouse-proxy-managed"}
	var (
		sa  corev1.ServiceAccount
		dep appsv1.Deployment
		svc corev1.Service
	)
	waitFor(t, 30*time.Second, "the proxies' ServiceAccount, Deployment and Service", func() bool {
		return c.Get(ctx, name, &sa) == nil && c.Get(ctx, name, &dep) == nil && c.Get(ctx, name, &svc) == nil
	})
	for _, obj := range []client.Object{&sa, &dep, &svc} {
		if obj.GetLabels()["team"] != "platform" || obj.GetAnnotations()["example.com/lb-class"] != "internal" {
			t.Errorf("%T lacks spec.infrastructure's labels and annotations: %v %v", obj, obj.GetLabels(), obj.GetAnnotations())
		}
		if refs := obj.GetOwnerReferences(); len(refs) != 1 || refs[0].Kind != "Gateway" || refs[0].Name != "managed" {
			t.Errorf("%T is not owned by the Gateway: %v", obj, refs)
		}
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
		t.Errorf("Service: %+v", svc.Spec)
	}
	if dep.Spec.Template.Spec.ServiceAccountName != name.Name || dep.Spec.Template.Spec.Containers[0].Image != "gatehouse-proxy:e2e" {
		t.Errorf("Deployment pod: %+v", dep.Spec.Template.Spec)
	}
	checkPushCredentials(t, ctx, c, &dep)
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "10.244.1.99"}}
	if err := c.Status().Update(ctx, &svc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the load balancer's address on the Gateway", func() bool {
		var got gwv1.Gateway
		return c.Get(ctx, client.ObjectKeyFromObject(gw), &got) == nil &&
			len(got.Status.Addresses) == 1 && got.Status.Addresses[0].Value == "10.244.1.99"
	})
}

// checkPushCredentials: a managed proxy presents a projected token for the
// audience gatehouse, not the API server's token, and verifies the hub with
// the bundle the hub wrote beside it.
func checkPushCredentials(t *testing.T, ctx context.Context, c client.Client, dep *appsv1.Deployment) {
	t.Helper()
	pod := dep.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("managed proxies mount the API server's token")
	}
	var audience, bundle string
	for _, v := range pod.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				audience = s.ServiceAccountToken.Audience
			}
			if s.ConfigMap != nil {
				bundle = s.ConfigMap.Name
			}
		}
	}
	if audience != gatehousehub.ProxyTokenAudience {
		t.Errorf("managed proxies' token is for audience %q", audience)
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: dep.Namespace, Name: bundle}, &cm); err != nil || !strings.Contains(cm.Data["ca.crt"], "BEGIN CERTIFICATE") {
		t.Errorf("managed proxies' CA bundle ConfigMap %q: %v %v", bundle, err, cm.Data)
	}
}
