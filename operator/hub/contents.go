package hub

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// keptVersions bounds how many past versions of a table the hub remembers
// the contents of: enough for proxies that lag a few pushes behind.
const keptVersions = 8

// tableContents remembers, for recent versions of one table, which objects
// at which generation each carries.
type tableContents struct {
	order []string                   // hashes, oldest first
	sets  map[string]map[string]bool // hash → objectKeys
	// on: hash → listener name → objectKeys of the routes it carries, to
	// tell which routes a listener that is not served takes with it.
	on map[string]map[string]map[string]bool
}

// record notes what the table with this hash carries: its routes as their
// sources name them, its Gateway and the ListenerSets attached to it.
func (w *worker) record(table, hash string, t *routetable.RouteTable, gw *gwv1.Gateway, sets []*gwv1.ListenerSet) {
	w.keysMu.Lock()
	defer w.keysMu.Unlock()
	if w.contents == nil {
		w.contents = map[string]*tableContents{}
	}
	tc := w.contents[table]
	if tc == nil {
		tc = &tableContents{sets: map[string]map[string]bool{}, on: map[string]map[string]map[string]bool{}}
		w.contents[table] = tc
	}
	// A change that leaves the table as it was (a Gateway's addresses, say)
	// publishes the same hash: what the proxies acknowledged then carries
	// the new generations too.
	set, known := tc.sets[hash]
	if !known {
		set = map[string]bool{}
	}
	if gw != nil {
		set[objectKey("Gateway", gw.Namespace, gw.Name, gw.Generation)] = true
	}
	for _, ls := range sets {
		set[objectKey("ListenerSet", ls.Namespace, ls.Name, ls.Generation)] = true
	}
	on := map[string]map[string]bool{}
	for _, l := range t.Listeners {
		routes := map[string]bool{}
		carried := func(s *routetable.RouteSource) {
			if s != nil {
				k := objectKey(s.Kind, s.Namespace, s.Name, s.Generation)
				set[k], routes[k] = true, true
			}
		}
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				carried(r.Source)
			}
		}
		// TLS, TCP and UDP listeners carry TLSRoutes, TCPRoutes and
		// UDPRoutes.
		for _, r := range l.StreamRoutes {
			carried(r.Source)
		}
		on[l.Name] = routes
	}
	if known {
		return
	}
	tc.sets[hash], tc.on[hash] = set, on
	tc.order = append(tc.order, hash)
	if len(tc.order) > keptVersions {
		delete(tc.sets, tc.order[0])
		delete(tc.on, tc.order[0])
		tc.order = tc.order[1:]
	}
}

// carries reports whether the table version with this hash carries obj.
func (w *worker) carries(table, hash, obj string) bool {
	w.keysMu.Lock()
	defer w.keysMu.Unlock()
	tc := w.contents[table]
	return tc != nil && tc.sets[hash][obj]
}

// carriesOn reports whether listener carries obj in the table version with
// this hash.
func (w *worker) carriesOn(table, hash, listener, obj string) bool {
	w.keysMu.Lock()
	defer w.keysMu.Unlock()
	tc := w.contents[table]
	return tc != nil && tc.on[hash][listener][obj]
}

// carriesOnAny reports whether a listener of the table version with this
// hash for which on is true carries obj.
func (w *worker) carriesOnAny(table, hash, obj string, on func(listener string) bool) bool {
	w.keysMu.Lock()
	defer w.keysMu.Unlock()
	tc := w.contents[table]
	if tc == nil {
		return false
	}
	for l, routes := range tc.on[hash] {
		if on(l) && routes[obj] {
			return true
		}
	}
	return false
}
