package translate_test

import (
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// gen builds random but well-shaped inputs: every object passes the CRDs'
// schema, while names, hostnames, references and matches collide often
// enough to exercise conflicts, precedence and failed references.
type gen struct {
	r *rand.Rand
}

func (g gen) pick(options ...string) string { return options[g.r.IntN(len(options))] }

func (g gen) port(options ...gwv1.PortNumber) gwv1.PortNumber {
	return options[g.r.IntN(len(options))]
}

func (g gen) hostname() string {
	return g.pick("a.example.com", "b.example.com", "*.example.com", "*.a.example.com", "example.com", "x.test", "*.test", "A.Example.com")
}

func (g gen) input(namespaces, gateways, routes int) translate.Input {
	in := translate.Input{
		GatewayClasses: []*gwv1.GatewayClass{{
			ObjectMeta: metav1.ObjectMeta{Name: "gatehouse", Generation: 1},
			Spec:       gwv1.GatewayClassSpec{ControllerName: translate.ControllerName},
		}},
	}
	for i := range namespaces {
		ns := fmt.Sprintf("ns-%d", i)
		in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{"team": g.pick("a", "b")}}})
		in.Services = append(in.Services, g.service(ns, "web"), g.service(ns, "api"))
		in.EndpointSlices = append(in.EndpointSlices, g.slice(ns, "web", i), g.slice(ns, "api", i))
	}
	in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "infra"}})
	for i := range gateways {
		in.Gateways = append(in.Gateways, g.gateway(fmt.Sprintf("gw-%d", i)))
	}
	for i := range routes {
		ns := fmt.Sprintf("ns-%d", i%max(namespaces, 1))
		in.HTTPRoutes = append(in.HTTPRoutes, g.route(ns, fmt.Sprintf("route-%d", i), gateways, namespaces))
	}
	if g.r.IntN(2) == 0 && namespaces > 1 {
		in.ReferenceGrants = append(in.ReferenceGrants, &gwv1.ReferenceGrant{
			ObjectMeta: metav1.ObjectMeta{Name: "grant", Namespace: "ns-1"},
			Spec: gwv1.ReferenceGrantSpec{
				From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "ns-0"}},
				To:   []gwv1.ReferenceGrantTo{{Kind: "Service"}},
			},
		})
	}
	if g.r.IntN(2) == 0 && namespaces > 2 {
		in.ReferenceGrantsV1B = append(in.ReferenceGrantsV1B, &gwv1beta1.ReferenceGrant{
			ObjectMeta: metav1.ObjectMeta{Name: "grant", Namespace: "ns-2"},
			Spec: gwv1beta1.ReferenceGrantSpec{
				From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "ns-0"}},
				To:   []gwv1beta1.ReferenceGrantTo{{Kind: "Service", Name: ptr.To[gwv1.ObjectName]("web")}},
			},
		})
	}
	return in
}

func (g gen) service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80},
				{Name: "h2c", Port: 81, AppProtocol: ptr.To("kubernetes.io/h2c")},
			},
		},
	}
}

func (g gen) slice(ns, svc string, i int) *discoveryv1.EndpointSlice {
	var eps []discoveryv1.Endpoint
	for j := range 1 + g.r.IntN(3) {
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", i/250, i%250, j+1)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(g.r.IntN(4) != 0)},
		})
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-abc", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("http"), Port: ptr.To[int32](8080)},
			{Name: ptr.To("h2c"), Port: ptr.To[int32](8081)},
		},
	}
}

func (g gen) gateway(name string) *gwv1.Gateway {
	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "infra", Generation: 1},
		Spec:       gwv1.GatewaySpec{GatewayClassName: "gatehouse"},
	}
	n := 1 + g.r.IntN(4)
	for i := range n {
		l := gwv1.Listener{
			Name:     gwv1.SectionName(fmt.Sprintf("l%d", i)),
			Port:     g.port(80, 80, 8080),
			Protocol: gwv1.ProtocolType(g.pick("HTTP", "HTTP", "HTTP", "TCP")),
		}
		if g.r.IntN(2) == 0 {
			l.Hostname = ptr.To(gwv1.Hostname(g.hostname()))
		}
		from := gwv1.FromNamespaces(g.pick("All", "Same", "Selector"))
		l.AllowedRoutes = &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &from}}
		if from == gwv1.NamespacesFromSelector {
			l.AllowedRoutes.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": g.pick("a", "b")}}
		}
		gw.Spec.Listeners = append(gw.Spec.Listeners, l)
	}
	return gw
}

func (g gen) route(ns, name string, gateways, namespaces int) *gwv1.HTTPRoute {
	hr := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: int64(1 + g.r.IntN(3)),
			CreationTimestamp: metav1.Unix(int64(g.r.IntN(100)), 0)},
	}
	for range 1 + g.r.IntN(2) {
		p := gwv1.ParentReference{Name: gwv1.ObjectName(fmt.Sprintf("gw-%d", g.r.IntN(max(gateways, 1)))), Namespace: ptr.To[gwv1.Namespace]("infra")}
		if g.r.IntN(4) == 0 {
			p.SectionName = ptr.To(gwv1.SectionName(fmt.Sprintf("l%d", g.r.IntN(3))))
		}
		if g.r.IntN(6) == 0 {
			p.Port = ptr.To[gwv1.PortNumber](80)
		}
		hr.Spec.ParentRefs = append(hr.Spec.ParentRefs, p)
	}
	for range g.r.IntN(3) {
		hr.Spec.Hostnames = append(hr.Spec.Hostnames, gwv1.Hostname(g.hostname()))
	}
	for i := range 1 + g.r.IntN(3) {
		hr.Spec.Rules = append(hr.Spec.Rules, g.rule(i, namespaces))
	}
	return hr
}

func (g gen) rule(i, namespaces int) gwv1.HTTPRouteRule {
	rule := gwv1.HTTPRouteRule{}
	if g.r.IntN(3) == 0 {
		rule.Name = ptr.To(gwv1.SectionName(fmt.Sprintf("rule-%d", i)))
	}
	for range g.r.IntN(3) {
		m := gwv1.HTTPRouteMatch{}
		typ := gwv1.PathMatchType(g.pick("PathPrefix", "Exact", "RegularExpression"))
		value := g.pick("/", "/a", "/a/b", "/api/", "/v2")
		if typ == gwv1.PathMatchRegularExpression {
			value = g.pick("/a.*", "/[0-9]+", "/(unclosed", "^/x$")
		}
		m.Path = &gwv1.HTTPPathMatch{Type: &typ, Value: &value}
		for range g.r.IntN(3) {
			m.Headers = append(m.Headers, gwv1.HTTPHeaderMatch{Name: gwv1.HTTPHeaderName(g.pick("x-a", "X-A", "x-b")), Value: g.pick("1", "2")})
		}
		if g.r.IntN(3) == 0 {
			m.QueryParams = append(m.QueryParams, gwv1.HTTPQueryParamMatch{Name: "q", Value: "1"})
		}
		if g.r.IntN(3) == 0 {
			m.Method = ptr.To(gwv1.HTTPMethod(g.pick("GET", "POST")))
		}
		rule.Matches = append(rule.Matches, m)
	}
	switch g.r.IntN(8) {
	case 0:
		rule.Filters = append(rule.Filters, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestRedirect,
			RequestRedirect: &gwv1.HTTPRequestRedirectFilter{Scheme: ptr.To("https"), StatusCode: ptr.To(301)}})
		return rule
	case 1:
		rule.Filters = append(rule.Filters, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterURLRewrite,
			URLRewrite: &gwv1.HTTPURLRewriteFilter{Path: &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/new")}}})
	case 2:
		rule.Filters = append(rule.Filters, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
			RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "x-set", Value: "v"}}, Remove: []string{"x-drop"}}})
	case 3:
		rule.Filters = append(rule.Filters, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterExtensionRef,
			ExtensionRef: &gwv1.LocalObjectReference{Group: "example.com", Kind: "Unknown", Name: "x"}})
	case 4:
		rule.Timeouts = &gwv1.HTTPRouteTimeouts{Request: ptr.To(gwv1.Duration(g.pick("10s", "1m30s", "0s", "bad")))}
	}
	for range g.r.IntN(3) {
		ns := fmt.Sprintf("ns-%d", g.r.IntN(max(namespaces, 1)))
		ref := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
			Name: gwv1.ObjectName(g.pick("web", "api", "missing")), Namespace: ptr.To(gwv1.Namespace(ns)),
			Port: ptr.To(g.port(80, 81, 99)),
		}}}
		if g.r.IntN(10) == 0 {
			ref.Kind = ptr.To[gwv1.Kind]("Bucket")
		}
		if g.r.IntN(2) == 0 {
			ref.Weight = ptr.To(int32(g.r.IntN(5)))
		}
		rule.BackendRefs = append(rule.BackendRefs, ref)
	}
	return rule
}
