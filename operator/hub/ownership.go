package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// refusal is provisioning the hub will not do: it is reported on the
// Gateway (Programmed=False, reason Invalid), not retried as an error.
type refusal struct{ message string }

func (r *refusal) Error() string { return r.message }

// refusedNamespace says why the hub creates no proxies in a namespace:
// system namespaces (kube-*) and the hub's own. "" when it may.
func refusedNamespace(namespace, hubNamespace string) string {
	if strings.HasPrefix(namespace, "kube-") || namespace == hubNamespace {
		return fmt.Sprintf("Gatehouse creates no proxies in the system namespace %q: move the Gateway to a namespace of its own, "+
			"or use a GatewayClass of mode external and run its proxies yourself", namespace)
	}
	return ""
}

// claiming is the member client provisioning writes through: it refuses an
// object of the same name that the hub did not create (it lacks the label
// LabelGateway), so that a member admin's Deployment or ServiceAccount is
// never taken over, and turns a create that finds one the cache cannot see
// into the same refusal.
type claiming struct{ client.Client }

func (c claiming) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if _, ours := obj.GetLabels()[LabelGateway]; !ours {
		return notOurs(obj)
	}
	return nil
}

func (c claiming) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	err := c.Client.Create(ctx, obj, opts...)
	if apierrors.IsAlreadyExists(err) {
		return notOurs(obj)
	}
	return err
}

func notOurs(obj client.Object) error {
	kind := fmt.Sprintf("%T", obj)
	kind = kind[strings.LastIndex(kind, ".")+1:]
	return &refusal{fmt.Sprintf("%s %s/%s already exists and was not created by Gatehouse (it lacks the label %s): "+
		"Gatehouse does not take it over; delete or rename it, and Gatehouse creates the proxies' own",
		kind, obj.GetNamespace(), obj.GetName(), LabelGateway)}
}

// refused sorts provisioning errors: refusals go to the Gateway's status,
// anything else is retried.
func refused(err error) (string, bool) {
	var r *refusal
	if errors.As(err, &r) {
		return r.message, true
	}
	return "", false
}

// notServed sets the Gateway's Programmed condition to False with reason
// Invalid, whatever it was: the hub will not provision its proxies.
func notServed(conds []metav1.Condition, message string) []metav1.Condition {
	for i := range conds {
		if c := &conds[i]; c.Type == string(gwv1.GatewayConditionProgrammed) {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, string(gwv1.GatewayReasonInvalid), message
		}
	}
	return conds
}
