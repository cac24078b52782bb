package hub

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	mcbuilder "sigs.k8s.io/multicluster-runtime/pkg/builder"
	mccontroller "sigs.k8s.io/multicluster-runtime/pkg/controller"
	mchandler "sigs.k8s.io/multicluster-runtime/pkg/handler"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"
)

// clusterKey is the one work item per cluster: any change in a cluster
// re-translates the whole cluster.
var clusterKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "cluster"}}

// specChanged passes the changes that matter of objects whose status the
// hub writes: their spec, labels and annotations. The hub's own status
// writes would otherwise start every pass again.
var specChanged = predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{})

// SetupWithManager wires the hub to a multicluster manager: every engaged
// member gets a worker, and every change to an input of translate kicks it.
// Call before the manager starts.
func (h *Hub) SetupWithManager(mgr mcmanager.Manager) error {
	h.exportMetrics(mgr.GetLocalManager().GetClient())
	if err := mgr.Add(&engager{hub: h}); err != nil {
		return err
	}
	toCluster := mchandler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{clusterKey}
	})
	spec := mcbuilder.WithPredicates(specChanged)
	b := mcbuilder.ControllerManagedBy(mgr).Named("gatehouse-clusters").
		WithOptions(mccontroller.Options{MaxConcurrentReconciles: 4, SkipNameValidation: ptr.To(true)})
	// TLSRoutes, TCPRoutes and UDPRoutes are watched by each worker once
	// its member is found to serve them (optionalkinds.go).
	for _, obj := range []client.Object{&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1.ListenerSet{}, &gwv1.HTTPRoute{}, &gwv1.GRPCRoute{}, &gwv1.BackendTLSPolicy{}} {
		b = b.Watches(obj, toCluster, spec)
	}
	for _, obj := range []client.Object{&gwv1beta1.ReferenceGrant{}, &corev1.Namespace{}, &corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Secret{}, &corev1.ConfigMap{}} {
		b = b.Watches(obj, toCluster)
	}
	return b.Complete(mcreconcile.Func(func(_ context.Context, req mcreconcile.Request) (reconcile.Result, error) {
		h.Trigger(string(req.ClusterName))
		return reconcile.Result{}, nil
	}))
}

// engager starts a worker for each cluster the provider engages; the
// worker stops, withdrawing the cluster's tables, when the cluster leaves.
type engager struct{ hub *Hub }

func (e *engager) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (e *engager) Engage(ctx context.Context, name multicluster.ClusterName, cl cluster.Cluster) error {
	return e.hub.Engage(ctx, string(name), cl)
}

// ClusterCache limits what member caches hold: of Secrets, only TLS ones,
// which listeners may reference; of ServiceAccounts, Deployments and
// PodDisruptionBudgets, which the hub reads only when provisioning
// proxies, only those labelled LabelGateway (one of the same name without
// it is refused as not ours, see claiming); of every object, only what the hub reads, within
// MaxCachedObject (see trimMemberObject). Pass it in the provider's
// ClusterOptions.
func ClusterCache(o *cluster.Options) {
	o.Cache.DefaultTransform = trimMemberObject
	if o.Cache.ByObject == nil {
		o.Cache.ByObject = map[client.Object]cache.ByObject{}
	}
	o.Cache.ByObject[&corev1.Secret{}] = cache.ByObject{Field: fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS))}
	ours, err := labels.NewRequirement(LabelGateway, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant key
	}
	for _, obj := range []client.Object{&corev1.ServiceAccount{}, &appsv1.Deployment{}, &policyv1.PodDisruptionBudget{}} {
		o.Cache.ByObject[obj] = cache.ByObject{Label: labels.NewSelector().Add(*ours)}
	}
}
