package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestTenantCannotFreezeSharedGateway: a tenant with rights in its own
// namespace only adds a ListenerSet to the shared Gateway with a listener
// on 9901, the port a managed proxy's admin server binds (here the test
// holds that port on the proxy's address, as the admin server would). The
// listener is refused, naming the reserved port, and stays out of the
// table, so the proxy keeps accepting tables: another tenant's new route
// becomes Programmed and is served. Before, the proxy rejected every table
// from then on and the other tenant's route stayed Programmed=False.
func TestTenantCannotFreezeSharedGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m := twoTenantsOnOneMember(t, ctx)

	// What a managed proxy's admin server holds: port 9901 where the
	// proxy's listeners bind.
	holdPort(t, m, 9901)

	// The platform team lets tenants add listeners to the shared Gateway.
	all := gwv1.NamespacesFromAll
	updateSharedGateway(t, ctx, m, func(gw *gwv1.Gateway) {
		gw.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: &all}}
	})

	mallory := tenantClient(t, ctx, m, "mallory")
	if err := mallory.Create(ctx, &gwv1.ListenerSet{
		ObjectMeta: metav1.ObjectMeta{Name: "grab", Namespace: "mallory"},
		Spec: gwv1.ListenerSetSpec{
			ParentRef: gwv1.ParentGatewayReference{Name: env.GatewayName, Namespace: ptr.To[gwv1.Namespace](env.GatewayNamespace)},
			Listeners: []gwv1.ListenerEntry{{Name: "admin", Port: 9901, Protocol: gwv1.HTTPProtocolType,
				Hostname: ptr.To[gwv1.Hostname]("grab.apps.example.test")}},
		},
	}); err != nil {
		t.Fatalf("the tenant creating its ListenerSet: %v", err)
	}
	cond := waitListenerSetListener(t, ctx, m.Client, "mallory", "grab", "admin", string(gwv1.ListenerConditionAccepted))

	// Another tenant's new route is programmed and served.
	if err := m.Client.Create(ctx, env.TenantRoute("team-b", "later", "later.apps.example.test")); err != nil {
		t.Fatal(err)
	}
	waitParentCondition(t, ctx, m.Client, "team-b", "later", "Programmed", metav1.ConditionTrue, "Programmed")
	waitAnswer(t, m.Address, "later.apps.example.test", "team-b-1")
	if got := get(m.Address, tenantHost); got != "shop-1" {
		t.Errorf("the first tenant's route answers %q", got)
	}
	// The tenant is told why its listener is not served, and what to do.
	if cond.Status != metav1.ConditionFalse || cond.Reason != string(gwv1.ListenerReasonPortUnavailable) ||
		!strings.Contains(cond.Message, "port 9901 is reserved") || !strings.Contains(cond.Message, "use another port") {
		t.Errorf("the listener on 9901 says Accepted=%s %s: %s; want False, PortUnavailable, naming the reserved port", cond.Status, cond.Reason, cond.Message)
	}
}

// startMemberAndHub starts a hub cluster with one member and the hub binary
// (no webhook) pushing on xdsAddr and serving /metrics on metricsAddr.
func startMemberAndHub(t *testing.T, ctx context.Context, hubBin, xdsAddr, metricsAddr string) *env.Fleet {
	t.Helper()
	fleet, err := env.Start(ctx, env.Options{Members: 1, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	startHub(t, ctx, fleet, hubBin, "--xds-address", xdsAddr, "--metrics-address", metricsAddr)
	return fleet
}

// updateSharedGateway changes the scenario's Gateway, again on a conflict
// with the hub's status writes.
func updateSharedGateway(t *testing.T, ctx context.Context, m *env.SharedGateway, change func(*gwv1.Gateway)) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var gw gwv1.Gateway
		if err := m.Client.Get(ctx, types.NamespacedName{Namespace: env.GatewayNamespace, Name: env.GatewayName}, &gw); err != nil {
			return err
		}
		change(&gw)
		return m.Client.Update(ctx, &gw)
	}); err != nil {
		t.Fatal(err)
	}
}

// tenantClient gives user the rights a tenant team has (ListenerSets and
// routes in its own namespace, which it gets) and a client acting as it.
func tenantClient(t *testing.T, ctx context.Context, m *env.SharedGateway, user string) client.Client {
	t.Helper()
	if err := m.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: user}}); err != nil {
		t.Fatal(err)
	}
	return actAs(t, ctx, m, user, user, rbacv1.PolicyRule{APIGroups: []string{gwv1.GroupName}, Resources: []string{"listenersets", "httproutes"}, Verbs: []string{"*"}})
}

// actAs gives user the rules in namespace ns only, and a client acting as it.
func actAs(t *testing.T, ctx context.Context, m *env.SharedGateway, user, ns string, rules ...rbacv1.PolicyRule) client.Client {
	t.Helper()
	objs := []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: ns}, Rules: rules},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "tenant"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}},
	}
	for _, o := range objs {
		if err := m.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(m.Cluster.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitListenerSetListener waits for the hub to report condType of a
// ListenerSet's listener, and returns it.
func waitListenerSetListener(t *testing.T, ctx context.Context, c client.Client, ns, name, listener, condType string) metav1.Condition {
	t.Helper()
	var found metav1.Condition
	waitFor(t, 30*time.Second, fmt.Sprintf("ListenerSet %s/%s listener %s to have %s", ns, name, listener, condType), func() bool {
		var ls gwv1.ListenerSet
		if c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &ls) != nil {
			return false
		}
		for _, l := range ls.Status.Listeners {
			if cond := meta.FindStatusCondition(l.Conditions, condType); string(l.Name) == listener && cond != nil && cond.ObservedGeneration == ls.Generation {
				found = *cond
				return true
			}
		}
		return false
	})
	return found
}

// TestMemberFloodDoesNotExhaustHub: a member fills its API server with
// large objects the hub caches: 40 ConfigMaps of 900 KiB (half in the key
// the hub reads for CA bundles, half in another) and 20 TLS Secrets with a
// 900 KiB certificate; then a tenant with rights on Services and HTTPRoutes
// in its namespace only adds 40 Services with 200 KiB of annotations and
// 60 KiB of labels, labelled as the hub's own objects, one Service with
// 3,000 ports, and 40 HTTPRoutes of about 1 MiB each. The hub's heap in
// use grows by far less than the objects' size, and wherever a stubbed
// object is referenced (a listener's certificateRef, a BackendTLSPolicy's
// CA, a route's backend) and on every oversized route the status says why.
func TestMemberFloodDoesNotExhaustHub(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse")
	// The hub collects often, so that its heap in use follows what it
	// holds rather than when it last collected.
	t.Setenv("GOGC", "10")
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	fleet := startMemberAndHub(t, ctx, bins["gatehouse"], fmt.Sprintf("127.0.0.1:%d", freePort(t)), metrics)
	m, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{{Namespace: "shop", Hostname: tenantHost, Answer: "shop-1"}}, env.ProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	waitParentCondition(t, ctx, m.Client, "shop", "web", "Accepted", metav1.ConditionTrue, "Accepted")
	before := settledHeap(t, metrics)

	const n, size = 40, 900 << 10
	payload := strings.Repeat("A", size)
	for i := range n {
		key := "ca.crt"
		if i%2 == 1 {
			key = "blob"
		}
		if err := m.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("flood-%d", i), Namespace: "shop"},
			Data: map[string]string{key: payload}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n / 2 {
		if err := m.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("flood-%d", i), Namespace: "shop"},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte(payload), "tls.key": []byte("k")}}); err != nil {
			t.Fatal(err)
		}
	}

	// A listener and a policy name the largest objects: once their status
	// reports them, the hub's cache holds every object created before.
	updateSharedGateway(t, ctx, m, func(gw *gwv1.Gateway) {
		gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{Name: "https", Port: 8443, Protocol: gwv1.HTTPSProtocolType,
			TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "flood-19", Namespace: ptr.To[gwv1.Namespace]("shop")}}}})
	})
	if err := m.Client.Create(ctx, &gwv1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "gateways", Namespace: "shop"},
		Spec: gwv1.ReferenceGrantSpec{
			From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "Gateway", Namespace: env.GatewayNamespace}},
			To:   []gwv1.ReferenceGrantTo{{Kind: "Secret"}},
		}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Client.Create(ctx, &gwv1.BackendTLSPolicy{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "shop"},
		Spec: gwv1.BackendTLSPolicySpec{
			TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "echo"}}},
			Validation: gwv1.BackendTLSPolicyValidation{Hostname: "echo.shop", CACertificateRefs: []gwv1.LocalObjectReference{{Kind: "ConfigMap", Name: "flood-38"}}},
		}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the BackendTLSPolicy to report its dropped CA ConfigMap", func() bool {
		var p gwv1.BackendTLSPolicy
		if m.Client.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "echo"}, &p) != nil || len(p.Status.Ancestors) == 0 {
			return false
		}
		c := meta.FindStatusCondition(p.Status.Ancestors[0].Conditions, "ResolvedRefs")
		return c != nil && strings.Contains(c.Message, "ConfigMap shop/flood-38 is ") && strings.Contains(c.Message, "more than the 131072 it keeps")
	})
	waitFor(t, 30*time.Second, "the listener to report its dropped Secret", func() bool {
		var g gwv1.Gateway
		if m.Client.Get(ctx, types.NamespacedName{Namespace: env.GatewayNamespace, Name: env.GatewayName}, &g) != nil {
			return false
		}
		for _, l := range g.Status.Listeners {
			if c := meta.FindStatusCondition(l.Conditions, "ResolvedRefs"); l.Name == "https" && c != nil && c.Status == metav1.ConditionFalse &&
				strings.Contains(c.Message, "Secret shop/flood-19 is ") {
				return true
			}
		}
		return false
	})

	flooded := int64(n*size+n/2*size) + floodAsTenant(t, ctx, m)

	after := settledHeap(t, metrics)
	t.Logf("hub heap in use: %d MiB before, %d MiB after %d MiB of ConfigMaps, Secrets, Services and HTTPRoutes in the member", before>>20, after>>20, flooded>>20)
	// Holding the objects would cost at least their size; the bound, a
	// quarter of it, leaves room for the stubs, the statuses the hub now
	// writes and the heap's own movement under a loaded machine (12–17 MiB
	// seen).
	if grown := after - before; grown > flooded/4 {
		t.Errorf("the hub's heap in use grew by %d MiB after the member was flooded with %d MiB: its caches hold what they need not", grown>>20, flooded>>20)
	}
}

// floodAsTenant acts as a tenant of namespace shop, allowed to write
// Services and HTTPRoutes there and nothing else, and returns how many bytes
// of objects it created. It waits until the hub reports the oversized
// objects: a route to the Service with 3,000 ports says ResolvedRefs=False,
// TooLarge, and every large route Accepted=False, TooLarge, naming its size
// and the limit.
func floodAsTenant(t *testing.T, ctx context.Context, m *env.SharedGateway) int64 {
	t.Helper()
	tenant := actAs(t, ctx, m, "shop-team", "shop",
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"*"}},
		rbacv1.PolicyRule{APIGroups: []string{gwv1.GroupName}, Resources: []string{"httproutes"}, Verbs: []string{"*"}})
	var created int64
	create := func(o client.Object) {
		t.Helper()
		if err := tenant.Create(ctx, o); err != nil {
			t.Fatalf("the tenant creating %T %s: %v", o, o.GetName(), err)
		}
		b, _ := json.Marshal(o)
		created += int64(len(b))
	}

	// Services labelled as the hub's own, with as much metadata as the API
	// server takes (annotations: 256 KiB in all; label values: 63 bytes).
	const services = 40
	for i := range services {
		labels := map[string]string{"gatehouse.dev/gateway": env.GatewayName}
		for j := range 1000 {
			labels[fmt.Sprintf("flood.example/l%d", j)] = strings.Repeat("v", 50)
		}
		create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("flood-%d", i), Namespace: "shop", Labels: labels,
			Annotations: map[string]string{"flood.example/a": strings.Repeat("A", 200<<10)}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}})
	}
	ports := make([]corev1.ServicePort, 3000)
	for i := range ports {
		ports[i] = corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: int32(1000 + i)}
	}
	create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "many-ports", Namespace: "shop"}, Spec: corev1.ServiceSpec{Ports: ports}})
	toManyPorts := env.TenantRoute("shop", "to-many-ports", "ports."+tenantHost)
	toManyPorts.Spec.Rules[0].BackendRefs[0].Name = "many-ports"
	toManyPorts.Spec.Rules[0].BackendRefs[0].Port = ptr.To[gwv1.PortNumber](1000)
	create(toManyPorts)

	// Routes of about 1 MiB: 16 rules of 15 header matches of 4,000 bytes,
	// the most each field takes.
	const routes = 40
	for i := range routes {
		r := env.TenantRoute("shop", fmt.Sprintf("flood-%d", i), fmt.Sprintf("flood-%d.%s", i, tenantHost))
		rule := r.Spec.Rules[0]
		r.Spec.Rules = nil
		for k := range 16 {
			match := gwv1.HTTPRouteMatch{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To(fmt.Sprintf("/%d", k))}}
			for h := range 15 {
				match.Headers = append(match.Headers, gwv1.HTTPHeaderMatch{Name: gwv1.HTTPHeaderName(fmt.Sprintf("x-flood-%d", h)), Value: strings.Repeat("h", 4000)})
			}
			rule.Matches = []gwv1.HTTPRouteMatch{match}
			r.Spec.Rules = append(r.Spec.Rules, *rule.DeepCopy())
		}
		create(r)
	}

	waitParentCondition(t, ctx, m.Client, "shop", "to-many-ports", "ResolvedRefs", metav1.ConditionFalse, "TooLarge")
	var r gwv1.HTTPRoute
	if err := m.Client.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "to-many-ports"}, &r); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(r.Status.Parents[0].Conditions, "ResolvedRefs"); !strings.Contains(c.Message, "Service shop/many-ports is ") ||
		!strings.Contains(c.Message, "more than the 131072 it keeps") {
		t.Errorf("the route to the Service with 3,000 ports says %q; want its size and the limit", c.Message)
	}
	for i := range routes {
		name := fmt.Sprintf("flood-%d", i)
		waitParentCondition(t, ctx, m.Client, "shop", name, "Accepted", metav1.ConditionFalse, "TooLarge")
		if i == routes-1 {
			if err := m.Client.Get(ctx, types.NamespacedName{Namespace: "shop", Name: name}, &r); err != nil {
				t.Fatal(err)
			}
			c := meta.FindStatusCondition(r.Status.Parents[0].Conditions, "Accepted")
			if !strings.Contains(c.Message, "HTTPRoute shop/"+name+" is ") || !strings.Contains(c.Message, "more than the 131072 it keeps") {
				t.Errorf("a large route says %q; want its size and the limit", c.Message)
			}
			t.Logf("route %s says: %s", name, c.Message)
		}
	}
	return created
}

// settledHeap is the smallest go_memstats_heap_inuse_bytes the hub reports
// over a few seconds: garbage of a pass that has just run comes and goes.
func settledHeap(t *testing.T, addr string) int64 {
	t.Helper()
	least := int64(-1)
	for range 10 {
		if v, err := metricValue(addr, "go_memstats_heap_inuse_bytes"); err == nil && (least < 0 || v < least) {
			least = v
		}
		time.Sleep(500 * time.Millisecond)
	}
	if least < 0 {
		t.Fatalf("the hub's /metrics on %s has no go_memstats_heap_inuse_bytes", addr)
	}
	return least
}

func metricValue(addr, name string) (int64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return int64(v), err
		}
	}
	return 0, fmt.Errorf("%s not found", name)
}
