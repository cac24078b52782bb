package translate_test

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// denyHostnames refuses attachments whose hostnames include one it names,
// the way tenancy refuses a hostname delegated to another tenant.
type denyHostnames struct {
	denied []string
	seen   []translate.AttachmentRequest
}

func (d *denyHostnames) AuthorizeAttachment(req translate.AttachmentRequest) translate.Decision {
	d.seen = append(d.seen, req)
	for _, h := range req.Hostnames {
		if slices.Contains(d.denied, h) {
			return translate.Decision{Reason: "HostnameOwnedByOtherTenant", Message: "hostname " + h + " is delegated to another tenant"}
		}
	}
	return translate.Decision{Allowed: true}
}

func seamInput() translate.Input {
	all := gwv1.NamespacesFromAll
	route := func(name string, hosts ...gwv1.Hostname) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Generation: 4},
			Spec: gwv1.HTTPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")}}},
				Hostnames:       hosts,
				Rules:           []gwv1.HTTPRouteRule{{}},
			},
		}
	}
	return translate.Input{
		GatewayClasses: []*gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}},
		Gateways: []*gwv1.Gateway{{
			ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "infra", Generation: 1},
			Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{
				{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.example.com"),
					AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}}},
				{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType,
					AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}}},
			}},
		}},
		HTTPRoutes: []*gwv1.HTTPRoute{route("shop", "shop.example.com"), route("pay", "pay.example.com")},
	}
}

func TestAuthorizerDenialIsReportedAndNotServed(t *testing.T) {
	in := seamInput()
	auth := &denyHostnames{denied: []string{"pay.example.com"}}
	in.Authorizer = auth
	out := translate.Translate(in)

	pay := out.HTTPRoutes[types.NamespacedName{Namespace: "shop", Name: "pay"}]
	if len(pay) != 1 {
		t.Fatalf("pay route: got %d parent entries, want 1", len(pay))
	}
	accepted := meta(pay[0].Conditions, "Accepted")
	if accepted.Status != metav1.ConditionFalse || accepted.Reason != "HostnameOwnedByOtherTenant" ||
		accepted.Message != "hostname pay.example.com is delegated to another tenant" || accepted.ObservedGeneration != 4 {
		t.Errorf("pay route Accepted = %+v, want False/HostnameOwnedByOtherTenant with the authorizer's message at generation 4", accepted)
	}
	shop := out.HTTPRoutes[types.NamespacedName{Namespace: "shop", Name: "shop"}]
	if c := meta(shop[0].Conditions, "Accepted"); c.Status != metav1.ConditionTrue {
		t.Errorf("shop route Accepted = %+v, want True", c)
	}

	gw := out.Gateways[types.NamespacedName{Namespace: "infra", Name: "shared"}]
	for _, l := range gw.Listeners {
		if l.Name == "http" && l.AttachedRoutes != 1 {
			t.Errorf("listener http counts %d routes, want 1 (the denied route must not count)", l.AttachedRoutes)
		}
	}
	table := out.Tables[types.NamespacedName{Namespace: "infra", Name: "shared"}]
	for _, l := range table.Listeners {
		for _, vh := range l.VirtualHosts {
			if vh.Domain == "pay.example.com" {
				t.Errorf("the denied hostname is in the route table on listener %s", l.Name)
			}
		}
	}
	// The authorizer sees hostnames already intersected with the listener.
	var asked []string
	for _, req := range auth.seen {
		asked = append(asked, req.Hostnames...)
	}
	if !slices.Contains(asked, "shop.example.com") || req0Kind(auth) != "HTTPRoute" {
		t.Errorf("authorizer was asked about %v (kind %q)", asked, req0Kind(auth))
	}
}

func req0Kind(a *denyHostnames) string {
	if len(a.seen) == 0 {
		return ""
	}
	return a.seen[0].Kind
}

// issued stands for the certificate controller: it names key pairs for
// listeners it has certificates for and says why for the others.
type issued map[gwv1.SectionName][]string

func (i issued) ListenerCertificates(req translate.ListenerCertificateRequest) translate.CertificateResult {
	if names, ok := i[req.Listener]; ok {
		return translate.CertificateResult{KeyPairs: names}
	}
	return translate.CertificateResult{Reason: gwv1.ListenerReasonInvalidCertificateRef, Message: "certificate is being issued"}
}

func TestCertificateSourceDecidesListenerTLS(t *testing.T) {
	key := types.NamespacedName{Namespace: "infra", Name: "shared"}
	t.Run("issued", func(t *testing.T) {
		in := seamInput()
		in.Certificates = issued{"https": {"hub/member-1/shared-https"}}
		out := translate.Translate(in)
		var found bool
		for _, l := range out.Tables[key].Listeners {
			if l.Name == "https" {
				found = true
				if got := l.GetTls().GetCertificates(); !slices.Equal(got, []string{"hub/member-1/shared-https"}) {
					t.Errorf("https listener serves %v", got)
				}
			}
		}
		if !found {
			t.Error("https listener missing from the table")
		}
	})
	t.Run("pending", func(t *testing.T) {
		in := seamInput()
		in.Certificates = issued{}
		out := translate.Translate(in)
		gw := out.Gateways[key]
		if c := meta(gw.Conditions, "Accepted"); c.Status != metav1.ConditionTrue {
			t.Errorf("Gateway Accepted = %+v: a listener waiting for its certificate must not reject the Gateway", c)
		}
		for _, l := range gw.Listeners {
			if l.Name != "https" {
				continue
			}
			if c := meta(l.Conditions, "ResolvedRefs"); c.Status != metav1.ConditionFalse || c.Message != "certificate is being issued" {
				t.Errorf("https ResolvedRefs = %+v", c)
			}
			if c := meta(l.Conditions, "Programmed"); c.Status != metav1.ConditionFalse {
				t.Errorf("https Programmed = %+v, want False", c)
			}
		}
		for _, l := range out.Tables[key].Listeners {
			if l.Name == "https" {
				t.Error("a listener without a certificate is in the table")
			}
		}
	})
}

// asked records which listeners the issuing source was asked about.
type asked []string

func (a *asked) ListenerCertificates(req translate.ListenerCertificateRequest) translate.CertificateResult {
	owner := req.Gateway.Name
	if req.ListenerSet != nil {
		owner = req.ListenerSet.Name
	}
	*a = append(*a, owner+"/"+string(req.Listener))
	return translate.CertificateResult{KeyPairs: []string{"hub/" + owner + "/" + string(req.Listener)}}
}

// A certificate is an effect (a Certificate on the hub, a key pair in the
// proxies): only listeners that will be served may ask for one, so a
// listener that lost a conflict never gets a key for a hostname that
// another listener serves.
func TestCertificatesAreAskedForOnlyAfterConflictsAreSettled(t *testing.T) {
	in := seamInput()
	https := func(name gwv1.SectionName, host gwv1.Hostname) gwv1.Listener {
		return gwv1.Listener{Name: name, Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To(host)}
	}
	gw := in.Gateways[0]
	gw.Spec.Listeners = append(gw.Spec.Listeners[:1], https("https", "shop.example.com"), https("twin-a", "twin.example.com"), https("twin-b", "twin.example.com"))
	gw.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptr.To(gwv1.NamespacesFromAll)}}
	entry := func(name gwv1.SectionName, host gwv1.Hostname) gwv1.ListenerEntry {
		return gwv1.ListenerEntry{Name: name, Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To(host)}
	}
	in.ListenerSets = []*gwv1.ListenerSet{{
		ObjectMeta: metav1.ObjectMeta{Name: "grab", Namespace: "shop"},
		Spec: gwv1.ListenerSetSpec{ParentRef: gwv1.ParentGatewayReference{Name: "shared", Namespace: ptr.To[gwv1.Namespace]("infra")},
			Listeners: []gwv1.ListenerEntry{entry("taken", "shop.example.com"), entry("own", "own.example.com")}},
	}}
	broken := gw.DeepCopy()
	broken.Name = "unaccepted"
	broken.Spec.AllowedListeners = nil
	broken.Spec.Addresses = []gwv1.GatewaySpecAddress{{Type: ptr.To(gwv1.IPAddressType), Value: "not-an-ip"}}
	in.Gateways = append(in.Gateways, broken)
	var a asked
	in.Certificates = &a
	out := translate.Translate(in)

	slices.Sort(a)
	if want := []string{"grab/own", "shared/https"}; !slices.Equal(a, want) {
		t.Errorf("certificates asked for %v, want only %v", a, want)
	}
	conflicted := map[gwv1.SectionName]bool{}
	for _, l := range out.Gateways[types.NamespacedName{Namespace: "infra", Name: "shared"}].Listeners {
		conflicted[l.Name] = meta(l.Conditions, "Conflicted").Status == metav1.ConditionTrue
	}
	for _, l := range out.ListenerSets[types.NamespacedName{Namespace: "shop", Name: "grab"}].Listeners {
		conflicted[l.Name] = meta(l.Conditions, "Conflicted").Status == metav1.ConditionTrue
	}
	if !conflicted["twin-a"] || !conflicted["twin-b"] || !conflicted["taken"] || conflicted["https"] || conflicted["own"] {
		t.Errorf("conflicts were not what this test is about: %v", conflicted)
	}
}
