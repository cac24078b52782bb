package translate

import (
	"fmt"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/hostnames"
)

const (
	kindHTTPRoute = attach.KindHTTPRoute
	kindGRPCRoute = attach.KindGRPCRoute
)

// ReasonInvalidAllowedRoutes is the reason of a listener's Accepted=False
// condition when its allowedRoutes cannot be applied.
const ReasonInvalidAllowedRoutes = "InvalidAllowedRoutes"

// listener is one listener of a Gateway or of a ListenerSet attached to it.
type listener struct {
	gw       *gateway
	set      *listenerSet // nil for the Gateway's own listeners
	name     gwv1.SectionName
	port     int32
	protocol gwv1.ProtocolType
	hostname string // "" for any
	tls      *gwv1.ListenerTLSConfig
	// spec is the listener as the attachment rules see it.
	spec *attach.Listener

	// problems found while validating; empty when the listener is fine.
	reserved     string // Accepted=False PortUnavailable: the proxies bind this port themselves
	unsupported  string // Accepted=False UnsupportedValue: a field Gatehouse does not implement
	certReason   gwv1.ListenerConditionReason
	certMessage  string
	conflict     gwv1.ListenerConditionReason
	conflictWith string
	overlaps     string // OverlappingTLSConfig=True: listeners whose hostnames overlap this one's
	certificates []string
	// frontend is the Gateway's client-certificate validation for an HTTPS
	// listener's port (frontendtls.go); nil for none.
	frontend *frontendValidation

	conds    conditions
	attached int32
	// routes attached to this listener, with their intersected hostnames.
	routes []*attachment
}

func (t *translator) newListener(gw *gateway, ls *listenerSet, name gwv1.SectionName, port gwv1.PortNumber, protocol gwv1.ProtocolType,
	hostname *gwv1.Hostname, tls *gwv1.ListenerTLSConfig, allowed *gwv1.AllowedRoutes) *listener {
	owner, ns := "Gateway "+gw.key.String(), gw.obj.Namespace
	if ls != nil {
		owner, ns = "ListenerSet "+ls.key.String(), ls.obj.Namespace
	}
	spec := attach.NewListener(owner, ns, name, port, protocol, hostname, tls, allowed)
	l := &listener{gw: gw, set: ls, name: name, port: port, protocol: protocol, hostname: spec.Hostname, tls: tls, spec: spec}
	if served(l) && protocol != gwv1.UDPProtocolType {
		// The ports the proxies bind themselves are TCP ports.
		l.reserved = t.out.Parameters[string(gw.obj.Spec.GatewayClassName)].reservedPort(port)
	}
	if protocol == gwv1.HTTPSProtocolType {
		l.frontend = t.frontendFor(gw, port)
		l.unsupported = unknownFrontendMode(gw.obj, port)
	}
	return l
}

// terminates reports whether the listener decrypts TLS with certificates
// of its own: HTTPS, and TLS in Terminate mode (the default).
func (l *listener) terminates() bool {
	switch l.protocol {
	case gwv1.HTTPSProtocolType:
		return true
	case gwv1.TLSProtocolType:
		return !l.passthrough()
	}
	return false
}

// passthrough reports whether a TLS listener forwards sessions undecrypted.
func (l *listener) passthrough() bool {
	return l.protocol == gwv1.TLSProtocolType && l.tls != nil && l.tls.Mode != nil && *l.tls.Mode == gwv1.TLSModePassthrough
}

// withFilters refuses a listener with pre-routing filters (the
// experimental spec.listeners[].filters), which Gatehouse does not run.
// The spec's Listener Accepted condition says "all features used in the
// listener's spec are supported", and gives UnsupportedValue for "a value
// for a field that is not supported by the implementation". Serving the
// listener without them would skip what they enforce (ExternalAuth).
func (l *listener) withFilters(f *gwv1.ListenerFilters) *listener {
	if f != nil && len(f.Requests) > 0 {
		l.unsupported = fmt.Sprintf("filters.requests (%d) are not supported: Gatehouse runs no pre-routing listener filters, and serving the listener without them would skip what they enforce: remove them to serve the listener", len(f.Requests))
	}
	return l
}

// listenerCertificates resolves the certificates of a listener that
// terminates TLS (HTTPS, TLS in Terminate mode), once
// conflicts are settled. Only a listener that will be served (accepted, of
// an accepted Gateway) asks the issuing source: issuing is an effect, a
// Certificate on the hub and a key pair in the proxies, and a listener that
// lost a conflict must not get a key for a hostname another one serves.
// Other listeners still have their certificateRefs checked, for status.
func (t *translator) listenerCertificates(l *listener) {
	if !l.terminates() {
		return
	}
	if served := l.accepted() && l.gw.accepted; !served && (l.tls == nil || len(l.tls.CertificateRefs) == 0) {
		return
	}
	req := ListenerCertificateRequest{Gateway: l.gw.obj, Listener: l.name, Hostname: l.hostname, TLS: l.tls, Parameters: t.out.Parameters[string(l.gw.obj.Spec.GatewayClassName)]}
	if l.set != nil {
		req.ListenerSet = l.set.obj
	}
	res := t.certs.ListenerCertificates(req)
	l.certificates = res.KeyPairs
	l.certReason, l.certMessage = res.Reason, res.Message
}

// settleConflicts marks listeners that share a port in a way that cannot be
// told apart. Within one Gateway or one ListenerSet no listener wins: all
// indistinct ones are conflicted. Across them, precedence decides: the
// Gateway's own listeners, then ListenerSets oldest first; only the later
// listener is conflicted.
//
// What tells listeners on one port apart is the spec's: HTTP listeners by
// Host header, HTTPS and TLS listeners by SNI, so each may share a port
// with more of its kind on other hostnames; HTTPS and TLS (passthrough or
// terminated) may share one with each other too, as SNI picks the listener
// before anything is decrypted. A TCP listener takes every connection to
// its port, so it is distinct from nothing else there ("all the Listeners
// that share a port with the TCP Listener are not distinct"). UDP uses
// sockets of its own and is indistinct only from another UDP listener.
//
// A listener of a protocol Gatehouse does not serve never takes a port from
// one it serves: it alone is conflicted (ProtocolConflict) when it shares the
// port with one, and is otherwise not accepted (UnsupportedProtocol).
func settleConflicts(ls []*listener) {
	lost := map[*listener]bool{} // conflicted by a listener of higher precedence
	for i, l := range ls {
	prevs:
		for _, prev := range ls[:i] {
			if lost[prev] || prev.port != l.port {
				continue
			}
			switch {
			case !served(prev) && !served(l):
				continue
			case !served(prev) || !served(l):
				if prev.protocol == l.protocol {
					continue
				}
				loser, winner := l, prev
				if served(l) {
					loser, winner = prev, l
				}
				loser.markConflict(gwv1.ListenerReasonProtocolConflict, winner)
				lost[loser] = true
				if loser == l {
					break prevs
				}
				continue
			}
			reason := portConflict(prev, l)
			if reason == "" {
				continue
			}
			if prev.set == l.set {
				prev.markConflict(reason, l)
				l.markConflict(reason, prev)
				continue
			}
			l.markConflict(reason, prev)
			lost[l] = true
			break
		}
	}
	overlappingTLS(ls)
}

// portConflict says why two served listeners on one port cannot be told
// apart, "" when they can (see settleConflicts).
func portConflict(a, b *listener) gwv1.ListenerConditionReason {
	ta, tb := transport(a.protocol), transport(b.protocol)
	switch {
	case (ta == "udp") != (tb == "udp"):
		return ""
	case ta != tb, ta == "tcp", ta == "udp":
		// Different ways of telling listeners apart, or none at all.
		return gwv1.ListenerReasonProtocolConflict
	case a.hostname == b.hostname:
		return gwv1.ListenerReasonHostnameConflict
	}
	return ""
}

// transport groups protocols by how a proxy tells their listeners apart
// on one port: "http" by Host, "sni" by TLS server name, "tcp" and "udp"
// not at all.
func transport(p gwv1.ProtocolType) string {
	switch p {
	case gwv1.HTTPProtocolType:
		return "http"
	case gwv1.HTTPSProtocolType, gwv1.TLSProtocolType:
		return "sni"
	case gwv1.UDPProtocolType:
		return "udp"
	}
	return "tcp"
}

// served reports whether Gatehouse serves the listener's protocol.
func served(l *listener) bool {
	switch l.protocol {
	case gwv1.HTTPProtocolType, gwv1.HTTPSProtocolType, gwv1.TLSProtocolType, gwv1.TCPProtocolType, gwv1.UDPProtocolType:
		return true
	}
	return false
}

// overlappingTLS marks HTTPS listeners on one port whose hostnames overlap
// without being equal (equal ones conflict): a client that coalesces
// connections may send one listener's requests over the other's TLS
// session. Both stay served; the condition warns their owners.
func overlappingTLS(ls []*listener) {
	for i, l := range ls {
		if l.protocol != gwv1.HTTPSProtocolType || l.conflict != "" {
			continue
		}
		for _, o := range ls[i+1:] {
			if o.protocol != gwv1.HTTPSProtocolType || o.conflict != "" || o.port != l.port || o.hostname == l.hostname {
				continue
			}
			if !hostnamesOverlap(l.hostname, o.hostname) {
				continue
			}
			l.addOverlap(o)
			o.addOverlap(l)
		}
	}
}

// hostnamesOverlap reports whether a client could reach both hostnames'
// listeners with one name; "" is any hostname.
func hostnamesOverlap(a, b string) bool {
	if a == "" || b == "" {
		return true
	}
	_, ok := hostnames.IntersectOne(a, b)
	return ok
}

func (l *listener) addOverlap(with *listener) {
	host := with.hostname
	if host == "" {
		host = "any hostname"
	}
	what := fmt.Sprintf("listener %s (%s)", with.ref(), host)
	if l.overlaps == "" {
		l.overlaps = what
		return
	}
	l.overlaps += ", " + what
}

func (l *listener) markConflict(reason gwv1.ListenerConditionReason, with *listener) {
	if l.conflict != "" {
		return
	}
	l.conflict = reason
	switch reason {
	case gwv1.ListenerReasonProtocolConflict:
		l.conflictWith = fmt.Sprintf("listener %s uses port %d with protocol %s", with.ref(), l.port, with.protocol)
	default:
		host := l.hostname
		if host == "" {
			host = "any hostname"
		}
		l.conflictWith = fmt.Sprintf("listener %s also serves %s on port %d", with.ref(), host, l.port)
	}
}

// ref names the listener for messages.
func (l *listener) ref() string {
	if l.set != nil {
		return fmt.Sprintf("%q of ListenerSet %s", l.name, l.set.key)
	}
	return fmt.Sprintf("%q", l.name)
}

// accepted reports whether routes may attach: the listener is supported and
// distinct. Its references may still be broken.
func (l *listener) accepted() bool {
	return l.spec.Accepted() && l.conflict == "" && l.reserved == "" && l.unsupported == "" && !l.frontend.noValidCA()
}

// usable reports whether the listener is served: accepted, with its
// certificates resolved.
func (l *listener) usable() bool {
	return l.accepted() && l.certReason == ""
}

// finish computes the listener's conditions once conflicts are settled.
func (l *listener) finish() {
	gen := l.gw.obj.Generation
	if l.set != nil {
		gen = l.set.obj.Generation
	}
	accepted, conflicted := string(gwv1.ListenerConditionAccepted), string(gwv1.ListenerConditionConflicted)
	resolved, programmed := string(gwv1.ListenerConditionResolvedRefs), string(gwv1.ListenerConditionProgrammed)
	switch {
	case l.reserved != "":
		l.spec.NotAccepted = l.reserved
		l.conds.set(accepted, false, string(ReasonPortReserved), l.reserved, gen)
	case l.conflict != "":
		l.spec.NotAccepted = l.conflictWith
		l.conds.set(accepted, false, string(l.conflict), l.conflictWith+": change the port or hostname", gen)
	case l.spec.Unsupported != "":
		l.conds.set(accepted, false, string(gwv1.ListenerReasonUnsupportedProtocol), l.spec.Unsupported, gen)
	case l.spec.InvalidNamespaces != "":
		l.conds.set(accepted, false, ReasonInvalidAllowedRoutes, l.spec.InvalidNamespaces, gen)
	case l.unsupported != "":
		l.spec.NotAccepted = l.unsupported
		l.conds.set(accepted, false, string(gwv1.ListenerReasonUnsupportedValue), l.unsupported, gen)
	case l.frontend.noValidCA():
		l.spec.NotAccepted = l.frontend.notAccepted(l.port)
		l.conds.set(accepted, false, string(gwv1.ListenerReasonNoValidCACertificate), l.spec.NotAccepted, gen)
	default:
		l.conds.set(accepted, true, string(gwv1.ListenerReasonAccepted), "listener is accepted", gen)
	}
	if l.conflict != "" {
		l.conds.set(conflicted, true, string(l.conflict), l.conflictWith+": change the port or hostname", gen)
	} else {
		l.conds.set(conflicted, false, string(gwv1.ListenerReasonNoConflicts), "no conflicts", gen)
	}
	if l.overlaps != "" {
		l.conds.set(string(gwv1.ListenerConditionOverlappingTLSConfig), true, string(gwv1.ListenerReasonOverlappingHostnames),
			fmt.Sprintf("hostname %s overlaps that of %s on port %d: a client may reuse one TLS connection for both; give them disjoint hostnames or separate ports if that matters",
				orAny(l.hostname), l.overlaps, l.port), gen)
	}
	switch {
	case l.certReason != "":
		l.conds.set(resolved, false, string(l.certReason), l.certMessage+l.frontend.alsoUnresolved(), gen)
	case l.frontend.unresolved():
		l.conds.set(resolved, false, string(l.frontend.reason), l.frontend.message, gen)
	case l.spec.InvalidKinds != "":
		l.conds.set(resolved, false, string(gwv1.ListenerReasonInvalidRouteKinds), l.spec.InvalidKinds, gen)
	default:
		l.conds.set(resolved, true, string(gwv1.ListenerReasonResolvedRefs), "all references resolved", gen)
	}
	switch {
	case l.usable():
		l.conds.set(programmed, true, string(gwv1.ListenerReasonProgrammed), "listener is in the route table", gen)
	case l.conflict != "":
		l.conds.set(programmed, false, string(l.conflict), "listener is conflicted and not served", gen)
	default:
		l.conds.set(programmed, false, string(gwv1.ListenerReasonInvalid), "listener is not served: see its other conditions", gen)
	}
}

func (l *listener) status() gwv1.ListenerStatus {
	kinds := l.spec.Kinds
	if l.spec.Unsupported != "" {
		kinds = []gwv1.RouteGroupKind{}
	}
	return gwv1.ListenerStatus{
		Name:           l.name,
		SupportedKinds: kinds,
		AttachedRoutes: l.attached,
		Conditions:     l.conds,
	}
}

func orAny(h string) string {
	if h == "" {
		return "any hostname"
	}
	return h
}
