package hub

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
)

// A proxy serves every listener of a version it can and acknowledges the
// version; the listeners it cannot serve (a port something else holds, a
// key pair that does not load) it reports with why, on every request of
// its stream. The hub keeps "a proxy acknowledges only what it serves"
// true per listener: such a listener, and the routes it carries, are not
// Programmed, with the proxy's words; the rest of the Gateway is.

// maxListed bounds how many listeners a Gateway's condition names.
const maxListed = 5

// unserved lists the listeners of a node's table that a connected replica
// does not serve, with the reason the first of them gave.
func unserved(node string, st xds.NodeStatus) map[string]string {
	out := map[string]string{}
	for _, r := range st.Replicas {
		for l, why := range r.NotServed[node] {
			if _, ok := out[l]; !ok {
				out[l] = why
			}
		}
	}
	return out
}

// routeNotServed finds a listener that carries obj in the table a replica
// acknowledged, belongs to the route's parent, and is not served by it.
func (w *worker) routeNotServed(node string, st xds.NodeStatus, obj string, onParent func(listener string) bool) (listener, why string, found bool) {
	for _, r := range st.Replicas {
		failed := r.NotServed[node]
		for _, l := range slices.Sorted(maps.Keys(failed)) {
			if onParent(l) && w.carriesOn(node, r.Acked[node], l, obj) {
				return l, failed[l], true
			}
		}
	}
	return "", "", false
}

// routeLeftOut finds a connected replica that left obj (a route at its
// current generation) out of its table because it does not compile there,
// with the replica's reason. The hub checks routes with the proxies'
// own compiler, so this is a proxy built from other sources than the hub.
func routeLeftOut(node string, st xds.NodeStatus, obj string) (why string, found bool) {
	for _, r := range st.Replicas {
		if why, ok := r.RoutesNotServed[node][obj]; ok {
			return why, true
		}
	}
	return "", false
}

// routeNotCompiled is the Programmed message of a route a proxy left out.
func routeNotCompiled(why string) string {
	return "the Gateway's proxies do not serve this route, and serve the Gateway's other routes: " + why +
		"; change the match, or run proxies of the hub's version, whose checks this route passed"
}

// onParent says whether a listener of the table (named as translate names
// them: the section name for a Gateway's own listener,
// "namespace/listenerset/section" for a ListenerSet's) is one the parentRef
// attaches to.
func onParent(routeNS string, p gwv1.ParentReference) func(string) bool {
	return func(listener string) bool {
		section := listener
		if p.Kind != nil && *p.Kind == "ListenerSet" {
			ns := routeNS
			if p.Namespace != nil && *p.Namespace != "" {
				ns = string(*p.Namespace)
			}
			prefix := ns + "/" + string(p.Name) + "/"
			if !strings.HasPrefix(listener, prefix) {
				return false
			}
			section = listener[len(prefix):]
		} else if strings.Contains(listener, "/") {
			return false
		}
		return p.SectionName == nil || string(*p.SectionName) == section
	}
}

// describeListener names a table's listener the way its owner knows it.
func describeListener(name string) string {
	if parts := strings.SplitN(name, "/", 3); len(parts) == 3 {
		return fmt.Sprintf("listener %q of ListenerSet %s/%s", parts[2], parts[0], parts[1])
	}
	return fmt.Sprintf("listener %q", name)
}

// routeOnUnservedListener is a route's Programmed message. It starts with
// the proxy's own words, which name the cause and the fix.
func routeOnUnservedListener(listener, why string) string {
	return fmt.Sprintf("%s; %s, which carries this route, is not served by the Gateway's proxies, which serve its other listeners", why, describeListener(listener))
}

// listenerNotServed turns a listener's True Programmed into False with the
// proxy's reason.
func listenerNotServed(conds []metav1.Condition, why string) []metav1.Condition {
	return notProgrammed(conds, ReasonProxyRejected, "the Gateway's proxies do not serve this listener, and serve the others: "+why)
}

// partlyServed adds to a True Programmed of a Gateway or ListenerSet the
// listeners its proxies do not serve: the rest is served, so it stays
// True, and one tenant's listener does not turn a shared Gateway's
// readiness off; each listener's own status says False.
func partlyServed(conds []metav1.Condition, failed map[string]string) []metav1.Condition {
	if len(failed) == 0 {
		return conds
	}
	names := slices.Sorted(maps.Keys(failed))
	var parts []string
	for _, l := range names[:min(len(names), maxListed)] {
		parts = append(parts, describeListener(l)+": "+failed[l])
	}
	if len(names) > maxListed {
		parts = append(parts, fmt.Sprintf("and %d more listeners (see their status)", len(names)-maxListed))
	}
	for i := range conds {
		if c := &conds[i]; c.Type == conditionProgramed && c.Status == metav1.ConditionTrue {
			c.Message += "; not served: " + strings.Join(parts, "; ")
		}
	}
	return conds
}

// ofListenerSet keeps the listeners of one ListenerSet, by section name.
func ofListenerSet(failed map[string]string, namespace, name string) map[string]string {
	out := map[string]string{}
	prefix := namespace + "/" + name + "/"
	for l, why := range failed {
		if strings.HasPrefix(l, prefix) {
			out[l] = why
		}
	}
	return out
}

// superseded says why the listeners of the Gateway's current table (hash)
// that a parentRef attaches to (on) do not carry an accepted route of a
// stream kind, or "" when one does or the kind is not one. The Gateway API gives a TCP or UDP listener's port to the oldest
// route attached to it, and each of a TLS listener's SNI names to the route
// that names it most specifically, then the oldest; the others are
// accepted and serve nothing.
func (w *worker) superseded(kind string, gw types.NamespacedName, hash, route string, on func(listener string) bool) string {
	if hash == "" || !attach.Stream(kind) || w.carriesOnAny(TableName(w.name, gw.Namespace, gw.Name), hash, route, on) {
		return ""
	}
	if kind == attach.KindTLSRoute {
		return "the Gateway's proxies serve none of this route's SNI names: on each TLS listener it attaches to, each name goes to the route that names it most specifically, then to the oldest, and other routes do; name other SNI names, or attach to another listener"
	}
	return "the Gateway's proxies do not serve this route: an older " + kind + " attached to the same listener takes its port, as the Gateway API has it (the oldest route wins); attach this route to another listener, or delete the older one"
}
