package hub

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// TLSRoute, TCPRoute and UDPRoute are newer in the Gateway API's standard
// channel than the other kinds the hub reads, and a member whose Gateway
// API CRDs another tool manages (the member chart's crds.gatewayAPI: auto
// or false) may not serve them at v1. Such a member simply has no routes
// of those kinds: the hub reads a kind only where the member serves it,
// and watches it from the first time it is found. A watch registered with
// the other kinds' controller would instead fail the member's whole
// engagement where the kind is missing. The hub asks again now and then,
// so that CRDs installed later are picked up without a restart.

// absentRecheck is how long a kind a member does not serve counts as
// absent before the hub asks the member again: each ask is a discovery
// request to its API server, and a pass runs then to read what appeared.
const absentRecheck = time.Minute

// optionalKinds is what one worker knows of the optional kinds of its
// member. Only the worker's own goroutine touches it.
type optionalKinds struct {
	// absent: kind → when the member was last found not to serve it.
	absent map[string]time.Time
	// watching: kind → the worker's handler on the member's informer.
	watching map[string]watch
}

type watch struct {
	informer     cache.Informer
	registration toolscache.ResourceEventHandlerRegistration
}

// listOptional lists kind into list when the member serves it; a member
// that does not leaves list empty, which is no error.
func (w *worker) listOptional(ctx context.Context, c client.Client, kind string, list client.ObjectList, obj client.Object) error {
	o := &w.optional
	if at, ok := o.absent[kind]; ok && time.Since(at) < absentRecheck {
		return nil
	}
	err := c.List(ctx, list, client.UnsafeDisableDeepCopy)
	if meta.IsNoMatchError(err) {
		if _, known := o.absent[kind]; !known {
			w.log().Info("the member does not serve "+kind+"s (gateway.networking.k8s.io/v1): it has none; install the Gateway API CRDs of the member chart to use them",
				"kind", kind)
		}
		if o.absent == nil {
			o.absent = map[string]time.Time{}
		}
		o.absent[kind] = time.Now()
		time.AfterFunc(absentRecheck, w.trigger)
		return nil
	}
	if err != nil {
		return err
	}
	if _, was := o.absent[kind]; was {
		w.log().Info("the member serves "+kind+"s now", "kind", kind)
		delete(o.absent, kind)
	}
	w.watchOptional(ctx, kind, obj)
	return nil
}

// watchOptional makes changes to objects of kind trigger a pass, as the
// controller's watches do for the other kinds: creations, deletions and
// changes of spec, labels or annotations, not the hub's own status writes.
// A cluster without a cache of its own (a test's) is not watched.
func (w *worker) watchOptional(ctx context.Context, kind string, obj client.Object) {
	o := &w.optional
	if _, ok := o.watching[kind]; ok {
		return
	}
	cached, ok := w.cl.(interface{ GetCache() cache.Cache })
	if !ok {
		return
	}
	inf, err := cached.GetCache().GetInformer(ctx, obj)
	if err != nil {
		w.log().Error("watching "+kind+"s failed; they are read on every pass that other changes start", "error", err)
		return
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { w.trigger() },
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(client.Object)
			n, ok2 := cur.(client.Object)
			if !ok1 || !ok2 || specChanged.Update(event.UpdateEvent{ObjectOld: o, ObjectNew: n}) {
				w.trigger()
			}
		},
		DeleteFunc: func(any) { w.trigger() },
	})
	if err != nil {
		w.log().Error("watching "+kind+"s failed; they are read on every pass that other changes start", "error", err)
		return
	}
	if o.watching == nil {
		o.watching = map[string]watch{}
	}
	o.watching[kind] = watch{inf, reg}
}

// stopWatching removes the worker's handlers from its member's informers.
func (w *worker) stopWatching() {
	for kind, wt := range w.optional.watching {
		if err := wt.informer.RemoveEventHandler(wt.registration); err != nil {
			w.log().Debug("removing a watch", "kind", kind, "error", err)
		}
	}
	w.optional.watching = nil
}

func (w *worker) log() *slog.Logger { return w.hub.opts.Log.With("cluster", w.name) }
