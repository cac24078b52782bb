package policy_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

func certificateDecider() *policy.Decider {
	view := tenancy.NewView([]*tenancyv1.Tenant{
		tenant("web", 0, tenancyv1.TenantSpec{
			Namespaces:   []tenancyv1.NamespaceDelegation{{Names: []string{"web"}}},
			Hostnames:    []gwv1.Hostname{"store.apps.example.test", "*.web.example.test"},
			Gateways:     []tenancyv1.GatewayDelegation{{Namespace: "infra", Name: "shared"}},
			Certificates: &tenancyv1.CertificateDelegation{Issuers: []tenancyv1.IssuerReference{{Kind: "ClusterIssuer", Name: "web-acme"}}},
		}),
		tenant("payments", 1, tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"payments"}}},
			Hostnames:  []gwv1.Hostname{"shop.apps.example.test", "*.pay.example.test"},
		}),
		tenant("data", 2, tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"data"}}},
			Hostnames:  []gwv1.Hostname{"db.web.example.test"},
			Gateways:   []tenancyv1.GatewayDelegation{{Namespace: "infra", Name: "shared", Listeners: []gwv1.SectionName{"https"}}},
		}),
	}, tenancy.Platform)
	return &policy.Decider{Tenancy: view}
}

var classCA = tenancyv1.IssuerReference{Kind: "ClusterIssuer", Name: "ca"}

// onGateway asks for a certificate for a Gateway's own listener "https",
// from the class's issuer unless chosen is set.
func onGateway(ns, name, hostname string, chosen string) policy.CertificateRequest {
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse",
		Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}, {Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To(gwv1.Hostname(hostname))}}}}
	r := policy.CertificateRequest{Cluster: tenancy.Cluster{Name: "member-1"}, Gateway: gw, Listener: "https", Hostname: hostname,
		Class: "gatehouse", ClassIssuer: classCA, Issuer: classCA, Offered: []tenancyv1.IssuerReference{classCA}}
	if chosen != "" {
		r.Issuer, r.ChosenBy, r.Field = tenancyv1.IssuerReference{Kind: "ClusterIssuer", Name: chosen}, "Gateway "+ns+"/"+name, field.NewPath("metadata", "annotations").Key("gatehouse.dev/cluster-issuer")
	}
	return r
}

// onListenerSet asks for a listener "tls" of a ListenerSet attached to infra/shared.
func onListenerSet(ns, hostname string, chosen string) policy.CertificateRequest {
	r := onGateway("infra", "shared", hostname, "")
	r.ListenerSet = &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine"}, Spec: gwv1.ListenerSetSpec{
		Listeners: []gwv1.ListenerEntry{{Name: "tls", Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To(gwv1.Hostname(hostname))}}}}
	r.Listener = "tls"
	if chosen != "" {
		r.Issuer, r.ChosenBy, r.Field = tenancyv1.IssuerReference{Kind: "ClusterIssuer", Name: chosen}, "ListenerSet "+ns+"/mine", field.NewPath("metadata", "annotations").Key("gatehouse.dev/cluster-issuer")
	}
	return r
}

func TestCertificate(t *testing.T) {
	d := certificateDecider()
	gatewayChoiceOnSet := onListenerSet("payments", "shop.apps.example.test", "")
	gatewayChoiceOnSet.Issuer, gatewayChoiceOnSet.ChosenBy, gatewayChoiceOnSet.Field = tenancyv1.IssuerReference{Kind: "ClusterIssuer", Name: "web-acme"},
		"Gateway infra/shared", field.NewPath("metadata", "annotations").Key("gatehouse.dev/cluster-issuer")
	cases := []struct {
		name   string
		tenant string
		req    policy.CertificateRequest
		reason string
		says   []string
	}{
		{name: "the platform's shared wildcard covers the tenants that name it, not those allowed any Gateway", req: onGateway("infra", "shared", "*.apps.example.test", ""),
			reason: policy.ReasonCertificateCoversOtherTenant,
			says:   []string{`"shop.apps.example.test", which is delegated to tenant "payments"`, "name this Gateway (namespace and name) in the tenant's spec.gateways"}},
		{name: "a class issuer the hub does not offer", req: func() policy.CertificateRequest {
			r := onGateway("admin", "own", "*.example.test", "")
			r.Offered = nil
			return r
		}(), reason: policy.ReasonIssuerNotDelegated, says: []string{`GatewayClass "gatehouse" names ClusterIssuer "ca" in its parameters, which the hub does not offer`, "offered: none", "--class-issuers"}},
		{name: "a hostname with a trailing dot", req: onGateway("admin", "own", "shop.apps.example.test.", ""), reason: policy.ReasonHostnameInvalid},
		{name: "a hostname in upper case", req: onGateway("admin", "own", "SHOP.apps.example.test", ""), reason: policy.ReasonHostnameInvalid},
		{name: "a wildcard deeper than one label", req: onGateway("admin", "own", "*.*.example.test", ""), reason: policy.ReasonHostnameInvalid},
		{name: "a member admin's wildcard covers a tenant that was not delegated that Gateway", req: onGateway("admin", "own", "*.apps.example.test", ""),
			reason: policy.ReasonCertificateCoversOtherTenant,
			says:   []string{`spec.listeners[1].hostname`, `"store.apps.example.test", which is delegated to tenant "web"`, `namespace "admin" belongs to no tenant`, "spec.gateways"}},
		{name: "a member admin's Gateway with a tenant's hostname", req: onGateway("admin", "own", "shop.apps.example.test", ""),
			reason: policy.ReasonHostnameOwnedByOtherTenant, says: []string{`"shop.apps.example.test" is delegated to tenant "payments"`}},
		{name: "a wildcard certificate stands for one label only", req: onGateway("admin", "own", "*.example.test", "")},
		{name: "a tenant's Gateway in its own namespace, for its hostname", tenant: "web", req: onGateway("web", "own", "store.apps.example.test", "")},
		{name: "a tenant's wildcard covering another tenant's hostname", tenant: "web", req: onListenerSet("web", "*.web.example.test", ""),
			reason: policy.ReasonCertificateCoversOtherTenant,
			says:   []string{`"db.web.example.test", which is delegated to tenant "data"`, `this namespace belongs to tenant "web"`, "delegated: store.apps.example.test, *.web.example.test"}},
		{name: "a tenant's wildcard within its own delegation", tenant: "payments", req: onListenerSet("payments", "*.pay.example.test", "")},
		{name: "a tenant's hostname outside its delegation", tenant: "web", req: onListenerSet("web", "shop.apps.example.test", ""),
			reason: policy.ReasonHostnameOwnedByOtherTenant},
		{name: "a tenant choosing an issuer not delegated to it", tenant: "payments", req: onListenerSet("payments", "shop.apps.example.test", "internal-mtls"),
			reason: policy.ReasonIssuerNotDelegated,
			says:   []string{`metadata.annotations[gatehouse.dev/cluster-issuer]: Forbidden: ClusterIssuer "internal-mtls", chosen by ListenerSet payments/mine,`, `tenant "payments"`, `GatewayClass "gatehouse" names ClusterIssuer "ca"`, "spec.certificates.issuers: none"}},
		{name: "a tenant choosing an issuer delegated to it", tenant: "web", req: onListenerSet("web", "store.apps.example.test", "web-acme")},
		{name: "a tenant naming the class's own issuer", tenant: "payments", req: onListenerSet("payments", "shop.apps.example.test", "ca")},
		{name: "a Gateway's choice on a tenant's listener is judged for that tenant", tenant: "payments", req: gatewayChoiceOnSet,
			reason: policy.ReasonIssuerNotDelegated, says: []string{"chosen by Gateway infra/shared"}},
		{name: "a Gateway of no tenant choosing another issuer than its class's", req: onGateway("infra", "shared", "*.apps.example.test", "internal-mtls"),
			reason: policy.ReasonIssuerNotDelegated, says: []string{`namespace "infra" of Gateway infra/shared belongs to no tenant`, "GatewayClass whose parameters name this one"}},
		{name: "a Gateway naming its class's issuer", req: onGateway("infra", "shared", "*.example.test", "ca")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := policy.Verdict{Denials: d.Certificate(c.tenant, c.req)}
			if v.Reason() != c.reason {
				t.Fatalf("reason %q, want %q: %s", v.Reason(), c.reason, v.Message())
			}
			for _, s := range c.says {
				if !strings.Contains(v.Message(), s) {
					t.Errorf("message does not say %q: %s", s, v.Message())
				}
			}
		})
	}
}

// The platform's shared wildcard listener may cover the hostnames of the
// tenants that name its Gateway in spec.gateways (it serves their routes),
// but not of a tenant allowed "any Gateway": any member admin's Gateway of
// that name would do as well.
func TestSharedWildcardCoversOnlyTenantsThatNameIt(t *testing.T) {
	named := tenancyv1.TenantSpec{Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"web"}}},
		Hostnames: []gwv1.Hostname{"store.apps.example.test"}, Gateways: []tenancyv1.GatewayDelegation{{Namespace: "infra", Name: "shared"}}}
	for _, c := range []struct {
		name     string
		gateways []tenancyv1.GatewayDelegation
		covered  bool
	}{
		{"names the Gateway", named.Gateways, true},
		{"any Gateway", nil, false},
		{"Gateways by label", []tenancyv1.GatewayDelegation{{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"shared": "true"}}}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := named
			spec.Gateways = c.gateways
			d := &policy.Decider{Tenancy: tenancy.NewView([]*tenancyv1.Tenant{tenant("web", 0, spec)}, tenancy.Platform)}
			r := onGateway("infra", "shared", "*.apps.example.test", "")
			r.Gateway.Labels = map[string]string{"shared": "true"}
			denials := d.Certificate("", r)
			if covered := len(denials) == 0; covered != c.covered {
				t.Fatalf("covered %v, want %v: %v", covered, c.covered, denials)
			}
		})
	}
}
