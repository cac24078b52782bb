package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/manifest"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestJoinAndLeave joins a real member to a real hub and checks that the
// hub's kubeconfig authenticates as the hub's ServiceAccount and that the
// ServiceAccount may do what the hub does there and no more; that joining
// again revokes the previous token and keeps the cluster's labels; and that
// leaving revokes the token and removes what join and the hub made.
func TestJoinAndLeave(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub and a member control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	fleet, err := env.Start(ctx, env.Options{Members: 1})
	if err != nil {
		t.Fatalf("starting the fleet: %v", err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	member := fleet.Members[0]
	hub := kubernetes.NewForConfigOrDie(fleet.Hub.Config)
	// env registered member-1 with its admin kubeconfig; join replaces that.
	if err := hub.CoreV1().Secrets(env.HubNamespace).Delete(ctx, member.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	rejoin := []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "join", member.Name, "--member-kubeconfig", member.KubeconfigPath, "--token-duration", "2h"}
	join := append(slices.Clone(rejoin), "--labels", "env=test")
	runOK(t, "join", join, "applied ClusterRole gatehouse-hub", "minted a token for gatehouse-system/gatehouse-hub, bound to Secret gatehouse-system/gatehouse-hub-credential-",
		"verified: the token authenticates as system:serviceaccount:gatehouse-system:gatehouse-hub", "hub: created Secret gatehouse-system/member-1",
		"hub: cluster member-1 has the labels env=test")
	first := hubConfig(ctx, t, hub, member.Name)
	if err := listSecrets(ctx, first); err != nil {
		t.Fatalf("listing Secrets with the first token: %v", err)
	}

	runOK(t, "joining again without --labels", rejoin, "hub: updated Secret gatehouse-system/member-1",
		"hub: kept the labels of cluster member-1: env=test", "member-1: revoked the previous token: deleted Secret gatehouse-system/gatehouse-hub-credential-")
	secret, err := hub.CoreV1().Secrets(env.HubNamespace).Get(ctx, member.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Labels[kubeconfig.DefaultKubeconfigSecretLabel] != "true" || secret.Labels["env"] != "test" {
		t.Errorf("hub Secret labels %v after joining again without --labels, want the provider's label and env=test", secret.Labels)
	}
	t.Run("the previous token is revoked", func(t *testing.T) { checkRefused(ctx, t, first) })

	cfg := hubConfig(ctx, t, hub, member.Name)
	asHub := kubernetes.NewForConfigOrDie(cfg)
	review, err := asHub.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("authenticating with the hub Secret's kubeconfig: %v", err)
	}
	if got, want := review.Status.UserInfo.Username, "system:serviceaccount:gatehouse-system:gatehouse-hub"; got != want {
		t.Errorf("the kubeconfig authenticates as %q, want %q", got, want)
	}

	t.Run("access", func(t *testing.T) { checkAccess(ctx, t, asHub) })
	t.Run("requests", func(t *testing.T) { checkRequests(ctx, t, member.Config, cfg) })

	t.Run("migrate ingress from the cluster", func(t *testing.T) { checkMigrate(ctx, t, member) })
	t.Run("token secret needs the token controller", func(t *testing.T) {
		code, stdout, stderr := gatehousectl(t, append(join, "--token-secret", "--token-secret-timeout", "2s")...)
		if code != exitError || !strings.Contains(stderr, "kube-controller-manager") {
			t.Errorf("exit code %d, want %d with a word on the token controller; stderr:\n%s", code, exitError, stderr)
		}
		if !strings.Contains(stdout, "the token minted by this failed join is revoked") {
			t.Errorf("the failed join does not say it deleted its credential:\n%s", stdout)
		}
		if err := listSecrets(ctx, cfg); err != nil {
			t.Errorf("after a failed join, the stored token no longer works: %v", err)
		}
	})
	t.Run("labels change only when given", func(t *testing.T) {
		runOK(t, "join --labels env=prod", append(slices.Clone(rejoin), "--labels", "env=prod"),
			"hub: changed the labels of cluster member-1 to env=prod (they were env=test)")
		runOK(t, "join --labels ''", append(slices.Clone(rejoin), "--labels", ""),
			"hub: changed the labels of cluster member-1 to (none) (they were env=prod)")
		s, err := hub.CoreV1().Secrets(env.HubNamespace).Get(ctx, member.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Labels) != 1 || s.Labels[kubeconfig.DefaultKubeconfigSecretLabel] != "true" {
			t.Errorf("hub Secret labels %v after --labels '', want only the provider's label", s.Labels)
		}
	})

	t.Run("leave", func(t *testing.T) { checkLeave(ctx, t, fleet, member) })
	t.Run("leave --all", func(t *testing.T) { checkLeaveAll(ctx, t, fleet, member, join) })
	if code, stdout, _ := gatehousectl(t, "--kubeconfig", fleet.Hub.KubeconfigPath, "leave", member.Name); code != exitOK || !strings.Contains(stdout, "was not a member") {
		t.Errorf("leaving again: exit code %d, output:\n%s", code, stdout)
	}
}

// runOK runs gatehousectl and checks that it succeeds and says each of want.
func runOK(t *testing.T, what string, args []string, want ...string) {
	t.Helper()
	code, stdout, stderr := gatehousectl(t, args...)
	if code != exitOK {
		t.Fatalf("%s: exit code %d\nstdout:\n%s\nstderr:\n%s", what, code, stdout, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stdout, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, stdout)
		}
	}
}

// hubConfig is the client configuration of the kubeconfig the hub holds
// for a member.
func hubConfig(ctx context.Context, t *testing.T, hub kubernetes.Interface, cluster string) *rest.Config {
	t.Helper()
	s, err := hub.CoreV1().Secrets(env.HubNamespace).Get(ctx, cluster, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[kubeconfig.DefaultKubeconfigSecretKey])
	if err != nil {
		t.Fatalf("the hub Secret's kubeconfig: %v", err)
	}
	return cfg
}

// listSecrets lists every Secret of the member, as the hub's cache does.
func listSecrets(ctx context.Context, cfg *rest.Config) error {
	_, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	return err
}

// checkRefused waits until the member refuses a request made with a
// revoked token; its API server may accept a token it has just seen for
// up to 10 seconds more.
func checkRefused(ctx context.Context, t *testing.T, cfg *rest.Config) {
	t.Helper()
	var err error
	for range 60 {
		if err = listSecrets(ctx, cfg); apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Errorf("the revoked token still lists the member's Secrets after 30 s: %v", err)
}

// checkAccess asks the member, as the hub, what it may do.
func checkAccess(ctx context.Context, t *testing.T, asHub kubernetes.Interface) {
	const gw = "gateway.networking.k8s.io"
	for _, tc := range []struct {
		attrs authorizationv1.ResourceAttributes
		allow bool
	}{
		{authorizationv1.ResourceAttributes{Verb: "list", Group: gw, Resource: "httproutes"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Group: gw, Resource: "grpcroutes"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Group: gw, Resource: "tlsroutes"}, true},
		{authorizationv1.ResourceAttributes{Verb: "list", Group: gw, Resource: "udproutes"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: gw, Resource: "tcproutes", Subresource: "status", Namespace: "web"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: gw, Resource: "httproutes", Subresource: "status", Namespace: "web"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: gw, Resource: "gateways", Subresource: "status", Namespace: "infra"}, true},
		{authorizationv1.ResourceAttributes{Verb: "list", Group: "discovery.k8s.io", Resource: "endpointslices"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"}, true},
		{authorizationv1.ResourceAttributes{Verb: "patch", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: "gatehouse-routes"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "apps", Resource: "deployments", Namespace: "infra"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Resource: "events", Namespace: "web"}, true},
		// The hub's TLS Secret cache lists by field selector, which RBAC
		// cannot express: list is cluster-wide, get is not granted.
		{authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, true},

		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "kube-system", Name: "any"}, false},
		{authorizationv1.ResourceAttributes{Verb: "delete", Resource: "namespaces", Name: "web"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: gw, Resource: "httproutes", Namespace: "web"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: gw, Resource: "tcproutes", Namespace: "web"}, false},
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: gw, Resource: "gateways", Namespace: "infra"}, false},
		{authorizationv1.ResourceAttributes{Verb: "patch", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: "other-webhook"}, false},
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: "apps", Resource: "deployments", Namespace: "infra"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Namespace: "web"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}, false},
	} {
		a := tc.attrs
		name := strings.TrimSpace(strings.Join([]string{a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name}, " "))
		t.Run(name, func(t *testing.T) {
			r, err := asHub.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status.Allowed != tc.allow {
				t.Errorf("allowed = %v, want %v (%s)", r.Status.Allowed, tc.allow, r.Status.Reason)
			}
		})
	}
}

// checkRequests makes real requests as the hub: read every HTTPRoute, write
// one's status, and fail to read a Secret in kube-system.
func checkRequests(ctx context.Context, t *testing.T, adminCfg, hubCfg *rest.Config) {
	s := scheme()
	admin, err := client.New(adminCfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	asHub, err := client.New(hubCfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	route := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "web"},
		Spec:       gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared"}}}},
	}
	if err := admin.Create(ctx, route); err != nil {
		t.Fatal(err)
	}

	var routes gwv1.HTTPRouteList
	if err := asHub.List(ctx, &routes); err != nil || len(routes.Items) != 1 {
		t.Fatalf("listing HTTPRoutes cluster-wide as the hub: %d routes, %v", len(routes.Items), err)
	}
	got := routes.Items[0]
	got.Status.Parents = []gwv1.RouteParentStatus{{
		ParentRef:      gwv1.ParentReference{Name: "shared"},
		ControllerName: "gatehouse.dev/gateway-controller",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
			LastTransitionTime: metav1.Now(), ObservedGeneration: got.Generation}},
	}}
	if err := asHub.Status().Update(ctx, &got); err != nil {
		t.Errorf("writing the HTTPRoute's status as the hub: %v", err)
	}
	got.Labels = map[string]string{"changed": "by-hub"}
	if err := asHub.Update(ctx, &got); !apierrors.IsForbidden(err) {
		t.Errorf("changing the HTTPRoute itself as the hub: %v, want Forbidden", err)
	}
	var secret corev1.Secret
	if err := asHub.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "any"}, &secret); !apierrors.IsForbidden(err) {
		t.Errorf("reading a Secret in kube-system as the hub: %v, want Forbidden", err)
	}
	if err := asHub.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}); !apierrors.IsForbidden(err) {
		t.Errorf("deleting a Namespace as the hub: %v, want Forbidden", err)
	}
}

// checkMigrate converts an Ingress read from the cluster, then applies it.
func checkMigrate(ctx context.Context, t *testing.T, member *env.Cluster) {
	admin, err := client.New(member.Config, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := manifest.ReadFile(filepath.Join("testdata", "migrate", "shop.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"shop", "blog"} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range docs {
		var obj client.Object = &corev1.Service{}
		if d.Kind == "Ingress" {
			obj = &networkingv1.Ingress{}
		}
		if err := d.Into(obj); err != nil {
			t.Fatal(err)
		}
		if err := admin.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	migrateArgs := []string{"--kubeconfig", member.KubeconfigPath, "migrate", "ingress", "-n", "shop", "--gateway", "infra/shared"}
	code, stdout, stderr := gatehousectl(t, migrateArgs...)
	if code != exitOK || !strings.Contains(stdout, "name: shop\n  namespace: shop") || !strings.Contains(stdout, "port: 8080") || strings.Contains(stdout, "blog") {
		t.Fatalf("migrate: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "server-snippet") {
		t.Errorf("migrate: stderr lacks the note on server-snippet:\n%s", stderr)
	}
	for range 2 { // applying twice is fine
		if code, stdout, stderr = gatehousectl(t, append(migrateArgs, "--apply")...); code != exitOK {
			t.Fatalf("migrate --apply: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	}
	var route gwv1.HTTPRoute
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "shop"}, &route); err != nil {
		t.Fatalf("the applied HTTPRoute: %v", err)
	}
	if len(route.Spec.Hostnames) != 1 || route.Spec.Hostnames[0] != "shop.example.com" || route.Spec.ParentRefs[0].Name != "shared" {
		t.Errorf("the applied HTTPRoute's spec: %+v", route.Spec)
	}
}
