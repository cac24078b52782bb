package migrate

import (
	"fmt"
	"slices"

	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// mergeCanary folds a canary Ingress into the entries of its primaries: the
// entry of the same namespace, host and path. ingress-nginx evaluates the
// canary by header first, then by weight; a header rule is more specific than
// the path alone, so HTTPRoute precedence gives the same order.
func (c *converter) mergeCanary(s *source, primaries []*source) {
	cc := s.cfg.canary
	for i, rule := range s.ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			field := fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)
			raw := p.Path
			if raw == "" {
				raw = "/"
			}
			primary, g, e := findPrimary(primaries, s.key.Namespace, rule.Host, raw)
			if e == nil {
				if other, _, _ := findPrimary(primaries, "", rule.Host, raw); other != nil {
					c.note(s, field, "the primary Ingress %s is in another namespace; a route cannot split traffic to a Service of namespace %s without a ReferenceGrant, so the canary was not merged: move the canary next to its primary", other.key, s.key.Namespace)
					continue
				}
				c.note(s, field, "no converted Ingress in namespace %s routes host %q path %q, so this canary path has nothing to split (ingress-nginx ignores it too): create the primary Ingress or remove the path", s.key.Namespace, hostOrAny(rule.Host), raw)
				continue
			}
			if e.canary != nil {
				c.note(s, field, "%s already has the canary %s and ingress-nginx supports one canary per path, so this one was not merged: remove one of the canaries", primary.key, *e.canary)
				continue
			}
			if len(e.backends) != 1 {
				c.note(s, field, "the primary %s has no Service backend for this path (it redirects or its backend is noted), so the canary was not merged: fix the primary first", primary.key)
				continue
			}
			canaryRef, ok := c.backendRef(s, s.key.Namespace, field+".backend", p.Backend)
			if !ok {
				continue
			}
			e.canary = &s.key
			c.splitByHeader(g, e, canaryRef, cc)
			if cc.weight != nil && *cc.weight > 0 {
				e.backends = []gwv1.HTTPBackendRef{withWeight(e.backends[0], cc.total-*cc.weight), withWeight(canaryRef, *cc.weight)}
			}
		}
	}
}

// splitByHeader inserts the canary-by-header rules before the primary entry:
// header = value (or "always") to the canary, "never" to the primary alone.
func (c *converter) splitByHeader(g *hostGroup, primary *entry, canaryRef gwv1.HTTPBackendRef, cc canaryConfig) {
	if cc.header == "" {
		return
	}
	rule := func(value string, to gwv1.HTTPBackendRef) *entry {
		m := primary.match.DeepCopy()
		m.Headers = append(m.Headers, gwv1.HTTPHeaderMatch{
			Type:  ptr.To(gwv1.HeaderMatchExact),
			Name:  gwv1.HTTPHeaderName(cc.header),
			Value: value,
		})
		return &entry{
			match:    *m,
			filters:  primary.filters,
			backends: []gwv1.HTTPBackendRef{to},
			timeouts: primary.timeouts,
			single:   primary.single,
			field:    primary.field,
		}
	}
	var extra []*entry
	if cc.headerValue != "" {
		extra = append(extra, rule(cc.headerValue, canaryRef))
	} else {
		extra = append(extra, rule("always", canaryRef), rule("never", primary.backends[0]))
	}
	at := slices.Index(g.entries, primary)
	g.entries = slices.Insert(g.entries, at, extra...)
}

func withWeight(b gwv1.HTTPBackendRef, w int32) gwv1.HTTPBackendRef {
	b.Weight = ptr.To(w)
	return b
}

// findPrimary finds the first primary (in namespace, any if "") entry for a
// host and raw Ingress path.
func findPrimary(primaries []*source, namespace, host, raw string) (*source, *hostGroup, *entry) {
	for _, s := range primaries {
		if namespace != "" && s.key.Namespace != namespace {
			continue
		}
		for _, g := range s.groups {
			if g.host != host {
				continue
			}
			for _, e := range g.entries {
				if e.rawPath == raw && len(e.match.Headers) == 0 {
					return s, g, e
				}
			}
		}
	}
	return nil, nil, nil
}
