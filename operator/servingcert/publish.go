package servingcert

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// raceRetry: how soon a write that lost a race with another replica's is
// tried again.
const raceRetry = 100 * time.Millisecond

// BundleKey is the key of the CA bundle in a ConfigMap PublishBundle writes.
const BundleKey = FileCA

// PublishBundle keeps the ConfigMap at key holding src's CA bundle under
// BundleKey until ctx ends: the certificates clients of a server must
// trust are public, so anyone who installs a client (gatehousectl join, a
// member chart) reads them from there without access to the CA's key.
// changed, if not nil, is called after each change of the bundle.
func PublishBundle(ctx context.Context, c client.Client, src Source, key types.NamespacedName, changed func(), log *slog.Logger) {
	retry := backoff{max: time.Minute}
	var last []byte
	for {
		wait := 10 * time.Minute
		if bundle := src.CABundle(); len(bundle) > 0 {
			if err := writeBundle(ctx, c, key, bundle); err != nil {
				if ctx.Err() != nil {
					return
				}
				if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
					// Another replica wrote it at the same moment (every
					// hub replica publishes the same bundle): read it again.
					wait = raceRetry
					log.Debug("the CA bundle changed under us; reading it again", "configmap", key.String(), "error", err)
				} else {
					wait = retry.next()
					log.Error("publishing the CA bundle failed; retrying", "configmap", key.String(), "error", err, "retryIn", wait)
				}
			} else {
				retry.reset()
				if changed != nil && !bytes.Equal(bundle, last) {
					changed()
				}
				last = bundle
			}
		} else {
			wait = time.Second // not loaded yet
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-src.Changed():
		case <-t.C:
		}
		t.Stop()
	}
}

func writeBundle(ctx context.Context, c client.Client, key types.NamespacedName, bundle []byte) error {
	cm := &corev1.ConfigMap{}
	err := c.Get(ctx, key, cm)
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "gatehouse"}},
			Data:       map[string]string{BundleKey: string(bundle)},
		}
		return c.Create(ctx, cm)
	}
	if err != nil {
		return err
	}
	if bytes.Equal([]byte(cm.Data[BundleKey]), bundle) {
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[BundleKey] = string(bundle)
	return c.Update(ctx, cm)
}
