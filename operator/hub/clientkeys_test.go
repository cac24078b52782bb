package hub

import (
	"time"

	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// A Gateway's client certificate for backends travels as a key pair of its
// own, beside its listeners' and under a name none of theirs can have, even
// when both come from one Secret: its proxies may fetch it, and it is
// withdrawn once the Gateway no longer names it while the listener's stays.
func TestBackendClientKeyPairsArePublishedApart(t *testing.T) {
	h := New(xds.NewServer(t.Context(), nil, nil), Options{})
	w := &worker{hub: h, name: "member-1", tables: map[string]string{}}
	h.mu.Lock()
	h.clusters[w.name] = w
	h.mu.Unlock()
	gw := types.NamespacedName{Namespace: "infra", Name: "web"}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"},
		Data: map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")}}
	table := func(clientCertificate string) *routetable.RouteTable {
		return &routetable.RouteTable{Gateway: gw.String(),
			Listeners: []*routetable.Listener{{Name: "https", Port: 8443, Tls: &routetable.ListenerTLS{Certificates: []string{"infra/shared"}}}},
			Backends:  []*routetable.Backend{{Name: "infra/secure:443", Tls: &routetable.BackendTLS{Sni: "secure.example", ClientCertificate: clientCertificate}}},
		}
	}
	node := TableName("member-1", "infra", "web")
	in := translate.Input{Secrets: []*corev1.Secret{secret}}

	withClient := table("infra/shared")
	w.push(in, translate.Output{Tables: map[types.NamespacedName]*routetable.RouteTable{gw: withClient}}, time.Time{})
	if got := withClient.Backends[0].Tls.ClientCertificate; got != "client/member-1/infra/shared" {
		t.Errorf("the table names the client key pair %q, want client/member-1/infra/shared", got)
	}
	want := []string{"client/member-1/infra/shared", "member-1/infra/shared"}
	if got := slices.Sorted(maps.Keys(h.keyPairsOf(node))); !slices.Equal(got, want) {
		t.Errorf("the Gateway's proxies may fetch %v, want %v", got, want)
	}
	if got := slices.Sorted(maps.Keys(w.keyPairs)); !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}

	w.push(in, translate.Output{Tables: map[types.NamespacedName]*routetable.RouteTable{gw: table("")}}, time.Time{})
	want = []string{"member-1/infra/shared"}
	if got := slices.Sorted(maps.Keys(h.keyPairsOf(node))); !slices.Equal(got, want) {
		t.Errorf("without the client certificate the proxies may fetch %v, want %v", got, want)
	}
	if got := slices.Sorted(maps.Keys(w.keyPairs)); !slices.Equal(got, want) {
		t.Errorf("without the client certificate the hub still publishes %v, want %v", got, want)
	}
}
