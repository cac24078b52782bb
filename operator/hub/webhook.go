package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/admission"
	"github.com/gatehouse-dev/gatehouse/tenancy"
)

// WebhookConfigurationName is the ValidatingWebhookConfiguration the hub
// keeps in every member.
const WebhookConfigurationName = "gatehouse-routes"

// WebhookRegistration is how members reach the hub's admission webhook.
type WebhookRegistration struct {
	// URL is the webhook server's base URL as members reach it; the path
	// /validate/<cluster>/<token> is appended.
	URL string
	// CABundle returns the CA certificates members must trust.
	CABundle func() []byte
	// Token returns the token that authenticates a member's API server to
	// the webhook, "" while there is none yet.
	Token func(cluster string) string
	// FailurePolicy when the hub cannot be reached.
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// ExcludeNamespaces are never sent to the webhook (system namespaces).
	ExcludeNamespaces []string
}

// webhookReapply: how often a registration that did not change is applied
// again, in case someone edited or deleted it.
const webhookReapply = 5 * time.Minute

// desired is the member's ValidatingWebhookConfiguration.
func (r *WebhookRegistration) desired(cluster, token string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	url := strings.TrimSuffix(r.URL, "/") + admission.Path(cluster, token)
	rule := func(resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{gwv1.GroupName}, APIVersions: []string{"v1"}, Resources: resources,
				Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
		}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigurationName, Labels: map[string]string{"app.kubernetes.io/managed-by": "gatehouse"}},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "routes.gatehouse.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: r.CABundle()},
			Rules:                   []admissionregistrationv1.RuleWithOperations{rule("httproutes", "grpcroutes", "tlsroutes", "tcproutes", "udproutes", "listenersets")},
			FailurePolicy:           ptr.To(r.FailurePolicy),
			MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr.To[int32](5),
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: r.ExcludeNamespaces,
			}}},
		}},
	}
}

// ensureWebhook applies the member's registration when it changed (a new
// CA bundle or token) or has not been applied for a while.
func (w *worker) ensureWebhook(ctx context.Context) error {
	r := w.hub.opts.Webhook
	if r == nil || len(r.CABundle()) == 0 {
		return nil
	}
	token := r.Token(w.name)
	if token == "" {
		return nil
	}
	want := r.desired(w.name, token)
	// JSON, not %v: %v prints the URL's pointer, not the URL.
	data, err := json.Marshal(want.Webhooks)
	if err != nil {
		return fmt.Errorf("registering the admission webhook: %w", err)
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if hash == w.webhookHash && time.Since(w.webhookAt) < webhookReapply {
		return nil
	}
	err = w.cl.GetClient().Patch(ctx, want, client.Apply, client.FieldOwner("gatehouse"), client.ForceOwnership)
	if err != nil {
		return fmt.Errorf("registering the admission webhook: %w", err)
	}
	w.webhookHash, w.webhookAt = hash, time.Now()
	return nil
}

// AdmissionFleet is what the admission webhook reads of the hub.
func (h *Hub) AdmissionFleet() admission.Fleet { return admissionFleet{h} }

type admissionFleet struct{ h *Hub }

func (f admissionFleet) Cluster(name string) (client.Reader, tenancy.Cluster, bool) {
	cl := f.h.cluster(name)
	if cl == nil {
		return nil, tenancy.Cluster{}, false
	}
	c := tenancy.Cluster{Name: name}
	if d := f.h.opts.Decisions; d != nil {
		c.Labels = d.ClusterLabels(name)
	}
	return cl.GetClient(), c, true
}

func (f admissionFleet) Decider() *policy.Decider {
	if d := f.h.opts.Decisions; d != nil {
		return d.Decider()
	}
	return &policy.Decider{Tenancy: tenancy.NewView(nil, tenancy.Platform)}
}
