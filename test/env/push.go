package env

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PushCABundle waits until the hub running against the hub cluster has
// published the CA bundle of its push server (the ConfigMap
// gatehouse-push-ca in the hub namespace, as 'gatehousectl join' reads it),
// writes it to dir/push-ca.crt and returns the path, for proxies'
// --xds-ca-file.
func PushCABundle(ctx context.Context, hub *Cluster, dir string) (string, error) {
	c, err := client.New(hub.Config, client.Options{Scheme: Scheme()})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cm := &corev1.ConfigMap{}
	for {
		err := c.Get(ctx, client.ObjectKey{Namespace: HubNamespace, Name: "gatehouse-push-ca"}, cm)
		if err == nil && cm.Data["ca.crt"] != "" {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the hub did not publish its push CA bundle (ConfigMap %s/gatehouse-push-ca): %v", HubNamespace, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "push-ca.crt")
	return path, os.WriteFile(path, []byte(cm.Data["ca.crt"]), 0o600)
}
