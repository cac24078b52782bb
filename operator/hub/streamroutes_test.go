package hub

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// streamMember is a member cluster with a Gateway of ours that has an
// HTTP, a TLS (passthrough), a TCP and a UDP listener, and objs. Created
// withoutKinds, it does not serve the TLSRoute, TCPRoute and UDPRoute
// kinds until serve is called, as a cluster with older Gateway API CRDs.
type streamMember struct {
	fakeCluster
	mu      sync.Mutex
	missing bool
	// lists counts the List calls per list type that reached the member.
	lists map[string]int
}

func newStreamMember(t *testing.T, withoutKinds bool, objs ...client.Object) *streamMember {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1beta1.Install} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	class := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}
	all := &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: ptr.To(gwv1.NamespacesFromAll)}}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared", Generation: 1}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse",
		Listeners: []gwv1.Listener{
			{Name: "http", Port: 8080, Protocol: gwv1.HTTPProtocolType, AllowedRoutes: all},
			{Name: "tls", Port: 8443, Protocol: gwv1.TLSProtocolType, TLS: &gwv1.ListenerTLSConfig{Mode: ptr.To(gwv1.TLSModePassthrough)}, AllowedRoutes: all},
			{Name: "tcp-5432", Port: 5432, Protocol: gwv1.TCPProtocolType, AllowedRoutes: all},
			{Name: "udp-53", Port: 53, Protocol: gwv1.UDPProtocolType, AllowedRoutes: all},
		}}}
	objs = append(objs, class, gw,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "infra"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}}})
	m := &streamMember{missing: withoutKinds, lists: map[string]int{}}
	m.c = fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithStatusSubresource(objs...).
		WithInterceptorFuncs(interceptor.Funcs{List: m.list}).Build()
	return m
}

func (m *streamMember) list(ctx context.Context, c client.WithWatch, l client.ObjectList, opts ...client.ListOption) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var kind string
	switch l.(type) {
	case *gwv1.TLSRouteList:
		kind = "TLSRoute"
	case *gwv1.TCPRouteList:
		kind = "TCPRoute"
	case *gwv1.UDPRouteList:
		kind = "UDPRoute"
	default:
		return c.List(ctx, l, opts...)
	}
	m.lists[kind]++
	if m.missing {
		// What a cache answers for a kind its API server does not serve.
		return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: gwv1.GroupName, Kind: kind}, SearchedVersions: []string{"v1"}}
	}
	return c.List(ctx, l, opts...)
}

func (m *streamMember) serve() {
	m.mu.Lock()
	m.missing = false
	m.mu.Unlock()
}

func (m *streamMember) listed(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lists[kind]
}

func streamWorker(t *testing.T, m Cluster) *worker {
	t.Helper()
	h := New(xds.NewServer(t.Context(), nil, slog.New(slog.DiscardHandler)), Options{Namespace: "gatehouse-system", StartupGrace: time.Nanosecond})
	return newWorker(h, "member-1", m)
}

var backend = gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "db", Port: ptr.To[gwv1.PortNumber](5432)}}

func tcpRoute(name string, section gwv1.SectionName) *gwv1.TCPRoute {
	return &gwv1.TCPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Generation: 2},
		Spec: gwv1.TCPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Namespace: ptr.To[gwv1.Namespace]("infra"), Name: "shared", SectionName: &section}}},
			Rules:           []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{backend}}}}}
}

// ourParent returns our entry of a route's status.parents, failing when
// there is none.
func ourParent(t *testing.T, what string, parents []gwv1.RouteParentStatus) gwv1.RouteParentStatus {
	t.Helper()
	for _, p := range parents {
		if p.ControllerName == translate.ControllerName {
			return p
		}
	}
	t.Fatalf("%s: no status.parents entry of ours in %+v", what, parents)
	return gwv1.RouteParentStatus{}
}

// A member whose Gateway API CRDs lack TLSRoute, TCPRoute and UDPRoute
// works as before: it has none of them, and its API server is asked again
// only once absentRecheck has passed. Once it serves them, the next pass
// after that reads them, without a restart.
func TestAMemberWithoutStreamRouteKinds(t *testing.T) {
	ctx := t.Context()
	web := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 1},
		Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Namespace: ptr.To[gwv1.Namespace]("infra"), Name: "shared"}}}}}
	m := newStreamMember(t, true, web, tcpRoute("db", "tcp-5432"))
	w := streamWorker(t, m)
	for range 2 {
		if err := w.sync(ctx); err != nil {
			t.Fatalf("a pass over a member without the stream route kinds: %v", err)
		}
	}
	var got gwv1.HTTPRoute
	if err := m.c.Get(ctx, client.ObjectKeyFromObject(web), &got); err != nil {
		t.Fatal(err)
	}
	if p := ourParent(t, "the HTTPRoute", got.Status.Parents); !meta.IsStatusConditionTrue(p.Conditions, "Accepted") {
		t.Errorf("the HTTPRoute is not accepted: %+v", p.Conditions)
	}
	for _, kind := range []string{"TLSRoute", "TCPRoute", "UDPRoute"} {
		if n := m.listed(kind); n != 1 {
			t.Errorf("%ss were asked for %d times in two passes, want once until %s has passed", kind, n, absentRecheck)
		}
	}

	// The CRDs are installed; a minute later the hub asks again.
	m.serve()
	for kind := range w.optional.absent {
		w.optional.absent[kind] = time.Now().Add(-absentRecheck)
	}
	if err := w.sync(ctx); err != nil {
		t.Fatal(err)
	}
	var db gwv1.TCPRoute
	if err := m.c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "db"}, &db); err != nil {
		t.Fatal(err)
	}
	if p := ourParent(t, "the TCPRoute, once its kind is served", db.Status.Parents); !meta.IsStatusConditionTrue(p.Conditions, "Accepted") {
		t.Errorf("the TCPRoute is not accepted: %+v", p.Conditions)
	}
}

// TLSRoutes, TCPRoutes and UDPRoutes get our entries in status.parents as
// HTTPRoutes do: Accepted with the route's generation, Programmed from
// what proxies acknowledge, and other controllers' entries kept.
func TestStreamRouteStatus(t *testing.T) {
	ctx := t.Context()
	other := gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: "elsewhere"}, ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}}}
	parent := func(section gwv1.SectionName) gwv1.CommonRouteSpec {
		return gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Namespace: ptr.To[gwv1.Namespace]("infra"), Name: "shared", SectionName: &section}}}
	}
	tls := &gwv1.TLSRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-tls", Generation: 2},
		Spec: gwv1.TLSRouteSpec{CommonRouteSpec: parent("tls"), Hostnames: []gwv1.Hostname{"db.example.com"}, Rules: []gwv1.TLSRouteRule{{BackendRefs: []gwv1.BackendRef{backend}}}}}
	tcp := tcpRoute("db", "tcp-5432")
	udp := &gwv1.UDPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dns", Generation: 2},
		Spec: gwv1.UDPRouteSpec{CommonRouteSpec: parent("udp-53"), Rules: []gwv1.UDPRouteRule{{BackendRefs: []gwv1.BackendRef{backend}}}}}
	tls.Status.Parents = []gwv1.RouteParentStatus{other}
	tcp.Status.Parents = []gwv1.RouteParentStatus{other}
	udp.Status.Parents = []gwv1.RouteParentStatus{other}
	m := newStreamMember(t, false, tls, tcp, udp)
	w := streamWorker(t, m)
	if err := w.sync(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(what string, parents []gwv1.RouteParentStatus) {
		t.Helper()
		p := ourParent(t, what, parents)
		accepted := meta.FindStatusCondition(p.Conditions, "Accepted")
		if accepted == nil || accepted.Status != metav1.ConditionTrue || accepted.ObservedGeneration != 2 {
			t.Errorf("%s: Accepted %+v, want True at generation 2", what, accepted)
		}
		// No proxy is connected: the route is not served yet, and says so.
		if c := meta.FindStatusCondition(p.Conditions, "Programmed"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonPending {
			t.Errorf("%s: Programmed %+v, want False, Pending", what, c)
		}
		var kept bool
		for _, q := range parents {
			kept = kept || (q.ControllerName == other.ControllerName && q.ParentRef.Name == other.ParentRef.Name)
		}
		if !kept || len(parents) != 2 {
			t.Errorf("%s: parents %+v, want the other controller's entry kept beside ours", what, parents)
		}
	}
	var gotTLS gwv1.TLSRoute
	var gotTCP gwv1.TCPRoute
	var gotUDP gwv1.UDPRoute
	for _, g := range []struct {
		obj client.Object
		key string
	}{{&gotTLS, "db-tls"}, {&gotTCP, "db"}, {&gotUDP, "dns"}} {
		if err := m.c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: g.key}, g.obj); err != nil {
			t.Fatal(err)
		}
	}
	check("the TLSRoute", gotTLS.Status.Parents)
	check("the TCPRoute", gotTCP.Status.Parents)
	check("the UDPRoute", gotUDP.Status.Parents)
}

// A table's stream routes are what its TLS, TCP and UDP listeners carry,
// at their generation: what Programmed of those routes is measured by.
func TestTableContentsCarryStreamRoutes(t *testing.T) {
	w := &worker{}
	const node = "c/infra/gw"
	w.record(node, "h", &routetable.RouteTable{Listeners: []*routetable.Listener{{Name: "tcp-5432", StreamRoutes: []*routetable.StreamRoute{{
		Source: &routetable.RouteSource{Kind: "TCPRoute", Namespace: "shop", Name: "db", Generation: 2},
	}}}}}, nil, nil)
	if !w.carries(node, "h", objectKey("TCPRoute", "shop", "db", 2)) || !w.carriesOn(node, "h", "tcp-5432", objectKey("TCPRoute", "shop", "db", 2)) {
		t.Error("the table's TCP listener carries the TCPRoute, and the contents do not say so")
	}
	if w.carries(node, "h", objectKey("TCPRoute", "shop", "db", 1)) {
		t.Error("an earlier generation of the TCPRoute is taken as carried")
	}
}

// Of two TCPRoutes on one TCP listener, the Gateway API gives the port to
// the older; the newer is accepted, and its Programmed says that no proxy
// will serve it and why, instead of waiting for proxies that never will.
func TestANewerTCPRouteOnATakenPort(t *testing.T) {
	ctx := t.Context()
	older, newer := tcpRoute("older", "tcp-5432"), tcpRoute("newer", "tcp-5432")
	older.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	newer.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	m := newStreamMember(t, false, older, newer)
	w := streamWorker(t, m)
	if err := w.sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, reason, message string
	}{
		{"older", ReasonPending, "no proxy of this Gateway is connected"},
		{"newer", ReasonSuperseded, "an older TCPRoute attached to the same listener takes its port"},
	} {
		var r gwv1.TCPRoute
		if err := m.c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: c.name}, &r); err != nil {
			t.Fatal(err)
		}
		p := ourParent(t, "the "+c.name+" TCPRoute", r.Status.Parents)
		if !meta.IsStatusConditionTrue(p.Conditions, "Accepted") {
			t.Errorf("the %s TCPRoute is not accepted: %+v", c.name, p.Conditions)
		}
		if got := meta.FindStatusCondition(p.Conditions, "Programmed"); got == nil || got.Status != metav1.ConditionFalse || got.Reason != c.reason || !strings.Contains(got.Message, c.message) {
			t.Errorf("the %s TCPRoute: Programmed %+v, want False, %s, saying %q", c.name, got, c.reason, c.message)
		}
	}
}
