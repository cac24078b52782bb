package hub

import (
	"reflect"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ownWrites holds the objects whose status the hub wrote until its cache
// shows them: a pass that follows closely (a proxy's acknowledgement comes
// milliseconds after a push) would otherwise compare with the status from
// before the write, write it again with the old resourceVersion and be
// refused for a conflict, object by object.
type ownWrites struct {
	mu sync.Mutex
	m  map[ownKey]ownWrite
}

type ownWrite struct {
	before string        // the resourceVersion the write replaced
	obj    client.Object // as the API server returned it
	seen   bool          // asked about by the current pass
}

type ownKey struct {
	kind            reflect.Type
	namespace, name string
}

func keyOf(obj client.Object) ownKey {
	return ownKey{reflect.TypeOf(obj), obj.GetNamespace(), obj.GetName()}
}

// wrote records a status write: obj is the object as written and returned,
// before the resourceVersion it replaced.
func (o *ownWrites) wrote(obj client.Object, before string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[ownKey]ownWrite{}
	}
	o.m[keyOf(obj)] = ownWrite{before: before, obj: obj, seen: true}
}

// latest is the newest known version of a cached object: the one the hub
// wrote, while the cache still shows the version that write replaced.
func (o *ownWrites) latest(cached client.Object) client.Object {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.m) == 0 {
		return cached
	}
	k := keyOf(cached)
	w, ok := o.m[k]
	if !ok {
		return cached
	}
	if cached.GetResourceVersion() != w.before {
		delete(o.m, k) // the cache caught up, or someone else wrote since
		return cached
	}
	w.seen = true
	o.m[k] = w
	return w.obj
}

// endPass forgets writes of objects the pass did not ask about: they are
// gone.
func (o *ownWrites) endPass() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, w := range o.m {
		if !w.seen {
			delete(o.m, k)
			continue
		}
		w.seen = false
		o.m[k] = w
	}
}
