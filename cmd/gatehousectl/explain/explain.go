// Package explain tells a tenant why a route is, or is not, attached to its
// parents and served by their proxies, in every member cluster that holds
// it: what 'gatehousectl explain route' prints.
//
// The explanation starts from the status the hub wrote on the route and
// adds what the conditions leave out, read from the objects themselves: the
// parent Gateway and its class, the listeners the parentRef selects, the
// backends and ReferenceGrants, and the Tenants on the hub.
package explain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"

	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// Options say which route to explain, where, and how to print it.
type Options struct {
	// Hub is a client of the hub cluster. Its scheme must know Secrets and
	// Tenants.
	Hub client.Client
	// HubNamespace holds the members' kubeconfig Secrets.
	HubNamespace string
	// Cluster is the member to look in; "" looks in every member and
	// explains the route wherever it exists.
	Cluster string
	// Kind is HTTPRoute (the default) or GRPCRoute.
	Kind  string
	Route types.NamespacedName
	// Format is "text" (the default) or "json".
	Format string
	Out    io.Writer
}

// memberTimeout bounds each request to a member: one cluster that does not
// answer must not hang the explanation of the others.
const memberTimeout = 15 * time.Second

// Route explains a route and prints the explanation to o.Out. It fails
// when the route exists in no member it could read; a route that is not
// attached or not served is explained, not an error.
func Route(ctx context.Context, o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	members, err := readMembers(ctx, o.Hub, o.HubNamespace, o.Cluster)
	if err != nil {
		return err
	}
	hub := readTenants(ctx, o.Hub)
	rep := &Report{Kind: o.Kind, Namespace: o.Route.Namespace, Name: o.Route.Name}
	var missing []string
	for _, m := range members {
		c, err := m.client()
		if err != nil {
			rep.Clusters = append(rep.Clusters, ClusterReport{Cluster: m.name, Error: err.Error()})
			continue
		}
		cr, err := explainCluster(ctx, c, hub, m.cluster(), o.Kind, o.Route)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, m.name)
		case err != nil:
			rep.Clusters = append(rep.Clusters, ClusterReport{Cluster: m.name, Error: "could not read the route: " + err.Error()})
		default:
			rep.Clusters = append(rep.Clusters, *cr)
		}
	}
	if len(rep.Clusters) > 0 {
		if err := rep.write(o.Out, o.Format); err != nil {
			return err
		}
	}
	found := slices.ContainsFunc(rep.Clusters, func(c ClusterReport) bool { return c.Error == "" })
	if found {
		return nil
	}
	what := fmt.Sprintf("%s %s", o.Kind, o.Route)
	if o.Cluster != "" {
		if len(missing) > 0 {
			return fmt.Errorf("%s does not exist in cluster %s", what, o.Cluster)
		}
		return fmt.Errorf("%s: cluster %s could not be read", what, o.Cluster)
	}
	if len(missing) == 0 {
		return fmt.Errorf("%s: no member cluster could be read", what)
	}
	return fmt.Errorf("%s exists in no member cluster (looked in: %s)", what, strings.Join(missing, ", "))
}

func (o Options) withDefaults() (Options, error) {
	if o.Hub == nil {
		return o, errors.New("explain: no hub client")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Kind == "" {
		o.Kind = KindHTTPRoute
	}
	if o.Kind != KindHTTPRoute && o.Kind != KindGRPCRoute {
		return o, fmt.Errorf("unknown route kind %q: use %s or %s", o.Kind, KindHTTPRoute, KindGRPCRoute)
	}
	if o.Format == "" {
		o.Format = "text"
	}
	if o.Format != "text" && o.Format != "json" {
		return o, fmt.Errorf("unknown format %q: use text or json", o.Format)
	}
	if o.Route.Name == "" {
		return o, errors.New("name the route to explain: NAMESPACE/NAME")
	}
	if o.Route.Namespace == "" {
		o.Route.Namespace = "default"
	}
	return o, nil
}

// member is a member cluster as the hub registers it: a kubeconfig Secret
// in the hub namespace, whose other labels are the cluster's labels.
type member struct {
	name       string
	labels     map[string]string
	kubeconfig []byte
}

func readMembers(ctx context.Context, hub client.Client, namespace, only string) ([]member, error) {
	var secrets corev1.SecretList
	if err := hub.List(ctx, &secrets, client.InNamespace(namespace),
		client.MatchingLabels{kubeconfig.DefaultKubeconfigSecretLabel: "true"}); err != nil {
		return nil, fmt.Errorf("listing the member clusters (Secrets in namespace %s of the hub): %w", namespace, err)
	}
	var all, out []member
	for _, s := range secrets.Items {
		all = append(all, member{name: s.Name, labels: s.Labels, kubeconfig: s.Data[kubeconfig.DefaultKubeconfigSecretKey]})
	}
	slices.SortFunc(all, func(a, b member) int { return strings.Compare(a.name, b.name) })
	for _, m := range all {
		if only == "" || m.name == only {
			out = append(out, m)
		}
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no member cluster is registered on the hub: no Secret in namespace %s is labelled %s=true",
			namespace, kubeconfig.DefaultKubeconfigSecretLabel)
	}
	if len(out) == 0 {
		names := make([]string, len(all))
		for i, m := range all {
			names[i] = m.name
		}
		return nil, fmt.Errorf("cluster %q is not a member of the fleet (members: %s)", only, strings.Join(names, ", "))
	}
	return out, nil
}

func (m member) cluster() tenancy.Cluster { return tenancy.Cluster{Name: m.name, Labels: m.labels} }

// client connects to the member with the credentials the hub holds.
func (m member) client() (client.Client, error) {
	if len(m.kubeconfig) == 0 {
		return nil, fmt.Errorf("its Secret on the hub has no %q key: re-register the cluster", kubeconfig.DefaultKubeconfigSecretKey)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(m.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("its kubeconfig on the hub is unusable: %w", err)
	}
	cfg.Timeout = memberTimeout
	return client.New(cfg, client.Options{Scheme: memberScheme})
}

var memberScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(gwv1.Install(s))
	utilruntime.Must(gwv1beta1.Install(s))
	return s
}()

// hubView is what the hub knows that explains tenancy decisions.
type hubView struct {
	tenants *tenancy.View
	// err says why the Tenants could not be read.
	err error
}

func readTenants(ctx context.Context, hub client.Client) hubView {
	var list tenancyv1.TenantList
	if err := hub.List(ctx, &list); err != nil {
		return hubView{err: err}
	}
	items := make([]*tenancyv1.Tenant, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	// How the hub treats namespaces of no tenant is a flag of the hub, not
	// known here; ownership does not depend on it.
	return hubView{tenants: tenancy.NewView(items, "")}
}
