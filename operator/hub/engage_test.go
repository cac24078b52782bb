package hub

import (
	"context"
	"log/slog"
	"testing"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// TestEngageRefusesCollidingNames: a member Secret named so that the
// cluster's key pairs or certificate namespace would collide with the hub's
// gets no worker: no tables, no key pairs, no webhook.
func TestEngageRefusesCollidingNames(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := New(xds.NewServer(ctx, nil, slog.New(slog.DiscardHandler)), Options{Namespace: "gatehouse-system"})
	for _, name := range []string{"hub", "system", "a.b"} {
		if err := h.Engage(ctx, name, nil); err == nil {
			t.Errorf("member %q engaged", name)
		}
	}
	if got := h.Clusters(); len(got) != 0 {
		t.Errorf("workers for refused members: %v", got)
	}
}
