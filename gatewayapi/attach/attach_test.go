package attach_test

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
)

func listener(name string, port gwv1.PortNumber, proto gwv1.ProtocolType, host string, allowed *gwv1.AllowedRoutes) *attach.Listener {
	var h *gwv1.Hostname
	if host != "" {
		h = ptr.To(gwv1.Hostname(host))
	}
	return attach.NewListener("Gateway infra/shared", "infra", gwv1.SectionName(name), port, proto, h, nil, allowed)
}

func from(f gwv1.FromNamespaces, sel *metav1.LabelSelector, kinds ...gwv1.Kind) *gwv1.AllowedRoutes {
	a := &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &f, Selector: sel}}
	for _, k := range kinds {
		a.Kinds = append(a.Kinds, gwv1.RouteGroupKind{Kind: k})
	}
	return a
}

func TestAttach(t *testing.T) {
	shop := map[string]string{"team": "shop"}
	web := attach.Route{Kind: attach.KindHTTPRoute, Namespace: "shop", Hostnames: []string{"a.example.com"}}
	cases := []struct {
		name      string
		route     attach.Route
		ref       gwv1.ParentReference
		listeners []*attach.Listener
		// taking: "listener[hostnames]" of the listeners that take it
		taking []string
		reason gwv1.RouteConditionReason
		// message holds this, when reason is set
		message string
	}{{
		name:      "every listener, the hostnames narrowed to each",
		route:     attach.Route{Kind: attach.KindHTTPRoute, Namespace: "shop", Hostnames: []string{"*.example.com"}},
		listeners: []*attach.Listener{listener("any", 80, gwv1.HTTPProtocolType, "", from(gwv1.NamespacesFromAll, nil)), listener("a", 80, gwv1.HTTPProtocolType, "a.example.com", from(gwv1.NamespacesFromAll, nil))},
		taking:    []string{"any[*.example.com]", "a[a.example.com]"},
	}, {
		name:      "a route without hostnames takes the listener's, or any",
		route:     attach.Route{Kind: attach.KindHTTPRoute, Namespace: "shop"},
		listeners: []*attach.Listener{listener("any", 80, gwv1.HTTPProtocolType, "", from(gwv1.NamespacesFromAll, nil)), listener("a", 80, gwv1.HTTPProtocolType, "a.example.com", from(gwv1.NamespacesFromAll, nil))},
		taking:    []string{"any[*]", "a[a.example.com]"},
	}, {
		name:      "sectionName and port select",
		route:     web,
		ref:       gwv1.ParentReference{SectionName: ptr.To(gwv1.SectionName("b")), Port: ptr.To(gwv1.PortNumber(8080))},
		listeners: []*attach.Listener{listener("b", 80, gwv1.HTTPProtocolType, "", from(gwv1.NamespacesFromAll, nil)), listener("b", 8080, gwv1.HTTPProtocolType, "", from(gwv1.NamespacesFromAll, nil))},
		taking:    []string{"b[a.example.com]"},
	}, {
		name:      "nothing selected",
		route:     web,
		ref:       gwv1.ParentReference{SectionName: ptr.To(gwv1.SectionName("nope"))},
		listeners: []*attach.Listener{listener("b", 80, gwv1.HTTPProtocolType, "", nil)},
		reason:    gwv1.RouteReasonNoMatchingParent, message: `no listener named "nope"`,
	}, {
		name:      "allowedRoutes unset takes only the Gateway's namespace",
		route:     web,
		listeners: []*attach.Listener{listener("http", 80, gwv1.HTTPProtocolType, "", nil)},
		reason:    gwv1.RouteReasonNotAllowedByListeners, message: `does not allow routes from namespace "shop" (allowedRoutes.namespaces.from: Same)`,
	}, {
		name:      "a selector the namespace matches",
		route:     web,
		listeners: []*attach.Listener{listener("http", 80, gwv1.HTTPProtocolType, "", from(gwv1.NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: shop}))},
		taking:    []string{"http[a.example.com]"},
	}, {
		name:      "Selector without a selector takes no route: the listener is invalid",
		route:     web,
		listeners: []*attach.Listener{listener("http", 80, gwv1.HTTPProtocolType, "", from(gwv1.NamespacesFromSelector, nil))},
		reason:    gwv1.RouteReasonNotAllowedByListeners, message: `listener "http" is not accepted`,
	}, {
		name:      "kinds",
		route:     web,
		listeners: []*attach.Listener{listener("grpc", 80, gwv1.HTTPProtocolType, "", from(gwv1.NamespacesFromAll, nil, "GRPCRoute"))},
		reason:    gwv1.RouteReasonNotAllowedByListeners, message: `listener "grpc" does not allow HTTPRoute`,
	}, {
		name:      "a protocol Gatehouse does not serve takes nothing",
		route:     web,
		listeners: []*attach.Listener{listener("sctp", 80, "SCTP", "", from(gwv1.NamespacesFromAll, nil))},
		reason:    gwv1.RouteReasonNotAllowedByListeners, message: `listener "sctp" is not accepted`,
	}, {
		name:      "an HTTPRoute on a TCP listener is not allowed by its kinds",
		route:     web,
		listeners: []*attach.Listener{listener("tcp", 80, gwv1.TCPProtocolType, "", from(gwv1.NamespacesFromAll, nil))},
		reason:    gwv1.RouteReasonNotAllowedByListeners, message: `listener "tcp" does not allow HTTPRoute`,
	}, {
		name:      "a TCPRoute on a TCP listener with a hostname takes every connection",
		route:     attach.Route{Kind: attach.KindTCPRoute, Namespace: "shop"},
		listeners: []*attach.Listener{listener("tcp", 5432, gwv1.TCPProtocolType, "db.example.com", from(gwv1.NamespacesFromAll, nil))},
		taking:    []string{"tcp[*]"},
	}, {
		name:      "a TLSRoute's SNI names intersect the TLS listener's hostname",
		route:     attach.Route{Kind: attach.KindTLSRoute, Namespace: "shop", Hostnames: []string{"x.example.org"}},
		listeners: []*attach.Listener{listener("tls", 443, gwv1.TLSProtocolType, "*.example.com", from(gwv1.NamespacesFromAll, nil))},
		reason:    gwv1.RouteReasonNoMatchingListenerHostname, message: "matches a listener's hostname (*.example.com)",
	}, {
		name:      "a TLSRoute is not allowed on an HTTPS listener",
		route:     attach.Route{Kind: attach.KindTLSRoute, Namespace: "shop", Hostnames: []string{"a.example.com"}},
		listeners: []*attach.Listener{listener("https", 443, gwv1.HTTPSProtocolType, "", from(gwv1.NamespacesFromAll, nil))},
		reason:    gwv1.RouteReasonNotAllowedByListeners, message: `listener "https" does not allow TLSRoute`,
	}, {
		name:      "no hostname in common names the listeners that would take it",
		route:     attach.Route{Kind: attach.KindHTTPRoute, Namespace: "shop", Hostnames: []string{"x.example.org"}},
		listeners: []*attach.Listener{listener("a", 80, gwv1.HTTPProtocolType, "*.example.com", from(gwv1.NamespacesFromAll, nil)), listener("same", 80, gwv1.HTTPProtocolType, "", nil)},
		reason:    gwv1.RouteReasonNoMatchingListenerHostname, message: "matches a listener's hostname (*.example.com)",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := attach.Attach(c.route, c.ref, c.listeners, shop)
			var got []string
			for _, cand := range res.Taking() {
				got = append(got, string(cand.Listener.Name)+"["+strings.Join(cand.Hostnames, ",")+"]")
			}
			if !slices.Equal(got, c.taking) {
				t.Errorf("taking %v, want %v", got, c.taking)
			}
			if res.Reason != c.reason || !strings.Contains(res.Message, c.message) {
				t.Errorf("reason %q (%s), want %q containing %q", res.Reason, res.Message, c.reason, c.message)
			}
		})
	}
}

// A listener that is not accepted takes no route but still counts the
// routes its allowedRoutes take, as ListenerStatus.AttachedRoutes asks.
func TestNotAcceptedListenerCounts(t *testing.T) {
	l := listener("dup", 80, gwv1.HTTPProtocolType, "", from(gwv1.NamespacesFromAll, nil))
	l.NotAccepted = "HostnameConflict: listener \"dup2\" also serves any hostname on port 80"
	res := attach.Attach(attach.Route{Kind: attach.KindHTTPRoute, Namespace: "shop"}, gwv1.ParentReference{}, []*attach.Listener{l}, nil)
	if len(res.Taking()) != 0 || res.Reason != gwv1.RouteReasonNotAllowedByListeners {
		t.Fatalf("a listener that is not accepted took the route: %+v", res)
	}
	if !res.Selected[0].CountsOn() {
		t.Error("the route does not count on the listener")
	}
	other := attach.Attach(attach.Route{Kind: attach.KindGRPCRoute, Namespace: "shop"}, gwv1.ParentReference{},
		[]*attach.Listener{listener("http-only", 80, gwv1.HTTPProtocolType, "", from(gwv1.NamespacesFromAll, nil, "HTTPRoute"))}, nil)
	if other.Selected[0].CountsOn() {
		t.Error("a route its allowedRoutes refuse counts on the listener")
	}
}

// Listener acceptance comes from status only when the status describes the
// current generation.
func TestGatewayListenersReadStatus(t *testing.T) {
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared", Generation: 2}, Spec: gwv1.GatewaySpec{
		Listeners: []gwv1.Listener{{Name: "a", Port: 80, Protocol: gwv1.HTTPProtocolType}, {Name: "b", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}
	refused := func(gen int64) []metav1.Condition {
		return []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "HostnameConflict", Message: "conflicts", ObservedGeneration: gen}}
	}
	gw.Status.Listeners = []gwv1.ListenerStatus{{Name: "a", Conditions: refused(2)}, {Name: "b", Conditions: refused(1)}}
	ls := attach.GatewayListeners(gw)
	if ls[0].Accepted() || !ls[1].Accepted() {
		t.Errorf("accepted: a=%v (status at this generation says no), b=%v (status of an older generation)", ls[0].Accepted(), ls[1].Accepted())
	}
}
