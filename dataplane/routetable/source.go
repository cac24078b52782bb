package routetable

import (
	"strconv"
	"strings"
)

// ObjectKey names an object at one generation, "Kind/namespace/name@gen":
// the hub records what each table version carries under these keys, and a
// proxy reports a route it does not serve under its source's key.
func ObjectKey(kind, namespace, name string, generation int64) string {
	// Built by hand, not with fmt: the hub makes one per route per pass.
	var gen [20]byte
	var b strings.Builder
	b.Grow(len(kind) + len(namespace) + len(name) + 24)
	b.WriteString(kind)
	b.WriteByte('/')
	b.WriteString(namespace)
	b.WriteByte('/')
	b.WriteString(name)
	b.WriteByte('@')
	b.Write(strconv.AppendInt(gen[:0], generation, 10))
	return b.String()
}

// ObjectKey is the key of the route object this route came from.
func (s *RouteSource) ObjectKey() string {
	return ObjectKey(s.GetKind(), s.GetNamespace(), s.GetName(), s.GetGeneration())
}
