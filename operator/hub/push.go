package hub

import (
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// push publishes the cluster's tables, and the key pairs their listeners
// name, under cluster-qualified names; tables that are gone are withdrawn.
// It returns the hash of each Gateway's table.
func (w *worker) push(in translate.Input, out translate.Output, changed time.Time) map[types.NamespacedName]string {
	log := w.hub.opts.Log.With("cluster", w.name)
	secrets := map[string]*corev1.Secret{}
	for _, s := range in.Secrets {
		secrets[s.Namespace+"/"+s.Name] = s
	}
	hashes := make(map[types.NamespacedName]string, len(out.Tables))
	seen, keyPairs := map[string]bool{}, map[string]bool{}
	gateways := map[types.NamespacedName]*gwv1.Gateway{}
	for _, g := range in.Gateways {
		gateways[types.NamespacedName{Namespace: g.Namespace, Name: g.Name}] = g
	}
	for gw, table := range out.Tables {
		name := TableName(w.name, gw.Namespace, gw.Name)
		table.Name = name
		w.setKeys(name, w.qualifyKeyPairs(table, secrets, keyPairs, log))
		h, err := w.hub.push.SetTable(table)
		if err != nil {
			log.Error("publishing a route table failed", "table", name, "error", err)
			continue
		}
		var sets []*gwv1.ListenerSet
		for _, ls := range in.ListenerSets {
			if parentOf(ls) == gw {
				sets = append(sets, ls)
			}
		}
		w.record(name, h, table, gateways[gw], sets)
		if w.tables[name] != h {
			log.Info("route table published", "table", name, "hash", h)
			tablesPushed.Inc()
			w.hub.published(name, h, changed)
		}
		w.tables[name], hashes[gw], seen[name] = h, h, true
	}
	for name := range w.tables {
		if !seen[name] {
			if err := w.hub.push.DeleteTable(name); err != nil {
				log.Error("withdrawing a route table failed", "table", name, "error", err)
			}
			w.forgetTable(name)
		}
	}
	w.withdrawKeyPairs(keyPairs, log)
	return hashes
}

// forgetTable drops what the hub kept of a withdrawn table: its hash, the
// key pairs it named, the contents of its versions, and when it was
// published. A Gateway deleted takes all of it along.
func (w *worker) forgetTable(name string) {
	delete(w.tables, name)
	w.setKeys(name, nil)
	w.keysMu.Lock()
	delete(w.contents, name)
	w.keysMu.Unlock()
	w.hub.unpublished(name)
}

// withdrawKeyPairs removes from the push server the key pairs this cluster
// published before and no table names now: a private key stays in the
// hub's memory no longer than a listener needs it.
func (w *worker) withdrawKeyPairs(keep map[string]bool, log *slog.Logger) {
	for name := range w.keyPairs {
		if !keep[name] {
			if err := w.hub.push.DeleteKeyPair(name); err != nil {
				log.Error("withdrawing a key pair failed", "name", name, "error", err)
			}
		}
	}
	w.keyPairs = keep
}

// qualifyKeyPairs renames the key pairs a table names from "ns/secret" to
// names qualified by the cluster, and publishes them: two clusters'
// Secrets of the same name are different key pairs. A listener's key pair
// becomes "cluster/ns/secret"; a backend's client certificate becomes
// "client/cluster/ns/secret" (ClientKeyPairPrefix), a name no listener key
// pair can have, so that each use of a Secret is published, authorized and
// withdrawn by itself, and a name in a log says which use it is.
func (w *worker) qualifyKeyPairs(t *routetable.RouteTable, secrets map[string]*corev1.Secret, published map[string]bool, log *slog.Logger) map[string]bool {
	names := map[string]bool{}
	qualify := func(ref, prefix string) string {
		if strings.Count(ref, "/") != 1 {
			names[ref] = true // already qualified by a certificate source
			return ref
		}
		qualified := prefix + w.name + "/" + ref
		names[qualified] = true
		s := secrets[ref]
		if s == nil {
			return qualified
		}
		kp := &routetable.KeyPair{Name: qualified, CertificateChain: s.Data[corev1.TLSCertKey], PrivateKey: s.Data[corev1.TLSPrivateKeyKey]}
		if _, err := w.hub.push.SetKeyPair(kp); err != nil {
			log.Error("publishing a key pair failed", "name", qualified, "error", err)
			return qualified
		}
		published[qualified] = true
		return qualified
	}
	for _, l := range t.Listeners {
		if l.Tls == nil {
			continue
		}
		for i, ref := range l.Tls.Certificates {
			l.Tls.Certificates[i] = qualify(ref, "")
		}
	}
	for _, b := range t.Backends {
		if ref := b.GetTls().GetClientCertificate(); ref != "" {
			b.Tls.ClientCertificate = qualify(ref, ClientKeyPairPrefix)
		}
	}
	return names
}

// ClientKeyPairPrefix starts the push names of the key pairs proxies present
// to backends as their Gateway's client certificate.
const ClientKeyPairPrefix = "client/"

func (w *worker) setKeys(table string, names map[string]bool) {
	w.keysMu.Lock()
	defer w.keysMu.Unlock()
	if w.keys == nil {
		w.keys = map[string]map[string]bool{}
	}
	if names == nil {
		delete(w.keys, table)
		return
	}
	w.keys[table] = names
}

// withdraw removes every table of the cluster when it has left for good
// (not engaged again within rejoinGrace): its proxies get no more updates
// (and keep serving what they have).
func (w *worker) withdraw(log *slog.Logger) {
	tables := len(w.tables)
	for name := range w.tables {
		if err := w.hub.push.DeleteTable(name); err != nil {
			log.Error("withdrawing a route table failed", "table", name, "error", err)
		}
		w.forgetTable(name)
	}
	w.withdrawKeyPairs(nil, log)
	log.Info("cluster left: its route tables and key pairs are withdrawn", "tables", tables)
}
