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

// served says whether a Gateway's proxies serve an object as it is now,
// and if not, why: the answer Programmed is written from.
type served struct {
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
// proxies' answer; a False one (invalid configuration) stays.
func programmed(conds []metav1.Condition, f served, stored []metav1.Condition) []metav1.Condition {
	for i := range conds {
		c := &conds[i]
		if c.Type != conditionProgramed || c.Status != metav1.ConditionTrue {
			continue
		}
		if f.keep || f.settling {
			// What is stored stands, just after a restart or while
			// connected proxies acknowledge a table published moments ago
			// (a status pass follows their answer, or settleTime), but
			// only for the generation it was written for: a change made
			// while the hub was away (or since it started, or since that
			// table) was acknowledged by no proxy it knows of.
			if s := meta.FindStatusCondition(stored, conditionProgramed); s != nil && s.ObservedGeneration == c.ObservedGeneration {
				*c = *s
				continue
			}
			if f.keep {
				c.Status, c.Reason = metav1.ConditionFalse, ReasonPending
				c.Message = "the hub restarted moments ago: waiting for the Gateway's proxies to reconnect"
				continue
			}
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

// writeStatus merges the statuses of a pass's decisions into the stored
// objects and writes those that changed, kind by kind, with Programmed from
// what the proxies serve. Errors are collected: one object's conflict does
// not stop the others.
func (w *worker) writeStatus(ctx context.Context, in translate.Input, d *decided) error {
	sw := w.statusWriter(ctx)
	sv := w.serving(d.hashes)
	sw.classes(in, d.out)
	sw.gateways(in, d, sv)
	sw.listenerSets(in, d.out, sv)
	sw.routes(in, d.out, sv)
	sw.policies(in, d.out)
	return sw.wait()
}

// statusWriter writes the statuses of one pass. Writes go out
// concurrently: each is one request, and a cluster with thousands of
// routes must not wait for them one by one.
type statusWriter struct {
	w          *worker
	ctx        context.Context
	c          client.Client
	now        metav1.Time
	controller gwv1.GatewayController
	recorder   record.EventRecorder

	eg    errgroup.Group
	errMu sync.Mutex
	errs  []error
}

func (w *worker) statusWriter(ctx context.Context) *statusWriter {
	sw := &statusWriter{w: w, ctx: ctx, c: w.cl.GetClient(), now: status.Now(),
		controller: gwv1.GatewayController(w.hub.opts.Controller), recorder: w.cl.GetEventRecorderFor("gatehouse")}
	sw.eg.SetLimit(32)
	return sw
}

// update writes obj's status.
func (sw *statusWriter) update(obj client.Object) {
	sw.eg.Go(func() error {
		before := obj.GetResourceVersion()
		err := sw.c.Status().Update(sw.ctx, obj)
		kind := strings.TrimPrefix(fmt.Sprintf("%T", obj), "*v1.")
		switch {
		case err == nil:
			statusWrites.WithLabelValues(kind, "ok").Inc()
			sw.w.own.wrote(obj, before)
		case apierrors.IsNotFound(err):
		default:
			result := "error"
			if apierrors.IsConflict(err) {
				result = "conflict"
			}
			statusWrites.WithLabelValues(kind, result).Inc()
			sw.errMu.Lock()
			sw.errs = append(sw.errs, fmt.Errorf("%T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err))
			sw.errMu.Unlock()
		}
		return nil
	})
}

func (sw *statusWriter) wait() error {
	_ = sw.eg.Wait()
	sw.w.own.endPass()
	return errors.Join(sw.errs...)
}

// latest is the stored object to merge with: the cache's, or the hub's own
// write the cache does not show yet (ownWrites).
func latest[T client.Object](sw *statusWriter, cached T) T {
	return sw.w.own.latest(cached).(T)
}

// classes writes the GatewayClasses' conditions and supported features.
func (sw *statusWriter) classes(in translate.Input, out translate.Output) {
	for _, gc := range in.GatewayClasses {
		ours, ok := out.GatewayClasses[gc.Name]
		if !ok {
			continue
		}
		gc = latest(sw, gc)
		next := gc.Status.DeepCopy()
		next.Conditions = status.MergeConditions(gc.Status.Conditions, ours.Conditions, sw.now)
		next.SupportedFeatures = ours.SupportedFeatures
		if !equality.Semantic.DeepEqual(&gc.Status, next) {
			obj := gc.DeepCopy()
			obj.Status = *next
			sw.update(obj)
		}
	}
}

// policies writes our ancestor entries of the BackendTLSPolicies.
func (sw *statusWriter) policies(in translate.Input, out translate.Output) {
	for _, p := range in.BackendTLSPolicies {
		ours, ok := out.BackendTLSPolicies[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}]
		if !ok {
			continue
		}
		p = latest(sw, p)
		next := mergeAncestors(p.Status.Ancestors, ours, sw.controller, sw.now)
		if !equality.Semantic.DeepEqual(p.Status.Ancestors, next) {
			obj := p.DeepCopy()
			obj.Status.Ancestors = next
			sw.update(obj)
		}
	}
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
