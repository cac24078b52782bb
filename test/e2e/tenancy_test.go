package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/hub"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
	policyv1 "github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The tenancy scenario: tenant "web" holds *.web.apps.example.test and the
// namespace "web"; tenant "payments" holds checkout.apps.example.test and
// the namespace "payments". Namespace "shop" belongs to no tenant and is
// the platform's (the default). A warn policy asks web's routes for a team
// label.
const (
	checkoutHost = "checkout.apps.example.test"
	warnPolicy   = `package gatehouse_policies.team

violation contains {"msg": msg, "details": {"field": "metadata.labels"}} if {
	not input.review.object.metadata.labels.team
	msg := "routes must carry a team label (metadata.labels.team)"
}
`
)

func TestTenancyAdmissionAndOwnership(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse", "gatehouse-proxy")
	kubectl := kubectlPath(t)

	fleet, hubClient := fleetWithTenants(t, ctx, 2,
		&policyv1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Name: "require-team-label"}, Spec: policyv1.RoutePolicySpec{
			Rego: warnPolicy, Enforcement: policyv1.Warn, Match: policyv1.PolicyMatch{Tenants: []string{"web"}},
		}})

	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	whAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hubArgs := []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", xdsAddr,
		"--metrics-address", "0", "--health-address", "0", "--debounce", "20ms", "--startup-grace", "5s",
		"--webhook-address", whAddr, "--webhook-url", "https://" + whAddr, "--webhook-failure-policy", "Ignore"}
	hubProc := start(t, "hub", bins["gatehouse"], hubArgs...)

	caFile := pushCA(t, ctx, fleet)
	proxy := func() env.ProxyOptions {
		return env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: xdsAddr, CAFile: caFile, CacheDir: t.TempDir(), Log: testLog{t}}
	}
	m1, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{
		{Namespace: "shop", Hostname: "*.apps.example.test", Answer: "platform-1"},
		{Namespace: "web", Hostname: "a.web.apps.example.test", Answer: "web-1"},
	}, proxy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m1.Close() })
	m2, err := env.SetUpSharedGateway(ctx, 2, fleet.Members[1], []env.Tenant{
		{Namespace: "payments", Hostname: checkoutHost, Answer: "payments-2"},
	}, proxy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m2.Close() })

	// Whatever happens below, a request for payments' hostname must never
	// reach another tenant's backend, nor the platform's catch-all.
	var leaks atomic.Int64
	var leaked atomic.Value
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go func() {
		for pollCtx.Err() == nil {
			for _, m := range []*env.SharedGateway{m1, m2} {
				if got := get(m.Address, checkoutHost); got != "" && got != "payments-2" {
					leaks.Add(1)
					leaked.Store(fmt.Sprintf("%s answered %q", m.Cluster.Name, got))
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	t.Run("routes inside their delegation are served; the platform catch-all leaves tenants' hostnames alone", func(t *testing.T) {
		waitAnswer(t, m1.Address, "a.web.apps.example.test", "web-1")
		waitAnswer(t, m1.Address, "anything.apps.example.test", "platform-1")
		waitAnswer(t, m2.Address, checkoutHost, "payments-2")
		// payments has no route in member-1: its hostname is not served
		// there, rather than falling to the catch-all.
		if got := get(m1.Address, checkoutHost); got != "" {
			t.Errorf("member-1 answered %q for %s, which only payments may serve", got, checkoutHost)
		}
	})

	t.Run("the hub registers its webhook in every member", func(t *testing.T) {
		for _, m := range []*env.SharedGateway{m1, m2} {
			waitFor(t, 30*time.Second, m.Cluster.Name+"'s ValidatingWebhookConfiguration", func() bool {
				var vwc admissionregistrationv1.ValidatingWebhookConfiguration
				if m.Client.Get(ctx, types.NamespacedName{Name: hub.WebhookConfigurationName}, &vwc) != nil || len(vwc.Webhooks) != 1 {
					return false
				}
				w := vwc.Webhooks[0]
				return len(w.ClientConfig.CABundle) > 0 && w.ClientConfig.URL != nil && strings.Contains(*w.ClientConfig.URL, "/validate/"+m.Cluster.Name+"/")
			})
		}
	})

	t.Run("a hostname of another tenant is denied at apply, with what to change", func(t *testing.T) {
		out, err := kubectlApply(kubectl, m1.Cluster, routeYAML("web", "grab", map[string]string{"team": "web"}, "b.web.apps.example.test", checkoutHost))
		if err == nil {
			t.Fatalf("kubectl apply succeeded: %s", out)
		}
		want := `spec.hostnames[1]: Forbidden: "checkout.apps.example.test" is delegated to tenant "payments"; this namespace belongs to tenant "web" (delegated: *.web.apps.example.test)`
		if !strings.Contains(out, want) {
			t.Errorf("kubectl said:\n%s\nwant it to contain:\n%s", out, want)
		}
		if !strings.Contains(out, `admission webhook "routes.gatehouse.dev" denied the request`) {
			t.Errorf("the denial does not come from our webhook:\n%s", out)
		}
	})

	t.Run("a route breaking a warn policy is admitted with the warning", func(t *testing.T) {
		out, err := kubectlApply(kubectl, m1.Cluster, routeYAML("web", "unlabelled", nil, "c.web.apps.example.test"))
		if err != nil {
			t.Fatalf("kubectl apply failed: %v\n%s", err, out)
		}
		want := `Warning: RoutePolicy "require-team-label": routes must carry a team label (metadata.labels.team)`
		if !strings.Contains(out, want) {
			t.Errorf("kubectl said:\n%s\nwant it to contain:\n%s", out, want)
		}
		waitParentCondition(t, ctx, m1.Client, "web", "unlabelled", translate.ConditionPolicyCompliant, metav1.ConditionFalse, translate.ReasonPolicyWarning)
		waitParentCondition(t, ctx, m1.Client, "web", "unlabelled", string(gwv1.RouteConditionAccepted), metav1.ConditionTrue, string(gwv1.RouteReasonAccepted))
	})

	t.Run("an allowed route is admitted quietly and served", func(t *testing.T) {
		out, err := kubectlApply(kubectl, m1.Cluster, routeYAML("web", "labelled", map[string]string{"team": "web"}, "d.web.apps.example.test"))
		if err != nil {
			t.Fatalf("kubectl apply failed: %v\n%s", err, out)
		}
		if strings.Contains(out, "Warning") {
			t.Errorf("unexpected warning: %s", out)
		}
		waitAnswer(t, m1.Address, "d.web.apps.example.test", "web-1")
		waitParentCondition(t, ctx, m1.Client, "web", "labelled", translate.ConditionPolicyCompliant, metav1.ConditionTrue, translate.ReasonPolicyCompliant)
	})

	t.Run("with the hub unreachable and failurePolicy Ignore, status still refuses", func(t *testing.T) {
		hubProc.Kill()
		out, err := kubectlApply(kubectl, m1.Cluster, routeYAML("web", "claim", map[string]string{"team": "web"}, checkoutHost))
		if err != nil {
			t.Fatalf("kubectl apply failed while the hub was down (failurePolicy Ignore): %v\n%s", err, out)
		}
		hubProc = start(t, "hub", bins["gatehouse"], hubArgs...)
		waitParentCondition(t, ctx, m1.Client, "web", "claim", string(gwv1.RouteConditionAccepted), metav1.ConditionFalse, "HostnameOwnedByOtherTenant")
		r := route(t, ctx, m1.Client, "web", "claim")
		msg := meta.FindStatusCondition(r.Status.Parents[0].Conditions, string(gwv1.RouteConditionAccepted)).Message
		if !strings.Contains(msg, `is delegated to tenant "payments"`) {
			t.Errorf("the condition does not say who holds the hostname: %s", msg)
		}
		// The owner is served everywhere it has a route; nowhere else does
		// anyone answer for its hostname.
		waitAnswer(t, m2.Address, checkoutHost, "payments-2")
		waitAnswer(t, m1.Address, "a.web.apps.example.test", "web-1")
		time.Sleep(time.Second)
		if got := get(m1.Address, checkoutHost); got != "" {
			t.Errorf("member-1 answered %q for %s", got, checkoutHost)
		}
	})

	t.Run("Tenant and RoutePolicy status tell the platform team", func(t *testing.T) {
		waitFor(t, 30*time.Second, "tenant web's status to list the refused route", func() bool {
			var web tenancyv1.Tenant
			if hubClient.Get(ctx, types.NamespacedName{Name: "web"}, &web) != nil {
				return false
			}
			for _, v := range web.Status.Violations {
				if v.Cluster == "member-1" && v.Name == "claim" && v.Reason == "HostnameOwnedByOtherTenant" {
					return web.Status.AttachedRoutes >= 3 && len(web.Status.Namespaces) == 1
				}
			}
			return false
		})
		waitFor(t, 30*time.Second, "the policy's violations to be counted", func() bool {
			var p policyv1.RoutePolicy
			if hubClient.Get(ctx, types.NamespacedName{Name: "require-team-label"}, &p) != nil {
				return false
			}
			c := meta.FindStatusCondition(p.Status.Conditions, "Compiled")
			return c != nil && c.Status == metav1.ConditionTrue && p.Status.Violations >= 2
		})
	})

	stopPoll()
	if n := leaks.Load(); n > 0 {
		t.Errorf("%d requests for %s reached someone other than payments; last: %v", n, checkoutHost, leaked.Load())
	}
}

// fleetWithTenants starts a hub and members member clusters and creates on
// the hub the tenants "web" (namespace web, *.web.apps.example.test) and
// "payments" (namespace payments, checkoutHost), then objs.
func fleetWithTenants(t *testing.T, ctx context.Context, members int, objs ...client.Object) (*env.Fleet, client.Client) {
	t.Helper()
	fleet, err := env.Start(ctx, env.Options{Members: members, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	hubClient, err := client.New(fleet.Hub.Config, client.Options{Scheme: env.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	tenants := []client.Object{
		&tenancyv1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"web"}}},
			Hostnames:  []gwv1.Hostname{"*.web.apps.example.test"},
		}},
		&tenancyv1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "payments"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"payments"}}},
			Hostnames:  []gwv1.Hostname{checkoutHost},
		}},
	}
	for _, o := range append(tenants, objs...) {
		if err := hubClient.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return fleet, hubClient
}

func kubectlPath(t *testing.T) string {
	root, err := env.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin", "kubectl")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("kubectl is built by 'make tools': %v", err)
	}
	return p
}

// kubectlApply runs kubectl apply as a tenant would and returns what it
// printed, warnings included.
func kubectlApply(kubectl string, c *env.Cluster, manifest string) (string, error) {
	cmd := exec.Command(kubectl, "--kubeconfig", c.KubeconfigPath, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func routeYAML(ns, name string, labels map[string]string, hosts ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: %s\n  namespace: %s\n", name, ns)
	if len(labels) > 0 {
		b.WriteString("  labels:\n")
		for k, v := range labels {
			fmt.Fprintf(&b, "    %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(&b, "spec:\n  parentRefs:\n  - name: %s\n    namespace: %s\n  hostnames:\n", env.GatewayName, env.GatewayNamespace)
	for _, h := range hosts {
		fmt.Fprintf(&b, "  - %q\n", h)
	}
	b.WriteString("  rules:\n  - backendRefs:\n    - name: echo\n      port: 80\n")
	return b.String()
}

func route(t *testing.T, ctx context.Context, c client.Client, ns, name string) *gwv1.HTTPRoute {
	t.Helper()
	var r gwv1.HTTPRoute
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func waitParentCondition(t *testing.T, ctx context.Context, c client.Client, ns, name, condType string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var r gwv1.HTTPRoute
		if c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &r) == nil && len(r.Status.Parents) > 0 {
			if cond := meta.FindStatusCondition(r.Status.Parents[0].Conditions, condType); cond != nil {
				if cond.Status == status && cond.Reason == reason && cond.ObservedGeneration == r.Generation {
					return
				}
				last = fmt.Sprintf("%s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("route %s/%s: want %s=%s %s; last seen: %s", ns, name, condType, status, reason, last)
}

func waitAnswer(t *testing.T, addr, host, want string) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%s to answer %q for %s", addr, want, host), func() bool { return get(addr, host) == want })
}
