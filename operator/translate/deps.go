package translate

import (
	"hash/fnv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// dependency is what compiling a route read to resolve one backendRef,
// fingerprinted by the resourceVersions of the objects that could change
// the resolution: the Service, its EndpointSlices, the ReferenceGrants of
// its namespace when the route is elsewhere, and the BackendTLSPolicies of
// its namespace with the ConfigMaps, Secrets and Services they read. A
// change anywhere else (a leader-election ConfigMap, another Service's
// endpoints) leaves the route as it was compiled.
type dependency struct {
	key backendKey
	fp  uint64
}

// dependencies fingerprints what the backendRefs resolved (keys) read.
func (t *translator) dependencies(keys []backendKey) []dependency {
	deps := make([]dependency, 0, len(keys))
	seen := make(map[backendKey]bool, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			deps = append(deps, dependency{k, t.fingerprint(k)})
		}
	}
	return deps
}

// unchanged says whether everything deps covers is as it was; never when
// that cannot be told (an object without a resourceVersion, as in tests
// that build objects by hand).
func (t *translator) unchanged(deps []dependency) bool {
	for _, d := range deps {
		if fp := t.fingerprint(d.key); fp == 0 || fp != d.fp {
			return false
		}
	}
	return true
}

// fingerprint of what resolving backendRef k reads, once per translation.
func (t *translator) fingerprint(k backendKey) uint64 {
	if fp, ok := t.fingerprints[k]; ok {
		return fp
	}
	var f fingerprint
	svc := key(k.ns, k.name)
	if s := t.services[svc]; s != nil {
		f.add(s)
	} else {
		f.absent("Service", svc.String())
	}
	for _, s := range t.slices[svc] {
		f.add(s)
	}
	if k.ns != k.routeNS {
		f.merge(t.namespaceFingerprints().grants[k.ns])
	}
	f.merge(t.namespaceFingerprints().tls[k.ns])
	fp := f.sum()
	t.fingerprints[k] = fp
	return fp
}

// namespaceObjects fingerprints, by namespace, the ReferenceGrants, and
// the BackendTLSPolicies with the ConfigMaps, Secrets and Services of
// namespaces that have any.
type namespaceObjects struct {
	grants, tls map[string]fingerprint
}

func (t *translator) namespaceFingerprints() *namespaceObjects {
	if t.byNamespace != nil {
		return t.byNamespace
	}
	n := &namespaceObjects{grants: map[string]fingerprint{}, tls: map[string]fingerprint{}}
	into := func(m map[string]fingerprint, o metav1.Object) {
		f := m[o.GetNamespace()]
		f.add(o)
		m[o.GetNamespace()] = f
	}
	addAll(func(o metav1.Object) { into(n.grants, o) }, t.in.ReferenceGrants)
	addAll(func(o metav1.Object) { into(n.grants, o) }, t.in.ReferenceGrantsV1B)
	addAll(func(o metav1.Object) { into(n.tls, o) }, t.in.BackendTLSPolicies)
	withPolicies := func(o metav1.Object) {
		if _, ok := n.tls[o.GetNamespace()]; ok {
			into(n.tls, o)
		}
	}
	addAll(withPolicies, t.in.ConfigMaps)
	addAll(withPolicies, t.in.Secrets)
	addAll(withPolicies, t.in.Services)
	t.byNamespace = n
	return n
}

// fingerprint is an order-independent sum of objects' identities and
// resourceVersions; unknown once an object without one is added.
type fingerprint struct {
	h       uint64
	unknown bool
}

func (f *fingerprint) add(o metav1.Object) {
	rv := o.GetResourceVersion()
	if rv == "" {
		f.unknown = true
	}
	f.h += hashStrings(o.GetNamespace(), o.GetName(), rv)
}

func (f *fingerprint) absent(kind, name string) { f.h += hashStrings("absent", kind, name) }

func (f *fingerprint) merge(g fingerprint) {
	f.h += g.h
	f.unknown = f.unknown || g.unknown
}

// sum is the fingerprint, never 0 unless it cannot be told.
func (f fingerprint) sum() uint64 {
	if f.unknown {
		return 0
	}
	return max(f.h, 1)
}

func hashStrings(ss ...string) uint64 {
	h := fnv.New64a()
	for _, s := range ss {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}
