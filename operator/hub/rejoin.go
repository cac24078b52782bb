package hub

import (
	"log/slog"
	"time"
)

// rejoinGrace is how long a cluster whose connection ended keeps its route
// tables published while it may be engaged again. A member's kubeconfig
// Secret that changes (`gatehousectl join` renewing its token) makes the
// kubeconfig provider remove the cluster and engage it anew once the new
// connection's caches are synced, which takes seconds on a large cluster;
// in between, the cluster's proxies must see nothing. A cluster that left
// for good has its tables withdrawn this much later, which its proxies do
// not notice either: they keep serving what they have.
const rejoinGrace = 15 * time.Second

// leave ends a worker whose connection ended. Engaged again within the
// grace, the cluster's successor takes the worker's state over (takeOver);
// otherwise its tables and key pairs are withdrawn and the hub forgets it.
func (w *worker) leave(log *slog.Logger) {
	defer close(w.finished)
	close(w.ended)
	if w.awaitSuccessor() {
		log.Info("cluster engaged again: the new connection keeps its route tables published", "tables", len(w.tables))
		return
	}
	w.withdraw(log)
	w.hub.forget(w)
}

// awaitSuccessor reports whether a successor was engaged within the grace.
func (w *worker) awaitSuccessor() bool {
	t := time.NewTimer(w.hub.rejoinGrace)
	defer t.Stop()
	select {
	case <-w.replaced:
		return true
	case <-t.C:
	}
	// Engaged just as the grace ran out: hand over all the same.
	select {
	case <-w.replaced:
		return true
	default:
		return false
	}
}

// takeOver waits until the worker this one replaces touches its state no
// more, then takes that state: the tables it published, so that the first
// pass re-publishes nothing that did not change and withdraws only what is
// gone; the key pairs, and which node may read which; the contents of
// recent versions, so that what proxies acknowledged keeps its meaning for
// Programmed; and the webhook registration last applied. Without this, a
// worker ending after its successor's first pass would withdraw the tables
// the successor serves.
func (w *worker) takeOver(prev *worker, log *slog.Logger) {
	<-prev.finished
	w.tables, w.keyPairs = prev.tables, prev.keyPairs
	w.webhookHash, w.webhookAt = prev.webhookHash, prev.webhookAt
	prev.keysMu.Lock()
	keys, contents := prev.keys, prev.contents
	prev.keysMu.Unlock()
	w.keysMu.Lock()
	w.keys, w.contents = keys, contents
	w.keysMu.Unlock()
	w.prev = nil
	log.Debug("took over the previous connection's route tables", "tables", len(w.tables))
}

// successorOf returns w or, when w's connection has ended, the worker
// engaged in its place, waiting at most d for one; nil when none came.
func (h *Hub) successorOf(w *worker, d time.Duration) *worker {
	var deadline <-chan time.Time
	for w != nil {
		select {
		case <-w.ended:
		default:
			return w
		}
		if deadline == nil {
			t := time.NewTimer(d)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-w.replaced:
		case <-w.finished:
		case <-deadline:
			return nil
		}
		h.mu.Lock()
		next := h.clusters[w.name]
		h.mu.Unlock()
		if next == w {
			return nil
		}
		w = next
	}
	return nil
}
