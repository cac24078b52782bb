package hub

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

const sharedTable = "member-1/infra/shared"

// A worker that ends while its successor has already published (the old
// connection was mid-pass when the cluster was engaged again) must not
// withdraw the tables the successor serves: a proxy that connects after
// the old worker has stopped still gets its table.
func TestReengagedClusterKeepsItsTables(t *testing.T) {
	ctx := t.Context()
	f := newRejoinFixture(t)
	h := f.hub
	old := f.member(t)
	if err := h.Engage(ctx, "member-1", old); err != nil {
		t.Fatal(err)
	}
	w1 := h.worker("member-1")
	<-w1.pushed
	if !f.serves(t, sharedTable) {
		t.Fatalf("%s is not published after the first pass", sharedTable)
	}

	// The old connection's next pass hangs reading the cluster, as a pass
	// does against a slow API server, while the cluster is engaged again.
	old.hold()
	h.Trigger("member-1")
	<-old.held
	if err := h.Engage(ctx, "member-1", f.member(t)); err != nil {
		t.Fatal(err)
	}
	w2 := h.worker("member-1")
	// Let the successor publish first, if it would.
	select {
	case <-w2.pushed:
	case <-time.After(3 * time.Second):
	}
	old.release()
	<-w1.finished
	<-w2.pushed

	if !f.serves(t, sharedTable) {
		t.Errorf("after the old connection stopped, a proxy connecting for %s gets nothing", sharedTable)
	}
	if got := h.Clusters(); len(got) != 1 {
		t.Errorf("clusters engaged: %v, want member-1 once", got)
	}
}

// The kubeconfig provider removes a cluster whose Secret changed and
// engages it again once the new connection is ready: in between, its
// tables stay published, and the successor re-publishes nothing that did
// not change. A cluster not engaged again within the grace has its tables
// withdrawn and is forgotten.
func TestClusterEngagedAgainAfterAGap(t *testing.T) {
	f := newRejoinFixture(t)
	h := f.hub
	ctx1, end1 := context.WithCancel(t.Context())
	defer end1()
	if err := h.Engage(ctx1, "member-1", f.member(t)); err != nil {
		t.Fatal(err)
	}
	w1 := h.worker("member-1")
	<-w1.pushed
	published := f.logged("route table published")

	end1() // the provider removes the cluster
	<-w1.ended
	if !f.serves(t, sharedTable) {
		t.Errorf("while the cluster is being engaged again, %s is withdrawn", sharedTable)
	}
	ctx2, end2 := context.WithCancel(t.Context())
	defer end2()
	if err := h.Engage(ctx2, "member-1", f.member(t)); err != nil {
		t.Fatal(err)
	}
	w2 := h.worker("member-1")
	<-w1.finished
	<-w2.pushed
	if !f.serves(t, sharedTable) {
		t.Errorf("after the cluster was engaged again, %s is not published", sharedTable)
	}
	if got := f.logged("route table published"); got != published {
		t.Errorf("the new connection published %d tables again; the content did not change, want none", got-published)
	}

	t.Run("not engaged again", func(t *testing.T) {
		h.rejoinGrace = 100 * time.Millisecond
		end2()
		<-w2.finished
		if f.serves(t, sharedTable) {
			t.Errorf("%s is still published after the cluster left for good", sharedTable)
		}
		if got := h.Clusters(); len(got) != 0 {
			t.Errorf("clusters engaged after the cluster left: %v", got)
		}
	})
}

// rejoinFixture is a hub whose push server listens on a local port, and a
// log that records what the hub says.
type rejoinFixture struct {
	hub  *Hub
	addr string
	log  *recordingHandler
}

func newRejoinFixture(t *testing.T) *rejoinFixture {
	t.Helper()
	rec := &recordingHandler{}
	log := slog.New(rec)
	push := xds.NewServer(t.Context(), nil, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(xds.ServerOptions(insecure.NewCredentials())...)
	push.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	h := New(push, Options{Namespace: "gatehouse-system", Debounce: 10 * time.Millisecond, Log: log})
	h.rejoinGrace = time.Minute
	return &rejoinFixture{hub: h, addr: ln.Addr().String(), log: rec}
}

// serves asks the push server for a table as a proxy that just connected
// does; a first request is always answered, empty when nothing is
// published under that name.
func (f *rejoinFixture) serves(t *testing.T, table string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: table}, TypeUrl: xds.TableType, ResourceNames: []string{table}}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Recv()
	if err != nil {
		t.Fatalf("asking for %s: %v", table, err)
	}
	return len(resp.GetResources()) > 0
}

func (f *rejoinFixture) logged(msg string) int { return f.log.count(msg) }

func (h *Hub) worker(name string) *worker {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clusters[name]
}

// member is a connection to the cluster: a Gateway of the hub's class,
// whose table the hub publishes.
func (f *rejoinFixture) member(t *testing.T) *gatedCluster {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1beta1.Install} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	class := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse",
		Listeners: []gwv1.Listener{{Name: "http", Port: 8080, Protocol: gwv1.HTTPProtocolType}}}}
	g := &gatedCluster{held: make(chan struct{}, 1)}
	g.c = fake.NewClientBuilder().WithScheme(s).WithObjects(class, gw).WithStatusSubresource(class, gw).
		WithInterceptorFuncs(interceptor.Funcs{List: g.list}).Build()
	return g
}

// gatedCluster is a member connection whose reads can be held up.
type gatedCluster struct {
	c    client.Client
	held chan struct{}

	mu   sync.Mutex
	gate chan struct{}
}

func (g *gatedCluster) GetClient() client.Client { return g.c }
func (g *gatedCluster) GetEventRecorderFor(string) record.EventRecorder {
	return &record.FakeRecorder{}
}

func (g *gatedCluster) list(ctx context.Context, c client.WithWatch, l client.ObjectList, opts ...client.ListOption) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		select {
		case g.held <- struct{}{}:
		default:
		}
		<-gate
	}
	return c.List(ctx, l, opts...)
}

func (g *gatedCluster) hold() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedCluster) release() {
	g.mu.Lock()
	close(g.gate)
	g.gate = nil
	g.mu.Unlock()
}

// recordingHandler counts log records by message.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (r *recordingHandler) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Message)
	r.mu.Unlock()
	return nil
}
func (r *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recordingHandler) WithGroup(string) slog.Handler      { return r }

func (r *recordingHandler) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m, msg) {
			n++
		}
	}
	return n
}
