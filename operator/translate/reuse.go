package translate

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// Compiled keeps the HTTPRoutes and GRPCRoutes one translation compiled, so
// that the next translation of the same cluster takes those that did not
// change instead of compiling them again: compiling a route's rules is most
// of the work of a translation, and a change to one route leaves the others
// as they were.
//
// A route is taken when it is the same object (UID) at the same generation,
// and nothing it was compiled against changed (deps.go): the Services its
// backendRefs name, their EndpointSlices, the ReferenceGrants of their
// namespaces, and the BackendTLSPolicies there with what those read, all
// compared by resourceVersion. Attachment, authorization, precedence and
// the tables are computed anew every time, so the output is the same with
// or without a Compiled (TestReuseMatchesFullTranslation).
type Compiled struct {
	routes map[compiledKey]*compiledRoute
	// reused and compiled count this translation's routes.
	reused, compiled int
}

// Counts says how many routes a translation took from the previous one and
// how many it compiled.
func (c *Compiled) Counts() (reused, compiled int) {
	if c == nil {
		return 0, 0
	}
	return c.reused, c.compiled
}

type compiledKey struct {
	kind string
	key  types.NamespacedName
}

// compiledRoute is a route as compiled, before anything attached it.
type compiledRoute struct {
	uid        types.UID
	generation int64
	stub       bool
	r          *route
	backends   []*routetable.Backend // of r.backends, in order
	deps       []dependency
}

// reusable says whether a compiled route stands for obj as it is now.
func (c *compiledRoute) reusable(obj metav1.Object) bool {
	return c != nil && obj.GetUID() != "" && c.uid == obj.GetUID() && c.generation == obj.GetGeneration() &&
		c.stub == (tooLarge(obj) != "")
}

// instance is a fresh route of the compiled one, for obj: what attachment
// changes (what it counts and was told) is its own; the compiled rules and
// their entries are shared, and nothing changes them. An entry's route is
// the kept one, which orders entries (compareEntries) by what every
// instance has too: its name, age and kind.
func (c *compiledRoute) instance(obj RouteObject) *route {
	r := *c.r
	r.obj = obj
	r.refMessages = slices.Clip(r.refMessages)
	return &r
}

// compiledRoute compiles a route, or takes it from the previous
// translation; either way it is kept for the next.
func (t *translator) compiledRoute(kind string, obj interface {
	RouteObject
	metav1.Object
}, compile func() *route) *route {
	k := compiledKey{kind, key(obj.GetNamespace(), obj.GetName())}
	if prev := t.in.Compiled; prev != nil {
		if c := prev.routes[k]; c.reusable(obj) && t.unchanged(c.deps) {
			for i, name := range c.r.backends {
				if _, ok := t.backends[name]; !ok {
					t.backends[name] = c.backends[i]
				}
			}
			t.reuse.routes[k] = c
			t.reuse.reused++
			return c.instance(obj)
		}
	}
	t.resolving = t.resolving[:0]
	r := compile()
	t.reuse.compiled++
	c := &compiledRoute{uid: obj.GetUID(), generation: obj.GetGeneration(), stub: tooLarge(obj) != "", r: r, deps: t.dependencies(t.resolving)}
	for _, name := range r.backends {
		c.backends = append(c.backends, t.backends[name])
	}
	// The kept route is a copy taken before attachment changes r, and the
	// entries refer to it: an entry kept from a pass to the next must not
	// hold that pass's listeners and everything attached to them. Nor the
	// object: instance gives each pass its own.
	kept := *r
	kept.obj = nil
	for _, e := range r.entries {
		e.route = &kept
	}
	c.r = &kept
	t.reuse.routes[k] = c
	return r
}

func addAll[T any, P interface {
	*T
	metav1.Object
}](add func(metav1.Object), list []P) {
	for _, o := range list {
		if o != nil {
			add(o)
		}
	}
}

// reusedRoutes counts the routes next took from prev as they were.
func reusedRoutes(next, prev *Compiled) int {
	n := 0
	for k, c := range next.routes {
		if prev != nil && prev.routes[k] == c {
			n++
		}
	}
	return n
}
