package translate

import "strconv"

// fieldPath names a field of a route rule for messages. It is a value built
// on the hot path and turned into text only when a message needs it.
type fieldPath struct {
	rule  int
	part  string // "matches", "filters", "backendRefs", or "" for the rule itself
	index int
	sub   string // what follows, e.g. ".requestMirror.backendRef"
}

func (f fieldPath) String() string {
	s := "spec.rules[" + strconv.Itoa(f.rule) + "]"
	if f.part != "" {
		s += "." + f.part + "[" + strconv.Itoa(f.index) + "]"
	}
	return s + f.sub
}

func (f fieldPath) at(part string, index int) fieldPath {
	f.part, f.index = part, index
	return f
}
