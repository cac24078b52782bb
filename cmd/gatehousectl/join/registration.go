package join

import (
	"context"
	"fmt"
	"maps"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"
)

// registration is what the hub held of a member before a join or leave:
// its Secret's labels, the credential its token depends on, and the token.
type registration struct {
	exists     bool
	labels     map[string]string
	credential string
	token      string
}

func readRegistration(ctx context.Context, hub kubernetes.Interface, namespace, cluster string) (registration, error) {
	s, err := hub.CoreV1().Secrets(namespace).Get(ctx, cluster, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return registration{}, nil
	}
	if err != nil {
		return registration{}, fmt.Errorf("hub: reading Secret %s/%s: %w", namespace, cluster, err)
	}
	r := registration{exists: true, labels: map[string]string{}, credential: s.Annotations[AnnotationCredential],
		token: kubeconfigToken(s.Data[kubeconfig.DefaultKubeconfigSecretKey])}
	for k, v := range s.Labels {
		if k != kubeconfig.DefaultKubeconfigSecretLabel {
			r.labels[k] = v
		}
	}
	return r, nil
}

// kubeconfigToken is the token of a kubeconfig's current context; empty
// when it has none or does not parse.
func kubeconfigToken(data []byte) string {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return ""
	}
	c := cfg.Contexts[cfg.CurrentContext]
	if c == nil || cfg.AuthInfos[c.AuthInfo] == nil {
		return ""
	}
	return cfg.AuthInfos[c.AuthInfo].Token
}

// labelsAfter are the cluster's labels once joined: those given, or else
// those the hub Secret has, which Tenants and RoutePolicies may select by.
func (r registration) labelsAfter(given map[string]string) map[string]string {
	if given != nil {
		return given
	}
	return r.labels
}

// reportLabels says what a join did to the cluster's labels.
func (r registration) reportLabels(o Options, given bool) {
	now := showLabels(o.Labels)
	switch {
	case !r.exists:
		o.printf("hub: cluster %s has the labels %s", o.Cluster, now)
	case !given:
		o.printf("hub: kept the labels of cluster %s: %s (--labels replaces them; --labels '' removes them)", o.Cluster, now)
	case maps.Equal(r.labels, o.Labels):
		o.printf("hub: the labels of cluster %s stay %s", o.Cluster, now)
	default:
		o.printf("hub: changed the labels of cluster %s to %s (they were %s)", o.Cluster, now, showLabels(r.labels))
	}
}

func showLabels(l map[string]string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return labels.Set(l).String()
}

func applyHubSecret(ctx context.Context, hub kubernetes.Interface, o Options, data []byte, expires time.Time, cred credential, server string, existed bool) error {
	if _, err := hub.CoreV1().Secrets(o.HubNamespace).Apply(ctx, HubSecret(o, data, expires, cred.String()), applyOpts); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("hub: namespace %s does not exist; install the hub there first, or name its namespace with --hub-namespace: %w", o.HubNamespace, err)
		}
		return fmt.Errorf("hub: applying Secret %s/%s: %w", o.HubNamespace, o.Cluster, err)
	}
	verb := "created"
	if existed {
		verb = "updated"
	}
	o.printf("hub: %s Secret %s/%s: the hub reaches cluster %s at %s", verb, o.HubNamespace, o.Cluster, o.Cluster, server)
	return nil
}

// revokePrevious deletes the credential the hub's previous token depended
// on, once the new one is stored: the member refuses that token from then
// on. The hub moves to the new kubeconfig without its proxies noticing.
func revokePrevious(ctx context.Context, mc kubernetes.Interface, prev registration, now credential, o Options) error {
	if !prev.exists {
		return nil
	}
	c, ok := parseCredential(prev.credential)
	if !ok {
		if prev.token != "" {
			o.printf("%s: note: the previous token is not bound to a credential Secret (an earlier gatehousectl minted it): it stays valid until it expires or ServiceAccount %s/%s is made again",
				o.Cluster, o.MemberNamespace, ServiceAccount)
		}
		return nil
	}
	if c.namespace == now.namespace && c.name == now.name {
		return nil
	}
	deleted, err := deleteCredential(ctx, mc, c, o.Cluster)
	if err != nil {
		return fmt.Errorf("%s: the new token is stored, but revoking the previous one failed: %w", o.Cluster, err)
	}
	if deleted {
		o.printf("%s: revoked the previous token: deleted Secret %s, which it was bound to", o.Cluster, c)
	} else {
		o.printf("%s: the previous token's Secret %s is already gone: that token is revoked", o.Cluster, c)
	}
	return nil
}
