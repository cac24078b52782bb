package servingcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

type staticBundle struct {
	bundle  []byte
	changed chan struct{}
}

func (s staticBundle) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
func (s staticBundle) CABundle() []byte                                              { return s.bundle }
func (s staticBundle) Changed() <-chan struct{}                                      { return s.changed }

// Two hub replicas publish the same bundle at once: the one whose create
// loses the race reads the ConfigMap again and logs no error.
func TestPublishBundleLosingARaceIsNoError(t *testing.T) {
	key := types.NamespacedName{Namespace: "gatehouse-system", Name: "gatehouse-push-ca"}
	raced := false
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if raced {
				return c.Create(ctx, obj, opts...)
			}
			// The other replica's create lands first, with a bundle of its own.
			raced = true
			other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Data: map[string]string{BundleKey: "older"}}
			if err := c.Create(ctx, other); err != nil {
				return err
			}
			return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "configmaps"}, key.Name)
		},
	}).Build()
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		PublishBundle(ctx, c, staticBundle{bundle: []byte("bundle"), changed: make(chan struct{})}, key, nil, log)
	}()

	for {
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, key, cm); err == nil && cm.Data[BundleKey] == "bundle" {
			break
		}
		select {
		case <-ctx.Done():
			<-done
			t.Fatalf("the bundle was not published after losing the race; log:\n%s", logged.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	<-done
	if !raced {
		t.Fatal("the race was not played")
	}
	if strings.Contains(logged.String(), `"level":"ERROR"`) {
		t.Errorf("losing the race to another replica logged an error:\n%s", logged.String())
	}
}
