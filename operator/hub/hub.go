// Package hub is the hub's per-cluster pipeline: when anything in a member
// cluster changes, read that cluster's objects, translate them, push the
// route tables whose content changed, and write back the statuses that
// changed — with Programmed reflecting what the cluster's proxies
// acknowledged. Each cluster has its own worker; one cluster's trouble never
// stalls another's.
package hub

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/members"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// Cluster is what the hub needs of a member cluster: a cached client to read
// and write through, and events to tell people what changed.
type Cluster interface {
	GetClient() client.Client
	GetEventRecorderFor(name string) record.EventRecorder
}

// Options configure the hub.
type Options struct {
	// Namespace is the hub's namespace, holding the members' Secrets; no
	// member may be named so that its certificates would live there.
	Namespace string
	// Debounce is the least time between two passes over a cluster in a
	// burst: a change after a quiet spell is translated at once, and a
	// burst costs a pass per interval (passes.debounce).
	Debounce time.Duration
	// StartupGrace keeps stored Programmed conditions while proxies
	// reconnect after a hub restart, so that status does not flap.
	StartupGrace time.Duration
	Controller   string
	Log          *slog.Logger
	// Provisioning creates managed-mode proxies; without an Image, the hub
	// creates nothing in members.
	Provisioning Provisioning
	// Authorizer and Certificates are passed to every translation.
	// Decisions, when set, authorizes instead of Authorizer: tenancy and
	// RoutePolicies.
	Authorizer   translate.AttachmentAuthorizer
	Certificates translate.CertificateSource
	Decisions    *Decisions
	// Webhook, when set, is registered in every member.
	Webhook *WebhookRegistration
	// Issuer, when set, issues listener certificates through cert-manager
	// on the hub.
	Issuer *certificates.Issuer
}

// Hub runs one worker per engaged cluster.
type Hub struct {
	opts Options
	push *xds.Server
	// started is when the hub engaged its first member: a standby engages
	// none until it is elected, and StartupGrace counts from there.
	started time.Time

	// rejoinGrace: how long a cluster whose connection ended keeps its
	// tables published, waiting to be engaged again.
	rejoinGrace time.Duration

	mu       sync.Mutex
	clusters map[string]*worker
	// pushedAt: when each table's current hash was published, to measure
	// how long proxies take to acknowledge it.
	pushedAt map[string]pushed
}

type pushed struct {
	hash string
	at   time.Time
	// changed: when the first change the table carries was observed.
	changed time.Time
}

func (h *Hub) published(table, hash string, changed time.Time) {
	h.mu.Lock()
	if p, ok := h.pushedAt[table]; ok && !p.changed.IsZero() && (changed.IsZero() || p.changed.Before(changed)) {
		changed = p.changed // a change still unacknowledged is older
	}
	h.pushedAt[table] = pushed{hash, time.Now(), changed}
	h.mu.Unlock()
}

// unpublished forgets a table withdrawn before any proxy acknowledged it.
func (h *Hub) unpublished(table string) {
	h.mu.Lock()
	delete(h.pushedAt, table)
	h.mu.Unlock()
}

// New returns a hub that pushes through push.
func New(push *xds.Server, opts Options) *Hub {
	if opts.Debounce == 0 {
		opts.Debounce = 50 * time.Millisecond
	}
	if opts.StartupGrace == 0 {
		opts.StartupGrace = 20 * time.Second
	}
	if opts.Controller == "" {
		opts.Controller = string(translate.ControllerName)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{opts: opts, push: push, rejoinGrace: rejoinGrace, clusters: map[string]*worker{}, pushedAt: map[string]pushed{}}
	push.OnChange = h.nodeChanged
	return h
}

// Engage starts the worker of a cluster; it stops when ctx ends. A cluster
// engaged again (its kubeconfig Secret changed: a credential renewal) takes
// over the tables its previous worker published, so that its proxies see
// nothing of it; a cluster not engaged again within rejoinGrace has its
// tables withdrawn (see worker.leave). A cluster whose name collides with a
// name the hub derives (members.ValidateName) is refused: it gets no
// worker, no tables, no key pairs and no webhook.
func (h *Hub) Engage(ctx context.Context, name string, cl Cluster) error {
	if err := members.ValidateName(name, h.opts.Namespace); err != nil {
		h.opts.Log.Error("member cluster refused: rename its Secret in the hub namespace (gatehousectl leave, then join under another name)",
			"cluster", name, "error", err)
		return fmt.Errorf("refusing member cluster %q: %w", name, err)
	}
	w := newWorker(h, name, cl)
	h.mu.Lock()
	if old := h.clusters[name]; old != nil {
		w.prev = old
		close(old.replaced)
		old.stop()
	}
	if h.started.IsZero() { // before any worker runs, so workers read it without the lock
		h.started = time.Now()
	}
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	h.clusters[name] = w
	clustersEngaged.Set(float64(len(h.clusters)))
	h.mu.Unlock()
	go w.run(wctx)
	w.trigger()
	return nil
}

// Trigger asks for the cluster to be translated again.
func (h *Hub) Trigger(name string) {
	h.mu.Lock()
	w := h.clusters[name]
	h.mu.Unlock()
	if w != nil {
		w.trigger()
	}
}

// TriggerAll asks for every cluster to be translated again.
func (h *Hub) TriggerAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.clusters {
		w.trigger()
	}
}

// Clusters lists the clusters the hub works on.
func (h *Hub) Clusters() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.clusters))
	for n := range h.clusters {
		out = append(out, n)
	}
	return out
}

// cluster returns an engaged cluster, or nil. While a cluster is being
// engaged again (its connection ended, a new one comes), it waits for the
// new one, at most firstPassWait: the old credentials may be revoked.
func (h *Hub) cluster(name string) Cluster {
	h.mu.Lock()
	w := h.clusters[name]
	h.mu.Unlock()
	if w = h.successorOf(w, firstPassWait); w != nil {
		return w.cl
	}
	return nil
}

// firstPassWait bounds how long a proxy's request for key pairs waits for
// a cluster just engaged (hub start, credential rotation) to publish its
// tables, rather than being refused and reconnecting with a backoff.
const firstPassWait = 15 * time.Second

// keyPairsOf lists the key pairs the current table of a node names. Until
// the cluster's first pass has published its tables it waits, at most
// firstPassWait: a proxy resuming with the key pairs of its last table
// asks for them before the hub knows that table again.
func (h *Hub) keyPairsOf(node string) map[string]bool {
	cluster, _, _ := strings.Cut(node, "/")
	h.mu.Lock()
	w := h.clusters[cluster]
	h.mu.Unlock()
	if w == nil {
		return nil
	}
	if w.pushed != nil {
		t := time.NewTimer(firstPassWait)
		select {
		case <-w.pushed:
		case <-t.C:
		}
		t.Stop()
	}
	w.keysMu.Lock()
	defer w.keysMu.Unlock()
	return w.keys[node]
}

// nodeChanged reacts to a proxy acknowledging or rejecting: its cluster's
// statuses are written again. Node IDs are "cluster/namespace/gateway".
func (h *Hub) nodeChanged(node string) {
	h.mu.Lock()
	p, ok := h.pushedAt[node]
	if ok && h.push.Status(node).Acked[node] == p.hash {
		ackLag.Observe(time.Since(p.at).Seconds())
		if !p.changed.IsZero() {
			propagation.Observe(time.Since(p.changed).Seconds())
		}
		delete(h.pushedAt, node)
	}
	var w *worker
	if i := strings.IndexByte(node, '/'); i > 0 {
		w = h.clusters[node[:i]]
	}
	h.mu.Unlock()
	if w != nil {
		w.acknowledged()
	}
}

// forget drops a cluster that left for good, unless another worker took
// its place meanwhile: then the cluster's tenancy decisions and issued key
// pairs stay for that one.
func (h *Hub) forget(w *worker) {
	h.mu.Lock()
	gone := h.clusters[w.name] == w
	if gone {
		delete(h.clusters, w.name)
	}
	clustersEngaged.Set(float64(len(h.clusters)))
	h.mu.Unlock()
	if gone && h.opts.Decisions != nil {
		h.opts.Decisions.forget(w.name)
	}
	if gone && h.opts.Issuer != nil {
		if err := h.opts.Issuer.Forget(w.name); err != nil {
			h.opts.Log.Error("withdrawing the key pairs of a cluster that left failed", "cluster", w.name, "error", err)
		}
	}
}

// TableName is the push resource name of a Gateway's table, which is also
// the node ID of its proxies.
func TableName(cluster, namespace, name string) string {
	return cluster + "/" + namespace + "/" + name
}
