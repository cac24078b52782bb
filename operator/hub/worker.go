package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// worker translates one cluster whenever it is kicked, at most once per
// debounce interval, and retries after an error.
type worker struct {
	hub    *Hub
	name   string
	cl     Cluster
	kick   chan struct{}
	cancel context.CancelFunc
	// tables pushed for this cluster: name → hash
	tables map[string]string
	// keys: the key pairs each pushed table names, for proxy authorization.
	keysMu sync.Mutex
	keys   map[string]map[string]bool
	// pushed is closed once the first pass has published the cluster's
	// tables: until then, which key pairs a node may read is not known.
	pushed     chan struct{}
	pushedOnce sync.Once
	// keyPairs published from this cluster's listener Secrets: withdrawn
	// from the push server once no table names them.
	keyPairs map[string]bool
	// contents of recent table versions, to tell what proxies serve.
	contents map[string]*tableContents
	// webhookHash: the registration last applied, and when.
	webhookHash string
	webhookAt   time.Time
	// optional: which of TLSRoute, TCPRoute and UDPRoute the member serves.
	optional optionalKinds
	// graceEnd schedules one pass for when the hub's startup grace ends.
	graceEnd sync.Once
	// compiled: what the last translation compiled, for the next to reuse.
	compiled *translate.Compiled
	// acked is kicked when a proxy of the cluster acknowledges or rejects a
	// table: statuses are written again from the last pass's decisions
	// (last), which an acknowledgement does not change.
	acked chan struct{}
	last  *decided
	// own: status writes the cache does not show yet; upToDate: routes
	// whose status the last status pass found up to date, statusPasses
	// counting those passes.
	own          ownWrites
	upToDate     map[routeID]routeUpToDate
	statusPasses uint64
	// changed is when an input changed that no pass has read yet (zero:
	// none), for the propagation metric.
	changedMu sync.Mutex
	changed   time.Time

	// The hand-over between the workers of one cluster engaged again
	// (rejoin.go): prev is the worker this one replaces, whose state it
	// takes over; ended is closed when this worker's connection ends,
	// replaced when a successor is engaged, finished once this worker
	// touches its state no more.
	prev                      *worker
	ended, replaced, finished chan struct{}
}

func newWorker(h *Hub, name string, cl Cluster) *worker {
	return &worker{hub: h, name: name, cl: cl, kick: make(chan struct{}, 1), acked: make(chan struct{}, 1), tables: map[string]string{}, pushed: make(chan struct{}),
		ended: make(chan struct{}), replaced: make(chan struct{}), finished: make(chan struct{})}
}

// trigger asks for a pass: an input changed.
func (w *worker) trigger() {
	w.changedMu.Lock()
	if w.changed.IsZero() {
		w.changed = time.Now()
	}
	w.changedMu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// acknowledged asks for statuses to be written again: what a proxy serves
// changed, the cluster did not.
func (w *worker) acknowledged() {
	select {
	case w.acked <- struct{}{}:
	default:
	}
}

// takeChanged returns when the inputs a pass is about to read changed
// first, and forgets it.
func (w *worker) takeChanged() time.Time {
	w.changedMu.Lock()
	defer w.changedMu.Unlock()
	at := w.changed
	w.changed = time.Time{}
	return at
}

// changedBefore says whether an input no pass has read yet changed
// before t.
func (w *worker) changedBefore(t time.Time) bool {
	w.changedMu.Lock()
	defer w.changedMu.Unlock()
	return !w.changed.IsZero() && w.changed.Before(t)
}

// pending says whether an input changed that no pass has read yet.
func (w *worker) pending() bool {
	w.changedMu.Lock()
	defer w.changedMu.Unlock()
	return !w.changed.IsZero()
}

// decided is what a pass decided and published, which statuses are
// written from.
type decided struct {
	out       translate.Output
	hashes    map[types.NamespacedName]string
	addresses map[types.NamespacedName][]gwv1.GatewayStatusAddress
	refusals  map[types.NamespacedName]string
}

func (w *worker) stop() { w.cancel() }

func (w *worker) run(ctx context.Context) {
	log := w.hub.opts.Log.With("cluster", w.name)
	defer w.leave(log)
	defer w.stopWatching()
	if w.prev != nil {
		w.takeOver(w.prev, log)
	}
	p := passes{w: w, log: log, backoff: time.Second}
	for {
		full := true
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-w.acked:
			full = w.pending() || w.last == nil
		}
		if !full {
			// An acknowledgement: nothing to translate, only statuses to
			// write, at once.
			if err := w.writeAcknowledged(ctx); err != nil && ctx.Err() == nil {
				log.Debug("writing statuses after an acknowledgement failed; a pass follows", "error", err)
				w.trigger()
			}
			continue
		}
		if !p.debounce(ctx) {
			return
		}
		p.run(ctx)
	}
}

// passes runs a worker's full passes one after the other.
type passes struct {
	w       *worker
	log     *slog.Logger
	backoff time.Duration
	last    time.Time // when the last pass ended
	// followed: the last pass read a change that came in during the pass
	// before it.
	followed bool
}

// debounce waits, in a burst, for the rest of the debounce interval after
// the last pass: a burst costs a pass per interval, not one per object. A
// burst is a change that came in during a pass that itself followed a
// change made during its predecessor; a change made while no pass ran, or
// a single one during a pass (the next change of someone who waited for
// the last one to be served), is translated at once. It reports false when
// ctx ended.
func (p *passes) debounce(ctx context.Context) bool {
	during := p.w.changedBefore(p.last)
	burst := during && p.followed
	p.followed = during
	wait := p.w.hub.opts.Debounce - time.Since(p.last)
	if wait <= 0 || !burst {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}

// run runs one pass and schedules the next after an error.
func (p *passes) run(ctx context.Context) {
	w, start := p.w, time.Now()
	err := w.sync(ctx)
	p.last = time.Now()
	switch {
	case err == nil:
		p.backoff = time.Second
		syncDuration.WithLabelValues("ok").Observe(time.Since(start).Seconds())
		recordSync(w.name, true)
		p.log.Debug("cluster synced", "took", time.Since(start))
	case ctx.Err() != nil:
	case onlyConflicts(err):
		// Our cache had not seen an object's latest version yet: read
		// again shortly; this is churn, not trouble.
		syncDuration.WithLabelValues("error").Observe(time.Since(start).Seconds())
		p.log.Debug("status write conflicted; syncing again", "error", err)
		time.AfterFunc(100*time.Millisecond, w.trigger)
	default:
		syncDuration.WithLabelValues("error").Observe(time.Since(start).Seconds())
		recordSync(w.name, false)
		p.log.Error("cluster sync failed; retrying", "error", err, "in", p.backoff)
		time.AfterFunc(p.backoff, w.trigger)
		p.backoff = min(p.backoff*2, time.Minute)
	}
}

// unsettledRetry: how soon a cluster is translated again after a policy
// could not be evaluated (a timeout under load).
const unsettledRetry = time.Second

// sync is one pass: snapshot, translate, push, status.
func (w *worker) sync(ctx context.Context) error {
	clock := phaseClock{at: time.Now()}
	changed := w.takeChanged()
	in, err := w.snapshot(ctx)
	if err != nil {
		return fmt.Errorf("reading the cluster: %w", err)
	}
	clock.lap("read")
	in.ControllerName = gwv1.GatewayController(w.hub.opts.Controller)
	in.Authorizer, in.Certificates = w.hub.opts.Authorizer, w.hub.opts.Certificates
	var decisions *pass
	if d := w.hub.opts.Decisions; d != nil {
		decisions = d.forPass(ctx, w.name, &in)
	}
	var issuing *certificates.Pass
	if i := w.hub.opts.Issuer; i != nil {
		var auth certificates.Authorizer
		if decisions != nil {
			auth = decisions
		}
		issuing = i.ForPass(ctx, w.name, auth)
		in.Certificates = issuing
	}
	in.Compiled = w.compiled
	out := translate.Translate(in)
	reused, compiled := out.Compiled.Counts()
	routesCompiled.WithLabelValues("reused").Add(float64(reused))
	routesCompiled.WithLabelValues("compiled").Add(float64(compiled))
	w.compiled = out.Compiled
	if decisions != nil {
		decisions.report(in, out)
		if decisions.Unsettled() {
			time.AfterFunc(unsettledRetry, w.trigger)
		}
	}
	clock.lap("translate")
	hashes := w.push(in, out, changed)
	if w.pushed != nil {
		w.pushedOnce.Do(func() { close(w.pushed) })
	}
	clock.lap("push")
	addrs, refusals, perr := w.provision(ctx, in, out)
	var cerr error
	if issuing != nil {
		cerr = issuing.Apply(ctx)
	}
	clock.lap("provision")
	w.last = &decided{out: out, hashes: hashes, addresses: addrs, refusals: refusals}
	serr := w.writeStatus(ctx, in, w.last)
	clock.lap("status")
	return errors.Join(perr, cerr, serr, w.ensureWebhook(ctx))
}

// writeAcknowledged writes the statuses of the last pass's decisions as
// the proxies' acknowledgements now make them: the cluster is read again for
// the statuses stored since, nothing is translated or pushed.
func (w *worker) writeAcknowledged(ctx context.Context) error {
	clock := phaseClock{at: time.Now()}
	in, err := w.snapshot(ctx)
	if err != nil {
		return err
	}
	err = w.writeStatus(ctx, in, w.last)
	clock.lap("acknowledged")
	return err
}

// phaseClock times the phases of a pass into passPhase.
type phaseClock struct{ at time.Time }

func (c *phaseClock) lap(phase string) {
	now := time.Now()
	passPhase.WithLabelValues(phase).Observe(now.Sub(c.at).Seconds())
	c.at = now
}

// snapshot reads every input of translate from the cluster's cache. The
// objects are the cache's own, not copies: copying thousands of routes took
// most of a pass. Nothing in a pass may change them; a status write copies
// the one object it writes.
func (w *worker) snapshot(ctx context.Context) (translate.Input, error) {
	c := w.cl.GetClient()
	var in translate.Input
	var (
		classes   gwv1.GatewayClassList
		gateways  gwv1.GatewayList
		sets      gwv1.ListenerSetList
		http      gwv1.HTTPRouteList
		grpc      gwv1.GRPCRouteList
		tls       gwv1.TLSRouteList
		tcp       gwv1.TCPRouteList
		udp       gwv1.UDPRouteList
		grants    gwv1beta1.ReferenceGrantList
		policies  gwv1.BackendTLSPolicyList
		nss       corev1.NamespaceList
		services  corev1.ServiceList
		slices    discoveryv1.EndpointSliceList
		secrets   corev1.SecretList
		configMap corev1.ConfigMapList
	)
	for _, l := range []client.ObjectList{&classes, &gateways, &sets, &http, &grpc, &grants, &policies, &nss, &services, &slices, &secrets, &configMap} {
		if err := c.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return in, err
		}
	}
	for _, o := range []struct {
		kind string
		list client.ObjectList
		obj  client.Object
	}{{"TLSRoute", &tls, &gwv1.TLSRoute{}}, {"TCPRoute", &tcp, &gwv1.TCPRoute{}}, {"UDPRoute", &udp, &gwv1.UDPRoute{}}} {
		if err := w.listOptional(ctx, c, o.kind, o.list, o.obj); err != nil {
			return in, err
		}
	}
	in.GatewayClasses = pointers(classes.Items)
	in.Gateways = pointers(gateways.Items)
	in.ListenerSets = pointers(sets.Items)
	in.HTTPRoutes = pointers(http.Items)
	in.GRPCRoutes = pointers(grpc.Items)
	in.TLSRoutes = pointers(tls.Items)
	in.TCPRoutes = pointers(tcp.Items)
	in.UDPRoutes = pointers(udp.Items)
	in.ReferenceGrantsV1B = pointers(grants.Items)
	in.BackendTLSPolicies = pointers(policies.Items)
	in.Namespaces = pointers(nss.Items)
	in.Services = pointers(services.Items)
	in.EndpointSlices = pointers(slices.Items)
	in.Secrets = pointers(secrets.Items)
	in.ConfigMaps = pointers(configMap.Items)
	return in, nil
}

// pointers points at each item of a list, in order; nil for none.
func pointers[T any](items []T) []*T {
	var out []*T
	for i := range items {
		out = append(out, &items[i])
	}
	return out
}

// onlyConflicts reports whether every error joined in err is an update
// conflict.
func onlyConflicts(err error) bool {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			if !onlyConflicts(errors.Join(j.Unwrap()...)) {
				return false
			}
			continue
		}
		if !apierrors.IsConflict(e) {
			return false
		}
	}
	return len(errs) > 0
}
