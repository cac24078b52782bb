package hub

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// A change after a quiet spell, or one change during a pass, is translated
// at once; a change during a pass that itself followed a change made during
// its predecessor is part of a burst and waits for the debounce interval.
// (A cancelled context tells waiting from not: debounce then reports false.)
func TestDebounceWaitsOnlyInABurst(t *testing.T) {
	h := New(xds.NewServer(t.Context(), nil, nil), Options{Namespace: "gatehouse-system", Debounce: time.Hour})
	w := newWorker(h, "member-1", nil)
	p := passes{w: w}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	changeDuringPass := func() {
		w.trigger()
		p.last = time.Now().Add(time.Millisecond) // the pass ended after the change
	}
	pass := func() {
		w.takeChanged()
		p.last = time.Now()
	}

	// A change while no pass ran.
	w.trigger()
	if !p.debounce(cancelled) {
		t.Fatal("the first change waited")
	}
	pass()
	// A change during that pass: the next of someone who waited.
	changeDuringPass()
	if !p.debounce(cancelled) {
		t.Fatal("one change during a pass waited")
	}
	pass()
	// Another during the pass that followed it: a burst.
	changeDuringPass()
	if p.debounce(cancelled) {
		t.Fatal("a change during a pass that followed one did not wait")
	}
	pass()
	// Still a burst while changes keep coming during passes.
	changeDuringPass()
	if p.debounce(cancelled) {
		t.Fatal("the burst's next change did not wait")
	}
	pass()
	// A pass with no change during it ends the burst.
	if !p.debounce(cancelled) {
		t.Fatal("no change, yet waited")
	}
	w.trigger()
	if !p.debounce(cancelled) {
		t.Fatal("a change after the burst waited")
	}
}
