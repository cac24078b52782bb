package admission_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/admission"
	policyv1 "github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

const controller = gwv1.GatewayController("gatehouse.dev/gateway-controller")

// requireTeam warns of a route without a team label; noRegex refuses a
// regular expression path.
const (
	requireTeam = `package p.team

violation contains {"msg": "routes must carry a team label", "details": {"field": "metadata.labels"}} if {
	not input.review.object.metadata.labels.team
}
`
	noRegex = `package p.regex

violation contains {"msg": sprintf("rule %d uses a regular expression path", [i]), "details": {"field": sprintf("spec.rules[%d].matches", [i])}} if {
	some i, rule in input.review.object.spec.rules
	some m in rule.matches
	m.path.type == "RegularExpression"
}
`
)

// member is a member cluster as the hub caches it: namespaces web and
// payments of their tenants, stray of none, and two Gateways of ours in
// infra, of which tenant web may use only "shared".
func member(t *testing.T) client.Reader {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1beta1.Install} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	all := &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: ptr.To(gwv1.NamespacesFromAll)}}
	gateway := func(name string) *gwv1.Gateway {
		return &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: name}, Spec: gwv1.GatewaySpec{
			GatewayClassName: "gatehouse",
			Listeners: []gwv1.Listener{
				{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType, AllowedRoutes: all},
				{Name: "shop", Port: 8080, Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To[gwv1.Hostname]("shop.example.com"), AllowedRoutes: all},
				{Name: "tls", Port: 443, Protocol: gwv1.TLSProtocolType, TLS: &gwv1.ListenerTLSConfig{Mode: ptr.To(gwv1.TLSModePassthrough)}, AllowedRoutes: all},
				{Name: "tcp-5432", Port: 5432, Protocol: gwv1.TCPProtocolType, AllowedRoutes: all},
			},
		}}
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stray"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "infra"}},
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{ControllerName: controller}},
		gateway("shared"), gateway("internal"),
	).Build()
}

// deciderOf is the hub's Decider for tenants web and payments, a warn
// policy requiring a team label and a deny policy refusing regex paths.
func deciderOf(t *testing.T, unassigned tenancy.Unassigned) *policy.Decider {
	t.Helper()
	d := &policy.Decider{Tenancy: tenancy.NewView([]*tenancyv1.Tenant{
		{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"web"}}},
			Hostnames:  []gwv1.Hostname{"*.web.example.com"},
			Gateways:   []tenancyv1.GatewayDelegation{{Namespace: "infra", Name: "shared"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "payments"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"payments"}}},
			Hostnames:  []gwv1.Hostname{"shop.example.com"}}},
	}, unassigned)}
	loadPolicies(t, d,
		policyv1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Name: "require-team"}, Spec: policyv1.RoutePolicySpec{Rego: requireTeam, Enforcement: policyv1.Warn}},
		policyv1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Name: "no-regex"}, Spec: policyv1.RoutePolicySpec{Rego: noRegex, Enforcement: policyv1.Deny}})
	return d
}

// parent is a parentRef to a Gateway of infra, on a listener when
// section is not "".
func parent(gateway, section string) gwv1.ParentReference {
	p := gwv1.ParentReference{Namespace: ptr.To[gwv1.Namespace]("infra"), Name: gwv1.ObjectName(gateway)}
	if section != "" {
		p.SectionName = ptr.To(gwv1.SectionName(section))
	}
	return p
}

// route is an HTTPRoute of team web in ns for hosts through parents.
func route(ns string, hosts []string, parents ...gwv1.ParentReference) *gwv1.HTTPRoute {
	r := &gwv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r", Labels: map[string]string{"team": "web"}},
		Spec:       gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parents}},
	}
	for _, h := range hosts {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwv1.Hostname(h))
	}
	return r
}

// tlsRoute is a TLSRoute of team web in ns for SNI names hosts through
// parents.
func tlsRoute(ns string, hosts []string, parents ...gwv1.ParentReference) *gwv1.TLSRoute {
	r := &gwv1.TLSRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "TLSRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Labels: map[string]string{"team": "web"}},
		Spec: gwv1.TLSRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parents},
			Rules: []gwv1.TLSRouteRule{{BackendRefs: []gwv1.BackendRef{{BackendObjectReference: gwv1.BackendObjectReference{Name: "db", Port: ptr.To[gwv1.PortNumber](5432)}}}}}},
	}
	for _, h := range hosts {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwv1.Hostname(h))
	}
	return r
}

// tcpRoute is a TCPRoute of team web in ns through parents.
func tcpRoute(ns string, parents ...gwv1.ParentReference) *gwv1.TCPRoute {
	return &gwv1.TCPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "TCPRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Labels: map[string]string{"team": "web"}},
		Spec: gwv1.TCPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parents},
			Rules: []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{{BackendObjectReference: gwv1.BackendObjectReference{Name: "db", Port: ptr.To[gwv1.PortNumber](5432)}}}}}},
	}
}

// listenerSet is a ListenerSet of team web on Gateway infra/shared with one
// listener for host.
func listenerSet(host string) *gwv1.ListenerSet {
	return &gwv1.ListenerSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "ListenerSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "ls", Labels: map[string]string{"team": "web"}},
		Spec: gwv1.ListenerSetSpec{
			ParentRef: gwv1.ParentGatewayReference{Namespace: ptr.To[gwv1.Namespace]("infra"), Name: "shared"},
			Listeners: []gwv1.ListenerEntry{{Name: "web", Port: 8443, Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To(gwv1.Hostname(host))}},
		},
	}
}

// reviewOf is the AdmissionReview member-1's API server sends for obj,
// with old on an UPDATE.
func reviewOf(t *testing.T, op admissionv1.Operation, obj, old client.Object) []byte {
	t.Helper()
	raw := func(o client.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "1",
			Kind:      metav1.GroupVersionKind{Group: gwv1.GroupName, Version: "v1", Kind: kind},
			Resource:  metav1.GroupVersionResource{Group: gwv1.GroupName, Version: "v1", Resource: strings.ToLower(kind) + "s"},
			Namespace: obj.GetNamespace(), Name: obj.GetName(), Operation: op,
			UserInfo: authenticationv1.UserInfo{Username: "tenant"},
			Object:   raw(obj), OldObject: raw(old),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestDecision(t *testing.T) {
	regex := route("web", []string{"a.web.example.com"}, parent("shared", ""))
	regex.Spec.Rules = []gwv1.HTTPRouteRule{{Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchRegularExpression), Value: ptr.To("/v[0-9]+")}}}}}
	unlabelled := route("web", []string{"a.web.example.com"}, parent("shared", ""))
	unlabelled.Labels = nil
	grab := route("web", []string{"shop.example.com"}, parent("shared", ""))
	relabelled := grab.DeepCopy()
	relabelled.Labels["owner"] = "someone"

	cases := []struct {
		name       string
		unassigned tenancy.Unassigned
		op         admissionv1.Operation
		obj, old   client.Object
		// allowed, else the denial's message contains each of want;
		// the warnings contain each of warn.
		allowed bool
		want    []string
		warn    []string
	}{
		{name: "a route within its tenant's hostnames and Gateways", allowed: true,
			obj: route("web", []string{"a.web.example.com"}, parent("shared", "http"))},
		{name: "a namespace of no tenant, when such namespaces are refused", unassigned: tenancy.Deny,
			obj:  route("stray", []string{"www.example.org"}, parent("shared", "")),
			want: []string{`metadata.namespace: Forbidden: namespace "stray" of cluster "member-1" belongs to no tenant`, `delegate the namespace in a Tenant's spec.namespaces`}},
		{name: "a namespace of no tenant, when the platform's", allowed: true,
			obj: route("stray", []string{"www.example.org"}, parent("internal", "http"))},
		{name: "a hostname delegated to another tenant",
			obj:  grab,
			want: []string{`spec.hostnames[0]: Forbidden: "shop.example.com" is delegated to tenant "payments"; this namespace belongs to tenant "web" (delegated: *.web.example.com)`}},
		{name: "a hostname delegated to no one",
			obj:  route("web", []string{"www.example.org"}),
			want: []string{`spec.hostnames[0]: Forbidden: "www.example.org" is not delegated to tenant "web"`, `use a hostname within the delegation or ask the platform team to delegate this one`}},
		{name: "a listener of a Gateway not delegated to the tenant",
			obj:  route("web", []string{"a.web.example.com"}, parent("shared", "http"), parent("internal", "http")),
			want: []string{`spec.parentRefs[1]: Forbidden: listener "http" of Gateway infra/internal in cluster "member-1" is not delegated to tenant "web" (allowed: infra/shared)`}},
		{name: "a parentRef that selects no listener: status decides", allowed: true,
			obj: route("web", []string{"a.web.example.com"}, parent("internal", "missing"), parent("internal", "shop"))},
		{name: "a metadata-only update of a refused route", allowed: true,
			op: admissionv1.Update, obj: relabelled, old: grab},
		{name: "a spec update of a refused route", op: admissionv1.Update, obj: grab, old: route("web", []string{"a.web.example.com"}),
			want: []string{`"shop.example.com" is delegated to tenant "payments"`}},
		{name: "a deny policy", obj: regex,
			want: []string{`spec.rules[0].matches: Forbidden: RoutePolicy "no-regex": rule 0 uses a regular expression path`}},
		{name: "a warn policy", allowed: true, obj: unlabelled,
			warn: []string{`RoutePolicy "require-team": routes must carry a team label`}},
		{name: "a TLSRoute within its tenant's SNI names", allowed: true,
			obj: tlsRoute("web", []string{"db.web.example.com"}, parent("shared", "tls"))},
		{name: "a TLSRoute for an SNI name delegated to another tenant",
			obj:  tlsRoute("web", []string{"db.web.example.com", "shop.example.com"}, parent("shared", "tls")),
			want: []string{`spec.hostnames[1]: Forbidden: "shop.example.com" is delegated to tenant "payments"; this namespace belongs to tenant "web" (delegated: *.web.example.com)`}},
		{name: "a TLSRoute on a listener of a Gateway not delegated to the tenant",
			obj:  tlsRoute("web", []string{"db.web.example.com"}, parent("internal", "tls")),
			want: []string{`spec.parentRefs[0]: Forbidden: listener "tls" of Gateway infra/internal in cluster "member-1" is not delegated to tenant "web" (allowed: infra/shared)`}},
		{name: "a TCPRoute on a port of a Gateway delegated to the tenant", allowed: true,
			obj: tcpRoute("web", parent("shared", "tcp-5432"))},
		{name: "a TCPRoute from a namespace of no tenant, when such namespaces are refused", unassigned: tenancy.Deny,
			obj:  tcpRoute("stray", parent("shared", "tcp-5432")),
			want: []string{`metadata.namespace: Forbidden: namespace "stray" of cluster "member-1" belongs to no tenant`, `delegate the namespace in a Tenant's spec.namespaces`}},
		{name: "a TCPRoute from a namespace of no tenant, when the platform's", allowed: true,
			obj: tcpRoute("stray", parent("internal", "tcp-5432"))},
		{name: "a metadata-only update of a refused TLSRoute", allowed: true, op: admissionv1.Update,
			obj: func() client.Object {
				r := tlsRoute("web", []string{"shop.example.com"}, parent("shared", "tls"))
				r.Labels["owner"] = "someone"
				return r
			}(), old: tlsRoute("web", []string{"shop.example.com"}, parent("shared", "tls"))},
		{name: "a ListenerSet within its tenant's hostnames", allowed: true, obj: listenerSet("api.web.example.com")},
		{name: "a ListenerSet with a hostname not delegated", obj: listenerSet("www.example.org"),
			want: []string{`spec.listeners[0].hostname: Forbidden: "www.example.org" is not delegated to tenant "web"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.unassigned == "" {
				c.unassigned = tenancy.Platform
			}
			if c.op == "" {
				c.op = admissionv1.Create
			}
			f := &fleet{reader: member(t), decider: deciderOf(t, c.unassigned)}
			s := runtime.NewScheme()
			if err := gwv1.Install(s); err != nil {
				t.Fatal(err)
			}
			h := admission.New(f, given, s, admission.Options{Controller: controller})
			a := call(t, h, admission.Path("member-1", given["member-1"]), reviewOf(t, c.op, c.obj, c.old), nil)
			if a.code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", a.code, a.body)
			}
			resp := a.review.Response
			msg := ""
			if resp.Result != nil {
				msg = resp.Result.Message
			}
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed=%v, want %v: %s", resp.Allowed, c.allowed, msg)
			}
			if !c.allowed && resp.Result.Reason != metav1.StatusReasonForbidden {
				t.Errorf("reason %q, want Forbidden", resp.Result.Reason)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("denial:\n%s\nwant it to contain:\n%s", msg, w)
				}
			}
			warnings := strings.Join(resp.Warnings, "\n")
			for _, w := range c.warn {
				if !strings.Contains(warnings, w) {
					t.Errorf("warnings %q, want one containing %q", resp.Warnings, w)
				}
			}
			if len(c.warn) == 0 && len(resp.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", resp.Warnings)
			}
		})
	}
}
