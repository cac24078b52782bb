package hub

import (
	"time"

	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// Gateways come and go: once a Gateway's table is withdrawn, the hub holds
// nothing of it — not its hash, its key pairs, the contents of its
// versions, nor when it was published (no proxy ever acknowledged it).
func TestAGatewayDeletedLeavesNothingBehind(t *testing.T) {
	const n = 50
	h := New(xds.NewServer(t.Context(), nil, nil), Options{})
	w := &worker{hub: h, name: "member-1", tables: map[string]string{}}
	for i := range n {
		gw := types.NamespacedName{Namespace: "infra", Name: fmt.Sprintf("gw-%d", i)}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: fmt.Sprintf("tls-%d", i)},
			Data: map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")}}
		table := &routetable.RouteTable{Gateway: gw.String(), Listeners: []*routetable.Listener{{Name: "https", Port: 8443,
			Tls: &routetable.ListenerTLS{Certificates: []string{"infra/" + secret.Name}},
			VirtualHosts: []*routetable.VirtualHost{{Routes: []*routetable.Route{{
				Source: &routetable.RouteSource{Kind: "HTTPRoute", Namespace: "shop", Name: "web", Generation: 1}}}}}}}}
		w.push(translate.Input{Secrets: []*corev1.Secret{secret}}, translate.Output{Tables: map[types.NamespacedName]*routetable.RouteTable{gw: table}}, time.Time{})
	}
	// The last pass carries no Gateway: every table is withdrawn.
	w.push(translate.Input{}, translate.Output{}, time.Time{})
	w.keysMu.Lock()
	contents, keys := len(w.contents), len(w.keys)
	w.keysMu.Unlock()
	h.mu.Lock()
	pending := len(h.pushedAt)
	h.mu.Unlock()
	if len(w.tables) != 0 || contents != 0 || keys != 0 || len(w.keyPairs) != 0 || pending != 0 {
		t.Errorf("after %d Gateways were deleted the hub holds %d table hashes, the contents of %d tables, the key pairs of %d, %d listener key pairs and %d publication times; want none",
			n, len(w.tables), contents, keys, len(w.keyPairs), pending)
	}
}
