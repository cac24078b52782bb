package charts_test

import (
	"encoding/json"
	"fmt"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/join"
)

// TestHubAccessMatchesJoin: the member chart grants the hub exactly the
// rules `gatehousectl join` grants, and installs the same guard policy on
// managed-mode writes, for every combination of the optional parts. Two
// ways to join a cluster must not give the hub two different powers.
func TestHubAccessMatchesJoin(t *testing.T) {
	for _, webhook := range []bool{false, true} {
		for _, managed := range []bool{false, true} {
			t.Run(fmt.Sprintf("webhook=%v,managedProxies=%v", webhook, managed), func(t *testing.T) {
				r := rendering{name: "member hub access", chart: memberChart, namespace: memberNamespace, args: []string{
					"--set", fmt.Sprintf("hubAccess.webhook=%v", webhook), "--set", fmt.Sprintf("hubAccess.managedProxies=%v", managed)}}
				objs := r.render(t)
				var role rbacv1.ClusterRole
				convert(t, find(t, objs, "ClusterRole", "test-gatehouse-member-hub"), &role)
				var want []rbacv1.PolicyRule
				convertJSON(t, join.Rules(webhook, managed), &want)
				if !equality.Semantic.DeepEqual(role.Rules, want) {
					t.Errorf("the chart's ClusterRole and join's rules differ:\nchart: %+v\njoin:  %+v", role.Rules, want)
				}

				const guard = "test-gatehouse-member-hub-proxy-objects"
				if !managed {
					for _, p := range ofKind(objs, "ValidatingAdmissionPolicy") {
						if p.GetName() == guard {
							t.Errorf("without managed proxies the chart renders the guard policy %s", guard)
						}
					}
					return
				}
				var policy admissionregistrationv1.ValidatingAdmissionPolicy
				convert(t, find(t, objs, "ValidatingAdmissionPolicy", guard), &policy)
				wantPolicy, wantBinding := join.ProxyObjectsGuard(memberNamespace, "gatehouse-hub")
				var wantSpec admissionregistrationv1.ValidatingAdmissionPolicySpec
				convertJSON(t, wantPolicy.Spec, &wantSpec)
				if !equality.Semantic.DeepEqual(policy.Spec, wantSpec) {
					t.Errorf("the chart's guard policy and join's differ:\nchart: %+v\njoin:  %+v", policy.Spec, wantSpec)
				}
				var binding admissionregistrationv1.ValidatingAdmissionPolicyBinding
				convert(t, find(t, objs, "ValidatingAdmissionPolicyBinding", policy.Name), &binding)
				if binding.Spec.PolicyName != policy.Name || len(binding.Spec.ValidationActions) != 1 ||
					binding.Spec.ValidationActions[0] != wantBinding.Spec.ValidationActions[0] {
					t.Errorf("the guard policy's binding %+v does not deny with policy %s", binding.Spec, policy.Name)
				}
			})
		}
	}
}

func convert(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func convertJSON(t *testing.T, from, into any) {
	t.Helper()
	b, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}
