package join_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/join"
)

// grants reports whether one of the rules allows verb on group/resource for
// any object name (resourceNames empty).
func grants(rules []*rbacv1ac.PolicyRuleApplyConfiguration, group, resource, verb string) bool {
	for _, r := range rules {
		if (slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, "*")) &&
			(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*")) &&
			(slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*")) && len(r.ResourceNames) == 0 {
			return true
		}
	}
	return false
}

// TestRulesGrantNoMoreThanTheHubUses: what a thief of the hub's member
// credentials gets is what the hub uses, for every combination of options;
// the powers that would reach beyond Gatehouse's own objects are absent.
func TestRulesGrantNoMoreThanTheHubUses(t *testing.T) {
	type access struct{ group, resource, verb string }
	never := []access{
		{"", "secrets", "get"},                  // one Secret by name: the cache never asks
		{"", "pods", "create"},                  // run code
		{"", "pods", "get"},                     //
		{"", "pods/exec", "create"},             //
		{"", "serviceaccounts/token", "create"}, // mint tokens of other identities
		{"", "configmaps", "update"},
		{"", "namespaces", "delete"},
		{"apps", "deployments", "delete"}, // the garbage collector removes proxies
		{"apps", "deployments", "update"}, // patch only, which the guard policy checks
		{"", "serviceaccounts", "delete"},
		{"policy", "poddisruptionbudgets", "delete"}, // owned by the Gateway, like the Deployment
		{"policy", "poddisruptionbudgets", "update"}, // patch only, which the guard policy checks
		{"", "services", "delete"},
		{"apps", "daemonsets", "create"},
		{"gateway.networking.k8s.io", "httproutes", "update"},
		{"gateway.networking.k8s.io", "gateways", "delete"},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch"}, // only gatehouse-routes, by name
		{"admissionregistration.k8s.io", "validatingadmissionpolicies", "patch"},
		{"rbac.authorization.k8s.io", "clusterrolebindings", "create"},
		{"rbac.authorization.k8s.io", "roles", "escalate"},
		{"", "users", "impersonate"},
		{"", "serviceaccounts", "impersonate"},
	}
	for _, webhook := range []bool{false, true} {
		for _, managed := range []bool{false, true} {
			rules := join.Rules(webhook, managed)
			name := fmt.Sprintf("webhook=%v,managedProxies=%v", webhook, managed)
			for _, r := range rules {
				for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
					if slices.Contains(list, "*") {
						t.Errorf("%s: a wildcard rule %+v", name, r)
					}
				}
			}
			for _, a := range never {
				if grants(rules, a.group, a.resource, a.verb) {
					t.Errorf("%s: the hub may %s %s/%s", name, a.verb, a.group, a.resource)
				}
			}
			for _, a := range []access{
				{"gateway.networking.k8s.io", "httproutes", "watch"},
				{"gateway.networking.k8s.io", "httproutes/status", "update"},
				{"", "secrets", "list"},
				{"authentication.k8s.io", "tokenreviews", "create"},
			} {
				if !grants(rules, a.group, a.resource, a.verb) {
					t.Errorf("%s: the hub may not %s %s/%s, which it needs", name, a.verb, a.group, a.resource)
				}
			}
			if got := grants(rules, "apps", "deployments", "create"); got != managed {
				t.Errorf("%s: may create Deployments: %v", name, got)
			}
		}
	}
}

// TestMemberObjectsGuardManagedWrites: with managed proxies, join installs
// the policy that confines the hub's writes, bound to deny.
func TestMemberObjectsGuardManagedWrites(t *testing.T) {
	o := join.Options{Cluster: "member-1", HubNamespace: "gatehouse-system", MemberNamespace: "gatehouse-system", CreateRBAC: true}
	kinds := func(o join.Options) []string {
		var out []string
		for _, obj := range join.MemberObjects(o) {
			out = append(out, fmt.Sprintf("%T", obj))
		}
		return out
	}
	if k := strings.Join(kinds(o), " "); strings.Contains(k, "ValidatingAdmissionPolicy") {
		t.Errorf("without managed proxies join applies %s", k)
	}
	o.ManagedProxies = true
	k := strings.Join(kinds(o), " ")
	if !strings.Contains(k, "ValidatingAdmissionPolicyApplyConfiguration") || !strings.Contains(k, "ValidatingAdmissionPolicyBindingApplyConfiguration") {
		t.Errorf("with managed proxies join applies %s, without the guard policy and its binding", k)
	}
	policy, _ := join.ProxyObjectsGuard("gatehouse-system", join.ServiceAccount)
	exprs := ""
	for _, v := range policy.Spec.Validations {
		exprs += *v.Expression + "\n"
	}
	for _, want := range []string{`"kube-system"`, `"gatehouse-system"`, "oldObject.metadata.labels", "serviceAccountName"} {
		if !strings.Contains(exprs, want) {
			t.Errorf("the guard policy does not check %s:\n%s", want, exprs)
		}
	}
	if got := *policy.Spec.MatchConditions[0].Expression; got != `request.userInfo.username == "system:serviceaccount:gatehouse-system:gatehouse-hub"` {
		t.Errorf("the guard policy applies to %s", got)
	}
}

// TestHubObjectsBindCertificatesInOneNamespace: on the hub, join lets the
// hub read issued key pairs in the member's certificate namespace only.
func TestHubObjectsBindCertificatesInOneNamespace(t *testing.T) {
	o := join.Options{Cluster: "member-1", HubNamespace: "gatehouse-system", HubServiceAccount: "gatehouse", HubCertificatesRole: "gatehouse-certificates"}
	objs := join.HubObjects(o)
	if len(objs) != 2 {
		t.Fatalf("join applies %d objects on the hub, want a namespace and a RoleBinding", len(objs))
	}
	ns, ok := objs[0].(*corev1ac.NamespaceApplyConfiguration)
	if !ok || *ns.Name != "gatehouse-member-1" || ns.Labels[join.LabelCluster] != "member-1" {
		t.Errorf("namespace %+v, want gatehouse-member-1 labelled with its cluster", objs[0])
	}
	rb, ok := objs[1].(*rbacv1ac.RoleBindingApplyConfiguration)
	if !ok || *rb.Namespace != "gatehouse-member-1" || *rb.RoleRef.Kind != "ClusterRole" || *rb.RoleRef.Name != "gatehouse-certificates" ||
		len(rb.Subjects) != 1 || *rb.Subjects[0].Name != "gatehouse" || *rb.Subjects[0].Namespace != "gatehouse-system" {
		t.Errorf("RoleBinding %+v, want gatehouse-certificates bound to gatehouse-system/gatehouse in gatehouse-member-1", objs[1])
	}
	o.HubServiceAccount = ""
	if objs := join.HubObjects(o); len(objs) != 0 {
		t.Errorf("without a hub ServiceAccount join applies %d objects on the hub", len(objs))
	}
}
