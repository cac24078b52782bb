package translate_test

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// tenantsByNamespace says each route's owner is its namespace's tenant, and
// warns about routes named "warned".
type tenantsByNamespace map[string]string

func (t tenantsByNamespace) AuthorizeAttachment(req translate.AttachmentRequest) translate.Decision {
	d := translate.Decision{Allowed: true, Owner: t[req.Route.GetNamespace()]}
	if req.Route.GetName() == "warned" {
		d.Warnings = []string{`RoutePolicy "p": add a team label`}
	}
	return d
}

func (t tenantsByNamespace) AuthorizeListenerSet(ls *gwv1.ListenerSet, _ *gwv1.Gateway) translate.Decision {
	if t[ls.Namespace] == "" {
		return translate.Decision{Reason: "NamespaceNotDelegated", Message: "namespace belongs to no tenant"}
	}
	return translate.Decision{Allowed: true}
}

func ownershipInput() translate.Input {
	in := seamInput()
	route := func(ns, name string, hosts ...gwv1.Hostname) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: 2},
			Spec: gwv1.HTTPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra"), SectionName: ptr.To[gwv1.SectionName]("http")}}},
				Hostnames:       hosts,
				Rules:           []gwv1.HTTPRouteRule{{}},
			},
		}
	}
	// The platform's catch-all for the listener, a web route for a broad
	// wildcard it holds, and payments' route for its own hostname.
	in.HTTPRoutes = []*gwv1.HTTPRoute{
		route("infra", "catch-all"),
		route("web", "warned", "*.web.example.com"),
		route("payments", "checkout", "checkout.example.com"),
	}
	in.Authorizer = tenantsByNamespace{"web": "web", "payments": "payments", "extra": "extra"}
	tenant := func(name string, age int, hosts ...gwv1.Hostname) *tenancyv1.Tenant {
		return &tenancyv1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Unix(int64(age), 0)}, Spec: tenancyv1.TenantSpec{Hostnames: hosts}}
	}
	in.Owners = tenancy.NewView([]*tenancyv1.Tenant{
		tenant("web", 1, "*.web.example.com"),
		tenant("payments", 2, "checkout.example.com", "billing.example.com"),
		tenant("extra", 3, "x.web.example.com"),
	}, tenancy.Platform)
	return in
}

func TestOwnedHostnamesOnlyReachTheirOwner(t *testing.T) {
	out := translate.Translate(ownershipInput())
	table := out.Tables[types.NamespacedName{Namespace: "infra", Name: "shared"}]
	sources := map[string][]string{}
	for _, l := range table.Listeners {
		if l.Name != "http" {
			continue
		}
		for _, vh := range l.VirtualHosts {
			sources[vh.Domain] = []string{}
			for _, r := range vh.Routes {
				sources[vh.Domain] = append(sources[vh.Domain], r.Source.Namespace+"/"+r.Source.Name)
			}
		}
	}
	want := map[string][]string{
		// payments' own hostname: only its route, not the catch-all.
		"checkout.example.com": {"payments/checkout"},
		// delegated to payments, which has no route: a host of its own that
		// serves nothing, instead of falling to the catch-all.
		"billing.example.com": {},
		// web's wildcard: web's route only.
		"*.web.example.com": {"web/warned"},
		// delegated to another tenant inside web's wildcard: carved out.
		"x.web.example.com": {},
		// the rest of the listener: the platform's catch-all.
		"*.example.com": {"infra/catch-all"},
	}
	for d, w := range want {
		got, ok := sources[d]
		if !ok {
			t.Errorf("no virtual host %s; have %v", d, sources)
			continue
		}
		if !slices.Equal(got, w) {
			t.Errorf("virtual host %s serves %v, want %v", d, got, w)
		}
	}
}

func TestWarningsBecomePolicyCompliant(t *testing.T) {
	out := translate.Translate(ownershipInput())
	warned := out.HTTPRoutes[types.NamespacedName{Namespace: "web", Name: "warned"}]
	c := meta(warned[0].Conditions, translate.ConditionPolicyCompliant)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != translate.ReasonPolicyWarning || !strings.Contains(c.Message, "add a team label") || c.ObservedGeneration != 2 {
		t.Errorf("warned route PolicyCompliant = %+v", c)
	}
	if a := meta(warned[0].Conditions, "Accepted"); a.Status != metav1.ConditionTrue {
		t.Errorf("a warning must not refuse the route: %+v", a)
	}
	checkout := out.HTTPRoutes[types.NamespacedName{Namespace: "payments", Name: "checkout"}]
	if c := meta(checkout[0].Conditions, translate.ConditionPolicyCompliant); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("checkout PolicyCompliant = %+v, want True", c)
	}
}

func TestListenerSetAuthorizer(t *testing.T) {
	in := ownershipInput()
	in.Gateways[0].Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptr.To(gwv1.NamespacesFromAll)}}
	set := func(ns string) *gwv1.ListenerSet {
		return &gwv1.ListenerSet{
			ObjectMeta: metav1.ObjectMeta{Name: "extra", Namespace: ns, Generation: 3},
			Spec: gwv1.ListenerSetSpec{ParentRef: gwv1.ParentGatewayReference{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")},
				Listeners: []gwv1.ListenerEntry{{Name: "web", Port: 8080, Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To[gwv1.Hostname]("a.web.example.com")}}},
		}
	}
	in.ListenerSets = []*gwv1.ListenerSet{set("web"), set("nobody")}
	out := translate.Translate(in)
	if c := meta(out.ListenerSets[types.NamespacedName{Namespace: "web", Name: "extra"}].Conditions, "Accepted"); c.Status != metav1.ConditionTrue {
		t.Errorf("web's ListenerSet Accepted = %+v", c)
	}
	c := meta(out.ListenerSets[types.NamespacedName{Namespace: "nobody", Name: "extra"}].Conditions, "Accepted")
	if c.Status != metav1.ConditionFalse || c.Reason != "NamespaceNotDelegated" || c.ObservedGeneration != 3 {
		t.Errorf("refused ListenerSet Accepted = %+v", c)
	}
	for _, l := range out.Tables[types.NamespacedName{Namespace: "infra", Name: "shared"}].Listeners {
		if strings.HasPrefix(l.Name, "nobody/") {
			t.Errorf("the refused ListenerSet's listener %s is in the table", l.Name)
		}
	}
}
