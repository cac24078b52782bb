// Package referencegrant answers whether an object in one namespace may
// refer to an object in another, by the ReferenceGrants of the namespace
// referred to. v1 and v1beta1 grants count the same.
package referencegrant

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// Index holds the grants of one cluster.
type Index struct {
	// by the namespace the grant lives in: the namespace referred to.
	byTarget map[string][]grant
}

type grant struct {
	from []gwv1.ReferenceGrantFrom
	to   []gwv1.ReferenceGrantTo
}

// New indexes grants of both versions.
func New(v1 []*gwv1.ReferenceGrant, v1beta1 []*gwv1beta1.ReferenceGrant) *Index {
	g := &Index{byTarget: map[string][]grant{}}
	for _, rg := range v1 {
		if rg != nil {
			g.byTarget[rg.Namespace] = append(g.byTarget[rg.Namespace], grant{from: rg.Spec.From, to: rg.Spec.To})
		}
	}
	for _, rg := range v1beta1 {
		if rg == nil {
			continue
		}
		gr := grant{}
		for _, f := range rg.Spec.From {
			gr.from = append(gr.from, gwv1.ReferenceGrantFrom{Group: f.Group, Kind: f.Kind, Namespace: f.Namespace})
		}
		for _, to := range rg.Spec.To {
			gr.to = append(gr.to, gwv1.ReferenceGrantTo{Group: to.Group, Kind: to.Kind, Name: to.Name})
		}
		g.byTarget[rg.Namespace] = append(g.byTarget[rg.Namespace], gr)
	}
	return g
}

// Ref is one side of a reference: group, kind, namespace and name.
type Ref struct {
	Group, Kind, Namespace, Name string
}

// Allowed reports whether from may refer to to. A reference inside one
// namespace needs no grant.
func (g *Index) Allowed(from, to Ref) bool {
	if from.Namespace == to.Namespace {
		return true
	}
	for _, gr := range g.byTarget[to.Namespace] {
		if matchesFrom(gr.from, from) && matchesTo(gr.to, to) {
			return true
		}
	}
	return false
}

func matchesFrom(froms []gwv1.ReferenceGrantFrom, from Ref) bool {
	for _, f := range froms {
		if string(f.Group) == from.Group && string(f.Kind) == from.Kind && string(f.Namespace) == from.Namespace {
			return true
		}
	}
	return false
}

func matchesTo(tos []gwv1.ReferenceGrantTo, to Ref) bool {
	for _, t := range tos {
		if string(t.Group) == to.Group && string(t.Kind) == to.Kind && (t.Name == nil || *t.Name == "" || string(*t.Name) == to.Name) {
			return true
		}
	}
	return false
}
