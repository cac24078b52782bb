package join

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// LabelGateway marks the objects the hub makes for a Gateway
// (operator/hub.LabelGateway; the test checks they agree).
const LabelGateway = "gatehouse.dev/gateway"

// managedKinds are what the hub makes for a managed-mode Gateway
// (operator/hub/provision.go): its proxies' Deployment, LoadBalancer
// Service, ServiceAccount, push CA bundle ConfigMap and disruption budget.
var managedKinds = []struct {
	kind string
	gvr  schema.GroupVersionResource
}{
	{"Deployment", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}},
	{"Service", schema.GroupVersionResource{Version: "v1", Resource: "services"}},
	{"PodDisruptionBudget", schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}},
	{"ConfigMap", schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}},
	{"ServiceAccount", schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}},
}

// deleteManaged deletes the managed proxies' objects in every namespace:
// those the hub labelled and made its Gateway the controller of. The
// member chart's proxy fleet carries the label too, but no owner: it stays,
// and so do the Gateways.
func deleteManaged(ctx context.Context, member *rest.Config, o Options) error {
	mc, err := metadata.NewForConfig(member)
	if err != nil {
		return err
	}
	for _, k := range managedKinds {
		list, err := mc.Resource(k.gvr).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: LabelGateway})
		if apierrors.IsNotFound(err) {
			continue // the API is not served in this cluster
		}
		if err != nil {
			return fmt.Errorf("%s: listing %ss labelled %s: %w", o.Cluster, k.kind, LabelGateway, err)
		}
		for _, obj := range list.Items {
			gw := gatewayOwner(obj.OwnerReferences)
			if gw == "" {
				continue
			}
			opts := background
			opts.Preconditions = &metav1.Preconditions{UID: &obj.UID}
			err := mc.Resource(k.gvr).Namespace(obj.Namespace).Delete(ctx, obj.Name, opts)
			switch {
			case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			case err != nil:
				return fmt.Errorf("%s: deleting %s %s/%s: %w", o.Cluster, k.kind, obj.Namespace, obj.Name, err)
			default:
				o.printf("%s: deleted %s %s/%s, made by the hub for Gateway %s/%s", o.Cluster, k.kind, obj.Namespace, obj.Name, obj.Namespace, gw)
			}
		}
	}
	return nil
}

// gatewayOwner is the name of the Gateway that controls an object, or "".
func gatewayOwner(refs []metav1.OwnerReference) string {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller && r.Kind == "Gateway" && strings.HasPrefix(r.APIVersion, "gateway.networking.k8s.io/") {
			return r.Name
		}
	}
	return ""
}
