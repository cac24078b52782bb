package translate

import (
	"cmp"
	"iter"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/features"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/hostnames"
)

// compile builds the route table of every accepted Gateway from the routes
// attached to its usable listeners.
func (t *translator) compile() {
	for _, gw := range t.gatewayList {
		if !gw.accepted {
			continue
		}
		limits := t.out.Parameters[string(gw.obj.Spec.GatewayClassName)].Limits
		table := &routetable.RouteTable{Gateway: gw.key.String()}
		if !proto.Equal(limits, routetable.DefaultLimits()) {
			// A table without limits gets the same defaults in the proxy.
			table.Limits = limits
		}
		used := map[string]bool{}
		for _, l := range gw.listeners {
			if !l.usable() || (l.set != nil && !l.set.accepted) {
				continue
			}
			table.Listeners = append(table.Listeners, t.compileListener(l, used))
		}
		names := make([]string, 0, len(used))
		for n := range used {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			table.Backends = append(table.Backends, gw.withClientCertificate(t.backends[n]))
		}
		clampTable(table, limits.GetMaxRequestTimeout().Std())
		t.out.Tables[gw.key] = table
	}
}

// streamProtocols are the listener protocols whose routes are stream routes.
var streamProtocols = map[gwv1.ProtocolType]routetable.Protocol{
	gwv1.TLSProtocolType: routetable.Protocol_TLS,
	gwv1.TCPProtocolType: routetable.Protocol_TCP,
	gwv1.UDPProtocolType: routetable.Protocol_UDP,
}

func (t *translator) compileListener(l *listener, used map[string]bool) *routetable.Listener {
	out := &routetable.Listener{
		Name:     string(l.name),
		Port:     uint32(l.port),
		Protocol: routetable.Protocol_HTTP,
		Hostname: l.hostname,
	}
	if l.set != nil {
		out.Name = l.set.key.Namespace + "/" + l.set.key.Name + "/" + string(l.name)
	}
	if l.protocol == gwv1.HTTPSProtocolType {
		out.Protocol = routetable.Protocol_HTTPS
		out.Tls = &routetable.ListenerTLS{Certificates: l.certificates, ClientValidation: l.frontend.table()}
	}
	if stream, ok := streamProtocols[l.protocol]; ok {
		out.Protocol = stream
		switch {
		case l.passthrough():
			out.Tls = &routetable.ListenerTLS{Passthrough: true}
		case l.terminates():
			out.Tls = &routetable.ListenerTLS{Certificates: l.certificates}
		}
		out.StreamRoutes = t.streamRoutes(l)
		for _, sr := range out.StreamRoutes {
			for _, b := range sr.Backends {
				if b.Backend != "" {
					used[b.Backend] = true
				}
			}
		}
		return out
	}
	// Routes by the hostname they were attached for.
	hosts := make(map[string][]*attachment, len(l.routes))
	for _, a := range l.routes {
		for _, h := range a.hostnames {
			hosts[h] = append(hosts[h], a)
		}
		for _, b := range a.route.backends {
			used[b] = true
		}
	}
	t.carveOut(hosts)
	domains := make([]string, 0, len(hosts))
	for h := range hosts {
		domains = append(domains, h)
	}
	slices.SortFunc(domains, compareDomains)
	for _, d := range domains {
		out.VirtualHosts = append(out.VirtualHosts, virtualHost(d, hosts, t.ownerOf))
	}
	return out
}

// carveOut gives every hostname delegated to a tenant, inside a broader
// domain that routes of someone else serve, a virtual host of its own: a
// request for it then reaches only its owner's routes, or none, and never
// falls through to the broader domain's.
func (t *translator) carveOut(hosts map[string][]*attachment) {
	if t.in.Owners == nil {
		return
	}
	var add []string
	for d, as := range hosts {
		if d != "*" && !strings.HasPrefix(d, "*.") {
			continue
		}
		for _, del := range t.in.Owners.Delegated(d) {
			if _, ok := hosts[del[0]]; ok {
				continue
			}
			for _, a := range as {
				if a.route.owner != del[1] {
					add = append(add, del[0])
					break
				}
			}
		}
	}
	for _, h := range add {
		hosts[h] = nil
	}
}

// ownerOf says which tenant a domain belongs to, for virtualHost.
func (t *translator) ownerOf(domain string) (string, bool) {
	if t.in.Owners == nil {
		return "", false
	}
	owner, _ := t.in.Owners.Owner(domain)
	return owner, true
}

// virtualHost gathers every route that serves requests for domain d: those
// attached for d itself and those attached for a wildcard (or "*") that
// covers it. A request picks the most specific virtual host and must still
// fall through to less specific routes there, so they are all listed, ranked
// first by how specifically each route's own hostnames name d.
//
// With ownership, a virtual host only lists routes of its domain's owner.
func virtualHost(d string, hosts map[string][]*attachment, ownerOf func(string) (string, bool)) *routetable.VirtualHost {
	var ranked []rankedEntry
	var seen routeSet
	owner, owned := ownerOf(d)
	for attached := range covering(hosts, d) {
		for _, a := range attached {
			if !seen.add(a.route) || (owned && a.route.owner != owner) {
				continue
			}
			class, length := routeHostnameRank(a.route.hostnames, d)
			for _, e := range a.route.entries {
				ranked = append(ranked, rankedEntry{e, class, length})
			}
		}
	}
	slices.SortFunc(ranked, compareRanked)
	vh := &routetable.VirtualHost{Domain: d, Routes: make([]*routetable.Route, len(ranked))}
	for i, r := range ranked {
		vh.Routes[i] = r.e.r
	}
	return vh
}

// routeSet is a set of routes: a list while small (most domains have a
// route or two, and thousands of them are built per translation), a map
// once large.
type routeSet struct {
	list []*route
	m    map[*route]bool
}

// add adds r and says whether it was new.
func (s *routeSet) add(r *route) bool {
	if s.m != nil {
		if s.m[r] {
			return false
		}
		s.m[r] = true
		return true
	}
	if slices.Contains(s.list, r) {
		return false
	}
	s.list = append(s.list, r)
	if len(s.list) > 16 {
		s.m = make(map[*route]bool, 2*len(s.list))
		for _, x := range s.list {
			s.m[x] = true
		}
	}
	return true
}

// covering lists the attachments of d and of every domain that also admits
// d's requests: wildcards over its suffixes, then the catch-all.
func covering(hosts map[string][]*attachment, d string) iter.Seq[[]*attachment] {
	return func(yield func([]*attachment) bool) {
		if !yield(hosts[d]) || d == "*" {
			return
		}
		// One buffer for every "*.<suffix>": a map indexed with string(buf)
		// copies nothing, and thousands of virtual hosts are built per
		// translation.
		var buf [64]byte
		rest := strings.TrimPrefix(d, "*.")
		for {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			if !yield(hosts[string(append(append(buf[:0], "*."...), rest...))]) {
				return
			}
		}
		yield(hosts["*"])
	}
}

// routeHostnameRank says how specifically a route's own hostnames name the
// virtual host d: an exact hostname (0) before a wildcard (1, longer first)
// before a route with no hostname (2).
func routeHostnameRank(names []string, d string) (int, int) {
	best, bestLen := 2, 0
	for _, h := range names {
		switch {
		case h == d && !strings.HasPrefix(h, "*."):
			return 0, -len(h)
		case strings.HasPrefix(h, "*.") && (h == d || wildcardCovers(h, d)):
			if best > 1 || -len(h) < bestLen {
				best, bestLen = 1, -len(h)
			}
		}
	}
	return best, bestLen
}

// wildcardCovers reports whether wildcard "*.s" admits d (a name or a narrower wildcard).
func wildcardCovers(wildcard, d string) bool {
	return hostnames.WildcardMatches(wildcard, strings.TrimPrefix(d, "*."))
}

type rankedEntry struct {
	e         *entry
	hostClass int
	hostLen   int
}

func compareRanked(a, b rankedEntry) int {
	if c := cmp.Compare(a.hostClass, b.hostClass); c != 0 {
		return c
	}
	if c := cmp.Compare(a.hostLen, b.hostLen); c != 0 {
		return c
	}
	return compareEntries(a.e, b.e)
}

func compareDomains(a, b string) int {
	ac, al := hostnameRank(a)
	bc, bl := hostnameRank(b)
	if c := cmp.Compare(ac, bc); c != 0 {
		return c
	}
	if c := cmp.Compare(al, bl); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// compareEntries orders table routes by the spec's precedence: exact paths,
// then regular expressions, then prefixes, longest first; then a method
// match; then more header matches; then more query matches; then the older
// route, then namespace/name; then rule and match order.
func compareEntries(a, b *entry) int {
	if c := cmp.Compare(a.pathClass, b.pathClass); c != 0 {
		return c
	}
	if c := cmp.Compare(b.pathLen, a.pathLen); c != 0 {
		return c
	}
	if a.method != b.method {
		if a.method {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(b.headers, a.headers); c != 0 {
		return c
	}
	if c := cmp.Compare(b.query, a.query); c != 0 {
		return c
	}
	if a.route != b.route {
		if c := compareAge(a.route.created, b.route.created, a.route.key, b.route.key); c != 0 {
			return c
		}
		if c := cmp.Compare(a.route.kind, b.route.kind); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(a.rule, b.rule); c != 0 {
		return c
	}
	return cmp.Compare(a.match, b.match)
}

// supportedFeatures are the Gateway API features the route table carries and
// the proxy serves, as reported on our GatewayClasses. Names come from the
// suite's own constants so that a rename upstream fails to compile here.
// GatewayInfrastructure is claimed only where the hub creates the Gateway's
// objects (managed mode): a class of external proxies has none to label.
func supportedFeatures(mode string) []gwv1.SupportedFeature {
	names := []features.FeatureName{
		features.SupportGateway, features.SupportGatewayHTTPListenerIsolation, features.SupportGatewayInfrastructure,
		features.SupportGatewayPort8080,
		features.SupportGatewayAddressEmpty, features.SupportGatewayBackendClientCertificate,
		features.SupportGatewayStaticAddresses, features.SupportGatewayRouteHostnameIntersectionPrecedence,
		features.SupportGatewayHTTPSListenerDetectMisdirectedRequests,
		features.SupportGatewayFrontendClientCertificateValidation,
		features.SupportGatewayFrontendClientCertificateValidationInsecureFallback,
		features.SupportHTTPRoute, features.SupportHTTPRouteBackendProtocolH2C, features.SupportHTTPRouteBackendProtocolWebSocket,
		features.SupportHTTPRouteBackendRequestHeaderModification, features.SupportHTTPRouteBackendTimeout,
		features.SupportHTTPRouteBackendURLRewrite, features.SupportHTTPRouteCORS,
		features.SupportHTTPRouteDestinationPortMatching, features.SupportHTTPRouteHostRewrite,
		features.SupportHTTPRouteMethodMatching, features.SupportHTTPRouteNamedRouteRule, features.SupportHTTPRouteParentRefPort,
		features.SupportHTTPRoutePathRedirect, features.SupportHTTPRoutePathRewrite, features.SupportHTTPRoutePortRedirect,
		features.SupportHTTPRouteQueryParamMatching, features.SupportHTTPRouteRequestMirror,
		features.SupportHTTPRouteRequestMultipleMirrors, features.SupportHTTPRouteRequestPercentageMirror,
		features.SupportHTTPRouteRequestTimeout, features.SupportHTTPRouteResponseHeaderModification,
		features.SupportHTTPRouteRetryCodes, features.SupportHTTPRouteRetryConnectionError, features.SupportHTTPRouteSchemeRedirect,
		features.SupportHTTPRoute303RedirectStatusCode, features.SupportHTTPRoute307RedirectStatusCode,
		features.SupportHTTPRoute308RedirectStatusCode,
		features.SupportGRPCRoute, features.SupportGRPCRouteNamedRouteRule, features.SupportGRPCRouteRequestHeaderModifier,
		features.SupportListenerSet, features.SupportReferenceGrant,
		features.SupportTLSRoute, features.SupportTLSRouteModeTerminate, features.SupportTLSRouteModeMixed,
		features.SupportTCPRoute, features.SupportUDPRoute,
		features.SupportBackendTLSPolicy, features.SupportBackendTLSPolicySANValidation,
	}
	if mode == ModeExternal {
		names = slices.DeleteFunc(names, func(n features.FeatureName) bool { return n == features.SupportGatewayInfrastructure })
	}
	slices.Sort(names)
	out := make([]gwv1.SupportedFeature, len(names))
	for i, n := range names {
		out[i] = gwv1.SupportedFeature{Name: gwv1.FeatureName(n)}
	}
	return out
}
