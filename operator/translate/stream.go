package translate

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
)

// Stream routes (TLSRoute, TCPRoute, UDPRoute) carry connections, not
// requests: a rule is a set of weighted backends, with no matches or
// filters, and a listener serves one route per SNI name (TLS) or one route
// for the whole port (TCP, UDP).

const (
	kindTLSRoute = attach.KindTLSRoute
	kindTCPRoute = attach.KindTCPRoute
	kindUDPRoute = attach.KindUDPRoute
)

// attachStreamRoutes compiles and attaches every stream route that names a
// parent of ours.
func (t *translator) attachStreamRoutes() {
	for _, o := range t.in.TLSRoutes {
		if o != nil {
			t.attachStream(kindTLSRoute, o, lowerHostnames(o.Spec.Hostnames), o.Spec.ParentRefs, tlsRules(o.Spec.Rules), t.out.TLSRoutes)
		}
	}
	for _, o := range t.in.TCPRoutes {
		if o != nil {
			t.attachStream(kindTCPRoute, o, nil, o.Spec.ParentRefs, tcpRules(o.Spec.Rules), t.out.TCPRoutes)
		}
	}
	for _, o := range t.in.UDPRoutes {
		if o != nil {
			t.attachStream(kindUDPRoute, o, nil, o.Spec.ParentRefs, udpRules(o.Spec.Rules), t.out.UDPRoutes)
		}
	}
}

// streamObject is what the stream route kinds' objects have in common.
type streamObject interface {
	RouteObject
	GetCreationTimestamp() metav1.Time
}

// streamRule is what every stream route kind's rule has.
type streamRule struct {
	name     *gwv1.SectionName
	backends []gwv1.BackendRef
}

func tlsRules(rs []gwv1.TLSRouteRule) []streamRule {
	out := make([]streamRule, len(rs))
	for i, r := range rs {
		out[i] = streamRule{name: r.Name, backends: r.BackendRefs}
	}
	return out
}

func tcpRules(rs []gwv1.TCPRouteRule) []streamRule {
	out := make([]streamRule, len(rs))
	for i, r := range rs {
		out[i] = streamRule{name: r.Name, backends: r.BackendRefs}
	}
	return out
}

func udpRules(rs []gwv1.UDPRouteRule) []streamRule {
	out := make([]streamRule, len(rs))
	for i, r := range rs {
		out[i] = streamRule{name: r.Name, backends: r.BackendRefs}
	}
	return out
}

func (t *translator) attachStream(kind string, obj streamObject, hostnames []string, parents []gwv1.ParentReference, rules []streamRule,
	out map[types.NamespacedName][]gwv1.RouteParentStatus) {
	ns := obj.GetNamespace()
	if !t.mayConcernUs(ns, parents) {
		return
	}
	r := &route{kind: kind, obj: obj, key: key(ns, obj.GetName()), created: obj.GetCreationTimestamp(), hostnames: hostnames, parents: parents, rules: len(rules)}
	// The schema allows one rule; a route written against an older schema
	// may have more, and only the first is served.
	if len(rules) > 0 {
		r.stream = t.streamShares(r, rules[0])
	}
	if status := t.attach(r); len(status) > 0 {
		out[r.key] = status
	}
}

// streamShares resolves a rule's backendRefs into weighted shares. A share
// whose backend does not resolve stays, without a backend: the proxy
// refuses the connections it draws, as the spec asks ("Connection
// rejections must respect weight").
func (t *translator) streamShares(r *route, rule streamRule) *streamAction {
	c := &ruleCompiler{t: t, r: r, field: fieldPath{rule: 0}}
	a := &streamAction{name: rule.name}
	for i := range rule.backends {
		br := &rule.backends[i]
		a.backends = append(a.backends, c.weighted(br.BackendObjectReference, br.Weight, c.field.at("backendRefs", i)))
	}
	for _, b := range c.used {
		r.useBackend(b)
	}
	return a
}

// streamAction is a stream route's served rule.
type streamAction struct {
	name     *gwv1.SectionName
	backends []*routetable.WeightedBackend
}

// streamRoutes are a stream listener's table entries. TCP and UDP: the
// oldest attached route takes the port ("the oldest Route wins"); the
// others stay accepted and counted, and get nothing. TLS: one entry per SNI
// name, each served by the route whose own hostnames name it most
// specifically, then the oldest; with hostname ownership, only by a route
// of the name's owner.
func (t *translator) streamRoutes(l *listener) []*routetable.StreamRoute {
	if l.protocol != gwv1.TLSProtocolType {
		var best *route
		for _, a := range l.routes {
			if a.route.stream != nil && (best == nil || olderRoute(a.route, best)) {
				best = a.route
			}
		}
		if best == nil {
			return nil
		}
		return []*routetable.StreamRoute{streamEntry(best, "")}
	}
	hosts := map[string][]*attachment{}
	for _, a := range l.routes {
		for _, h := range a.hostnames {
			hosts[h] = append(hosts[h], a)
		}
	}
	t.carveOut(hosts)
	domains := make([]string, 0, len(hosts))
	for h := range hosts {
		domains = append(domains, h)
	}
	slices.SortFunc(domains, compareDomains)
	out := make([]*routetable.StreamRoute, 0, len(domains))
	for _, d := range domains {
		owner, owned := t.ownerOf(d)
		var best *route
		bestClass, bestLen := 0, 0
		for attached := range covering(hosts, d) {
			for _, a := range attached {
				r := a.route
				if r.stream == nil || (owned && r.owner != owner) {
					continue
				}
				class, length := routeHostnameRank(r.hostnames, d)
				if best == nil || class < bestClass || class == bestClass && (length < bestLen || length == bestLen && olderRoute(r, best)) {
					best, bestClass, bestLen = r, class, length
				}
			}
		}
		if best == nil {
			// A name carved out for its owner, who has no route for it:
			// its sessions are refused rather than served by another's.
			out = append(out, &routetable.StreamRoute{Domain: d})
			continue
		}
		out = append(out, streamEntry(best, d))
	}
	return out
}

func streamEntry(r *route, domain string) *routetable.StreamRoute {
	return &routetable.StreamRoute{Source: source(r, 0, 0, r.stream.name), Domain: domain, Backends: r.stream.backends}
}

// olderRoute orders routes as the spec breaks ties: the older first, then
// by namespace and name.
func olderRoute(a, b *route) bool {
	return compareAge(a.created, b.created, a.key, b.key) < 0
}
