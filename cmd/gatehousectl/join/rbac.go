package join

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
)

// WebhookConfigurationName is the ValidatingWebhookConfiguration the hub
// keeps in every member (operator/hub.WebhookConfigurationName).
const WebhookConfigurationName = "gatehouse-routes"

// ProxyObjectsPolicy is the ValidatingAdmissionPolicy (and its binding) that
// confines the hub's managed-mode writes; see ProxyObjectsGuard.
const ProxyObjectsPolicy = "gatehouse-hub-proxy-objects"

// Rules are what the hub does in a member, and nothing more; every rule is
// explained in docs/operators.md ("What the hub may do in a member"). The
// ClusterRole of charts/gatehouse-member (templates/hub-access.yaml) holds
// the same rules: test/charts compares them.
//
// The hub reads through informers only (list and watch, never get), writes
// status with Update, events with create and patch, and managed proxies
// with CreateOrPatch; it deletes nothing: the proxies' objects are owned by
// their Gateway, so the garbage collector removes them.
func Rules(webhook, managedProxies bool) []*rbacv1ac.PolicyRuleApplyConfiguration {
	const gw = "gateway.networking.k8s.io"
	rules := []*rbacv1ac.PolicyRuleApplyConfiguration{
		// Every input of translate: the hub caches them and re-translates
		// the cluster when one changes.
		rule([]string{gw}, []string{"gatewayclasses", "gateways", "listenersets", "httproutes", "grpcroutes", "tlsroutes", "tcproutes", "udproutes",
			"backendtlspolicies", "referencegrants"}, "list", "watch"),
		// The statuses the hub writes (Status().Update of what it read).
		rule([]string{gw}, []string{"gatewayclasses/status", "gateways/status", "listenersets/status", "httproutes/status", "grpcroutes/status",
			"tlsroutes/status", "tcproutes/status", "udproutes/status", "backendtlspolicies/status"}, "update"),
		// Namespaces (tenancy by namespace labels), Services and
		// EndpointSlices (backends), ConfigMaps (GatewayClass parameters,
		// BackendTLSPolicy CA certificates).
		rule([]string{""}, []string{"namespaces", "services", "configmaps"}, "list", "watch"),
		rule([]string{"discovery.k8s.io"}, []string{"endpointslices"}, "list", "watch"),
		// Listener certificates (certificateRefs). The hub asks only for
		// Secrets of type kubernetes.io/tls (a field selector), but RBAC has
		// no selectors: list and watch are granted on every Secret. No get.
		rule([]string{""}, []string{"secrets"}, "list", "watch"),
		// Events about the objects whose conditions change.
		rule([]string{"", "events.k8s.io"}, []string{"events"}, "create", "patch"),
		// Proxies present ServiceAccount tokens of this cluster; the hub asks
		// the cluster who they are.
		rule([]string{"authentication.k8s.io"}, []string{"tokenreviews"}, "create"),
	}
	if webhook {
		// The admission webhook's registration, server-side applied (a
		// patch, and a create the first time), and only that one.
		r := rule([]string{"admissionregistration.k8s.io"}, []string{"validatingwebhookconfigurations"}, "create", "patch")
		rules = append(rules, r.WithResourceNames(WebhookConfigurationName))
	}
	if managedProxies {
		rules = append(rules,
			// Managed mode: each Gateway's proxy ServiceAccount, Deployment,
			// PodDisruptionBudget and Service, and the push CA bundle
			// ConfigMap beside them (CreateOrPatch through the cache).
			// ProxyObjectsGuard narrows these writes to labelled objects
			// outside system namespaces, which RBAC cannot say.
			rule([]string{""}, []string{"serviceaccounts"}, "list", "watch", "create", "patch"),
			rule([]string{""}, []string{"services", "configmaps"}, "create", "patch"),
			rule([]string{"apps"}, []string{"deployments"}, "list", "watch", "create", "patch"),
			rule([]string{"policy"}, []string{"poddisruptionbudgets"}, "list", "watch", "create", "patch"),
			// They are owned by their Gateway with blockOwnerDeletion, which
			// the OwnerReferencesPermissionEnforcement admission plugin allows
			// only to who may update the owner's finalizers.
			rule([]string{gw}, []string{"gateways/finalizers"}, "update"),
		)
	}
	return rules
}

func rule(groups, resources []string, verbs ...string) *rbacv1ac.PolicyRuleApplyConfiguration {
	return rbacv1ac.PolicyRule().WithAPIGroups(groups...).WithResources(resources...).WithVerbs(verbs...)
}

// SystemNamespaces are where the hub never creates proxies.
var SystemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// ProxyObjectsGuard is what RBAC cannot say about managed mode: the hub's
// ServiceAccount (in memberNamespace) may create and change only
// ServiceAccounts, Services, Deployments and PodDisruptionBudgets named
// gatehouse-proxy-* (and the ConfigMap PushCABundle) that carry the label
// gatehouse.dev/gateway, never take over an object without it, never
// write in a system namespace or its own, and its Deployments run
// as their own proxy ServiceAccount. The member's API server enforces it
// for every request with the hub's credentials, whoever holds them.
func ProxyObjectsGuard(memberNamespace, serviceAccount string) (*admissionregistrationv1ac.ValidatingAdmissionPolicyApplyConfiguration, *admissionregistrationv1ac.ValidatingAdmissionPolicyBindingApplyConfiguration) {
	user := "system:serviceaccount:" + memberNamespace + ":" + serviceAccount
	forbidden := append(append([]string{}, SystemNamespaces...), memberNamespace)
	quoted := make([]string, len(forbidden))
	for i, n := range forbidden {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	const label = "'gatehouse.dev/gateway'"
	v := func(expr, msg string) *admissionregistrationv1ac.ValidationApplyConfiguration {
		return admissionregistrationv1ac.Validation().WithExpression(expr).WithMessage(msg).WithReason("Forbidden")
	}
	policy := admissionregistrationv1ac.ValidatingAdmissionPolicy(ProxyObjectsPolicy).WithLabels(managedBy()).
		WithSpec(admissionregistrationv1ac.ValidatingAdmissionPolicySpec().
			WithFailurePolicy(admissionregistrationv1.Fail).
			WithMatchConstraints(admissionregistrationv1ac.MatchResources().WithResourceRules(
				admissionregistrationv1ac.NamedRuleWithOperations().
					WithOperations(admissionregistrationv1.Create, admissionregistrationv1.Update).
					WithAPIGroups("", "apps", "policy").WithAPIVersions("*").WithResources("serviceaccounts", "services", "configmaps", "deployments", "poddisruptionbudgets"))).
			WithMatchConditions(admissionregistrationv1ac.MatchCondition().WithName("the-gatehouse-hub").
				WithExpression(fmt.Sprintf("request.userInfo.username == %q", user))).
			WithValidations(
				v(fmt.Sprintf("!(request.namespace in [%s])", strings.Join(quoted, ", ")),
					"the Gatehouse hub creates proxies only in namespaces of the Gateways it serves, never in "+strings.Join(forbidden, ", ")),
				v("object.metadata.name.startsWith('gatehouse-proxy-')",
					"the Gatehouse hub writes only its proxies' objects, named gatehouse-proxy-<gateway> (and gatehouse-proxy-<gateway>-ca)"),
				v("has(object.metadata.labels) && "+label+" in object.metadata.labels",
					"the Gatehouse hub's objects carry the label gatehouse.dev/gateway"),
				v("request.operation != 'UPDATE' || (has(oldObject.metadata.labels) && "+label+" in oldObject.metadata.labels)",
					"the Gatehouse hub does not take over an object it did not create (it lacks the label gatehouse.dev/gateway)"),
				v("request.resource.resource != 'deployments' || (has(object.spec.template.spec.serviceAccountName) && object.spec.template.spec.serviceAccountName == object.metadata.name)",
					"the Gatehouse hub's proxies run as their own ServiceAccount, named like their Deployment"),
			))
	binding := admissionregistrationv1ac.ValidatingAdmissionPolicyBinding(ProxyObjectsPolicy).WithLabels(managedBy()).
		WithSpec(admissionregistrationv1ac.ValidatingAdmissionPolicyBindingSpec().WithPolicyName(ProxyObjectsPolicy).
			WithValidationActions(admissionregistrationv1.Deny))
	return policy, binding
}
