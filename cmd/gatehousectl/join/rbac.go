package join

import (
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
)

// WebhookConfigurationName is the ValidatingWebhookConfiguration the hub
// keeps in every member (operator/hub.WebhookConfigurationName).
const WebhookConfigurationName = "gatehouse-routes"

// Rules are what the hub does in a member, and nothing more. They match the
// ClusterRole of charts/gatehouse-member (templates/hub-access.yaml) but for
// Secrets, which the hub only lists and watches, and the managed proxies'
// objects, which it never deletes (the Gateway owns them, so the garbage
// collector does).
func Rules(webhook, managedProxies bool) []*rbacv1ac.PolicyRuleApplyConfiguration {
	const gw = "gateway.networking.k8s.io"
	rules := []*rbacv1ac.PolicyRuleApplyConfiguration{
		// Every input of translate: the hub caches them and re-translates
		// the cluster when one changes.
		rule([]string{gw}, []string{"gatewayclasses", "gateways", "listenersets", "httproutes", "grpcroutes", "backendtlspolicies", "referencegrants"},
			"get", "list", "watch"),
		// The statuses the hub writes (Status().Update).
		rule([]string{gw}, []string{"gatewayclasses/status", "gateways/status", "listenersets/status", "httproutes/status", "grpcroutes/status", "backendtlspolicies/status"},
			"get", "update", "patch"),
		// Namespaces (tenancy by namespace labels), Services and
		// EndpointSlices (backends), ConfigMaps (GatewayClass parameters).
		rule([]string{""}, []string{"namespaces", "services", "configmaps"}, "get", "list", "watch"),
		rule([]string{"discovery.k8s.io"}, []string{"endpointslices"}, "get", "list", "watch"),
		// The hub caches only Secrets of type kubernetes.io/tls (listener
		// certificates), by field selector; RBAC cannot say "only TLS", so
		// list and watch are cluster-wide. No get: the cache never asks for
		// one Secret by name.
		rule([]string{""}, []string{"secrets"}, "list", "watch"),
		// Events about the objects whose conditions change.
		rule([]string{"", "events.k8s.io"}, []string{"events"}, "create", "patch", "update"),
		// Proxies present ServiceAccount tokens of this cluster; the hub asks
		// the cluster who they are.
		rule([]string{"authentication.k8s.io"}, []string{"tokenreviews"}, "create"),
	}
	if webhook {
		// The admission webhook's registration, server-side applied, and
		// only that one.
		r := rule([]string{"admissionregistration.k8s.io"}, []string{"validatingwebhookconfigurations"}, "get", "create", "update", "patch")
		rules = append(rules, r.WithResourceNames(WebhookConfigurationName))
	}
	if managedProxies {
		rules = append(rules,
			// Managed mode: each Gateway's proxy ServiceAccount, Deployment
			// and Service (CreateOrPatch through the cache).
			rule([]string{""}, []string{"serviceaccounts", "services"}, "get", "list", "watch", "create", "update", "patch"),
			rule([]string{"apps"}, []string{"deployments"}, "get", "list", "watch", "create", "update", "patch"),
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
