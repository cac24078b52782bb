package migrate

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Listener ports assumed for the HTTPS redirect: plain-HTTP requests arrive
// on 80, TLS on 443.
const (
	httpPort  = 80
	httpsPort = 443
)

// builtRoute is a route with a key unique to what it was made from, used to
// tell apart routes whose names clash.
type builtRoute struct {
	route  *gwv1.HTTPRoute
	origin string
}

// routes makes the HTTPRoutes of a primary Ingress, one per host group (more
// if the limits of one route are exceeded), plus the HTTPS redirects.
func (c *converter) routes(s *source) []builtRoute {
	var out []builtRoute
	for _, g := range s.groups {
		if len(g.entries) == 0 {
			c.note(s, g.field, "host %q has no path that could be converted and no defaultBackend, so it got no route; ingress-nginx answered it with its default backend (404)", g.host)
			continue
		}
		name := s.key.Name
		if len(s.groups) > 1 {
			name = routeName(s.key.Name, hostLabel(g.host))
		} else {
			name = routeName(name)
		}
		redirect, reason := httpsRedirect(s, g.host)
		var port int32
		if redirect {
			port = httpsPort
		}
		for k, rules := range splitRules(buildRules(g.entries)) {
			part := name
			if k > 0 {
				part = routeName(name, fmt.Sprint(k+1))
			}
			out = append(out, builtRoute{
				route:  c.newRoute(s.key.Namespace, part, g.host, c.parentRef(port), rules),
				origin: fmt.Sprintf("%s/%s/%d", s.key, g.host, k),
			})
		}
		if redirect {
			redirectName := routeName(name, "https-redirect")
			out = append(out, builtRoute{
				route: c.newRoute(s.key.Namespace, redirectName, g.host, c.parentRef(httpPort), []gwv1.HTTPRouteRule{{
					Filters: []gwv1.HTTPRouteFilter{redirectFilter(&gwv1.HTTPRequestRedirectFilter{Scheme: ptr.To("https"), StatusCode: ptr.To(301)})},
				}}),
				origin: fmt.Sprintf("%s/%s/redirect", s.key, g.host),
			})
			c.note(s, reason, "plain-HTTP requests for %s are redirected to https (301; ingress-nginx's default was 308) by route %s on the Gateway's port-%d listener, and route %s attaches to the port-%d listener only: the shared Gateway needs an HTTPS listener on port %d covering %s, or change the parentRef ports to the Gateway's listeners", hostOrAny(g.host), redirectName, httpPort, name, httpsPort, httpsPort, hostOrAny(g.host))
		}
		if g.host == "" {
			c.note(s, g.field, "route %s has no hostnames: on the shared Gateway it answers every hostname of the listener that no other route claims, for every team; add the hostnames it should serve to spec.hostnames (admission may refuse it outside your delegation)", name)
		}
		c.backendProtocolNotes(s, g)
	}
	return out
}

func hostOrAny(host string) string {
	if host == "" {
		return "any host"
	}
	return host
}

func (c *converter) newRoute(namespace, name, host string, parent gwv1.ParentReference, rules []gwv1.HTTPRouteRule) *gwv1.HTTPRoute {
	r := &gwv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent}},
			Rules:           rules,
		},
	}
	if host != "" {
		r.Spec.Hostnames = []gwv1.Hostname{gwv1.Hostname(host)}
	}
	return r
}

// parentRef names the shared Gateway; port 80 (the redirect) leaves out the
// section name, which names the listener for traffic.
func (c *converter) parentRef(port int32) gwv1.ParentReference {
	p := gwv1.ParentReference{Name: gwv1.ObjectName(c.opts.Gateway.Name)}
	if c.opts.Gateway.Namespace != "" {
		p.Namespace = ptr.To(gwv1.Namespace(c.opts.Gateway.Namespace))
	}
	if c.opts.SectionName != "" && port != httpPort {
		p.SectionName = ptr.To(gwv1.SectionName(c.opts.SectionName))
	}
	if port != 0 {
		p.Port = ptr.To(gwv1.PortNumber(port))
	}
	return p
}

// backendProtocolNotes says what each Service port of a group needs for the
// protocol backend-protocol names (canary Services included: ingress-nginx
// applies the primary's setting to them).
func (c *converter) backendProtocolNotes(s *source, g *hostGroup) {
	proto := s.cfg.backendProtocol
	if proto == "" || proto == "HTTP" || proto == "AUTO_HTTP" {
		return
	}
	field := annotationField(nginxPrefix + "backend-protocol")
	seen := map[string]bool{}
	for _, e := range g.entries {
		for _, b := range e.backends {
			ns := s.key.Namespace
			if b.Namespace != nil {
				ns = string(*b.Namespace)
			}
			ref := fmt.Sprintf("%s/%s port %d", ns, b.Name, *b.Port)
			if seen[ref] || s.noted[ref] {
				continue
			}
			seen[ref] = true
			if msg := c.protocolMessage(proto, types.NamespacedName{Namespace: ns, Name: string(b.Name)}, int32(*b.Port)); msg != "" {
				s.noted = mapWith(s.noted, ref)
				c.note(s, field, "%s", msg)
			}
		}
	}
}

func mapWith(m map[string]bool, k string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[k] = true
	return m
}

// protocolMessage is what to set for one Service port so the Gateway speaks
// proto to it; "" when nothing is missing.
func (c *converter) protocolMessage(proto string, svc types.NamespacedName, port int32) string {
	portName, appProtocol := "<port name>", ""
	if s := c.services[svc]; s != nil {
		for _, p := range s.Spec.Ports {
			if p.Port == port {
				portName = p.Name
				if p.AppProtocol != nil {
					appProtocol = *p.AppProtocol
				}
			}
		}
	}
	h2c := fmt.Sprintf("set appProtocol: kubernetes.io/h2c on port %d of Service %s so the Gateway speaks HTTP/2 without TLS to it", port, svc)
	backendTLS := fmt.Sprintf("create a BackendTLSPolicy in namespace %s with targetRefs [{group: \"\", kind: Service, name: %s, sectionName: %s}] and validation.hostname set to the name in the backend's certificate plus caCertificateRefs (or wellKnownCACertificates: System); ingress-nginx did not verify that certificate unless proxy-ssl-verify was on, the Gateway will", svc.Namespace, svc.Name, portName)
	switch proto {
	case "GRPC", "H2C":
		if appProtocol == "kubernetes.io/h2c" {
			return ""
		}
		msg := "the backend speaks HTTP/2 without TLS (" + proto + "): " + h2c
		if proto == "GRPC" {
			msg += "; consider a GRPCRoute for gRPC services"
		}
		return msg
	case "HTTPS":
		return "the backend expects TLS: " + backendTLS
	case "GRPCS":
		return "the backend expects gRPC over TLS: " + backendTLS + "; HTTP/2 is then negotiated over TLS (ALPN h2), so check the Gateway implementation does that, and consider a GRPCRoute"
	case "FCGI":
		return fmt.Sprintf("Service %s port %d speaks FastCGI, which a Gateway cannot forward to: put an HTTP server in front of it and point the route there", svc, port)
	default:
		return fmt.Sprintf("backend-protocol %q is unknown to the conversion; the Gateway speaks HTTP/1.1 to Service %s port %d: check that works", proto, svc, port)
	}
}

// uniqueNames renames routes whose namespace/name clash (an Ingress "a" with
// host "b.c" and an Ingress "a-b-c") by a hash of their origins.
func uniqueNames(built []builtRoute) []*gwv1.HTTPRoute {
	count := map[types.NamespacedName]int{}
	for _, b := range built {
		count[types.NamespacedName{Namespace: b.route.Namespace, Name: b.route.Name}]++
	}
	out := make([]*gwv1.HTTPRoute, 0, len(built))
	for _, b := range built {
		if count[types.NamespacedName{Namespace: b.route.Namespace, Name: b.route.Name}] > 1 {
			b.route.Name = routeName(b.route.Name, shortHash(b.origin))
		}
		out = append(out, b.route)
	}
	return out
}
