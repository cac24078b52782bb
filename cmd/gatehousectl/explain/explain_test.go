package explain

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"

	"github.com/gatehouse-dev/gatehouse/internal/version"
	"github.com/gatehouse-dev/gatehouse/operator/hub"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// fixture is one member cluster: a Gateway of ours for *.apps.example.test
// taking routes from every namespace, a Service shop/echo with one ready
// endpoint, and a route shop/web to it that the hub accepted and whose
// proxies serve it. Cases change what they are about.
type fixture struct {
	class   *gwv1.GatewayClass
	gateway *gwv1.Gateway
	route   *gwv1.HTTPRoute
	extra   []client.Object
	tenants []*tenancyv1.Tenant
	// shopLabels are the labels of namespace shop.
	shopLabels map[string]string
}

func newFixture() *fixture {
	all := gwv1.NamespacesFromAll
	f := &fixture{
		class: &gwv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"},
			Spec:       gwv1.GatewayClassSpec{ControllerName: translate.ControllerName},
			Status:     gwv1.GatewayClassStatus{Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", "GatewayClass is accepted by Gatehouse")}},
		},
		gateway: &gwv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "infra", Generation: 1},
			Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{{
				Name: "http", Port: 8080, Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.apps.example.test"),
				AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}},
			}}},
			Status: gwv1.GatewayStatus{
				Addresses:  []gwv1.GatewayStatusAddress{{Value: "10.0.0.10"}},
				Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", "ok"), cond("Programmed", true, "Programmed", "served")},
				Listeners: []gwv1.ListenerStatus{{Name: "http", AttachedRoutes: 1, Conditions: []metav1.Condition{
					cond("Accepted", true, "Accepted", "ok"), cond("Programmed", true, "Programmed", "ok"), cond("Conflicted", false, "NoConflicts", "ok")}}},
			},
		},
		route: &gwv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: 1},
			Spec: gwv1.HTTPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")}}},
				Hostnames:       []gwv1.Hostname{"shop.apps.example.test"},
				Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
					BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptr.To[gwv1.PortNumber](80)}}}}}},
			},
		},
	}
	f.setStatus(cond("Accepted", true, "Accepted", "route is attached to Gateway infra/shared"),
		cond("ResolvedRefs", true, "ResolvedRefs", "all references resolved"),
		cond("Programmed", true, "Programmed", "served by the Gateway's proxies (2 connected)"))
	return f
}

func cond(t string, status bool, reason, message string) metav1.Condition {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: message, ObservedGeneration: 1}
}

// setStatus writes Gatehouse's entry for the route's first parentRef.
func (f *fixture) setStatus(conds ...metav1.Condition) {
	p := f.route.Spec.ParentRefs[0]
	p.Group, p.Kind = ptr.To[gwv1.Group](gwv1.GroupName), ptr.To[gwv1.Kind]("Gateway")
	f.route.Status.Parents = []gwv1.RouteParentStatus{{ParentRef: p, ControllerName: translate.ControllerName, Conditions: conds}}
}

func (f *fixture) objects() []client.Object {
	objs := []client.Object{
		f.class, f.gateway, f.route,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "infra"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: f.shopLabels}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
		service("shop", "echo"),
		endpoints("shop", "echo"),
	}
	return append(objs, f.extra...)
}

func service(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
}

func endpoints(ns, svc string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](9000)}},
	}
}

// explain runs the explanation of shop/web in the fixture and returns the
// report of its first parent and the text output.
func (f *fixture) explain(t *testing.T) (ParentReport, string) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(memberScheme).WithObjects(f.objects()...).Build()
	hv := hubView{tenants: tenancy.NewView(f.tenants, "")}
	cr, err := explainCluster(context.Background(), c, hv, tenancy.Cluster{Name: "member-1"}, KindHTTPRoute, types.NamespacedName{Namespace: "shop", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{Kind: KindHTTPRoute, Namespace: "shop", Name: "web", Clusters: []ClusterReport{*cr}}
	var out bytes.Buffer
	if err := rep.write(&out, "text"); err != nil {
		t.Fatal(err)
	}
	if len(cr.Parents) == 0 {
		t.Fatalf("no parent explained:\n%s", out.String())
	}
	return cr.Parents[0], out.String()
}

func TestExplainParent(t *testing.T) {
	cases := []struct {
		name     string
		change   func(f *fixture)
		verdict  string
		attached bool
		served   bool
		want     []string
	}{{
		name:     "attached and served",
		change:   func(*fixture) {},
		verdict:  "attached and served",
		attached: true, served: true,
		want: []string{
			"[ok] gateway: Gateway infra/shared is accepted and programmed; addresses: 10.0.0.10",
			`hostnames in common with listener "http" (which accepts *.apps.example.test): shop.apps.example.test`,
			"served by 2 proxies",
			"no Tenant is defined on the hub",
			"Service shop/echo has 1 ready endpoint(s)",
		},
	}, {
		name: "allowedRoutes Same in another namespace",
		change: func(f *fixture) {
			f.gateway.Spec.Listeners[0].AllowedRoutes = nil
			f.setStatus(cond("Accepted", false, "NotAllowedByListeners", `listener infra/shared/http does not allow routes from namespace "shop" (allowedRoutes.namespaces.from: Same)`),
				cond("ResolvedRefs", true, "ResolvedRefs", "all references resolved"))
		},
		verdict: "not attached",
		want: []string{
			`[no] allowedRoutes.namespaces: listener "http" of Gateway infra/shared takes routes only from its own namespace "infra" (allowedRoutes.namespaces.from: Same); this route is in namespace "shop"`,
			`fix: move the route to namespace "infra", or ask the owner of Gateway infra/shared to set listener "http"'s allowedRoutes.namespaces.from to All`,
			"[no] Accepted: Accepted=False (NotAllowedByListeners)",
			"not served: proxies serve a route only where it is attached",
		},
	}, {
		name: "allowedRoutes refuses while the Gateway has problems of its own: the fix is the route's",
		change: func(f *fixture) {
			f.gateway.Spec.Listeners[0].AllowedRoutes = nil
			pending := cond("Programmed", false, "Pending", "no proxy of this Gateway is connected to the hub")
			f.gateway.Status.Conditions[1] = pending
			f.gateway.Status.Listeners[0].Conditions[1] = pending
			f.gateway.Status.Listeners[0].Conditions[2] = cond("Conflicted", true, "HostnameConflict", "conflict")
			f.setStatus(cond("Accepted", false, "NotAllowedByListeners", "not allowed"))
		},
		verdict: "not attached",
		want: []string{
			"[no] listener: listener \"http\" has problems: Conflicted=True (HostnameConflict): conflict\n",
			"[no] Accepted: Accepted=False (NotAllowedByListeners): not allowed\n         fix: move the route to namespace \"infra\"",
		},
	}, {
		name: "listener in conflict",
		change: func(f *fixture) {
			f.gateway.Status.Listeners[0].Conditions[2] = cond("Conflicted", true, "HostnameConflict", "listener other on port 8080 has the same hostname")
		},
		verdict:  "attached and served",
		attached: true, served: true,
		want: []string{
			`[no] listener: listener "http" has problems: Conflicted=True (HostnameConflict): listener other on port 8080 has the same hostname`,
			`fix: the owner of Gateway infra/shared must fix listener "http"`,
		},
	}, {
		name: "ListenerSet parent: Same means the ListenerSet's namespace",
		change: func(f *fixture) {
			f.extra = append(f.extra, &gwv1.ListenerSet{
				ObjectMeta: metav1.ObjectMeta{Name: "shop-listeners", Namespace: "shop"},
				Spec: gwv1.ListenerSetSpec{
					ParentRef: gwv1.ParentGatewayReference{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")},
					Listeners: []gwv1.ListenerEntry{{Name: "shop", Port: 8080, Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.shop.example.test")}},
				},
				Status: gwv1.ListenerSetStatus{Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", "ok")}},
			})
			f.route.Spec.ParentRefs = []gwv1.ParentReference{{Kind: ptr.To[gwv1.Kind]("ListenerSet"), Name: "shop-listeners"}}
			f.route.Spec.Hostnames = []gwv1.Hostname{"a.shop.example.test"}
			f.route.Status.Parents = nil
		},
		verdict: "not attached",
		want: []string{
			"parent ListenerSet shop/shop-listeners\n",
			"[ok] parent: ListenerSet shop/shop-listeners exists and Gateway infra/shared accepts it",
			`[ok] allowedRoutes.namespaces: listener "shop" takes routes from its own namespace "shop" only (allowedRoutes.namespaces.from: Same), which is the route's`,
			`hostnames in common with listener "shop" (which accepts *.shop.example.test): a.shop.example.test`,
			"[no] status: Gatehouse has written no status for this parent yet",
		},
	}, {
		name: "allowedRoutes selector names the labels needed",
		change: func(f *fixture) {
			from := gwv1.NamespacesFromSelector
			f.gateway.Spec.Listeners[0].AllowedRoutes.Namespaces = &gwv1.RouteNamespaces{From: &from,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "web", "gateway": "shared"}}}
			f.shopLabels = map[string]string{"team": "web"}
			f.setStatus(cond("Accepted", false, "NotAllowedByListeners", "not allowed"))
		},
		verdict: "not attached",
		want: []string{
			`namespace "shop" has labels team=web`,
			`fix: label namespace "shop" with gateway=shared (kubectl label namespace shop gateway=shared)`,
		},
	}, {
		name: "route kind not allowed",
		change: func(f *fixture) {
			f.gateway.Spec.Listeners[0].AllowedRoutes.Kinds = []gwv1.RouteGroupKind{{Kind: "GRPCRoute"}}
			f.setStatus(cond("Accepted", false, "NotAllowedByListeners", "listener does not allow HTTPRoute"))
		},
		verdict: "not attached",
		want: []string{
			`[no] allowedRoutes.kinds: listener "http" does not take HTTPRoutes: its allowedRoutes.kinds lists only GRPCRoute`,
			"add HTTPRoute to listener \"http\"'s allowedRoutes.kinds",
		},
	}, {
		name: "no hostname in common",
		change: func(f *fixture) {
			f.route.Spec.Hostnames = []gwv1.Hostname{"shop.example.com"}
			f.setStatus(cond("Accepted", false, "NoMatchingListenerHostname", "no hostname matches"))
		},
		verdict: "not attached",
		want: []string{
			`no hostname in common: the route has shop.example.com, the listener "http" accepts *.apps.example.test`,
			"fix: name a hostname within *.apps.example.test in spec.hostnames",
		},
	}, {
		name: "sectionName names no listener",
		change: func(f *fixture) {
			f.route.Spec.ParentRefs[0].SectionName = ptr.To[gwv1.SectionName]("https")
			f.setStatus(cond("Accepted", false, "NoMatchingParent", `no listener named "https"`))
		},
		verdict: "not attached",
		want: []string{
			`spec.parentRefs[0] asks for the listener named "https", and there is none: its listeners are "http" (port 8080, HTTP, *.apps.example.test)`,
			"fix: set spec.parentRefs[0].sectionName",
		},
	}, {
		name: "cross-namespace backend without ReferenceGrant",
		change: func(f *fixture) {
			f.route.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To[gwv1.Namespace]("other")
			f.extra = append(f.extra, service("other", "echo"), endpoints("other", "echo"))
			f.setStatus(cond("Accepted", true, "Accepted", "attached"),
				cond("ResolvedRefs", false, "RefNotPermitted", "spec.rules[0].backendRefs[0]: Service other/echo is in another namespace and no ReferenceGrant in \"other\" allows HTTPRoutes from \"shop\" to refer to it: add one"),
				cond("Programmed", true, "Programmed", "served by the Gateway's proxies (1 connected)"))
		},
		verdict:  "attached and served; but some backendRefs do not resolve",
		attached: true, served: true,
		want: []string{
			"[no] ResolvedRefs: ResolvedRefs=False (RefNotPermitted)",
			`no ReferenceGrant in namespace "other" allows HTTPRoutes from namespace "shop" to refer to it (RefNotPermitted)`,
			`fix: create a ReferenceGrant in namespace "other" (its owner must) allowing from group gateway.networking.k8s.io, kind HTTPRoute, namespace "shop" to kind Service, name "echo"`,
			"served by 1 proxy",
		},
	}, {
		name: "cross-namespace backend with a ReferenceGrant",
		change: func(f *fixture) {
			f.route.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To[gwv1.Namespace]("other")
			f.extra = append(f.extra, service("other", "echo"), endpoints("other", "echo"), &gwv1.ReferenceGrant{
				ObjectMeta: metav1.ObjectMeta{Name: "from-shop", Namespace: "other"},
				Spec: gwv1.ReferenceGrantSpec{
					From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "shop"}},
					To:   []gwv1.ReferenceGrantTo{{Kind: "Service"}},
				},
			})
		},
		verdict:  "attached and served",
		attached: true, served: true,
		want: []string{`[ok] referenceGrant: spec.rules[0].backendRefs[0]: Service other/echo is in another namespace, and a ReferenceGrant in namespace "other" allows`},
	}, {
		name: "backend Service missing a port",
		change: func(f *fixture) {
			f.route.Spec.Rules[0].BackendRefs[0].Port = ptr.To[gwv1.PortNumber](81)
			f.setStatus(cond("Accepted", true, "Accepted", "attached"),
				cond("ResolvedRefs", false, "BackendNotFound", "spec.rules[0].backendRefs[0]: Service shop/echo has no port 81"),
				cond("Programmed", true, "Programmed", "served by the Gateway's proxies (1 connected)"))
		},
		verdict:  "attached and served; but",
		attached: true, served: true,
		want: []string{
			"Service shop/echo has no port 81 (its ports: 80)",
			"fix: set spec.rules[0].backendRefs[0].port to a port of the Service (80)",
		},
	}, {
		name: "hostname not delegated to the namespace's tenant",
		change: func(f *fixture) {
			f.tenants = []*tenancyv1.Tenant{{ObjectMeta: metav1.ObjectMeta{Name: "shop-team"}, Spec: tenancyv1.TenantSpec{
				Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"shop"}}},
				Hostnames:  []gwv1.Hostname{"*.shop.apps.example.test"},
			}}}
			f.setStatus(cond("Accepted", false, "HostnameNotDelegated", `spec.hostnames[0]: Forbidden: "shop.apps.example.test" is not delegated to tenant "shop-team"`))
		},
		verdict: "not attached",
		want: []string{
			`[no] tenancy: HostnameNotDelegated: namespace "shop" belongs to tenant "shop-team" (Tenant "shop-team" on the hub, delegated hostnames: *.shop.apps.example.test); "shop.apps.example.test" is not delegated to tenant "shop-team"`,
			`fix: use hostnames within *.shop.apps.example.test in spec.hostnames, or ask the platform team to add "shop.apps.example.test" to spec.hostnames of Tenant "shop-team" on the hub`,
			"[no] Accepted: Accepted=False (HostnameNotDelegated)",
		},
	}, {
		name: "hostname of another tenant",
		change: func(f *fixture) {
			f.tenants = []*tenancyv1.Tenant{{ObjectMeta: metav1.ObjectMeta{Name: "payments"}, Spec: tenancyv1.TenantSpec{
				Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"payments"}}},
				Hostnames:  []gwv1.Hostname{"shop.apps.example.test"},
			}}}
			f.setStatus(cond("Accepted", false, "HostnameOwnedByOtherTenant", `"shop.apps.example.test" is delegated to tenant "payments"`))
		},
		verdict: "not attached",
		want: []string{
			`"shop.apps.example.test" is delegated to tenant "payments" (Tenant "payments" on the hub, delegation "shop.apps.example.test")`,
			`only routes of tenant "payments" may serve theirs`,
		},
	}, {
		name: "deny RoutePolicy",
		change: func(f *fixture) {
			f.setStatus(cond("Accepted", false, "PolicyViolation", `metadata.labels: Forbidden: RoutePolicy "require-team": routes must carry a team label`))
		},
		verdict: "not attached",
		want: []string{
			`[no] policy: PolicyViolation: a deny RoutePolicy refuses the route`,
			`fix: change the route as RoutePolicy "require-team" asks`,
		},
	}, {
		name: "warn RoutePolicy",
		change: func(f *fixture) {
			f.route.Status.Parents[0].Conditions = append(f.route.Status.Parents[0].Conditions,
				cond(translate.ConditionPolicyCompliant, false, translate.ReasonPolicyWarning, `RoutePolicy "require-team": routes must carry a team label`))
		},
		verdict:  "attached and served",
		attached: true, served: true,
		want: []string{"[no] PolicyCompliant: gatehouse.dev/PolicyCompliant=False (PolicyWarning): the route is served, but a warn RoutePolicy objects"},
	}, {
		name: "waiting for proxies",
		change: func(f *fixture) {
			f.setStatus(cond("Accepted", true, "Accepted", "attached"), cond("ResolvedRefs", true, "ResolvedRefs", "ok"),
				cond("Programmed", false, "Pending", "no proxy of this Gateway is connected to the hub (node member-1/infra/shared)"))
		},
		verdict:  "attached, not yet served",
		attached: true,
		want: []string{
			"waiting for proxies: Programmed=False (Pending): no proxy of this Gateway is connected",
			"fix: the owner of Gateway infra/shared must start its proxies",
		},
	}, {
		name: "superseded: another route holds what it asks for",
		change: func(f *fixture) {
			f.setStatus(cond("Accepted", true, "Accepted", "attached"), cond("ResolvedRefs", true, "ResolvedRefs", "ok"),
				cond("Programmed", false, "Superseded", "the Gateway's proxies do not serve this route: an older TCPRoute attached to the same listener takes its port"))
		},
		verdict:  "attached, not yet served",
		attached: true,
		want: []string{
			"[no] Programmed: accepted, and served by no proxy: Programmed=False (Superseded): the Gateway's proxies do not serve this route: an older TCPRoute",
			"fix: attach the route to a listener no other route holds",
		},
	}, {
		name: "a proxy rejected the table: a port it cannot bind",
		change: func(f *fixture) {
			f.gateway.Spec.Listeners = append(f.gateway.Spec.Listeners, gwv1.Listener{Name: "extra", Port: 9090, Protocol: gwv1.HTTPProtocolType})
			f.setStatus(cond("Accepted", true, "Accepted", "attached"), cond("ResolvedRefs", true, "ResolvedRefs", "ok"),
				cond("Programmed", false, "Invalid", "a proxy rejected the route table: binding listener port 9090: listen tcp 10.0.0.10:9090: bind: address already in use"))
		},
		verdict:  "attached, not yet served",
		attached: true,
		want: []string{
			"[no] Programmed: a proxy rejected the route table: binding listener port 9090",
			`fix: the proxy cannot open listener "extra" (port 9090) where it runs`,
		},
	}, {
		name: "a proxy rejected the table: the route's filters",
		change: func(f *fixture) {
			f.route.Spec.Rules[0].Filters = []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterURLRewrite}}
			f.setStatus(cond("Accepted", true, "Accepted", "attached"), cond("ResolvedRefs", true, "ResolvedRefs", "ok"),
				cond("Programmed", false, "Invalid", "a proxy rejected the route table: compiling rewrite"))
		},
		verdict:  "attached, not yet served",
		attached: true,
		want:     []string{"this route's filters are the usual suspects: spec.rules[0].filters[0] (URLRewrite)"},
	}, {
		name: "Gateway missing",
		change: func(f *fixture) {
			f.route.Spec.ParentRefs[0].Name = "gone"
			f.route.Status.Parents = nil
		},
		verdict: "not attached",
		want:    []string{"[no] parent: Gateway infra/gone does not exist in cluster member-1", "Gateways of Gatehouse in this cluster: infra/shared"},
	}, {
		name: "Gateway of another controller",
		change: func(f *fixture) {
			f.class.Spec.ControllerName = "example.net/other"
			f.route.Status.Parents[0].ControllerName = "example.net/other"
		},
		verdict: "not attached",
		want: []string{
			`has class "gatehouse", which controller "example.net/other" serves, not Gatehouse`,
			"other controllers also report on this route (not explained here): example.net/other (parent Gateway infra/shared)",
		},
	}, {
		name: "status older than the route",
		change: func(f *fixture) {
			f.route.Generation = 2
		},
		verdict:  "attached and served",
		attached: true, served: true,
		want: []string{"[no] status: the status describes generation 1 of the route, which is now at generation 2"},
	}, {
		name: "Gateway not programmed",
		change: func(f *fixture) {
			f.gateway.Status.Conditions[1] = cond("Programmed", false, "Pending", "no proxy of this Gateway is connected to the hub")
		},
		verdict:  "attached and served",
		attached: true, served: true,
		want: []string{"[no] gateway: Gateway infra/shared is accepted but not programmed (Pending): no proxy of this Gateway is connected to the hub; addresses: 10.0.0.10"},
	}, {
		name: "the versions the Gateway's proxies run, mid-rollout",
		change: func(f *fixture) {
			f.gateway.Status.Conditions[1] = cond("Programmed", true, "Programmed",
				version.Replicas{"v0.1.0": 1, "v0.2.0": 2}.InMessage("served by the Gateway's proxies (3 connected)"))
		},
		verdict:  "attached and served",
		attached: true, served: true,
		want: []string{"[ok] gateway: Gateway infra/shared is accepted and programmed; addresses: 10.0.0.10; proxies run v0.1.0 on 1 replica, v0.2.0 on 2 replicas"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture()
			c.change(f)
			p, text := f.explain(t)
			if !strings.HasPrefix(p.Verdict, c.verdict) || p.Attached != c.attached || p.Served != c.served {
				t.Errorf("verdict %q attached=%v served=%v, want %q attached=%v served=%v\n%s", p.Verdict, p.Attached, p.Served, c.verdict, c.attached, c.served, text)
			}
			if !strings.Contains(text, "verdict: "+c.verdict) {
				t.Errorf("the text does not end with the verdict %q:\n%s", c.verdict, text)
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in:\n%s", w, text)
				}
			}
		})
	}
}

func TestProgrammedReasonsAreTheHubs(t *testing.T) {
	if reasonPending != hub.ReasonPending || reasonProxyRejected != hub.ReasonProxyRejected || reasonSuperseded != hub.ReasonSuperseded {
		t.Errorf("explain reads Programmed reasons %q, %q and %q; the hub writes %q, %q and %q", reasonPending, reasonProxyRejected, reasonSuperseded,
			hub.ReasonPending, hub.ReasonProxyRejected, hub.ReasonSuperseded)
	}
}

func hubScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(tenancyv1.AddToScheme(s))
	return s
}

func TestRouteRefusesWhatItCannotExplain(t *testing.T) {
	member := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "member-1", Namespace: "gatehouse-system", Labels: map[string]string{kubeconfig.DefaultKubeconfigSecretLabel: "true"}},
		Data:       map[string][]byte{kubeconfig.DefaultKubeconfigSecretKey: []byte("not a kubeconfig")},
	}
	cases := []struct {
		name    string
		objs    []client.Object
		o       Options
		wantErr string
		wantOut string
	}{
		{"no member", nil, Options{HubCredentials: true, Route: types.NamespacedName{Namespace: "shop", Name: "web"}},
			"no member cluster is registered on the hub", ""},
		{"unknown member", []client.Object{member}, Options{HubCredentials: true, Cluster: "member-9", Route: types.NamespacedName{Namespace: "shop", Name: "web"}},
			`cluster "member-9" is not a member of the fleet (members: member-1)`, ""},
		{"unknown kind", nil, Options{Kind: "SCTPRoute", Route: types.NamespacedName{Name: "web"}},
			`unknown route kind "SCTPRoute": use one of HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute`, ""},
		{"unusable kubeconfig", []client.Object{member}, Options{HubCredentials: true, Route: types.NamespacedName{Namespace: "shop", Name: "web"}},
			"no member cluster could be read", "cluster member-1: its kubeconfig on the hub is unusable"},
		// Without --hub-credentials, the hub's member Secrets are never read:
		// a caller names the members it reads with its own credentials.
		{"no member of the caller's", []client.Object{member}, Options{Route: types.NamespacedName{Namespace: "shop", Name: "web"}},
			"name the member clusters to read with your own credentials", ""},
		{"a member the caller did not name", []client.Object{member}, Options{Cluster: "member-1", Members: []Member{{Name: "member-2", Config: &rest.Config{Host: "https://127.0.0.1:1"}}},
			Route: types.NamespacedName{Namespace: "shop", Name: "web"}},
			`cluster "member-1" is not among the members you named`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			c.o.Hub = fake.NewClientBuilder().WithScheme(hubScheme()).WithObjects(c.objs...).Build()
			c.o.HubNamespace, c.o.Out = "gatehouse-system", &out
			err := Route(context.Background(), c.o)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("error %v, want one containing %q", err, c.wantErr)
			}
			if !strings.Contains(out.String(), c.wantOut) {
				t.Errorf("output %q lacks %q", out.String(), c.wantOut)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	f := newFixture()
	c := fake.NewClientBuilder().WithScheme(memberScheme).WithObjects(f.objects()...).Build()
	cr, err := explainCluster(context.Background(), c, hubView{tenants: tenancy.NewView(nil, "")}, tenancy.Cluster{Name: "member-1"},
		KindHTTPRoute, types.NamespacedName{Namespace: "shop", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (&Report{Kind: KindHTTPRoute, Namespace: "shop", Name: "web", Clusters: []ClusterReport{*cr}}).write(&out, "json"); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Clusters []struct {
			Cluster string
			Parents []struct {
				Parent   string
				Attached bool
				Served   bool
				Reasons  []struct {
					Check   string
					OK      bool
					Message string
					Fix     string
				}
			}
		}
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(got.Clusters) != 1 || len(got.Clusters[0].Parents) != 1 {
		t.Fatalf("unexpected shape:\n%s", out.String())
	}
	p := got.Clusters[0].Parents[0]
	if p.Parent != "Gateway infra/shared" || !p.Attached || !p.Served || len(p.Reasons) == 0 {
		t.Errorf("parent %+v", p)
	}
	for _, r := range p.Reasons {
		if r.Check == "" || r.Message == "" {
			t.Errorf("a reason without check or message: %+v", r)
		}
	}
}

func TestGRPCRouteKind(t *testing.T) {
	f := newFixture()
	f.gateway.Spec.Listeners[0].AllowedRoutes.Kinds = []gwv1.RouteGroupKind{{Kind: "HTTPRoute"}}
	grpc := &gwv1.GRPCRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "rpc", Namespace: "shop", Generation: 1},
		Spec: gwv1.GRPCRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")}}},
			Hostnames:       []gwv1.Hostname{"rpc.apps.example.test"},
			Rules: []gwv1.GRPCRouteRule{{BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "missing", Port: ptr.To[gwv1.PortNumber](80)}}}}}},
		},
	}
	c := fake.NewClientBuilder().WithScheme(memberScheme).WithObjects(append(f.objects(), grpc)...).Build()
	cr, err := explainCluster(context.Background(), c, hubView{tenants: tenancy.NewView(nil, "")}, tenancy.Cluster{Name: "member-1"},
		KindGRPCRoute, types.NamespacedName{Namespace: "shop", Name: "rpc"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (&Report{Kind: KindGRPCRoute, Namespace: "shop", Name: "rpc", Clusters: []ClusterReport{*cr}}).write(&out, "text"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`[no] allowedRoutes.kinds: listener "http" does not take GRPCRoutes: its allowedRoutes.kinds lists only HTTPRoute`,
		"[no] backendRef: spec.rules[0].backendRefs[0]: Service shop/missing does not exist (BackendNotFound)",
		"[no] status: Gatehouse has written no status for this parent yet",
		"verdict: not attached",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("missing %q in:\n%s", w, out.String())
		}
	}
}

// TestStreamRouteKinds: explain reads TLSRoutes, TCPRoutes and UDPRoutes,
// and words what differs: a TCPRoute has no hostnames and takes a TCP
// listener's every connection; an HTTP listener takes no TCPRoute, and says
// which listeners would; a TLSRoute's SNI names meet the listener's
// hostname as an HTTPRoute's hostnames do.
func TestStreamRouteKinds(t *testing.T) {
	f := newFixture()
	all := &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: ptr.To(gwv1.NamespacesFromAll)}}
	f.gateway.Spec.Listeners = append(f.gateway.Spec.Listeners,
		gwv1.Listener{Name: "tcp-5432", Port: 5432, Protocol: gwv1.TCPProtocolType, AllowedRoutes: all},
		gwv1.Listener{Name: "tls", Port: 8443, Protocol: gwv1.TLSProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.db.example.test"),
			TLS: &gwv1.ListenerTLSConfig{Mode: ptr.To(gwv1.TLSModePassthrough)}, AllowedRoutes: all})
	section := func(s gwv1.SectionName) gwv1.CommonRouteSpec {
		return gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra"), SectionName: &s}}}
	}
	echo := []gwv1.BackendRef{{BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptr.To[gwv1.PortNumber](80)}}}
	f.extra = []client.Object{
		&gwv1.TCPRoute{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Generation: 1},
			Spec: gwv1.TCPRouteSpec{CommonRouteSpec: section("tcp-5432"), Rules: []gwv1.TCPRouteRule{{BackendRefs: echo}}}},
		&gwv1.TCPRoute{ObjectMeta: metav1.ObjectMeta{Name: "lost", Namespace: "shop", Generation: 1},
			Spec: gwv1.TCPRouteSpec{CommonRouteSpec: section("http"), Rules: []gwv1.TCPRouteRule{{BackendRefs: echo}}}},
		&gwv1.TLSRoute{ObjectMeta: metav1.ObjectMeta{Name: "pg", Namespace: "shop", Generation: 1},
			Spec: gwv1.TLSRouteSpec{CommonRouteSpec: section("tls"), Hostnames: []gwv1.Hostname{"pg.example.org"}, Rules: []gwv1.TLSRouteRule{{BackendRefs: echo}}}},
		&gwv1.UDPRoute{ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: "shop", Generation: 1},
			Spec: gwv1.UDPRouteSpec{CommonRouteSpec: section("tcp-5432"), Rules: []gwv1.UDPRouteRule{{BackendRefs: echo}}}},
	}
	c := fake.NewClientBuilder().WithScheme(memberScheme).WithObjects(f.objects()...).Build()
	for _, tc := range []struct {
		kind, name string
		want       []string
	}{
		{KindTCPRoute, "db", []string{
			`[ok] allowedRoutes.kinds: listener "tcp-5432" takes TCPRoutes (allowedRoutes.kinds is unset: TCP listeners take TCPRoute)`,
			`[ok] hostnames: TCPRoutes have no hostnames: the route takes every connection to listener "tcp-5432"'s port 5432`,
			"[ok] endpoints: spec.rules[0].backendRefs[0]: Service shop/echo has 1 ready endpoint(s)",
		}},
		{KindTCPRoute, "lost", []string{
			`[no] allowedRoutes.kinds: listener "http" does not take TCPRoutes: HTTP listeners take HTTPRoute, GRPCRoute`,
			"attach to a listener of a protocol that takes TCPRoutes (TCP)",
		}},
		{KindTLSRoute, "pg", []string{
			`[no] hostnames: no hostname in common: the route has pg.example.org, the listener "tls" accepts *.db.example.test`,
		}},
		{KindUDPRoute, "dns", []string{
			`[no] allowedRoutes.kinds: listener "tcp-5432" does not take UDPRoutes: TCP listeners take TCPRoute`,
			"attach to a listener of a protocol that takes UDPRoutes (UDP)",
		}},
	} {
		t.Run(tc.kind+" "+tc.name, func(t *testing.T) {
			cr, err := explainCluster(context.Background(), c, hubView{tenants: tenancy.NewView(nil, "")}, tenancy.Cluster{Name: "member-1"},
				tc.kind, types.NamespacedName{Namespace: "shop", Name: tc.name})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := (&Report{Kind: tc.kind, Namespace: "shop", Name: tc.name, Clusters: []ClusterReport{*cr}}).write(&out, "text"); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("missing %q in:\n%s", w, out.String())
				}
			}
		})
	}
}
