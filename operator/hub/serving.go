package hub

import (
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// serving is what the proxies of a cluster's Gateways serve, as one status
// pass sees it: the push server's view of each Gateway's node, read once
// per Gateway, against the table versions the pass's decisions published.
// Every Programmed condition of the pass is answered here.
type serving struct {
	w      *worker
	hashes map[types.NamespacedName]string
	nodes  map[types.NamespacedName]gatewayNode
	// now is when the pass began writing: a pass that takes seconds to
	// write thousands of statuses judges every one of them as of then.
	now time.Time
	// settleTimer: a status pass is due once settleTime has passed.
	settleTimer sync.Once
}

func (w *worker) serving(hashes map[types.NamespacedName]string) *serving {
	return &serving{w: w, hashes: hashes, nodes: map[types.NamespacedName]gatewayNode{}, now: time.Now()}
}

// gatewayNode is what a pass knows of a Gateway's proxies, read at once:
// the push server's view of them, and when the table they have not
// acknowledged yet was published. Read apart, an acknowledgement between
// the two reads left a route neither served nor awaited.
type gatewayNode struct {
	name        string // the node, named after the table
	status      xds.NodeStatus
	published   time.Time
	unconfirmed bool // published has not been acknowledged
}

func (s *serving) gateway(gw types.NamespacedName) gatewayNode {
	n, ok := s.nodes[gw]
	if !ok {
		n.name = TableName(s.w.name, gw.Namespace, gw.Name)
		s.w.hub.mu.Lock()
		n.status = s.w.hub.push.Status(n.name)
		p, waiting := s.w.hub.pushedAt[n.name]
		s.w.hub.mu.Unlock()
		n.published, n.unconfirmed = p.at, waiting && p.hash == s.hashes[gw]
		s.nodes[gw] = n
	}
	return n
}

// node is the push server's view of a Gateway's proxies.
func (s *serving) node(gw types.NamespacedName) xds.NodeStatus { return s.gateway(gw).status }

// answer says whether the Gateway's proxies serve obj (an objectKey) as it
// is now: whether a table they acknowledged carries obj's current
// generation. A later table that they have not acknowledged yet does not
// take back what they serve.
func (s *serving) answer(gw types.NamespacedName, obj string) served {
	w, hash := s.w, s.hashes[gw]
	n := s.gateway(gw)
	node, st := n.name, n.status
	switch {
	case hash == "":
		return served{reason: ReasonPending, message: "no route table was published for this Gateway"}
	case st.Streams > 0 && w.allServe(node, st.Replicas, obj):
		return served{ok: true, reason: string(gwv1.GatewayReasonProgrammed), message: fmt.Sprintf("served by the Gateway's proxies (%d connected)", st.Streams)}
	case st.Nack != nil && st.Nack.Resources[node] == hash:
		return served{reason: ReasonProxyRejected, message: "a proxy rejected the route table: " + st.Nack.Message}
	}
	waiting := served{reason: ReasonPending, message: "waiting for the Gateway's proxies to acknowledge a route table that carries this generation"}
	if n.unconfirmed && st.Streams > 0 && s.now.Sub(n.published) < settleTime {
		// Connected proxies usually acknowledge within milliseconds.
		waiting.settling = true
		s.settleTimer.Do(func() { time.AfterFunc(settleTime, w.acknowledged) }) // write what is known then, if no ACK came
		return waiting
	}
	switch {
	case s.now.Sub(w.hub.started) < w.hub.opts.StartupGrace:
		// Just restarted: proxies are reconnecting and re-acknowledging
		// what they already serve. Until they answer, what is stored stands;
		// when the grace ends, a pass says what the proxies serve then,
		// even if nothing else changes.
		w.graceEnd.Do(func() {
			time.AfterFunc(w.hub.opts.StartupGrace-time.Since(w.hub.started)+10*time.Millisecond, w.trigger)
		})
		return served{keep: true}
	case st.Streams == 0:
		return served{reason: ReasonPending, message: fmt.Sprintf("no proxy of this Gateway is connected to the hub (node %s)", node)}
	}
	return waiting
}

// route says whether the Gateway's proxies serve a route (obj, an
// objectKey) attached through a parentRef (on: the table's listeners that
// parentRef attaches to): as answer, and, when the proxies serve the table,
// whether they left the route or its listener out, or another route takes
// what it asks for.
func (s *serving) route(kind string, gw types.NamespacedName, obj string, on func(listener string) bool) served {
	f := s.answer(gw, obj)
	if !f.ok {
		if why := s.w.superseded(kind, gw, s.hashes[gw], obj, on); why != "" && !f.keep {
			return served{reason: ReasonSuperseded, message: why}
		}
		return f
	}
	n := s.gateway(gw)
	node, st := n.name, n.status
	if l, why, found := s.w.routeNotServed(node, st, obj, on); found {
		return served{reason: ReasonProxyRejected, message: routeOnUnservedListener(l, why)}
	}
	if why, found := routeLeftOut(node, st, obj); found {
		return served{reason: ReasonProxyRejected, message: routeNotCompiled(why)}
	}
	return f
}
