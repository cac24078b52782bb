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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
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
	// Members are the member clusters to read, each with the caller's own
	// credentials, so that the explanation shows only what the caller may
	// see. Their labels (which Tenants select clusters by) are read from
	// the hub when the caller may; the members' kubeconfigs on the hub are
	// not used.
	Members []Member
	// HubCredentials reads every member with the credentials the hub holds
	// (its kubeconfig Secrets), instead of Members: for platform admins,
	// who may read those Secrets; never offer it to tenants.
	HubCredentials bool
	// Cluster is the member to look in; "" looks in every member and
	// explains the route wherever it exists.
	Cluster string
	// Kind is one of Kinds; HTTPRoute by default.
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
	members, err := o.members(ctx)
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
		if err == nil && m.labelsUnknown != "" {
			cr.Warnings = append(cr.Warnings, m.labelsUnknown)
		}
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
	if !slices.Contains(Kinds, o.Kind) {
		return o, unknownKind(o.Kind)
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

// Member is a member cluster the caller reads with credentials of their
// own: a context of their kubeconfig, or a kubeconfig file of that member.
type Member struct {
	// Name is the cluster's name on the hub.
	Name   string
	Config *rest.Config
}

// member is a member cluster to read: with the caller's config, or with
// the kubeconfig Secret the hub registers it by, whose other labels are the
// cluster's labels.
type member struct {
	name       string
	labels     map[string]string
	kubeconfig []byte
	config     *rest.Config
	// labelsUnknown says why the cluster's labels could not be read.
	labelsUnknown string
}

// members are the clusters to read: the caller's, or with HubCredentials
// the hub's registrations.
func (o Options) members(ctx context.Context) ([]member, error) {
	if o.HubCredentials {
		return readMembers(ctx, o.Hub, o.HubNamespace, o.Cluster)
	}
	if len(o.Members) == 0 {
		return nil, errors.New("name the member clusters to read with your own credentials (--member-kubeconfig NAME=PATH, or --member-context NAME=CONTEXT " +
			"of your kubeconfig); platform admins may read every member with the hub's credentials instead (--hub-credentials)")
	}
	// The labels live on the hub's registrations; a tenant usually may not
	// read those Secrets, and then the labels stay unknown.
	labels := map[string]map[string]string{}
	var unknown string
	var regs metav1.PartialObjectMetadataList
	regs.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := o.Hub.List(ctx, &regs, client.InNamespace(o.HubNamespace), client.MatchingLabels{kubeconfig.DefaultKubeconfigSecretLabel: "true"}); err != nil {
		unknown = fmt.Sprintf("the cluster's labels could not be read from the hub (%v): tenancy is explained as if the cluster had none, "+
			"so a Tenant that selects clusters by label may be judged wrongly here; the route's status above is the hub's own verdict", err)
	}
	for _, r := range regs.Items {
		labels[r.Name] = r.Labels
	}
	var out []member
	for _, m := range o.Members {
		if o.Cluster != "" && m.Name != o.Cluster {
			continue
		}
		out = append(out, member{name: m.Name, labels: labels[m.Name], config: m.Config, labelsUnknown: unknown})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cluster %q is not among the members you named", o.Cluster)
	}
	return out, nil
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

// client connects to the member with the caller's credentials or, with
// HubCredentials, those the hub holds.
func (m member) client() (client.Client, error) {
	if m.config != nil {
		cfg := rest.CopyConfig(m.config)
		cfg.Timeout = memberTimeout
		return newMemberClient(cfg)
	}
	if len(m.kubeconfig) == 0 {
		return nil, fmt.Errorf("its Secret on the hub has no %q key: re-register the cluster", kubeconfig.DefaultKubeconfigSecretKey)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(m.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("its kubeconfig on the hub is unusable: %w", err)
	}
	cfg.Timeout = memberTimeout
	return newMemberClient(cfg)
}

func newMemberClient(cfg *rest.Config) (client.Client, error) {
	c, err := client.New(cfg, client.Options{Scheme: memberScheme})
	if err != nil {
		return nil, err
	}
	return listGetter{c}, nil
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
