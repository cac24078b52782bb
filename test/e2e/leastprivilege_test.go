package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/explain"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/join"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestHubLeastPrivilege: a member joined with `gatehousectl join` gives the
// hub what it needs and no more. Acting with the hub's member credentials
// (as whoever stole them would), the test is refused a Deployment in
// kube-system, a takeover of a member admin's Deployment, a proxy that runs
// as another ServiceAccount, a Secret read by name, a Pod and a deletion.
// The real hub, working with those same credentials, serves a managed
// Gateway (statuses, events, proxies, webhook registration: the cut role is
// enough) with a restricted pod security context, refuses to provision in
// kube-system or over an admin's object and says why on the Gateway, and
// refuses member Secrets that would make it send its own token elsewhere or
// whose name collides with its own names.
func TestHubLeastPrivilege(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse")
	fleet, hubAdmin, admin := joinedFleet(t, ctx, join.Options{TokenDuration: 2 * time.Hour, Webhook: true, ManagedProxies: true, Out: testLog{t}})
	m := fleet.Members[0]
	stolen := hubMemberClient(t, ctx, hubAdmin, m.Name)
	for _, ns := range []string{"infra", "shop"} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	theirs := proxyDeployment("infra", "taken", "registry.example/admins-own:1")
	theirs.Labels = map[string]string{"app": "admins-own"}
	if err := admin.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-password", Namespace: "shop"}, StringData: map[string]string{"password": "hunter2"}}); err != nil {
		t.Fatal(err)
	}

	// The API server enforces a new ValidatingAdmissionPolicy once it has
	// compiled it; until then a write would pass for the wrong reason.
	waitFor(t, 30*time.Second, "the guard policy to be in force", func() bool {
		err := stolen.Create(ctx, proxyDeployment("kube-system", "probe", "registry.example/probe:1"), client.DryRunAll)
		return apierrors.IsForbidden(err)
	})
	t.Run("the hub's member credentials are refused", func(t *testing.T) {
		for _, c := range []struct {
			what string
			do   func() error
			want string // in the refusal; "" for RBAC's own
		}{
			{"a Deployment in kube-system", func() error {
				return stolen.Create(ctx, proxyDeployment("kube-system", "x", "registry.example/miner:1"))
			}, "never in kube-system"},
			{"a Deployment that is not a proxy", func() error {
				d := proxyDeployment("shop", "x", "registry.example/miner:1")
				d.Name = "backdoor"
				return stolen.Create(ctx, d)
			}, "named gatehouse-proxy-"},
			{"a proxy that runs as another ServiceAccount", func() error {
				d := proxyDeployment("shop", "x", "registry.example/miner:1")
				d.Spec.Template.Spec.ServiceAccountName = "default"
				return stolen.Create(ctx, d)
			}, "run as their own ServiceAccount"},
			{"taking over a member admin's Deployment", func() error {
				var d appsv1.Deployment
				if err := admin.Get(ctx, client.ObjectKeyFromObject(theirs), &d); err != nil {
					return err
				}
				patch := client.MergeFrom(d.DeepCopy())
				d.Labels = map[string]string{"gatehouse.dev/gateway": "taken"}
				d.Spec.Template.Spec.Containers[0].Image = "registry.example/miner:1"
				return stolen.Patch(ctx, &d, patch)
			}, "does not take over"},
			{"reading a tenant's Secret by name", func() error {
				return stolen.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "db-password"}, &corev1.Secret{})
			}, ""},
			{"creating a Pod", func() error {
				return stolen.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/miner:1"}}}})
			}, ""},
			{"deleting the admin's Deployment", func() error { return stolen.Delete(ctx, theirs.DeepCopy()) }, ""},
		} {
			err := c.do()
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want Forbidden%s", c.what, err, map[bool]string{true: " saying " + c.want}[c.want != ""])
			}
		}
	})

	logs := &lockedBuffer{}
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	whAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hub, err := env.StartProcess("hub", bins["gatehouse"], []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", xdsAddr,
		"--metrics-address", "0", "--health-address", "0", "--debounce", "20ms", "--proxy-image", "gatehouse-proxy:e2e",
		"--webhook-address", whAddr, "--webhook-url", "https://" + whAddr, "--certificates=false"}, io.MultiWriter(testLog{t}, logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Stop(10 * time.Second) })

	t.Run("the hub works with no more than that", func(t *testing.T) {
		if err := admin.Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-managed"},
			Spec: gwv1.GatewayClassSpec{ControllerName: "gatehouse.dev/gateway-controller"}}); err != nil {
			t.Fatal(err)
		}
		gw := managedGateway("infra", "shared")
		if err := admin.Create(ctx, gw); err != nil {
			t.Fatal(err)
		}
		var dep appsv1.Deployment
		waitFor(t, 60*time.Second, "the managed Gateway's proxies, created with the cut role", func() bool {
			return admin.Get(ctx, client.ObjectKey{Namespace: "infra", Name: "gatehouse-proxy-shared"}, &dep) == nil
		})
		waitFor(t, 30*time.Second, "the Gateway's Accepted status, written with the cut role", func() bool {
			var got gwv1.Gateway
			return admin.Get(ctx, client.ObjectKeyFromObject(gw), &got) == nil &&
				meta.IsStatusConditionTrue(got.Status.Conditions, string(gwv1.GatewayConditionAccepted))
		})
		waitFor(t, 30*time.Second, "the webhook registration gatehouse-routes, applied with the cut role", func() bool {
			_, err := kubernetes.NewForConfigOrDie(m.Config).AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, join.WebhookConfigurationName, metav1.GetOptions{})
			return err == nil
		})
		pod, c := dep.Spec.Template.Spec.SecurityContext, dep.Spec.Template.Spec.Containers[0].SecurityContext
		if pod == nil || c == nil || !ptr.Deref(pod.RunAsNonRoot, false) || pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
			ptr.Deref(c.AllowPrivilegeEscalation, true) || !ptr.Deref(c.ReadOnlyRootFilesystem, false) || c.Capabilities == nil ||
			len(c.Capabilities.Drop) != 1 || c.Capabilities.Drop[0] != "ALL" {
			t.Errorf("the proxy's security context is not the restricted profile's: pod %+v, container %+v", pod, c)
		}
	})

	t.Run("the hub refuses to provision in kube-system or over an admin's object", func(t *testing.T) {
		for _, c := range []struct{ namespace, name, want string }{
			{"kube-system", "sys", `system namespace "kube-system"`},
			{"infra", "taken", "Deployment infra/gatehouse-proxy-taken already exists and was not created by Gatehouse"},
		} {
			gw := managedGateway(c.namespace, c.name)
			if err := admin.Create(ctx, gw); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, fmt.Sprintf("Gateway %s/%s Programmed=False saying %q", c.namespace, c.name, c.want), func() bool {
				var got gwv1.Gateway
				if admin.Get(ctx, client.ObjectKeyFromObject(gw), &got) != nil {
					return false
				}
				p := meta.FindStatusCondition(got.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
				return p != nil && p.Status == metav1.ConditionFalse && p.Reason == string(gwv1.GatewayReasonInvalid) && strings.Contains(p.Message, c.want)
			})
		}
		var sa corev1.ServiceAccount
		if err := admin.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "gatehouse-proxy-sys"}, &sa); !apierrors.IsNotFound(err) {
			t.Errorf("a proxy ServiceAccount in kube-system: %v", err)
		}
		var d appsv1.Deployment
		if err := admin.Get(ctx, client.ObjectKeyFromObject(theirs), &d); err != nil {
			t.Fatal(err)
		}
		if _, ok := d.Labels["gatehouse.dev/gateway"]; ok || d.Spec.Template.Spec.Containers[0].Image != "registry.example/admins-own:1" || len(d.OwnerReferences) != 0 {
			t.Errorf("the admin's Deployment was taken over: labels %v, image %s, owners %v", d.Labels, d.Spec.Template.Spec.Containers[0].Image, d.OwnerReferences)
		}
	})

	t.Run("explain reads members with the caller's credentials", func(t *testing.T) {
		testExplainAsTenant(t, ctx, fleet, m, admin)
	})

	t.Run("forged member Secrets are refused", func(t *testing.T) {
		// A server that records the credentials presented to it. A forged
		// Secret with the token written in it does reach it (the check below
		// can see a request); one whose tokenFile names a file of the hub's
		// machine must not, nor any request at all.
		var mu sync.Mutex
		seen := map[string]bool{}
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.Header.Get("Authorization")] = true
			mu.Unlock()
			http.Error(w, "no", http.StatusForbidden)
		}))
		t.Cleanup(srv.Close)
		secretFile := filepath.Join(t.TempDir(), "hub-token")
		if err := os.WriteFile(secretFile, []byte("the-hubs-own-token"), 0o600); err != nil {
			t.Fatal(err)
		}
		ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
		forge := func(name, user string) {
			kc := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: %q, certificate-authority-data: %s}\n"+
				"contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: %s\n", srv.URL, ca, user)
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: env.HubNamespace,
				Labels: map[string]string{kubeconfig.DefaultKubeconfigSecretLabel: "true"}},
				Data: map[string][]byte{kubeconfig.DefaultKubeconfigSecretKey: []byte(kc)}}
			if _, err := hubAdmin.CoreV1().Secrets(env.HubNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		forge("forged-token", `{token: "written-in-the-secret"}`)
		forge("forged-file", fmt.Sprintf("{tokenFile: %q}", secretFile))
		waitFor(t, 30*time.Second, "the hub to try the Secret with a written token", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen["Bearer written-in-the-secret"]
		})
		time.Sleep(3 * time.Second)
		mu.Lock()
		defer mu.Unlock()
		if seen["Bearer the-hubs-own-token"] {
			t.Errorf("the hub sent the token of a file on its machine to the server a forged Secret named")
		}
		for auth := range seen {
			if auth != "Bearer written-in-the-secret" {
				t.Errorf("the server saw credentials %q", auth)
			}
		}
		if !logs.contains("tokenFile " + secretFile) {
			t.Errorf("the hub's log does not say it refused the kubeconfig's tokenFile")
		}
	})

	t.Run("a member named like the hub's own key pairs is refused", func(t *testing.T) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hub", Namespace: env.HubNamespace,
			Labels: map[string]string{kubeconfig.DefaultKubeconfigSecretLabel: "true"}},
			Data: map[string][]byte{kubeconfig.DefaultKubeconfigSecretKey: m.Kubeconfig}}
		if _, err := hubAdmin.CoreV1().Secrets(env.HubNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the hub to log that it refuses member \"hub\"", func() bool {
			return logs.contains(`member name \"hub\" is reserved`)
		})
	})
}

// hubMemberClient is a client with the credentials the hub holds for a
// member: its kubeconfig Secret on the hub.
func hubMemberClient(t *testing.T, ctx context.Context, hub kubernetes.Interface, member string) client.Client {
	t.Helper()
	s, err := hub.CoreV1().Secrets(env.HubNamespace).Get(ctx, member, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[kubeconfig.DefaultKubeconfigSecretKey])
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// proxyDeployment is a Deployment as the hub makes it for a Gateway.
func proxyDeployment(namespace, gateway, image string) *appsv1.Deployment {
	name := "gatehouse-proxy-" + gateway
	labels := map[string]string{"gatehouse.dev/gateway": gateway}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"gatehouse.dev/gateway": gateway}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{ServiceAccountName: name, Containers: []corev1.Container{{Name: "proxy", Image: image}}},
			},
		},
	}
}

func managedGateway(namespace, name string) *gwv1.Gateway {
	return &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse-managed",
			Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}},
	}
}

// lockedBuffer keeps a process's output for the test to search.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.b.Bytes(), []byte(s))
}

// testExplainAsTenant: a developer of namespace shop explains routes with
// their own credentials: their route is explained; a route in another
// namespace is not shown, although the hub's credentials (which explain no
// longer uses unless asked) would read it.
func testExplainAsTenant(t *testing.T, ctx context.Context, fleet *env.Fleet, m *env.Cluster, admin client.Client) {
	parent := []gwv1.ParentReference{{Namespace: ptr.To(gwv1.Namespace("infra")), Name: "shared"}}
	for _, r := range []*gwv1.HTTPRoute{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parent}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "internal", Namespace: "infra"}, Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parent},
			Hostnames: []gwv1.Hostname{"payroll.internal.example"}}},
	} {
		if err := admin.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// The developer may read routes in shop, and nothing else.
	if err := admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "dev", Namespace: "shop"}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "routes", Namespace: "shop"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{gwv1.GroupName}, Resources: []string{"httproutes"}, Verbs: []string{"get", "list"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dev", Namespace: "shop"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "routes"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "dev", Namespace: "shop"}}}); err != nil {
		t.Fatal(err)
	}
	tr, err := kubernetes.NewForConfigOrDie(m.Config).CoreV1().ServiceAccounts("shop").CreateToken(ctx, "dev", &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dev := rest.AnonymousClientConfig(m.Config)
	dev.BearerToken = tr.Status.Token
	// On the hub the developer has no rights at all.
	nobody, err := client.New(rest.AnonymousClientConfig(fleet.Hub.Config), client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	asDev := func(ns, name string) (string, error) {
		var out bytes.Buffer
		err := explain.Route(ctx, explain.Options{Hub: nobody, HubNamespace: env.HubNamespace, Members: []explain.Member{{Name: m.Name, Config: dev}},
			Route: types.NamespacedName{Namespace: ns, Name: name}, Out: &out})
		return out.String(), err
	}

	out, err := asDev("shop", "web")
	if err != nil || !strings.Contains(out, "cluster "+m.Name+" (generation 1)") || !strings.Contains(out, "labels could not be read from the hub") {
		t.Errorf("the developer's own route: %v\n%s", err, out)
	}
	out, err = asDev("infra", "internal")
	if err == nil || !strings.Contains(out, "forbidden") || strings.Contains(out, "payroll") {
		t.Errorf("a route of another namespace, explained with the developer's credentials: %v\n%s", err, out)
	}
	// The same request with the hub's credentials does read it: what
	// refused above is the developer's own RBAC, not a missing route.
	var hubOut bytes.Buffer
	hubAdmin, err := client.New(fleet.Hub.Config, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := explain.Route(ctx, explain.Options{Hub: hubAdmin, HubNamespace: env.HubNamespace, HubCredentials: true, Cluster: m.Name,
		Route: types.NamespacedName{Namespace: "infra", Name: "internal"}, Out: &hubOut}); err != nil {
		t.Errorf("explain with the hub's credentials: %v\n%s", err, hubOut.String())
	}
	// Without --hub-credentials and without members named, explain refuses
	// rather than fall back to the hub's credentials.
	if err := explain.Route(ctx, explain.Options{Hub: hubAdmin, HubNamespace: env.HubNamespace,
		Route: types.NamespacedName{Namespace: "infra", Name: "internal"}, Out: io.Discard}); err == nil || !strings.Contains(err.Error(), "--hub-credentials") {
		t.Errorf("explain with no member named: %v, want a refusal naming --hub-credentials", err)
	}
}
