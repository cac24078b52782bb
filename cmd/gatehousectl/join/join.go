// Package join registers a member cluster with the hub, as
// `gatehousectl join` does: in the member, a ServiceAccount with the least
// privileges the hub needs there; on the hub, a Secret holding a kubeconfig
// that authenticates as that ServiceAccount, labelled so that the hub's
// multicluster-runtime kubeconfig provider engages the cluster. Each join's
// token can be revoked on its own (credential.go); joining again replaces
// it and revokes the one before, and Leave undoes what join and the hub
// made (leave.go).
package join

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
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
	// TokenSecret is the long-lived token Secret that joins before
	// per-join credentials applied with --token-secret; leave deletes it.
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
	// RoutePolicies select clusters by. Nil keeps those the hub Secret has;
	// empty removes them.
	Labels map[string]string
	// RevokeTimeout bounds how long Leave waits for the member to refuse
	// the hub's revoked token before it removes what the hub made there.
	RevokeTimeout time.Duration
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

// HubSecret is the member's registration on the hub: the kubeconfig, the
// cluster's labels, when the token expires and which member Secret it
// depends on.
func HubSecret(o Options, kubeconfigData []byte, expires time.Time, cred string) *corev1ac.SecretApplyConfiguration {
	l := map[string]string{kubeconfig.DefaultKubeconfigSecretLabel: "true"}
	for k, v := range o.Labels {
		l[k] = v
	}
	s := corev1ac.Secret(o.Cluster, o.HubNamespace).WithLabels(l).WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{kubeconfig.DefaultKubeconfigSecretKey: kubeconfigData}).
		WithAnnotations(map[string]string{AnnotationCredential: cred})
	if !expires.IsZero() {
		s.WithAnnotations(map[string]string{AnnotationTokenExpires: expires.UTC().Format(time.RFC3339)})
	}
	return s
}

// Join registers the member with the hub. Joining again applies the same
// objects, replaces the token and revokes the one before; the cluster's
// labels stay unless Options.Labels is set.
func Join(ctx context.Context, hub kubernetes.Interface, member *rest.Config, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	endpoint, err := EndpointOf(member, o.Server)
	if err != nil {
		return err
	}
	if endpoint.Insecure {
		return fmt.Errorf("%s: the member kubeconfig skips TLS verification (insecure-skip-tls-verify): the hub would send its token to whoever answers at %s; give a kubeconfig with the member's certificate-authority-data", o.Cluster, endpoint.Server)
	}
	mc, err := kubernetes.NewForConfig(member)
	if err != nil {
		return err
	}
	prev, err := readRegistration(ctx, hub, o.HubNamespace, o.Cluster)
	if err != nil {
		return err
	}
	if err := apply(ctx, mc, o.Cluster, MemberObjects(o), o); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	cred, err := createCredential(ctx, mc, o)
	if err != nil {
		return err
	}
	stored := false
	defer func() {
		if !stored {
			dropUnused(ctx, mc, cred, o)
		}
	}()
	token, expires, err := mint(ctx, mc, cred, o)
	if err != nil {
		return err
	}
	if err := verify(ctx, member, token, o); err != nil {
		return err
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
	given := o.Labels != nil
	o.Labels = prev.labelsAfter(o.Labels)
	if err := applyHubSecret(ctx, hub, o, data, expires, cred, endpoint.Server, prev.exists); err != nil {
		return err
	}
	stored = true
	prev.reportLabels(o, given)
	return revokePrevious(ctx, mc, prev, cred, o)
}

// dropUnused deletes the credential of a join that failed before the hub
// stored its token, so that no valid token is left behind.
func dropUnused(ctx context.Context, mc kubernetes.Interface, cred credential, o Options) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := deleteCredential(ctx, mc, cred, o.Cluster); err != nil {
		o.printf("%s: warning: could not delete Secret %s, which the unused token is bound to; delete it to revoke that token: %v", o.Cluster, cred, err)
		return
	}
	o.printf("%s: deleted Secret %s: the token minted by this failed join is revoked", o.Cluster, cred)
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

// TokenPlaceholder stands for the token in what DryRun prints.
const TokenPlaceholder = "<minted by join>"

// DryRun writes what Join would apply, as a YAML stream: the member's
// objects and the credential Secret, then the hub Secret with its
// kubeconfig readable and the token left out. It contacts no cluster, so it
// shows only the labels given: without --labels, Join keeps the hub
// Secret's.
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
	cred := CredentialSecret(o)
	secret := HubSecret(o, nil, expires, cred.Namespace+"/"+cred.GenerateName+"<generated>")
	secret.Data = nil
	secret.WithStringData(map[string]string{kubeconfig.DefaultKubeconfigSecretKey: string(data)})
	memberObjs := append(MemberObjects(o), cred)
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
