package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/join"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// checkLeave: with the member's admin credentials, leave revokes the hub's
// token and removes the webhook registration and the managed proxies'
// objects the hub made, and nothing else.
func checkLeave(ctx context.Context, t *testing.T, fleet *env.Fleet, member *env.Cluster) {
	hub := kubernetes.NewForConfigOrDie(fleet.Hub.Config)
	hubCfg := hubConfig(ctx, t, hub, member.Name)
	admin, err := client.New(member.Config, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	asHub, err := client.New(hubCfg, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}
	for _, obj := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "infra"}}, gw, fleetProxy()} {
		if err := admin.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	// What the hub makes in the member, made with its credentials, which
	// the member's RBAC and guard policy let through.
	for _, obj := range managedProxy(gw) {
		if err := asHub.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s as the hub: %v", obj, obj.GetName(), err)
		}
	}
	if err := asHub.Patch(ctx, deadWebhook(), client.Apply, client.FieldOwner("gatehouse"), client.ForceOwnership); err != nil {
		t.Fatalf("registering the webhook as the hub: %v", err)
	}
	route := func(name string) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: name},
			Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "shared"}}}}}
	}
	// The API server applies a registration once its informer has it.
	refused := false
	for i := 0; i < 50 && !refused; i++ {
		refused = admin.Create(ctx, route("before"), client.DryRunAll) != nil
		time.Sleep(100 * time.Millisecond)
	}
	if !refused {
		t.Fatal("routes are admitted while the webhook registration points at nothing with failurePolicy Fail: the test shows nothing")
	}

	runOK(t, "leave", []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "leave", member.Name, "--member-kubeconfig", member.KubeconfigPath},
		"hub: deleted Secret gatehouse-system/member-1: the hub stops serving member-1",
		"member-1: deleted Secret gatehouse-system/gatehouse-hub-credential-", "member-1: the member refuses the hub's token",
		"member-1: deleted ValidatingWebhookConfiguration gatehouse-routes",
		"member-1: deleted Deployment infra/gatehouse-proxy-shared, made by the hub for Gateway infra/shared",
		"member-1: deleted Service infra/gatehouse-proxy-shared", "member-1: deleted ConfigMap infra/gatehouse-proxy-shared-ca",
		"member-1: deleted ServiceAccount infra/gatehouse-proxy-shared", "member-1: deleted ClusterRole gatehouse-hub")

	checkRefused(ctx, t, hubCfg)
	for _, obj := range managedProxy(gw) {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
			t.Errorf("after leave, the hub's %T %s: %v, want NotFound", obj, obj.GetName(), err)
		}
	}
	for _, obj := range []client.Object{fleetProxy(), gw, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-system"}}} {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Errorf("leave must keep %T %s, which the hub did not make: %v", obj, obj.GetName(), err)
		}
	}
	if err := admin.Create(ctx, route("after")); err != nil {
		t.Errorf("after leave, creating a route: %v", err)
	}
	if err := admin.Get(ctx, client.ObjectKey{Name: "gatehouse-hub"}, &rbacv1.ClusterRole{}); !apierrors.IsNotFound(err) {
		t.Errorf("after leave, the member's ClusterRole: %v, want NotFound", err)
	}
}

// checkLeaveAll: leave --all changes nothing unless it reaches every
// member as its admin, then makes each leave. The member's hub identity is
// the member chart's here (join --create-rbac=false): leave keeps it, and
// the token is revoked all the same.
func checkLeaveAll(ctx context.Context, t *testing.T, fleet *env.Fleet, member *env.Cluster, join []string) {
	hub := kubernetes.NewForConfigOrDie(fleet.Hub.Config)
	admin, err := client.New(member.Config, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range chartHubAccess() {
		if err := admin.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	runOK(t, "join --create-rbac=false", append(slices.Clone(join), "--create-rbac=false"))
	hubCfg := hubConfig(ctx, t, hub, member.Name)
	if err := listSecrets(ctx, hubCfg); err != nil {
		t.Fatalf("the token minted for the chart's ServiceAccount: %v", err)
	}

	code, _, stderr := gatehousectl(t, "--kubeconfig", fleet.Hub.KubeconfigPath, "leave", "--all", "--member-kubeconfig", member.KubeconfigPath)
	if code != exitError || !strings.Contains(stderr, "leave --all changed nothing") || !strings.Contains(stderr, `member-1: context "member-1" does not exist`) {
		t.Errorf("leave --all without a context for member-1: exit code %d, want %d and a word on the context; stderr:\n%s", code, exitError, stderr)
	}
	if _, err := hub.CoreV1().Secrets(env.HubNamespace).Get(ctx, member.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("a refused leave --all changed the hub Secret: %v", err)
	}

	runOK(t, "leave --all", []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "leave", "--all", "--member-kubeconfig", namedContext(t, member)},
		"hub: deleted Secret gatehouse-system/member-1", "member-1: the member refuses the hub's token",
		"member-1: kept ServiceAccount gatehouse-system/gatehouse-hub: it lacks the label gatehouse.dev/joined-by=gatehousectl")
	checkRefused(ctx, t, hubCfg)
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "gatehouse-system", Name: "gatehouse-hub"}, &corev1.ServiceAccount{}); err != nil {
		t.Errorf("leave must keep the member chart's ServiceAccount: %v", err)
	}
	runOK(t, "leave --all with no members", []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "leave", "--all"},
		"hub: no member Secrets in gatehouse-system")
}

// namedContext writes the member's admin kubeconfig with its context named
// after the member, as leave --all reads it.
func namedContext(t *testing.T, member *env.Cluster) string {
	t.Helper()
	cfg, err := clientcmd.Load(member.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Contexts[cfg.CurrentContext]
	cfg.Contexts = map[string]*clientcmdapi.Context{member.Name: c}
	cfg.CurrentContext = member.Name
	path := filepath.Join(t.TempDir(), "fleet.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// managedProxy is what the hub makes for a managed-mode Gateway
// (operator/hub/provision.go): labelled gatehouse.dev/gateway and
// controlled by the Gateway.
func managedProxy(gw *gwv1.Gateway) []client.Object {
	const name = "gatehouse-proxy-shared"
	meta := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: gw.Namespace, Name: n, Labels: map[string]string{"gatehouse.dev/gateway": gw.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: gwv1.GroupVersion.String(), Kind: "Gateway", Name: gw.Name, UID: gw.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}}
	}
	labels := map[string]string{"gatehouse.dev/gateway": gw.Name}
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: meta(name)},
		&corev1.ConfigMap{ObjectMeta: meta(name + "-ca"), Data: map[string]string{"ca.crt": "-"}},
		&corev1.Service{ObjectMeta: meta(name), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "port-80", Port: 80}}}},
		&appsv1.Deployment{ObjectMeta: meta(name), Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{ServiceAccountName: name,
				Containers: []corev1.Container{{Name: "proxy", Image: "gatehouse-proxy"}}}}}},
	}
}

// fleetProxy is a proxy of the member chart's fleet: labelled like the
// hub's, but owned by no Gateway.
func fleetProxy() *appsv1.Deployment {
	labels := map[string]string{"gatehouse.dev/gateway": "shared", "app.kubernetes.io/managed-by": "Helm"}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "gatehouse-member-proxy-shared", Labels: labels},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "proxy", Image: "gatehouse-proxy"}}}}}}
}

// deadWebhook is the hub's webhook registration once the hub is gone: it
// points at nothing, and with failurePolicy Fail refuses every route.
func deadWebhook() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-routes", Labels: map[string]string{"app.kubernetes.io/managed-by": "gatehouse"}},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "routes.gatehouse.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/validate")},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{gwv1.GroupName}, APIVersions: []string{"*"}, Resources: []string{"httproutes"}}}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

// chartHubAccess is the hub's identity as charts/gatehouse-member makes it:
// not labelled as join's.
func chartHubAccess() []client.Object {
	var rules []rbacv1.PolicyRule
	for _, r := range join.Rules(true, true) {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: r.Resources, Verbs: r.Verbs, ResourceNames: r.ResourceNames})
	}
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "gatehouse-system", Name: "gatehouse-hub"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-member-hub"}, Rules: rules},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-member-hub"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "gatehouse-member-hub"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "gatehouse-system", Name: "gatehouse-hub"}}},
	}
}
