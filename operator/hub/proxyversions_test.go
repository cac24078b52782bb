package hub

import (
	"time"

	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/structpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/internal/version"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// connectReplica opens a stream on the push server as a proxy replica of
// node that reports ver (none when empty), as the xDS server's callbacks
// see it.
func connectReplica(t *testing.T, push *xds.Server, id int64, node, ver string) {
	t.Helper()
	if err := push.OnStreamOpen(t.Context(), id, xds.TableType); err != nil {
		t.Fatal(err)
	}
	md := map[string]any{}
	if ver != "" {
		md[xds.MetadataVersion] = ver
	}
	st, err := structpb.NewStruct(md)
	if err != nil {
		t.Fatal(err)
	}
	if err := push.OnStreamRequest(id, &discovery.DiscoveryRequest{Node: &core.Node{Id: node, Metadata: st}, TypeUrl: xds.TableType, ResourceNames: []string{node}}); err != nil {
		t.Fatal(err)
	}
}

// engageWithTable makes cluster engaged in h, with a route table
// published for gw.
func engageWithTable(h *Hub, cluster string, gw types.NamespacedName) {
	w := &worker{hub: h, name: cluster, tables: map[string]string{}}
	w.push(translate.Input{}, translate.Output{Tables: map[types.NamespacedName]*routetable.RouteTable{gw: {Gateway: gw.String()}}}, time.Time{})
	h.mu.Lock()
	h.clusters[cluster] = w
	h.mu.Unlock()
}

// During a rollout the hub tells how many of a Gateway's replicas run each
// version: on /metrics, and in the Gateway's Programmed message that
// `gatehousectl explain` reads.
func TestProxyVersionsOfAGateway(t *testing.T) {
	push := xds.NewServer(t.Context(), nil, nil)
	h := New(push, Options{Namespace: "gatehouse-system"})
	h.exportMetrics(nil)
	gw := types.NamespacedName{Namespace: "infra", Name: "shared"}
	engageWithTable(h, "member-1", gw)
	node := TableName("member-1", gw.Namespace, gw.Name)
	connectReplica(t, push, 1, node, "v0.1.0")
	connectReplica(t, push, 2, node, "v0.2.0")
	connectReplica(t, push, 3, node, "v0.2.0")
	connectReplica(t, push, 4, node, "")

	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() == "gatehouse_hub_proxy_replicas" {
			for _, m := range f.Metric {
				got[labelString(m.Label)] = m.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{
		`{cluster="member-1",gateway="infra/shared",version="v0.1.0"}`:  1,
		`{cluster="member-1",gateway="infra/shared",version="v0.2.0"}`:  2,
		`{cluster="member-1",gateway="infra/shared",version="unknown"}`: 1,
	}
	if len(got) != len(want) {
		t.Errorf("gatehouse_hub_proxy_replicas: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("gatehouse_hub_proxy_replicas%s = %v, want %v", k, got[k], v)
		}
	}

	programmedTrue := []metav1.Condition{{Type: conditionProgramed, Status: metav1.ConditionTrue, Message: "served by the Gateway's proxies (4 connected)"}}
	conds := withProxyVersions(programmedTrue, push.Status(node), served{ok: true})
	const wantMsg = "served by the Gateway's proxies (4 connected); proxy versions: unknown on 1 replica, v0.1.0 on 1 replica, v0.2.0 on 2 replicas"
	if conds[0].Message != wantMsg {
		t.Errorf("Programmed message %q\nwant                %q", conds[0].Message, wantMsg)
	}
	if again := withProxyVersions(conds, push.Status(node), served{ok: true}); again[0].Message != wantMsg {
		t.Errorf("written on every pass, the message grows: %q", again[0].Message)
	}
	if r := version.FromMessage(conds[0].Message); r["v0.2.0"] != 2 || len(r) != 3 {
		t.Errorf("the message reads back as %v", r)
	}
	stored := []metav1.Condition{{Type: conditionProgramed, Status: metav1.ConditionTrue, Message: "served (2 connected); proxy versions: v0.1.0 on 2 replicas"}}
	if kept := withProxyVersions(stored, push.Status(node), served{keep: true}); kept[0].Message != stored[0].Message {
		t.Errorf("while the hub keeps stored conditions after a restart, the message changed to %q", kept[0].Message)
	}
	push.OnStreamClosed(1, nil)
	push.OnStreamClosed(4, nil)
	if c := withProxyVersions(conds, push.Status(node), served{ok: true}); c[0].Message != "served by the Gateway's proxies (4 connected); proxy versions: v0.2.0 on 2 replicas" {
		t.Errorf("after two replicas left: %q", c[0].Message)
	}
}
