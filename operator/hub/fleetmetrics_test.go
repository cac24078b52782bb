package hub

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/members"
)

// TestFleetMetrics: /metrics names every member and Gateway — engaged or
// not, when its last pass succeeded, when its token expires, how many
// proxies each Gateway has — and a member that leaves takes its series along.
func TestFleetMetrics(t *testing.T) {
	const ns = "gatehouse-system"
	expires := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	memberSecret := func(name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels:      map[string]string{ClusterSecretLabel: "true"},
			Annotations: map[string]string{members.AnnotationTokenExpires: expires.Format(time.RFC3339)}}}
	}
	unrelated := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gatehouse-webhook-ca"}}
	secrets := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).
		WithObjects(memberSecret("member-1"), memberSecret("unreachable"), unrelated).Build()

	h := New(xds.NewServer(t.Context(), nil, nil), Options{Namespace: ns})
	h.exportMetrics(secrets)
	engageWithTable(h, "member-1", types.NamespacedName{Namespace: "infra", Name: "shared"})
	recordSync("member-1", true)

	got := fleetSeries(t)
	want := map[string]float64{
		`gatehouse_hub_cluster_engaged{cluster="member-1"}`:                          1,
		`gatehouse_hub_cluster_engaged{cluster="unreachable"}`:                       0,
		`gatehouse_hub_member_token_expiry_timestamp_seconds{cluster="member-1"}`:    float64(expires.Unix()),
		`gatehouse_hub_member_token_expiry_timestamp_seconds{cluster="unreachable"}`: float64(expires.Unix()),
		`gatehouse_hub_gateway_proxies{cluster="member-1",gateway="infra/shared"}`:   0,
		`gatehouse_hub_gateway_rejected{cluster="member-1",gateway="infra/shared"}`:  0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (exported: %v), want %v", k, g, ok, v)
		}
	}
	if at := got[`gatehouse_hub_cluster_last_sync_success_timestamp_seconds{cluster="member-1"}`]; time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("last successful sync of member-1 reported at %v, want just now", time.Unix(int64(at), 0))
	}
	if _, ok := got[`gatehouse_hub_cluster_last_sync_failure_timestamp_seconds{cluster="member-1"}`]; ok {
		t.Errorf("a failed sync is reported for member-1, which never failed")
	}

	// member-1 leaves: its worker goes and `gatehousectl leave` deletes
	// its Secret.
	h.mu.Lock()
	delete(h.clusters, "member-1")
	h.mu.Unlock()
	if err := secrets.Delete(t.Context(), memberSecret("member-1")); err != nil {
		t.Fatal(err)
	}
	for series := range fleetSeries(t) {
		if strings.Contains(series, `"member-1"`) {
			t.Errorf("%s is still exported after member-1 left", series)
		}
	}
}

// fleetSeries gathers the hub's registry and returns the per-member and
// per-Gateway series as name{labels} → value.
func fleetSeries(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "gatehouse_hub_cluster_") && !strings.HasPrefix(f.GetName(), "gatehouse_hub_member_") &&
			!strings.HasPrefix(f.GetName(), "gatehouse_hub_gateway_") {
			continue
		}
		for _, m := range f.Metric {
			if f.GetType() != dto.MetricType_GAUGE {
				continue
			}
			out[f.GetName()+labelString(m.Label)] = m.GetGauge().GetValue()
		}
	}
	t.Logf("exported: %v", slices.Sorted(maps.Keys(out)))
	return out
}

func labelString(pairs []*dto.LabelPair) string {
	var parts []string
	for _, p := range pairs {
		parts = append(parts, fmt.Sprintf("%s=%q", p.GetName(), p.GetValue()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
