package migrate

import (
	"fmt"
	"reflect"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// hostGroup is what an Ingress routes for one host ("" for rules without a
// host): one HTTPRoute.
type hostGroup struct {
	host string
	// field is where the host first appears.
	field   string
	entries []*entry
}

// entry is one match with its action: an Ingress path, the defaultBackend,
// the app-root redirect or a canary header rule.
type entry struct {
	rawPath  string
	match    gwv1.HTTPRouteMatch
	filters  []gwv1.HTTPRouteFilter
	backends []gwv1.HTTPBackendRef
	timeouts *gwv1.HTTPRouteTimeouts
	// single: the rule may hold no other match (ReplacePrefixMatch).
	single bool
	field  string
	// canary is the canary Ingress merged into this entry, if any.
	canary *types.NamespacedName
}

func (g *hostGroup) add(c *converter, s *source, e *entry) {
	for _, o := range g.entries {
		if reflect.DeepEqual(o.match, e.match) {
			c.note(s, e.field, "%s matches the same requests as %s, which serves them (as in ingress-nginx); remove one of the two", describeMatch(e.match), o.field)
			return
		}
	}
	g.entries = append(g.entries, e)
}

func describeMatch(m gwv1.HTTPRouteMatch) string {
	return fmt.Sprintf("%s %q", *m.Path.Type, *m.Path.Value)
}

// collect turns the rules of a primary Ingress into host groups of entries.
func (c *converter) collect(s *source) {
	spec := &s.ing.Spec
	for i, rule := range spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", i)
		if rule.Host != "" && !validHostname(rule.Host) {
			c.note(s, field+".host", "%q is not a hostname HTTPRoute accepts, so this rule was not converted: use a lower-case DNS name", rule.Host)
			continue
		}
		g := s.group(rule.Host, field)
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			pf := fmt.Sprintf("%s.http.paths[%d]", field, j)
			if e := c.pathEntry(s, pf, pf+".backend", p); e != nil {
				g.add(c, s, e)
			}
		}
	}
	if spec.DefaultBackend != nil {
		c.defaultBackend(s)
	}
	if s.cfg.appRoot != "" {
		for _, g := range s.groups {
			e := &entry{
				match: gwv1.HTTPRouteMatch{Path: ptr.To(pathMatch(gwv1.PathMatchExact, "/"))},
				filters: []gwv1.HTTPRouteFilter{redirectFilter(&gwv1.HTTPRequestRedirectFilter{
					Path:       &gwv1.HTTPPathModifier{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To(s.cfg.appRoot)},
					StatusCode: ptr.To(302),
				})},
				field: annotationField(nginxPrefix + "app-root"),
			}
			// The redirect runs before location matching in ingress-nginx, so
			// it wins over an Exact "/" path of the Ingress.
			g.entries = append([]*entry{e}, g.entries...)
			for k, o := range g.entries[1:] {
				if reflect.DeepEqual(o.match, e.match) {
					c.note(s, o.field, "shadowed by app-root, which redirects \"/\" (as in ingress-nginx); remove the path or the annotation")
					g.entries = append(g.entries[:k+1], g.entries[k+2:]...)
					break
				}
			}
		}
	}
}

func (s *source) group(host, field string) *hostGroup {
	for _, g := range s.groups {
		if g.host == host {
			return g
		}
	}
	g := &hostGroup{host: host, field: field}
	s.groups = append(s.groups, g)
	return g
}

// defaultBackend adds a last PathPrefix "/" rule to every host of the Ingress
// (as ingress-nginx does), or makes a route without hostnames when the
// Ingress has no rules.
func (c *converter) defaultBackend(s *source) {
	const field = "spec.defaultBackend"
	if len(s.ing.Spec.Rules) == 0 {
		s.group("", field)
	} else {
		var hosts []string
		for _, g := range s.groups {
			if g.host != "" {
				hosts = append(hosts, g.host)
			}
		}
		if len(hosts) > 0 {
			c.note(s, field, "serves the paths of %s that no other path matches; requests for other hostnames do not reach it (as with ingress-nginx, and a catch-all route on the shared Gateway would take other teams' hostnames): add a rule for each further hostname it should serve", strings.Join(hosts, ", "))
		}
	}
	e := c.pathEntry(s, field, field, networkingv1.HTTPIngressPath{
		Path:     "/",
		PathType: ptr.To(networkingv1.PathTypePrefix),
		Backend:  *s.ing.Spec.DefaultBackend,
	})
	if e == nil {
		return
	}
	e.rawPath = "" // not a path a canary can split
	for _, g := range s.groups {
		covered := false
		for _, o := range g.entries {
			covered = covered || reflect.DeepEqual(o.match, e.match)
		}
		if !covered {
			g.entries = append(g.entries, e)
		}
	}
}

// pathEntry converts one Ingress path; nil when it cannot be (noted).
func (c *converter) pathEntry(s *source, field, backendField string, p networkingv1.HTTPIngressPath) *entry {
	pc, ok := c.convertPath(s, field, p)
	if !ok {
		return nil
	}
	raw := p.Path
	if raw == "" {
		raw = "/"
	}
	e := &entry{rawPath: raw, match: gwv1.HTTPRouteMatch{Path: &pc.match}, field: field}
	if s.cfg.redirect != nil {
		e.filters = []gwv1.HTTPRouteFilter{redirectFilter(s.cfg.redirect)}
		return e
	}
	if ref, ok := c.backendRef(s, s.key.Namespace, backendField, p.Backend); ok {
		e.backends = []gwv1.HTTPBackendRef{ref}
	}
	if s.cfg.cors != nil {
		e.filters = append(e.filters, corsFilter(s.cfg.cors))
	}
	if pc.rewrite != nil {
		e.filters = append(e.filters, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: &gwv1.HTTPURLRewriteFilter{Path: pc.rewrite}})
		e.single = pc.rewrite.Type == gwv1.PrefixMatchHTTPPathModifier
	}
	if s.cfg.timeouts != nil && s.cfg.timeouts.BackendRequest != nil {
		e.timeouts = s.cfg.timeouts
	}
	return e
}

// backendRef converts an Ingress backend. false means it cannot be (noted);
// the caller keeps the rule without it, so its requests get HTTP 500 rather
// than falling through to a shorter path.
func (c *converter) backendRef(s *source, namespace, field string, b networkingv1.IngressBackend) (gwv1.HTTPBackendRef, bool) {
	const consequence = "requests matching this path get HTTP 500 from the Gateway until it is fixed"
	if b.Resource != nil {
		group := ""
		if b.Resource.APIGroup != nil {
			group = *b.Resource.APIGroup
		}
		c.note(s, field+".resource", "resource backend %s %s (group %q) cannot be an HTTPRoute backend; %s: serve it through a Service and point the route's backendRef at it", b.Resource.Kind, b.Resource.Name, group, consequence)
		return gwv1.HTTPBackendRef{}, false
	}
	if b.Service == nil {
		c.note(s, field, "no service backend; %s: add a backendRef to the route", consequence)
		return gwv1.HTTPBackendRef{}, false
	}
	port := b.Service.Port.Number
	if port == 0 && b.Service.Port.Name != "" {
		port = c.namedPort(s, namespace, field+".service.port.name", b.Service.Name, b.Service.Port.Name, consequence)
		if port == 0 {
			return gwv1.HTTPBackendRef{}, false
		}
	}
	if port < 1 || port > 65535 {
		c.note(s, field+".service.port", "Service %s has no valid port; %s: give the port number", b.Service.Name, consequence)
		return gwv1.HTTPBackendRef{}, false
	}
	return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
		Name: gwv1.ObjectName(b.Service.Name),
		Port: ptr.To(gwv1.PortNumber(port)),
	}}}, true
}

// namedPort resolves a Service port name: HTTPRoute backendRefs need the
// number. 0 when it cannot (noted).
func (c *converter) namedPort(s *source, namespace, field, service, name, consequence string) int32 {
	svc := c.services[types.NamespacedName{Namespace: namespace, Name: service}]
	if svc == nil {
		c.note(s, field, "port %q of Service %s/%s needs the Service to be resolved to a number, and it was not given; %s: convert with the Service available or replace the name by the port number", name, namespace, service, consequence)
		return 0
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return p.Port
		}
	}
	c.note(s, field, "Service %s/%s has no port named %q; %s: fix the port name or the Service", namespace, service, name, consequence)
	return 0
}

// buildRules groups entries with the same action into rules, keeping entry
// order. Precedence between matches does not depend on rule order (duplicate
// matches were removed), so grouping changes nothing.
func buildRules(entries []*entry) []gwv1.HTTPRouteRule {
	const maxMatches = 64
	var rules []gwv1.HTTPRouteRule
	var actions []*entry // the entry whose action each rule carries
	for _, e := range entries {
		if !e.single {
			merged := false
			for i, a := range actions {
				if !a.single && len(rules[i].Matches) < maxMatches && sameAction(a, e) {
					rules[i].Matches = append(rules[i].Matches, e.match)
					merged = true
					break
				}
			}
			if merged {
				continue
			}
		}
		rules = append(rules, gwv1.HTTPRouteRule{
			Matches:     []gwv1.HTTPRouteMatch{e.match},
			Filters:     e.filters,
			BackendRefs: e.backends,
			Timeouts:    e.timeouts,
		})
		actions = append(actions, e)
	}
	return rules
}

func sameAction(a, b *entry) bool {
	return reflect.DeepEqual(a.filters, b.filters) && reflect.DeepEqual(a.backends, b.backends) && reflect.DeepEqual(a.timeouts, b.timeouts)
}

// splitRules cuts rules into chunks one HTTPRoute can hold.
func splitRules(rules []gwv1.HTTPRouteRule) [][]gwv1.HTTPRouteRule {
	const maxRules, maxTotalMatches = 16, 128
	var chunks [][]gwv1.HTTPRouteRule
	var cur []gwv1.HTTPRouteRule
	matches := 0
	for _, r := range rules {
		if len(cur) == maxRules || matches+len(r.Matches) > maxTotalMatches {
			chunks = append(chunks, cur)
			cur, matches = nil, 0
		}
		cur = append(cur, r)
		matches += len(r.Matches)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}
