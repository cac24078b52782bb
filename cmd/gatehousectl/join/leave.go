package join

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"
)

// DefaultRevokeTimeout covers the member API server's authentication
// cache, which accepts a revoked token for up to 10 seconds.
const DefaultRevokeTimeout = 30 * time.Second

var background = metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}

// Leave deletes the member's Secret on the hub and, given the member's admin
// credentials, undoes in the member what join and the hub did there, in an
// order that leaves a running hub no way to put any of it back:
//
//  1. the hub Secret: the hub stops serving the cluster;
//  2. the hub's credentials: the Secrets this cluster's tokens are bound
//     to, then a wait until the member refuses the hub's token;
//  3. what the hub made: the webhook registration (nothing answers it any
//     more; with failurePolicy Fail it would refuse every route change)
//     and the managed proxies' objects (managed.go); the Gateways stay;
//  4. what join made: the managed-proxy guard policy and its binding, the
//     ClusterRoleBinding, ClusterRole, token Secret and ServiceAccount, each
//     only when it carries join's label, so what charts/gatehouse-member
//     installed stays. The namespace stays too: other things may live in it.
//
// Statuses stay as the hub last wrote them, with their observedGeneration:
// they are the last word of the controller that wrote them, removing them
// would take write access to every route's status, and a re-join rewrites
// them at once. Missing objects are not an error.
func Leave(ctx context.Context, hub kubernetes.Interface, member *rest.Config, o Options) error {
	if msgs := validation.IsDNS1123Label(o.Cluster); len(msgs) > 0 {
		return fmt.Errorf("CLUSTER %q: %s", o.Cluster, strings.Join(msgs, "; "))
	}
	prev, err := readRegistration(ctx, hub, o.HubNamespace, o.Cluster)
	if err != nil {
		return err
	}
	switch err := hub.CoreV1().Secrets(o.HubNamespace).Delete(ctx, o.Cluster, background); {
	case apierrors.IsNotFound(err):
		o.printf("hub: Secret %s/%s does not exist: %s was not a member", o.HubNamespace, o.Cluster, o.Cluster)
	case err != nil:
		return fmt.Errorf("hub: deleting Secret %s/%s: %w", o.HubNamespace, o.Cluster, err)
	default:
		o.printf("hub: deleted Secret %s/%s: the hub stops serving %s", o.HubNamespace, o.Cluster, o.Cluster)
	}
	if member == nil {
		if prev.exists {
			o.printf("%s: the member keeps the hub's token, its webhook registration and its managed proxies: leave again with --member-kubeconfig or --member-context to revoke the token and remove them", o.Cluster)
		}
		return nil
	}
	mc, err := kubernetes.NewForConfig(member)
	if err != nil {
		return err
	}
	if err := revoke(ctx, mc, prev, o); err != nil {
		return err
	}
	if err := deleteLabelled(ctx, o, hubMadeSteps(ctx, mc)); err != nil {
		return err
	}
	if err := deleteManaged(ctx, member, o); err != nil {
		return err
	}
	return deleteLabelled(ctx, o, joinMadeSteps(ctx, mc, o.MemberNamespace))
}

// revoke deletes every credential Secret of the cluster (the one the hub's
// token is bound to, and any a join left behind), then waits until the
// member refuses that token.
func revoke(ctx context.Context, mc kubernetes.Interface, prev registration, o Options) error {
	creds := map[string]credential{}
	if c, ok := parseCredential(prev.credential); ok {
		creds[c.String()] = c
	}
	sel := labels.SelectorFromSet(credentialLabels(o.Cluster)).String()
	list, err := mc.CoreV1().Secrets(o.MemberNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: listing the credential Secrets in %s: %w", o.Cluster, o.MemberNamespace, err)
	}
	if list != nil {
		for _, s := range list.Items {
			c := credential{namespace: s.Namespace, name: s.Name}
			creds[c.String()] = c
		}
	}
	revoked := map[string]bool{}
	for key, c := range creds {
		deleted, err := deleteCredential(ctx, mc, c, o.Cluster)
		if err != nil {
			return fmt.Errorf("%s: revoking the hub's token: %w", o.Cluster, err)
		}
		if deleted {
			revoked[key] = true
			o.printf("%s: deleted Secret %s: the tokens bound to it are revoked", o.Cluster, c)
		}
	}
	if prev.token == "" {
		return nil
	}
	if bound := boundSecret(prev.token); bound == "" || !revoked[bound] {
		o.printf("%s: note: the hub's token is not bound to a credential Secret join made (an earlier gatehousectl, or another tool, wrote the kubeconfig); it is revoked only with its ServiceAccount", o.Cluster)
		return nil
	}
	refused, err := awaitRefused(ctx, mc, prev.token, o.RevokeTimeout)
	switch {
	case err != nil:
		return fmt.Errorf("%s: checking that the hub's token is refused: %w", o.Cluster, err)
	case refused:
		o.printf("%s: the member refuses the hub's token", o.Cluster)
	default:
		o.printf("%s: warning: the member still accepted the hub's token after %v; a hub still running may put back what is removed next: run leave again", o.Cluster, o.RevokeTimeout)
	}
	return nil
}

// step deletes one object when it carries the label that says who made it.
type step struct {
	what       string
	key, value string
	get        func() (metav1.Object, error)
	deleteIt   func() error
}

func hubMadeSteps(ctx context.Context, mc kubernetes.Interface) []step {
	webhooks := mc.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	return []step{{"ValidatingWebhookConfiguration " + WebhookConfigurationName, "app.kubernetes.io/managed-by", "gatehouse",
		func() (metav1.Object, error) { return webhooks.Get(ctx, WebhookConfigurationName, metav1.GetOptions{}) },
		func() error { return webhooks.Delete(ctx, WebhookConfigurationName, background) }}}
}

func joinMadeSteps(ctx context.Context, mc kubernetes.Interface, ns string) []step {
	policies, bindings := mc.AdmissionregistrationV1().ValidatingAdmissionPolicies(), mc.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	roles, roleBindings := mc.RbacV1().ClusterRoles(), mc.RbacV1().ClusterRoleBindings()
	secrets, accounts := mc.CoreV1().Secrets(ns), mc.CoreV1().ServiceAccounts(ns)
	return []step{
		{"ValidatingAdmissionPolicyBinding " + ProxyObjectsPolicy, LabelJoined, FieldManager,
			func() (metav1.Object, error) { return bindings.Get(ctx, ProxyObjectsPolicy, metav1.GetOptions{}) },
			func() error { return bindings.Delete(ctx, ProxyObjectsPolicy, background) }},
		{"ValidatingAdmissionPolicy " + ProxyObjectsPolicy, LabelJoined, FieldManager,
			func() (metav1.Object, error) { return policies.Get(ctx, ProxyObjectsPolicy, metav1.GetOptions{}) },
			func() error { return policies.Delete(ctx, ProxyObjectsPolicy, background) }},
		{"ClusterRoleBinding " + ServiceAccount, LabelJoined, FieldManager,
			func() (metav1.Object, error) { return roleBindings.Get(ctx, ServiceAccount, metav1.GetOptions{}) },
			func() error { return roleBindings.Delete(ctx, ServiceAccount, background) }},
		{"ClusterRole " + ServiceAccount, LabelJoined, FieldManager,
			func() (metav1.Object, error) { return roles.Get(ctx, ServiceAccount, metav1.GetOptions{}) },
			func() error { return roles.Delete(ctx, ServiceAccount, background) }},
		{"Secret " + ns + "/" + TokenSecret, LabelJoined, FieldManager,
			func() (metav1.Object, error) { return secrets.Get(ctx, TokenSecret, metav1.GetOptions{}) },
			func() error { return secrets.Delete(ctx, TokenSecret, background) }},
		{"ServiceAccount " + ns + "/" + ServiceAccount, LabelJoined, FieldManager,
			func() (metav1.Object, error) { return accounts.Get(ctx, ServiceAccount, metav1.GetOptions{}) },
			func() error { return accounts.Delete(ctx, ServiceAccount, background) }},
	}
}

func deleteLabelled(ctx context.Context, o Options, steps []step) error {
	for _, s := range steps {
		obj, err := s.get()
		if err == nil && obj.GetLabels()[s.key] != s.value {
			o.printf("%s: kept %s: it lacks the label %s=%s, so neither join nor the hub made it", o.Cluster, s.what, s.key, s.value)
			continue
		}
		if err == nil {
			err = s.deleteIt()
		}
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("%s: deleting %s: %w", o.Cluster, s.what, err)
		default:
			o.printf("%s: deleted %s", o.Cluster, s.what)
		}
	}
	return nil
}

// LeaveAll makes every member leave, as before uninstalling the hub: each
// with the admin credentials memberConfig gives for it. It changes nothing
// unless it can reach every member.
func LeaveAll(ctx context.Context, hub kubernetes.Interface, memberConfig func(cluster string) (*rest.Config, error), o Options) error {
	sel := kubeconfig.DefaultKubeconfigSecretLabel + "=true"
	list, err := hub.CoreV1().Secrets(o.HubNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("hub: listing the member Secrets in %s: %w", o.HubNamespace, err)
	}
	if len(list.Items) == 0 {
		o.printf("hub: no member Secrets in %s: no member to leave", o.HubNamespace)
		return nil
	}
	configs := map[string]*rest.Config{}
	var unreachable []string
	for _, s := range list.Items {
		cfg, err := reachable(ctx, s.Name, memberConfig)
		if err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s: %v", s.Name, err))
			continue
		}
		configs[s.Name] = cfg
	}
	if len(unreachable) > 0 {
		return fmt.Errorf("leave --all changed nothing: it cannot reach %d of %d members as their admin:\n  %s\n"+
			"give each member a context named after it in --member-kubeconfig (or the default kubeconfig), "+
			"or first make those members leave one by one (gatehousectl leave CLUSTER, with --member-kubeconfig or --member-context where you can reach it)",
			len(unreachable), len(list.Items), strings.Join(unreachable, "\n  "))
	}
	var errs []error
	for _, s := range list.Items {
		m := o
		m.Cluster = s.Name
		errs = append(errs, Leave(ctx, hub, configs[s.Name], m))
	}
	return errors.Join(errs...)
}

func reachable(ctx context.Context, cluster string, memberConfig func(string) (*rest.Config, error)) (*rest.Config, error) {
	cfg, err := memberConfig(cluster)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return nil, fmt.Errorf("reading the cluster: %w", err)
	}
	return cfg, nil
}
