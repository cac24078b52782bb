package routetable

import "fmt"

// ObjectKey names an object at one generation, "Kind/namespace/name@gen":
// the hub records what each table version carries under these keys, and a
// proxy reports a route it does not serve under its source's key.
func ObjectKey(kind, namespace, name string, generation int64) string {
	return fmt.Sprintf("%s/%s/%s@%d", kind, namespace, name, generation)
}

// ObjectKey is the key of the route object this route came from.
func (s *RouteSource) ObjectKey() string {
	return ObjectKey(s.GetKind(), s.GetNamespace(), s.GetName(), s.GetGeneration())
}
