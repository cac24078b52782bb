package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/join"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestManagedProxiesHardened: a managed-mode Gateway in a namespace that
// enforces the restricted Pod Security Standard, with a parametersRef
// ConfigMap asking for 3 replicas and its own resources, gets from the hub
// (working with the credentials `gatehousectl join` grants) a Deployment
// with those settings and the class's pull secret, a PodDisruptionBudget
// and a Service with named ports; a Pod made from the Deployment's template
// is admitted in that namespace, where the API server refuses a pod
// without the proxy's security context. A Gateway whose parametersRef
// names a ConfigMap that does not exist, or holds a bad value, is
// Accepted=False with reason InvalidParameters and gets no proxies.
func TestManagedProxiesHardened(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse")
	fleet, _, admin := joinedFleet(t, ctx, join.Options{TokenDuration: time.Hour, ManagedProxies: true, Out: io.Discard})
	const ns = "shop"
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-managed", Namespace: "gatehouse-system"},
			Data: map[string]string{"imagePullSecrets": "[{name: registry}]", "maxReplicas": "4"}},
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-managed"}, Spec: gwv1.GatewayClassSpec{
			ControllerName: "gatehouse.dev/gateway-controller",
			ParametersRef:  &gwv1.ParametersReference{Kind: "ConfigMap", Name: "gatehouse-managed", Namespace: ptr.To(gwv1.Namespace("gatehouse-system"))}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-proxies", Namespace: ns}, Data: map[string]string{
			"replicas":  "3",
			"resources": "requests: {cpu: 250m, memory: 192Mi}\nlimits: {memory: 768Mi}",
		}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "greedy-proxies", Namespace: ns}, Data: map[string]string{"replicas": "40"}},
		gatewayWithParameters(ns, "web", "web-proxies"),
		gatewayWithParameters(ns, "lost", "no-such-settings"),
		gatewayWithParameters(ns, "greedy", "greedy-proxies"),
	} {
		if err := admin.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}

	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, "hub", bins["gatehouse"], "--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", xdsAddr,
		"--metrics-address", "0", "--health-address", "0", "--debounce", "20ms", "--proxy-image", "gatehouse-proxy:e2e", "--certificates=false")

	name := client.ObjectKey{Namespace: ns, Name: "gatehouse-proxy-web"}
	var (
		dep appsv1.Deployment
		pdb policyv1.PodDisruptionBudget
		svc corev1.Service
	)
	waitFor(t, 60*time.Second, "the web Gateway's Deployment, PodDisruptionBudget and Service", func() bool {
		return admin.Get(ctx, name, &dep) == nil && admin.Get(ctx, name, &pdb) == nil && admin.Get(ctx, name, &svc) == nil
	})

	t.Run("the Deployment follows the Gateway's and the class's settings", func(t *testing.T) {
		spec := dep.Spec.Template.Spec
		c := spec.Containers[0]
		if got := ptr.Deref(dep.Spec.Replicas, 0); got != 3 {
			t.Errorf("replicas %d, want 3 (the Gateway's parametersRef)", got)
		}
		if req, lim := c.Resources.Requests, c.Resources.Limits; req.Cpu().String() != "250m" || req.Memory().String() != "192Mi" || lim.Memory().String() != "768Mi" {
			t.Errorf("resources %+v, want the Gateway's", c.Resources)
		}
		if len(spec.ImagePullSecrets) != 1 || spec.ImagePullSecrets[0].Name != "registry" {
			t.Errorf("imagePullSecrets %+v, want the class's", spec.ImagePullSecrets)
		}
		if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Errorf("rollout %+v: want maxUnavailable 0", dep.Spec.Strategy)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.LivenessProbe.HTTPGet.Port.String() != "admin" || c.ReadinessProbe.HTTPGet.Port.String() != "admin" {
			t.Errorf("probes %+v %+v: want both on the port named admin", c.LivenessProbe, c.ReadinessProbe)
		}
		named := map[string]int32{}
		for _, p := range c.Ports {
			named[p.Name] = p.ContainerPort
		}
		if named["admin"] != 9901 || named["port-80"] != 80 {
			t.Errorf("container ports %+v: want admin 9901 and port-80", c.Ports)
		}
		if pre := c.Lifecycle; pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil || pre.PreStop.Sleep.Seconds != 5 ||
			ptr.Deref(spec.TerminationGracePeriodSeconds, 0) != 60 {
			t.Errorf("drain: preStop %+v, grace %v", c.Lifecycle, spec.TerminationGracePeriodSeconds)
		}
		if len(spec.TopologySpreadConstraints) != 2 {
			t.Errorf("topology spread %+v: want nodes and zones", spec.TopologySpreadConstraints)
		}
	})

	t.Run("a PodDisruptionBudget and a Service with named ports", func(t *testing.T) {
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels["gatehouse.dev/gateway"] != "web" {
			t.Errorf("PodDisruptionBudget %+v", pdb.Spec)
		}
		if refs := pdb.GetOwnerReferences(); len(refs) != 1 || refs[0].Kind != "Gateway" || refs[0].Name != "web" {
			t.Errorf("the PodDisruptionBudget is not owned by the Gateway: %v", refs)
		}
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "port-80" || svc.Spec.Ports[0].Port != 80 {
			t.Errorf("Service %+v", svc.Spec)
		}
		if svc.Labels[gwv1.GatewayNameLabelKey] != "web" {
			t.Errorf("Service labels %v lack %s", svc.Labels, gwv1.GatewayNameLabelKey)
		}
	})

	t.Run("a Pod of the template is admitted where restricted is enforced", func(t *testing.T) {
		pod := func() *corev1.Pod {
			tpl := dep.Spec.Template.DeepCopy()
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "proxy-dry-run", Namespace: ns, Labels: tpl.Labels, Annotations: tpl.Annotations}, Spec: tpl.Spec}
		}
		if err := admin.Create(ctx, pod(), client.DryRunAll); err != nil {
			t.Fatalf("the API server refuses the proxies' pod: %v", err)
		}
		bare := pod()
		bare.Spec.Containers[0].SecurityContext = nil
		if err := admin.Create(ctx, bare, client.DryRunAll); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
			t.Fatalf("a pod without the container's security context: %v; want Forbidden by restricted (or the namespace does not enforce it)", err)
		}
	})

	t.Run("a bad or missing parametersRef is InvalidParameters and gets no proxies", func(t *testing.T) {
		for gw, want := range map[string]string{
			"lost":   "ConfigMap shop/no-such-settings does not exist",
			"greedy": `data[replicas]: Invalid value: "40": must be a whole number from 1 to 4`,
		} {
			waitFor(t, 30*time.Second, fmt.Sprintf("Gateway %s Accepted=False InvalidParameters saying %q", gw, want), func() bool {
				var got gwv1.Gateway
				if admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: gw}, &got) != nil {
					return false
				}
				c := meta.FindStatusCondition(got.Status.Conditions, string(gwv1.GatewayConditionAccepted))
				return c != nil && c.Status == metav1.ConditionFalse && c.Reason == string(gwv1.GatewayReasonInvalidParameters) && strings.Contains(c.Message, want)
			})
			if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gatehouse-proxy-" + gw}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
				t.Errorf("Gateway %s with bad parameters got proxies: %v", gw, err)
			}
		}
	})
}

func gatewayWithParameters(namespace, name, configMap string) *gwv1.Gateway {
	gw := managedGateway(namespace, name)
	gw.Spec.Infrastructure = &gwv1.GatewayInfrastructure{ParametersRef: &gwv1.LocalParametersReference{Kind: "ConfigMap", Name: configMap}}
	return gw
}

// joinedFleet starts a hub and one member that the hub reaches with the
// credentials `gatehousectl join` grants: env registers members with their
// admin kubeconfig, and join replaces it with the hub's own identity and
// its cut role. opts says what else join sets up. It returns the fleet and
// admin clients of the hub and of the member.
func joinedFleet(t *testing.T, ctx context.Context, opts join.Options) (*env.Fleet, kubernetes.Interface, client.Client) {
	t.Helper()
	fleet, err := env.Start(ctx, env.Options{Members: 1, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	m := fleet.Members[0]
	hubAdmin := kubernetes.NewForConfigOrDie(fleet.Hub.Config)
	if err := hubAdmin.CoreV1().Secrets(env.HubNamespace).Delete(ctx, m.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	opts.Cluster, opts.HubNamespace, opts.MemberNamespace, opts.CreateRBAC = m.Name, env.HubNamespace, "gatehouse-system", true
	if err := join.Join(ctx, hubAdmin, m.Config, opts); err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(m.Config, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return fleet, hubAdmin, admin
}
