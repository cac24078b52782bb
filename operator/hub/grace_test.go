package hub

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// A standby hub runs long before it is elected and engages its members;
// the grace that keeps stored Programmed conditions while proxies
// reconnect counts from that engagement, not from the process's start, or
// every failover to a standby would write Programmed=False until the
// proxies are back.
func TestStartupGraceCountsFromTheFirstEngagement(t *testing.T) {
	f := newRejoinFixture(t)
	h := f.hub
	h.opts.StartupGrace = time.Second
	time.Sleep(1500 * time.Millisecond) // a standby, waiting for the lease
	if err := h.Engage(t.Context(), "member-1", f.member(t)); err != nil {
		t.Fatal(err)
	}
	gw := types.NamespacedName{Namespace: "infra", Name: "shared"}
	st := h.worker("member-1").serving(map[types.NamespacedName]string{gw: "published"}).answer(gw, objectKey("HTTPRoute", "shop", "web", 1))
	if !st.keep {
		t.Fatalf("no proxy connected yet, just elected: got %q (%s), want the stored condition kept", st.reason, st.message)
	}
}
