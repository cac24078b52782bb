package translate

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// referenceGrants answers whether an object of one kind in one namespace may
// refer to an object in another namespace. v1 and v1beta1 grants are equal.
type referenceGrants struct {
	// by the namespace the grant lives in: the namespace referred to.
	byTarget map[string][]grant
}

type grant struct {
	from []gwv1.ReferenceGrantFrom
	to   []gwv1.ReferenceGrantTo
}

func newReferenceGrants(v1 []*gwv1.ReferenceGrant, v1beta1 []*gwv1beta1.ReferenceGrant) *referenceGrants {
	g := &referenceGrants{byTarget: map[string][]grant{}}
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

// ref is one side of a reference: group, kind, namespace and name.
type ref struct {
	group, kind, namespace, name string
}

// allowed reports whether from may refer to to. A reference inside one
// namespace needs no grant.
func (g *referenceGrants) allowed(from, to ref) bool {
	if from.namespace == to.namespace {
		return true
	}
	for _, gr := range g.byTarget[to.namespace] {
		if matchesFrom(gr.from, from) && matchesTo(gr.to, to) {
			return true
		}
	}
	return false
}

func matchesFrom(froms []gwv1.ReferenceGrantFrom, from ref) bool {
	for _, f := range froms {
		if string(f.Group) == from.group && string(f.Kind) == from.kind && string(f.Namespace) == from.namespace {
			return true
		}
	}
	return false
}

func matchesTo(tos []gwv1.ReferenceGrantTo, to ref) bool {
	for _, t := range tos {
		if string(t.Group) == to.group && string(t.Kind) == to.kind && (t.Name == nil || *t.Name == "" || string(*t.Name) == to.name) {
			return true
		}
	}
	return false
}
