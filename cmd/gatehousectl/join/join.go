// Package join registers a member cluster with the hub, as
// `gatehousectl join` does: in the member, a ServiceAccount with the least
// privileges the hub needs there; on the hub, a Secret holding a kubeconfig
// that authenticates as that ServiceAccount, labelled so that the hub's
// multicluster-runtime kubeconfig provider engages the cluster.
package join

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/operator/members"
)

const (
	// FieldManager owns what join applies.
	FieldManager = "gatehousectl"
	// ServiceAccount is the hub's identity in a member; the ClusterRole and
	// ClusterRoleBinding carry the same name.
	ServiceAccount = "gatehouse-hub"
	// TokenSecret is the long-lived token Secret of --token-secret, named as
	// charts/gatehouse-member names it.
	TokenSecret = ServiceAccount + "-token"
	// AnnotationTokenExpires on the hub Secret says when the token in its
	// kubeconfig expires: join again before then.
	AnnotationTokenExpires = "gatehouse.dev/token-expires"
	// LabelJoined marks the member objects join made.
	LabelJoined = "gatehouse.dev/joined-by"
	// MinTokenDuration is the shortest token the TokenRequest API issues.
	MinTokenDuration = 10 * time.Minute
)

// Options of a join.
type Options struct {
	// Cluster is the member's name on the hub: the name of its Secret there,
	// and what Tenants, RoutePolicies and proxies (--cluster) call it.
	Cluster string
	// HubNamespace holds the members' Secrets on the hub.
	HubNamespace string
	// MemberNamespace holds the ServiceAccount in the member.
	MemberNamespace string
	// Server, when set, replaces the member's API server URL in the hub's
	// kubeconfig: the hub may reach the member under another address.
	Server string
	// TokenDuration of the TokenRequest.
	TokenDuration time.Duration
	// TokenSecret: a kubernetes.io/service-account-token Secret instead of a
	// TokenRequest; it does not expire, and needs the member's token
	// controller (kube-controller-manager) to fill it.
	TokenSecret bool
	// TokenSecretTimeout bounds the wait for the token controller.
	TokenSecretTimeout time.Duration
	// CreateRBAC applies the namespace, ServiceAccount, ClusterRole and
	// ClusterRoleBinding; off when charts/gatehouse-member made them.
	CreateRBAC bool
	// Webhook and ManagedProxies add the rules of the admission webhook's
	// registration and of managed-mode proxies.
	Webhook, ManagedProxies bool
	// HubServiceAccount (in HubNamespace) is the hub's identity on its own
	// cluster, and HubCertificatesRole the ClusterRole of the hub chart that
	// reads and deletes the key pairs cert-manager issues for a member: join
	// binds it in that member's certificate namespace only, so that the hub
	// needs no Secret access across its cluster. Either empty: no binding.
	HubServiceAccount, HubCertificatesRole string
	// Labels are the cluster's labels (on its hub Secret), which Tenants and
	// RoutePolicies select clusters by.
	Labels map[string]string
	// Out receives what was done.
	Out io.Writer
}

// Validate checks the options that need no cluster.
func (o Options) Validate() error {
	var errs []error
	for _, n := range []struct{ flag, value string }{{"--hub-namespace", o.HubNamespace}, {"--member-namespace", o.MemberNamespace}} {
		if msgs := validation.IsDNS1123Label(n.value); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: %s", n.flag, n.value, strings.Join(msgs, "; ")))
		}
	}
	if err := members.ValidateName(o.Cluster, o.HubNamespace); err != nil {
		errs = append(errs, fmt.Errorf("CLUSTER %q: %w", o.Cluster, err))
	}
	if !o.TokenSecret && o.TokenDuration < MinTokenDuration {
		errs = append(errs, fmt.Errorf("--token-duration %v: the TokenRequest API issues tokens of at least %v", o.TokenDuration, MinTokenDuration))
	}
	if o.Server != "" {
		if err := members.CheckServer(o.Server); err != nil {
			errs = append(errs, fmt.Errorf("--server: %w", err))
		}
	}
	if _, err := labels.Set(o.Labels).AsValidatedSelector(); err != nil {
		errs = append(errs, fmt.Errorf("--labels: %w", err))
	} else if _, ok := o.Labels[kubeconfig.DefaultKubeconfigSecretLabel]; ok {
		errs = append(errs, fmt.Errorf("--labels: %s is set by join itself", kubeconfig.DefaultKubeconfigSecretLabel))
	}
	return errors.Join(errs...)
}

// MemberObjects are the objects join applies in the member, in order.
func MemberObjects(o Options) []any {
	var out []any
	if o.CreateRBAC {
		out = append(out,
			corev1ac.Namespace(o.MemberNamespace),
			corev1ac.ServiceAccount(ServiceAccount, o.MemberNamespace).WithLabels(managedBy()),
			rbacv1ac.ClusterRole(ServiceAccount).WithLabels(managedBy()).WithRules(Rules(o.Webhook, o.ManagedProxies)...),
			rbacv1ac.ClusterRoleBinding(ServiceAccount).WithLabels(managedBy()).
				WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(ServiceAccount)).
				WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(ServiceAccount).WithNamespace(o.MemberNamespace)),
		)
		if o.ManagedProxies {
			policy, binding := ProxyObjectsGuard(o.MemberNamespace, ServiceAccount)
			out = append(out, policy, binding)
		}
	}
	if o.TokenSecret {
		out = append(out, tokenSecret(o))
	}
	return out
}

// HubCertificatesBinding is the RoleBinding join makes in a member's
// certificate namespace on the hub.
const HubCertificatesBinding = "gatehouse-hub-certificates"

// HubObjects are the objects join applies on the hub before the member's
// Secret: the member's certificate namespace and, in it, the binding that
// lets the hub read the key pairs issued there.
func HubObjects(o Options) []any {
	if o.HubServiceAccount == "" || o.HubCertificatesRole == "" {
		return nil
	}
	ns := members.CertificateNamespace(o.Cluster)
	return []any{
		corev1ac.Namespace(ns).WithLabels(map[string]string{LabelCluster: o.Cluster}),
		rbacv1ac.RoleBinding(HubCertificatesBinding, ns).WithLabels(managedBy()).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(o.HubCertificatesRole)).
			WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(o.HubServiceAccount).WithNamespace(o.HubNamespace)),
	}
}

// LabelCluster marks the hub namespace of a member's certificates
// (operator/certificates.LabelCluster).
const LabelCluster = "gatehouse.dev/cluster"

// managedBy marks what join makes, so that leave deletes only that. It is
// not app.kubernetes.io/managed-by: the ServiceAccount may be Helm's too.
func managedBy() map[string]string {
	return map[string]string{LabelJoined: FieldManager}
}

func tokenSecret(o Options) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(TokenSecret, o.MemberNamespace).WithLabels(managedBy()).
		WithAnnotations(map[string]string{corev1.ServiceAccountNameKey: ServiceAccount}).
		WithType(corev1.SecretTypeServiceAccountToken)
}

// Endpoint is how the hub reaches the member's API server.
type Endpoint struct {
	Server        string
	CAData        []byte
	TLSServerName string
	Insecure      bool
}

// EndpointOf reads the member's endpoint from its REST configuration;
// server, when set, replaces the URL.
func EndpointOf(member *rest.Config, server string) (Endpoint, error) {
	e := Endpoint{Server: member.Host, CAData: member.CAData, TLSServerName: member.ServerName, Insecure: member.Insecure}
	if server != "" {
		e.Server = server
	}
	if len(e.CAData) == 0 && member.CAFile != "" {
		ca, err := os.ReadFile(member.CAFile)
		if err != nil {
			return e, fmt.Errorf("reading the member's certificate-authority: %w", err)
		}
		e.CAData = ca
	}
	return e, nil
}

// Kubeconfig is the hub's kubeconfig for the member: one cluster, one user
// with the token, one context, all named after the cluster.
func Kubeconfig(cluster string, e Endpoint, token string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{Server: e.Server, CertificateAuthorityData: e.CAData, TLSServerName: e.TLSServerName, InsecureSkipTLSVerify: e.Insecure}
	cfg.AuthInfos[ServiceAccount] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[cluster] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: ServiceAccount}
	cfg.CurrentContext = cluster
	return clientcmd.Write(*cfg)
}

// HubSecret is the member's registration on the hub.
func HubSecret(o Options, kubeconfigData []byte, expires time.Time) *corev1ac.SecretApplyConfiguration {
	l := map[string]string{kubeconfig.DefaultKubeconfigSecretLabel: "true"}
	for k, v := range o.Labels {
		l[k] = v
	}
	s := corev1ac.Secret(o.Cluster, o.HubNamespace).WithLabels(l).WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{kubeconfig.DefaultKubeconfigSecretKey: kubeconfigData})
	if !expires.IsZero() {
		s.WithAnnotations(map[string]string{AnnotationTokenExpires: expires.UTC().Format(time.RFC3339)})
	}
	return s
}

// Join registers the member with the hub. It is idempotent: joining again
// applies the same objects and replaces the token.
func Join(ctx context.Context, hub kubernetes.Interface, member *rest.Config, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	endpoint, err := EndpointOf(member, o.Server)
	if err != nil {
		return err
	}
	mc, err := kubernetes.NewForConfig(member)
	if err != nil {
		return err
	}
	if err := apply(ctx, mc, o.Cluster, MemberObjects(o), o); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	token, expires, err := mint(ctx, mc, o)
	if err != nil {
		return err
	}
	if err := verify(ctx, member, token, o); err != nil {
		return err
	}
	if endpoint.Insecure {
		return fmt.Errorf("%s: the member kubeconfig skips TLS verification (insecure-skip-tls-verify): the hub would send its token to whoever answers at %s; give a kubeconfig with the member's certificate-authority-data", o.Cluster, endpoint.Server)
	}
	if len(endpoint.CAData) == 0 {
		o.printf("%s: note: the member kubeconfig names no certificate authority; the hub will trust its system roots for %s", o.Cluster, endpoint.Server)
	}
	data, err := Kubeconfig(o.Cluster, endpoint, token)
	if err != nil {
		return err
	}
	if err := apply(ctx, hub, "hub", HubObjects(o), o); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return applyHubSecret(ctx, hub, o, data, expires, endpoint.Server)
}

func (o Options) printf(format string, args ...any) {
	if o.Out != nil {
		fmt.Fprintf(o.Out, format+"\n", args...)
	}
}

var applyOpts = metav1.ApplyOptions{FieldManager: FieldManager, Force: true}

// apply server-side applies objs in one cluster, where being its name in
// what is printed.
func apply(ctx context.Context, mc kubernetes.Interface, where string, objs []any, o Options) error {
	for _, obj := range objs {
		var err error
		var what string
		switch x := obj.(type) {
		case *corev1ac.NamespaceApplyConfiguration:
			what = "Namespace " + *x.Name
			_, err = mc.CoreV1().Namespaces().Apply(ctx, x, applyOpts)
		case *corev1ac.ServiceAccountApplyConfiguration:
			what = "ServiceAccount " + *x.Namespace + "/" + *x.Name
			_, err = mc.CoreV1().ServiceAccounts(*x.Namespace).Apply(ctx, x, applyOpts)
		case *rbacv1ac.ClusterRoleApplyConfiguration:
			what = "ClusterRole " + *x.Name
			_, err = mc.RbacV1().ClusterRoles().Apply(ctx, x, applyOpts)
		case *rbacv1ac.ClusterRoleBindingApplyConfiguration:
			what = "ClusterRoleBinding " + *x.Name
			_, err = mc.RbacV1().ClusterRoleBindings().Apply(ctx, x, applyOpts)
		case *rbacv1ac.RoleBindingApplyConfiguration:
			what = "RoleBinding " + *x.Namespace + "/" + *x.Name
			_, err = mc.RbacV1().RoleBindings(*x.Namespace).Apply(ctx, x, applyOpts)
		case *corev1ac.SecretApplyConfiguration:
			what = "Secret " + *x.Namespace + "/" + *x.Name
			_, err = mc.CoreV1().Secrets(*x.Namespace).Apply(ctx, x, applyOpts)
		case *admissionregistrationv1ac.ValidatingAdmissionPolicyApplyConfiguration:
			what = "ValidatingAdmissionPolicy " + *x.Name
			_, err = mc.AdmissionregistrationV1().ValidatingAdmissionPolicies().Apply(ctx, x, applyOpts)
		case *admissionregistrationv1ac.ValidatingAdmissionPolicyBindingApplyConfiguration:
			what = "ValidatingAdmissionPolicyBinding " + *x.Name
			_, err = mc.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Apply(ctx, x, applyOpts)
		default:
			return fmt.Errorf("internal error: cannot apply %T", obj)
		}
		if err != nil {
			return fmt.Errorf("applying %s: %w", what, err)
		}
		o.printf("%s: applied %s", where, what)
	}
	return nil
}

// mint returns a token of the ServiceAccount and when it expires (zero:
// never).
func mint(ctx context.Context, mc kubernetes.Interface, o Options) (string, time.Time, error) {
	sa := o.MemberNamespace + "/" + ServiceAccount
	if o.TokenSecret {
		token, err := awaitTokenSecret(ctx, mc, o)
		if err != nil {
			return "", time.Time{}, err
		}
		o.printf("%s: read the long-lived token of %s from Secret %s/%s (it does not expire; delete the Secret to revoke it)", o.Cluster, sa, o.MemberNamespace, TokenSecret)
		return token, time.Time{}, nil
	}
	tr, err := mc.CoreV1().ServiceAccounts(o.MemberNamespace).CreateToken(ctx, ServiceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(o.TokenDuration / time.Second))},
	}, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && !o.CreateRBAC {
			return "", time.Time{}, fmt.Errorf("member: ServiceAccount %s does not exist; install charts/gatehouse-member or join without --create-rbac=false: %w", sa, err)
		}
		return "", time.Time{}, fmt.Errorf("member: requesting a token for %s: %w", sa, err)
	}
	expires := tr.Status.ExpirationTimestamp.Time
	o.printf("%s: minted a token for %s, valid until %s: join again before then", o.Cluster, sa, expires.UTC().Format(time.RFC3339))
	if got := time.Until(expires); got < o.TokenDuration-time.Hour {
		o.printf("%s: warning: the member's API server shortened the token to %v (its --service-account-max-token-expiration); use --token-secret for a token that does not expire", o.Cluster, got.Round(time.Minute))
	}
	return tr.Status.Token, expires, nil
}

func awaitTokenSecret(ctx context.Context, mc kubernetes.Interface, o Options) (string, error) {
	var token string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, o.TokenSecretTimeout, true, func(ctx context.Context) (bool, error) {
		s, err := mc.CoreV1().Secrets(o.MemberNamespace).Get(ctx, TokenSecret, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		token = string(s.Data[corev1.ServiceAccountTokenKey])
		return token != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("member: Secret %s/%s has no token after %v: the member's token controller (kube-controller-manager) fills it; without one, join without --token-secret: %w",
			o.MemberNamespace, TokenSecret, o.TokenSecretTimeout, err)
	}
	return token, nil
}

// verify checks, against the member's own address, that the token
// authenticates as the ServiceAccount. --server may be an address only the
// hub reaches, so it is not used here.
func verify(ctx context.Context, member *rest.Config, token string, o Options) error {
	cfg := rest.AnonymousClientConfig(member)
	cfg.BearerToken = token
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("member: the new token does not authenticate: %w", err)
	}
	want := "system:serviceaccount:" + o.MemberNamespace + ":" + ServiceAccount
	if got := r.Status.UserInfo.Username; got != want {
		return fmt.Errorf("member: the new token authenticates as %q, not %q", got, want)
	}
	o.printf("%s: verified: the token authenticates as %s", o.Cluster, want)
	return nil
}

func applyHubSecret(ctx context.Context, hub kubernetes.Interface, o Options, data []byte, expires time.Time, server string) error {
	secrets := hub.CoreV1().Secrets(o.HubNamespace)
	verb := "updated"
	if _, err := secrets.Get(ctx, o.Cluster, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		verb = "created"
	}
	if _, err := secrets.Apply(ctx, HubSecret(o, data, expires), applyOpts); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("hub: namespace %s does not exist; install the hub there first, or name its namespace with --hub-namespace: %w", o.HubNamespace, err)
		}
		return fmt.Errorf("hub: applying Secret %s/%s: %w", o.HubNamespace, o.Cluster, err)
	}
	o.printf("hub: %s Secret %s/%s: the hub reaches cluster %s at %s", verb, o.HubNamespace, o.Cluster, o.Cluster, server)
	return nil
}

// Leave deletes the member's Secret on the hub and, with a member client,
// what join and the hub made there: the webhook registration (the hub no
// longer answers for this cluster), the managed-proxy guard policy and its
// binding, the ClusterRoleBinding, ClusterRole, token Secret and
// ServiceAccount — each only when it carries the label join or the hub
// sets, so that what charts/gatehouse-member installed stays. The namespace
// stays too: other things may live in it. Missing objects are not an error.
func Leave(ctx context.Context, hub, member kubernetes.Interface, o Options) error {
	if msgs := validation.IsDNS1123Label(o.Cluster); len(msgs) > 0 {
		return fmt.Errorf("CLUSTER %q: %s", o.Cluster, strings.Join(msgs, "; "))
	}
	bg := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}
	switch err := hub.CoreV1().Secrets(o.HubNamespace).Delete(ctx, o.Cluster, bg); {
	case apierrors.IsNotFound(err):
		o.printf("hub: Secret %s/%s does not exist: %s was not a member", o.HubNamespace, o.Cluster, o.Cluster)
	case err != nil:
		return fmt.Errorf("hub: deleting Secret %s/%s: %w", o.HubNamespace, o.Cluster, err)
	default:
		o.printf("hub: deleted Secret %s/%s: the hub stops serving %s", o.HubNamespace, o.Cluster, o.Cluster)
	}
	if member == nil {
		return nil
	}
	ns := o.MemberNamespace
	type object interface{ GetLabels() map[string]string }
	steps := []struct {
		what       string
		key, value string // the label that says we made it
		get        func() (object, error)
		deleteIt   func() error
	}{
		{"ValidatingWebhookConfiguration " + WebhookConfigurationName, "app.kubernetes.io/managed-by", "gatehouse",
			func() (object, error) {
				return member.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, WebhookConfigurationName, metav1.GetOptions{})
			},
			func() error {
				return member.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, WebhookConfigurationName, bg)
			}},
		{"ValidatingAdmissionPolicyBinding " + ProxyObjectsPolicy, LabelJoined, FieldManager,
			func() (object, error) {
				return member.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, ProxyObjectsPolicy, metav1.GetOptions{})
			},
			func() error {
				return member.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, ProxyObjectsPolicy, bg)
			}},
		{"ValidatingAdmissionPolicy " + ProxyObjectsPolicy, LabelJoined, FieldManager,
			func() (object, error) {
				return member.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, ProxyObjectsPolicy, metav1.GetOptions{})
			},
			func() error {
				return member.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, ProxyObjectsPolicy, bg)
			}},
		{"ClusterRoleBinding " + ServiceAccount, LabelJoined, FieldManager,
			func() (object, error) {
				return member.RbacV1().ClusterRoleBindings().Get(ctx, ServiceAccount, metav1.GetOptions{})
			},
			func() error { return member.RbacV1().ClusterRoleBindings().Delete(ctx, ServiceAccount, bg) }},
		{"ClusterRole " + ServiceAccount, LabelJoined, FieldManager,
			func() (object, error) {
				return member.RbacV1().ClusterRoles().Get(ctx, ServiceAccount, metav1.GetOptions{})
			},
			func() error { return member.RbacV1().ClusterRoles().Delete(ctx, ServiceAccount, bg) }},
		{"Secret " + ns + "/" + TokenSecret, LabelJoined, FieldManager,
			func() (object, error) { return member.CoreV1().Secrets(ns).Get(ctx, TokenSecret, metav1.GetOptions{}) },
			func() error { return member.CoreV1().Secrets(ns).Delete(ctx, TokenSecret, bg) }},
		{"ServiceAccount " + ns + "/" + ServiceAccount, LabelJoined, FieldManager,
			func() (object, error) {
				return member.CoreV1().ServiceAccounts(ns).Get(ctx, ServiceAccount, metav1.GetOptions{})
			},
			func() error { return member.CoreV1().ServiceAccounts(ns).Delete(ctx, ServiceAccount, bg) }},
	}
	for _, s := range steps {
		obj, err := s.get()
		if err == nil && obj.GetLabels()[s.key] != s.value {
			o.printf("%s: kept %s: it lacks the label %s=%s, so join did not make it", o.Cluster, s.what, s.key, s.value)
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

// TokenPlaceholder stands for the token in what DryRun prints.
const TokenPlaceholder = "<minted by join>"

// DryRun writes what Join would apply, as a YAML stream: the member's
// objects, then the hub Secret with its kubeconfig readable and the token
// left out. It contacts no cluster.
func DryRun(w io.Writer, member *rest.Config, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	endpoint, err := EndpointOf(member, o.Server)
	if err != nil {
		return err
	}
	data, err := Kubeconfig(o.Cluster, endpoint, TokenPlaceholder)
	if err != nil {
		return err
	}
	var expires time.Time
	if !o.TokenSecret {
		expires = time.Now().Add(o.TokenDuration)
	}
	secret := HubSecret(o, nil, expires)
	secret.Data = nil
	secret.WithStringData(map[string]string{kubeconfig.DefaultKubeconfigSecretKey: string(data)})
	memberObjs := MemberObjects(o)
	objs := append(append(memberObjs, HubObjects(o)...), secret)
	for i, obj := range objs {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		switch i {
		case len(memberObjs):
			fmt.Fprintf(w, "---\n# on the hub, applied with field manager %s:\n%s", FieldManager, b)
		case 0:
			fmt.Fprintf(w, "---\n# in the member (%s), applied with field manager %s:\n%s", member.Host, FieldManager, b)
		default:
			fmt.Fprintf(w, "---\n%s", b)
		}
	}
	return nil
}
