package env_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

func TestFleetStartsHubAndMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	start := time.Now()
	fleet, err := env.Start(ctx, env.Options{Members: 3})
	if err != nil {
		t.Fatalf("starting the fleet: %v", err)
	}
	t.Logf("hub and 3 members up in %v", time.Since(start).Round(time.Millisecond))
	stopped := false
	defer func() {
		if !stopped {
			_ = fleet.Stop()
		}
	}()

	if got := len(fleet.Members); got != 3 {
		t.Fatalf("got %d members, want 3", got)
	}
	pids := fleet.PIDs()
	if len(pids) != 8 {
		t.Fatalf("got %d control-plane processes (%v), want 8: etcd and kube-apiserver for 4 clusters", len(pids), pids)
	}

	for _, m := range fleet.Members {
		t.Run("route in "+m.Name, func(t *testing.T) {
			c := clientFromKubeconfig(t, m.Kubeconfig)
			route := &gwv1.HTTPRoute{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "default"},
				Spec: gwv1.HTTPRouteSpec{
					CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared"}}},
					Hostnames:       []gwv1.Hostname{gwv1.Hostname(m.Name + ".example.test")},
				},
			}
			if err := c.Create(ctx, route); err != nil {
				t.Fatalf("creating HTTPRoute: %v", err)
			}
			var got gwv1.HTTPRoute
			if err := c.Get(ctx, client.ObjectKeyFromObject(route), &got); err != nil {
				t.Fatalf("reading HTTPRoute back: %v", err)
			}
			if len(got.Spec.Hostnames) != 1 || string(got.Spec.Hostnames[0]) != m.Name+".example.test" {
				t.Fatalf("read back hostnames %v, want [%s.example.test]", got.Spec.Hostnames, m.Name)
			}
		})
	}

	t.Run("members registered on the hub", func(t *testing.T) {
		hub := clientFromKubeconfig(t, fleet.Hub.Kubeconfig)
		var secrets corev1.SecretList
		err := hub.List(ctx, &secrets, client.InNamespace(env.HubNamespace),
			client.MatchingLabels{kubeconfig.DefaultKubeconfigSecretLabel: "true"})
		if err != nil {
			t.Fatalf("listing member Secrets: %v", err)
		}
		byName := map[string]corev1.Secret{}
		for _, s := range secrets.Items {
			byName[s.Name] = s
		}
		for _, m := range fleet.Members {
			s, ok := byName[m.Name]
			if !ok {
				t.Errorf("no Secret for %s on the hub (have %d)", m.Name, len(secrets.Items))
				continue
			}
			// The stored kubeconfig must reach that member, not just exist.
			c := clientFromKubeconfig(t, s.Data[kubeconfig.DefaultKubeconfigSecretKey])
			var route gwv1.HTTPRoute
			if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "shop"}, &route); err != nil {
				t.Errorf("%s: kubeconfig from the hub Secret cannot read the member's route: %v", m.Name, err)
			} else if string(route.Spec.Hostnames[0]) != m.Name+".example.test" {
				t.Errorf("%s: hub Secret points at the wrong cluster (route hostname %s)", m.Name, route.Spec.Hostnames[0])
			}
		}
		if len(secrets.Items) != 3 {
			t.Errorf("got %d member Secrets on the hub, want 3", len(secrets.Items))
		}
	})

	dir := fleet.Dir
	if err := fleet.Stop(); err != nil {
		t.Fatalf("stopping the fleet: %v", err)
	}
	stopped = true
	for _, pid := range pids {
		if env.Alive(pid) {
			t.Errorf("process %d is still alive after Stop", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("fleet directory %s still exists after Stop (stat: %v)", dir, err)
	}
}

func clientFromKubeconfig(t *testing.T, kubeconfig []byte) client.Client {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatalf("parsing kubeconfig: %v", err)
	}
	scheme := env.Scheme()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("building client: %v", err)
	}
	return c
}
