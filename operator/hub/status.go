package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/status"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// Reasons of our own on Programmed.
const (
	// ReasonPending: no proxy has acknowledged the current table yet.
	ReasonPending = "Pending"
	// ReasonProxyRejected: a proxy NACKed the current table.
	ReasonProxyRejected = "Invalid"
	// ReasonSuperseded: the route is accepted, and the Gateway's current
	// table does not carry it, because another route takes what it asks
	// for: waiting for the proxies would not change that.
	ReasonSuperseded   = "Superseded"
	conditionProgramed = "Programmed"
)

// fleet says whether a Gateway's proxies serve its current table.
type fleet struct {
	ok      bool
	reason  string
	message string
	// keep: the hub just started and knows nothing yet; keep what is stored.
	keep bool
	// settling: connected proxies have not acknowledged a table published
	// moments ago; they usually do within milliseconds.
	settling bool
}

// settleTime is how long route statuses wait for proxies to acknowledge a
// new table before Programmed=False/Pending is written: writing every route
// twice (Pending, then True a few milliseconds later) would double the
// status writes of a busy cluster.
const settleTime = 3 * time.Second

// fleetState says whether the Gateway's proxies serve obj (an objectKey) as
// it is now: whether a table they acknowledged carries obj's current
// generation. A later table that they have not acknowledged yet does not
// take back what they serve.
func (w *worker) fleetState(gw types.NamespacedName, hash, obj string) fleet {
	node := TableName(w.name, gw.Namespace, gw.Name)
	st := w.hub.push.Status(node)
	switch {
	case hash == "":
		return fleet{reason: ReasonPending, message: "no route table was published for this Gateway"}
	case st.Streams > 0 && w.allServe(node, st.Replicas, obj):
		return fleet{ok: true, reason: string(gwv1.GatewayReasonProgrammed), message: fmt.Sprintf("served by the Gateway's proxies (%d connected)", st.Streams)}
	case st.Nack != nil && st.Nack.Resources[node] == hash:
		return fleet{reason: ReasonProxyRejected, message: "a proxy rejected the route table: " + st.Nack.Message}
	case time.Since(w.hub.started) < w.hub.opts.StartupGrace:
		// Just restarted: proxies are reconnecting and re-acknowledging
		// what they already serve. Until they answer, what is stored stands;
		// when the grace ends, a pass says what the proxies serve then,
		// even if nothing else changes.
		w.graceEnd.Do(func() {
			time.AfterFunc(w.hub.opts.StartupGrace-time.Since(w.hub.started)+10*time.Millisecond, w.trigger)
		})
		return fleet{keep: true}
	case st.Streams == 0:
		return fleet{reason: ReasonPending, message: fmt.Sprintf("no proxy of this Gateway is connected to the hub (node %s)", node)}
	}
	f := fleet{reason: ReasonPending, message: "waiting for the Gateway's proxies to acknowledge a route table that carries this generation"}
	if at, ok := w.hub.publishedAt(node, hash); ok && time.Since(at) < settleTime {
		f.settling = true
		time.AfterFunc(settleTime, w.acknowledged) // write what is known then, if no ACK came
	}
	return f
}

// allServe reports whether every connected replica acknowledged a table
// that carries obj.
func (w *worker) allServe(node string, replicas []xds.Replica, obj string) bool {
	if len(replicas) == 0 {
		return false
	}
	for _, r := range replicas {
		if !w.carries(node, r.Acked[node], obj) {
			return false
		}
	}
	return true
}

// objectKey names an object at a generation, as table contents list them
// and proxies report routes they do not serve.
func objectKey(kind, namespace, name string, generation int64) string {
	return routetable.ObjectKey(kind, namespace, name, generation)
}

// programmed replaces a True Programmed condition of translate with the
// fleet's answer; a False one (invalid configuration) stays.
func programmed(conds []metav1.Condition, f fleet, stored []metav1.Condition) []metav1.Condition {
	for i := range conds {
		c := &conds[i]
		if c.Type != conditionProgramed || c.Status != metav1.ConditionTrue {
			continue
		}
		if f.keep {
			// What is stored stands only for the generation it was written
			// for: a change made while the hub was away (or since it
			// started) was acknowledged by no proxy it knows of.
			if s := meta.FindStatusCondition(stored, conditionProgramed); s != nil && s.ObservedGeneration == c.ObservedGeneration {
				*c = *s
			} else {
				c.Status, c.Reason = metav1.ConditionFalse, ReasonPending
				c.Message = "the hub restarted moments ago: waiting for the Gateway's proxies to reconnect"
			}
			continue
		}
		if !f.ok {
			c.Status = metav1.ConditionFalse
			if f.reason == "" {
				f.reason, f.message = ReasonPending, "the Gateway's proxies have not acknowledged a route table carrying this yet"
			}
		}
		c.Reason, c.Message = f.reason, f.message
	}
	return conds
}

// writeStatus merges translate's statuses into the stored objects and
// writes those that changed. Errors are collected: one object's conflict
// does not stop the others.
func (w *worker) writeStatus(ctx context.Context, in translate.Input, d *decided) error {
	out, hashes, provisioned, refusals := d.out, d.hashes, d.addresses, d.refusals
	c := w.cl.GetClient()
	now := status.Now()
	controller := gwv1.GatewayController(w.hub.opts.Controller)
	// Writes go out concurrently: each is one request, and a cluster with
	// thousands of routes must not wait for them one by one.
	var (
		errMu sync.Mutex
		errs  []error
		eg    errgroup.Group
	)
	eg.SetLimit(32)
	update := func(obj client.Object) {
		eg.Go(func() error {
			if err := c.Status().Update(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				errMu.Lock()
				errs = append(errs, fmt.Errorf("%T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err))
				errMu.Unlock()
			}
			return nil
		})
	}
	recorder := w.cl.GetEventRecorderFor("gatehouse")

	for _, gc := range in.GatewayClasses {
		ours, ok := out.GatewayClasses[gc.Name]
		if !ok {
			continue
		}
		next := gc.Status.DeepCopy()
		next.Conditions = status.MergeConditions(gc.Status.Conditions, ours.Conditions, now)
		next.SupportedFeatures = ours.SupportedFeatures
		if !equality.Semantic.DeepEqual(&gc.Status, next) {
			obj := gc.DeepCopy()
			obj.Status = *next
			update(obj)
		}
	}

	fleets := map[types.NamespacedName]fleet{}
	for _, gw := range in.Gateways {
		k := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
		ours, ok := out.Gateways[k]
		if !ok {
			continue
		}
		f := w.fleetState(k, hashes[k], objectKey("Gateway", gw.Namespace, gw.Name, gw.Generation))
		fleets[k] = f
		ours = ours.DeepCopy()
		params := out.Parameters[string(gw.Spec.GatewayClassName)]
		node := w.hub.push.Status(TableName(w.name, gw.Namespace, gw.Name))
		advertised, failed := node.Addresses, unserved(node.Node, node)
		unassigned := assignAddresses(ours, gw, params, provisioned[k], advertised)
		ours.Conditions = partlyServed(programmed(ours.Conditions, f, gw.Status.Conditions), failed)
		if why, ok := refusals[k]; ok {
			ours.Conditions = notServed(ours.Conditions, why)
		}
		if params.Mode == translate.ModeExternal {
			var unusable []string
			ours.Addresses, unusable = usableAddresses(ours.Addresses, params.Addresses, advertised)
			switch {
			case len(unusable) > 0:
				ours.Conditions = notProgrammed(ours.Conditions, string(gwv1.GatewayReasonAddressNotUsable), fmt.Sprintf(
					"spec.addresses %s: neither the GatewayClass parameters list them nor does a proxy of this Gateway answer on them (its proxies advertise %s)",
					strings.Join(unusable, ", "), orNone(advertised)))
			case len(ours.Addresses) == 0:
				ours.Conditions = notProgrammed(ours.Conditions, string(gwv1.GatewayReasonAddressNotAssigned),
					"no address: list addresses in the GatewayClass parameters, or start the Gateway's proxies with --advertise-address")
			}
		}
		if service, ok := provisioned[k]; ok {
			var unusable []string
			ours.Addresses, unusable = managedAddresses(ours.Addresses, service)
			if len(unusable) > 0 {
				ours.Conditions = notProgrammed(ours.Conditions, string(gwv1.GatewayReasonAddressNotUsable), fmt.Sprintf(
					"spec.addresses %s: the proxies' Service %s was not given them (its addresses: %s); a LoadBalancer Service asks its load balancer for the first IP address of spec.addresses, a ClusterIP Service has its cluster IP only",
					strings.Join(unusable, ", "), proxyServiceName(gw.Name), orNone(addressValues(service))))
			}
		}
		if len(unassigned) > 0 {
			ours.Conditions = notProgrammed(ours.Conditions, string(gwv1.GatewayReasonAddressNotAssigned), fmt.Sprintf(
				"spec.addresses asks for an address of type %s to be assigned, and there is none of that type: %s",
				strings.Join(unassigned, ", "), addressSources(params, advertised)))
		}
		ours.Conditions = withProxyVersions(ours.Conditions, node, f)
		for i := range ours.Listeners {
			var stored []metav1.Condition
			for _, s := range gw.Status.Listeners {
				if s.Name == ours.Listeners[i].Name {
					stored = s.Conditions
				}
			}
			ours.Listeners[i].Conditions = programmed(ours.Listeners[i].Conditions, f, stored)
			if why, ok := failed[string(ours.Listeners[i].Name)]; ok {
				ours.Listeners[i].Conditions = listenerNotServed(ours.Listeners[i].Conditions, why)
			}
		}
		next := status.MergeGatewayStatus(&gw.Status, ours, now)
		if !equality.Semantic.DeepEqual(&gw.Status, next) {
			announce(recorder, gw, gw.Status.Conditions, next.Conditions)
			obj := gw.DeepCopy()
			obj.Status = *next
			update(obj)
		}
	}

	for _, ls := range in.ListenerSets {
		k := types.NamespacedName{Namespace: ls.Namespace, Name: ls.Name}
		ours, ok := out.ListenerSets[k]
		if !ok {
			continue
		}
		ours = ours.DeepCopy()
		gw := parentOf(ls)
		lf := w.fleetState(gw, hashes[gw], objectKey("ListenerSet", ls.Namespace, ls.Name, ls.Generation))
		node := TableName(w.name, gw.Namespace, gw.Name)
		failed := ofListenerSet(unserved(node, w.hub.push.Status(node)), ls.Namespace, ls.Name)
		ours.Conditions = partlyServed(programmed(ours.Conditions, lf, ls.Status.Conditions), failed)
		next := ls.Status.DeepCopy()
		next.Conditions = status.MergeConditions(ls.Status.Conditions, ours.Conditions, now)
		next.Listeners = nil
		for _, l := range ours.Listeners {
			var prev []metav1.Condition
			for _, s := range ls.Status.Listeners {
				if s.Name == l.Name {
					prev = s.Conditions
				}
			}
			l.Conditions = programmed(l.Conditions, lf, prev)
			if why, ok := failed[ls.Namespace+"/"+ls.Name+"/"+string(l.Name)]; ok {
				l.Conditions = listenerNotServed(l.Conditions, why)
			}
			l.Conditions = status.MergeConditions(prev, l.Conditions, now)
			next.Listeners = append(next.Listeners, l)
		}
		if !equality.Semantic.DeepEqual(&ls.Status, next) {
			obj := ls.DeepCopy()
			obj.Status = *next
			update(obj)
		}
	}

	listenerSets := map[types.NamespacedName]types.NamespacedName{}
	for _, ls := range in.ListenerSets {
		listenerSets[types.NamespacedName{Namespace: ls.Namespace, Name: ls.Name}] = parentOf(ls)
	}
	// A route's parent is Programmed once its Gateway's proxies serve the
	// table that carries it.
	routeProgrammed := func(kind string, r metav1.Object, parents []gwv1.RouteParentStatus, stored []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
		routeNS, key := r.GetNamespace(), objectKey(kind, r.GetNamespace(), r.GetName(), r.GetGeneration())
		out := make([]gwv1.RouteParentStatus, len(parents))
		for i, p := range parents {
			p.Conditions = append([]metav1.Condition(nil), p.Conditions...)
			out[i] = p
			accepted := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
			if accepted == nil || accepted.Status != metav1.ConditionTrue {
				continue
			}
			gw := gatewayOf(routeNS, p.ParentRef, listenerSets)
			cond := metav1.Condition{Type: conditionProgramed, Status: metav1.ConditionTrue, Reason: string(gwv1.RouteReasonAccepted), ObservedGeneration: accepted.ObservedGeneration}
			var prev []metav1.Condition
			for _, s := range stored {
				if s.ControllerName == controller && s.ParentRef.Name == p.ParentRef.Name {
					prev = s.Conditions
				}
			}
			f := w.fleetState(gw, hashes[gw], key)
			if why := w.superseded(kind, gw, hashes[gw], key, onParent(routeNS, p.ParentRef)); why != "" && !f.ok && !f.keep {
				f = fleet{reason: ReasonSuperseded, message: why}
			}
			if f.ok {
				node := TableName(w.name, gw.Namespace, gw.Name)
				st := w.hub.push.Status(node)
				if l, why, found := w.routeNotServed(node, st, key, onParent(routeNS, p.ParentRef)); found {
					f = fleet{reason: ReasonProxyRejected, message: routeOnUnservedListener(l, why)}
				} else if why, found := routeLeftOut(node, st, key); found {
					f = fleet{reason: ReasonProxyRejected, message: routeNotCompiled(why)}
				}
			}
			out[i].Conditions = programmed(append(out[i].Conditions, cond), f, prev)
		}
		return out
	}

	// A route waiting for its first acknowledgement is written once it
	// comes, not before and after (see settleTime).
	settling := func(kind string, r metav1.Object, parents []gwv1.RouteParentStatus) bool {
		key := objectKey(kind, r.GetNamespace(), r.GetName(), r.GetGeneration())
		for _, p := range parents {
			gw := gatewayOf(r.GetNamespace(), p.ParentRef, listenerSets)
			if meta.IsStatusConditionTrue(p.Conditions, string(gwv1.RouteConditionAccepted)) && w.fleetState(gw, hashes[gw], key).settling {
				return true
			}
		}
		return false
	}
	// Every kind of route: its parents, Programmed once served.
	for _, set := range routeSets(in, out) {
		for _, r := range set.routes {
			stored, parents := set.parents(r), set.ours[client.ObjectKeyFromObject(r)]
			if settling(set.kind, r, parents) {
				continue
			}
			next := status.MergeRouteParents(stored, routeProgrammed(set.kind, r, parents, stored), controller, now)
			if !equality.Semantic.DeepEqual(stored, next) && !(len(stored) == 0 && len(next) == 0) {
				announceParents(recorder, r, stored, next, controller)
				update(set.withParents(r, next))
			}
		}
	}

	for _, p := range in.BackendTLSPolicies {
		ours, ok := out.BackendTLSPolicies[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}]
		if !ok {
			continue
		}
		next := mergeAncestors(p.Status.Ancestors, ours, controller, now)
		if !equality.Semantic.DeepEqual(p.Status.Ancestors, next) {
			obj := p.DeepCopy()
			obj.Status.Ancestors = next
			update(obj)
		}
	}
	_ = eg.Wait()
	return errors.Join(errs...)
}

// gatewayOf is the Gateway a route's parentRef ends at.
func gatewayOf(routeNS string, p gwv1.ParentReference, listenerSets map[types.NamespacedName]types.NamespacedName) types.NamespacedName {
	ns := routeNS
	if p.Namespace != nil && *p.Namespace != "" {
		ns = string(*p.Namespace)
	}
	k := types.NamespacedName{Namespace: ns, Name: string(p.Name)}
	if p.Kind != nil && *p.Kind == "ListenerSet" {
		return listenerSets[k]
	}
	return k
}

func parentOf(ls *gwv1.ListenerSet) types.NamespacedName {
	ns := ls.Namespace
	if p := ls.Spec.ParentRef.Namespace; p != nil && *p != "" {
		ns = string(*p)
	}
	return types.NamespacedName{Namespace: ns, Name: string(ls.Spec.ParentRef.Name)}
}

// mergeAncestors replaces our ancestor entries and keeps other controllers'.
func mergeAncestors(stored, ours []gwv1.PolicyAncestorStatus, controller gwv1.GatewayController, now metav1.Time) []gwv1.PolicyAncestorStatus {
	var out []gwv1.PolicyAncestorStatus
	prev := map[string][]metav1.Condition{}
	for _, a := range stored {
		if a.ControllerName != controller {
			out = append(out, a)
			continue
		}
		prev[ancestorKey(a.AncestorRef)] = a.Conditions
	}
	for _, a := range ours {
		a.Conditions = status.MergeConditions(prev[ancestorKey(a.AncestorRef)], a.Conditions, now)
		out = append(out, a)
	}
	return out
}

func ancestorKey(r gwv1.ParentReference) string {
	ns := ""
	if r.Namespace != nil {
		ns = string(*r.Namespace)
	}
	return ns + "/" + string(r.Name)
}

// announce records an event when Accepted or Programmed changes status,
// with the condition's reason and message: what a person runs
// 'kubectl describe' for.
func announce(r record.EventRecorder, obj runtime.Object, before, after []metav1.Condition) {
	for _, t := range []string{"Accepted", conditionProgramed} {
		a := meta.FindStatusCondition(after, t)
		if a == nil {
			continue
		}
		if b := meta.FindStatusCondition(before, t); b != nil && b.Status == a.Status {
			continue
		}
		kind := corev1.EventTypeNormal
		if a.Status != metav1.ConditionTrue {
			kind = corev1.EventTypeWarning
		}
		r.Eventf(obj, kind, a.Reason, "%s=%s: %s", t, a.Status, a.Message)
	}
}

func announceParents(r record.EventRecorder, obj runtime.Object, before, after []gwv1.RouteParentStatus, controller gwv1.GatewayController) {
	for _, p := range after {
		if p.ControllerName != controller {
			continue
		}
		var prev []metav1.Condition
		for _, b := range before {
			if b.ControllerName == controller && b.ParentRef.Name == p.ParentRef.Name {
				prev = b.Conditions
			}
		}
		announce(r, obj, prev, p.Conditions)
	}
}

// assignAddresses sets a Gateway's addresses from spec.addresses and those
// assigned to it: in external mode the class's, else (or when it lists
// none) its proxies' Service's in managed mode, else where its connected
// proxies answer. It returns the types spec.addresses asks to be assigned
// that none of those has.
func assignAddresses(ours *gwv1.GatewayStatus, gw *gwv1.Gateway, params translate.ClassParameters, service []gwv1.GatewayStatusAddress, advertised []string) []string {
	var assigned []gwv1.GatewayStatusAddress
	if params.Mode == translate.ModeExternal {
		assigned = params.Addresses
	}
	if len(assigned) == 0 {
		assigned = service
	}
	if len(assigned) == 0 {
		assigned = statusAddresses(advertised)
	}
	addrs, unassigned, problem := translate.GatewayAddresses(gw.Spec.Addresses, assigned)
	if problem != "" {
		return nil // the Gateway is not accepted, and says why
	}
	ours.Addresses = addrs
	var types []string
	for _, t := range unassigned {
		types = append(types, string(t))
	}
	return types
}

// addressSources says where a Gateway's assigned addresses come from, for
// a message that none fits.
func addressSources(params translate.ClassParameters, advertised []string) string {
	if params.Mode == translate.ModeExternal {
		return fmt.Sprintf("they come from the GatewayClass parameters' addresses, else from what the Gateway's proxies advertise (%s)", orNone(advertised))
	}
	return fmt.Sprintf("they come from the proxies' Service (its load balancer, or a ClusterIP Service's cluster IP), else from what the Gateway's proxies advertise (%s)", orNone(advertised))
}

// statusAddresses types the addresses proxies advertise: IPs or hostnames.
func statusAddresses(advertised []string) []gwv1.GatewayStatusAddress {
	var out []gwv1.GatewayStatusAddress
	for _, a := range advertised {
		out = append(out, translate.StatusAddress(a))
	}
	return out
}

// usableAddresses splits an external Gateway's addresses into those that
// clients can use — listed in the class parameters or advertised by a
// connected proxy — and the values of the others. While nothing is known
// (no proxy connected, no addresses in the class), all are kept: the
// Gateway is not programmed then anyway.
func usableAddresses(addrs, class []gwv1.GatewayStatusAddress, advertised []string) ([]gwv1.GatewayStatusAddress, []string) {
	known := map[string]bool{}
	for _, a := range class {
		known[a.Value] = true
	}
	for _, a := range advertised {
		known[a] = true
	}
	if len(known) == 0 {
		return addrs, nil
	}
	return splitAddresses(addrs, known)
}

// splitAddresses splits addrs into those whose value is known and the
// values of the others.
func splitAddresses(addrs []gwv1.GatewayStatusAddress, known map[string]bool) ([]gwv1.GatewayStatusAddress, []string) {
	var usable []gwv1.GatewayStatusAddress
	var unusable []string
	for _, a := range addrs {
		if known[a.Value] {
			usable = append(usable, a)
		} else {
			unusable = append(unusable, a.Value)
		}
	}
	return usable, unusable
}

// managedAddresses splits the addresses of a Gateway whose proxies the hub
// runs into those its proxies' Service was given (by its load balancer, or
// its cluster IP), which clients reach, and the values of the others.
// Unlike an external Gateway's, nothing else may vouch for an address: a
// Service still waiting for its load balancer has none that is usable.
func managedAddresses(addrs, service []gwv1.GatewayStatusAddress) ([]gwv1.GatewayStatusAddress, []string) {
	given := map[string]bool{}
	for _, a := range service {
		given[a.Value] = true
	}
	return splitAddresses(addrs, given)
}

func addressValues(addrs []gwv1.GatewayStatusAddress) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.Value)
	}
	return out
}

// notProgrammed turns a True Programmed into False with the reason: an
// external Gateway clients cannot reach is not programmed, however well it
// is configured.
func notProgrammed(conds []metav1.Condition, reason, message string) []metav1.Condition {
	for i := range conds {
		if c := &conds[i]; c.Type == conditionProgramed && c.Status == metav1.ConditionTrue {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, reason, message
		}
	}
	return conds
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}
