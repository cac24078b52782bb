// Command gatehousectl is the platform team's and tenants' tool for a
// Gatehouse fleet: join a member cluster to the hub (and leave), test a
// RoutePolicy offline, migrate Ingresses to HTTPRoutes and explain a route.
// Installed as kubectl-gatehouse it is the kubectl plugin `kubectl gatehouse`.
//
// Exit codes: 0 success, 1 error, 2 usage error, 3 a route a policy denies
// (policy test).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/join"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/kubeclient"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/manifest"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/migrate"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/policycheck"
	"github.com/gatehouse-dev/gatehouse/internal/version"
	policyv1 "github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitDenied = 3
)

const defaultHubNamespace = "gatehouse-system"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is one invocation: its name as the user typed it, where output goes
// and the hub connection flags.
type cli struct {
	name           string
	stdout, stderr io.Writer
	kube           kubeclient.Flags
}

// command is a subcommand: "join", "policy test".
type command struct {
	name     string
	args     string // synopsis after the name and flags
	summary  string
	details  string
	examples string
	kube     bool // takes --kubeconfig and --context
	// setup registers the flags and returns what runs with them parsed.
	setup func(fs *flag.FlagSet) func(ctx context.Context, c *cli, args []string) error
}

// commands lists every subcommand; explain registers itself from
// main_explain.go.
var commands = []*command{joinCommand, leaveCommand, policyTestCommand, migrateIngressCommand}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// errDenied: a policy denies a route; exit code 3.
var errDenied = errors.New("denied")

func run(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	c := &cli{name: progName(argv[0]), stdout: stdout, stderr: stderr}
	top := flag.NewFlagSet(c.name, flag.ContinueOnError)
	top.SetOutput(io.Discard)
	c.kube.Register(top)
	showVersion := top.Bool("version", false, "print the version and exit")
	if err := top.Parse(argv[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(stdout, top)
			return exitOK
		}
		fmt.Fprintf(stderr, "error: %v\nRun '%s -h' for usage.\n", err, c.name)
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.Get().Line(c.name))
		return exitOK
	}
	args := top.Args()
	if len(args) == 0 || args[0] == "help" {
		if len(args) > 1 {
			args = append(args[1:], "-h")
		} else {
			c.usage(stdout, top)
			if len(args) == 0 {
				return exitUsage
			}
			return exitOK
		}
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		fmt.Fprintf(stderr, "error: unknown command %q\nRun '%s -h' for the commands.\n", strings.Join(args, " "), c.name)
		return exitUsage
	}
	return c.exec(ctx, cmd, rest)
}

// progName is how the user invoked us: "kubectl gatehouse" as a plugin.
func progName(arg0 string) string {
	if base := filepath.Base(arg0); strings.TrimSuffix(base, ".exe") == "kubectl-gatehouse" {
		return "kubectl gatehouse"
	}
	return "gatehousectl"
}

// lookup finds the longest command name that prefixes args.
func lookup(args []string) (*command, []string) {
	var best *command
	n := 0
	for _, cmd := range commands {
		words := strings.Fields(cmd.name)
		if len(words) <= len(args) && len(words) > n && strings.Join(args[:len(words)], " ") == cmd.name {
			best, n = cmd, len(words)
		}
	}
	return best, args[n:]
}

func (c *cli) exec(ctx context.Context, cmd *command, args []string) int {
	fs := flag.NewFlagSet(c.name+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if cmd.kube {
		c.kube.Register(fs)
	}
	runCmd := cmd.setup(fs)
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.commandUsage(c.stdout, cmd, fs)
		return exitOK
	case err != nil:
		err = &usageError{err.Error()}
	default:
		err = runCmd(ctx, c, pos)
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errDenied):
		return exitDenied
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "error: %v\nRun '%s %s -h' for usage.\n", err, c.name, cmd.name)
		return exitUsage
	}
	fmt.Fprintf(c.stderr, "error: %v\n", err)
	return exitError
}

// parseInterspersed parses flags before, between and after positional
// arguments, as kubectl does: "join member-1 --member-kubeconfig f".
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func (c *cli) usage(w io.Writer, top *flag.FlagSet) {
	fmt.Fprintf(w, "%s: join clusters to a Gatehouse hub, test RoutePolicies, migrate Ingresses, explain routes.\n\nUsage:\n  %s [--kubeconfig FILE] [--context NAME] COMMAND [flags] [args]\n\nCommands:\n", c.name, c.name)
	sorted := append([]*command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, cmd := range sorted {
		fmt.Fprintf(w, "  %-16s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\nGlobal flags (the hub cluster, as kubectl reads it):\n")
	printFlags(w, top)
	fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags and examples.\nExit codes: 0 success, 1 error, 2 usage error, 3 a policy denies a route (policy test).\n", c.name)
}

func (c *cli) commandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s %s [flags] %s\n", cmd.summary, c.name, cmd.name, cmd.args)
	if cmd.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.details))
	}
	fmt.Fprintf(w, "\nFlags:\n")
	printFlags(w, fs)
	if cmd.examples != "" {
		ex := strings.ReplaceAll(strings.TrimSpace(cmd.examples), "gatehousectl", c.name)
		fmt.Fprintf(w, "\nExamples:\n%s\n", indent(ex, "  "))
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// printFlags lists flags as kubectl users write them: --name, or -n for
// one letter.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		typ, usage := flag.UnquoteUsage(f)
		line := "  " + dash + f.Name
		if typ != "" {
			line += " " + typ
		}
		switch f.DefValue {
		case "", "false", "0", "0s":
		default:
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, usage)
	})
}

// scheme knows every kind gatehousectl reads or writes.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(gwv1.Install(s))
	utilruntime.Must(gwv1beta1.Install(s))
	utilruntime.Must(tenancyv1.AddToScheme(s))
	utilruntime.Must(policyv1.AddToScheme(s))
	return s
}

// labelsFlag is a flag.Value of labels "k=v,k2=v2".
type labelsFlag map[string]string

func (l *labelsFlag) String() string { return labels.Set(*l).String() }

func (l *labelsFlag) Set(s string) error {
	m, err := labels.ConvertSelectorToLabelsMap(s)
	if err != nil {
		return err
	}
	if *l == nil {
		*l = labelsFlag{}
	}
	for k, v := range m {
		(*l)[k] = v
	}
	return nil
}

// filesFlag is a repeatable flag.Value of file names.
type filesFlag []string

func (f *filesFlag) String() string     { return strings.Join(*f, ",") }
func (f *filesFlag) Set(s string) error { *f = append(*f, s); return nil }

// join

var joinCommand = &command{
	name:    "join",
	args:    "CLUSTER",
	summary: "Register a member cluster with the hub (the current --kubeconfig/--context)",
	kube:    true,
	details: `
In the member, join server-side applies (field manager gatehousectl) the
namespace --member-namespace, the ServiceAccount gatehouse-hub, the ClusterRole
gatehouse-hub with the least privileges the hub needs there, and its
ClusterRoleBinding. It then creates a credential Secret gatehouse-hub-credential-*
in --member-namespace, mints a token for the ServiceAccount bound to that
Secret, checks that the token authenticates, and creates or updates, on the
hub, the Secret CLUSTER in --hub-namespace: a kubeconfig with the member's API
server URL (--server overrides it: the hub may reach the member under another
address), its CA and the token, labelled
sigs.k8s.io/multicluster-runtime-kubeconfig=true. Deleting the credential
Secret revokes the token; leave does.

Tokens come from the TokenRequest API and expire after --token-duration (the
member's API server may shorten it; the hub Secret's annotation
gatehouse.dev/token-expires says when): run join again before then. Joining
again is the renewal: it stores a new token, then deletes the previous join's
credential Secret, which revokes the previous token; the hub switches without
disturbing the cluster's proxies. With --token-secret, the token is that of a
kubernetes.io/service-account-token Secret gatehouse-hub-token-*, which does not
expire (the member's kube-controller-manager must be running to fill it).

CLUSTER must be a DNS-1123 label. Joining again is safe and updates everything
but the cluster's labels, which stay as they are unless --labels is given.
If charts/gatehouse-member is installed in the member, pass --create-rbac=false
to only mint a token for its ServiceAccount.`,
	examples: `
# Join the cluster of context "prod-eu" as "prod-eu"; the hub is the current context.
gatehousectl join prod-eu --member-context prod-eu --labels env=prod,region=eu

# The member's kubeconfig is a file, and the hub reaches its API server elsewhere.
gatehousectl --context hub join edge-1 --member-kubeconfig edge-1.kubeconfig --server https://10.20.0.5:6443

# Print what would be applied, contacting no cluster.
gatehousectl join edge-1 --member-kubeconfig edge-1.kubeconfig --dry-run`,
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := join.Options{HubNamespace: defaultHubNamespace, MemberNamespace: defaultHubNamespace}
		var m memberFlags
		var lbls labelsFlag
		var dryRun bool
		m.register(fs)
		fs.StringVar(&o.HubNamespace, "hub-namespace", o.HubNamespace, "hub namespace holding the members' kubeconfig Secrets")
		fs.StringVar(&o.MemberNamespace, "member-namespace", o.MemberNamespace, "member namespace of the hub's ServiceAccount")
		fs.StringVar(&o.Server, "server", "", "API server URL the hub reaches the member at (default: the member kubeconfig's)")
		fs.DurationVar(&o.TokenDuration, "token-duration", 720*time.Hour, "lifetime of the token: join again before it ends")
		fs.BoolVar(&o.TokenSecret, "token-secret", false, "use a long-lived kubernetes.io/service-account-token Secret instead of a TokenRequest")
		fs.DurationVar(&o.TokenSecretTimeout, "token-secret-timeout", time.Minute, "how long to wait for the member's token controller to fill the token Secret")
		fs.BoolVar(&o.CreateRBAC, "create-rbac", true, "apply the namespace, ServiceAccount, ClusterRole and ClusterRoleBinding (false: charts/gatehouse-member made them)")
		fs.BoolVar(&o.Webhook, "webhook", true, "let the hub register its admission webhook (ValidatingWebhookConfiguration gatehouse-routes)")
		fs.BoolVar(&o.ManagedProxies, "managed-proxies", true, "let the hub create managed-mode Gateways' proxies (ServiceAccounts, Deployments, Services)")
		fs.Var(&lbls, "labels", "the cluster's `labels`, e.g. env=prod,region=eu, which Tenants and RoutePolicies select clusters by: they replace the labels it has; '' removes them (default: keep them)")
		fs.StringVar(&o.HubServiceAccount, "hub-service-account", "gatehouse", "the hub's ServiceAccount on the hub cluster, in --hub-namespace (empty: bind nothing on the hub)")
		fs.StringVar(&o.HubCertificatesRole, "hub-certificates-role", "gatehouse-certificates",
			"the hub chart's ClusterRole for the key pairs cert-manager issues; join binds it in this member's certificate namespace (empty: bind nothing)")
		fs.BoolVar(&dryRun, "dry-run", false, "print the objects instead of applying them")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) != 1 {
				return usagef("join takes one CLUSTER name, got %d arguments", len(args))
			}
			o.Cluster, o.Labels, o.Out = args[0], lbls, c.stdout
			if err := m.required(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return &usageError{err.Error()}
			}
			member, err := m.config()
			if err != nil {
				return err
			}
			if dryRun {
				return join.DryRun(c.stdout, member, o)
			}
			hub, err := c.hubClientset()
			if err != nil {
				return err
			}
			return join.Join(ctx, hub, member, o)
		}
	},
}

// memberFlags select the member cluster.
type memberFlags struct{ kubeconfig, context string }

func (m *memberFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.kubeconfig, "member-kubeconfig", "", "kubeconfig of the member cluster (default: the default kubeconfig, with --member-context)")
	fs.StringVar(&m.context, "member-context", "", "context of the member cluster in its kubeconfig (default: its current context)")
}

func (m *memberFlags) set() bool { return m.kubeconfig != "" || m.context != "" }

func (m *memberFlags) required() error {
	if !m.set() {
		return usagef("name the member cluster with --member-kubeconfig and/or --member-context")
	}
	return nil
}

func (m *memberFlags) config() (*rest.Config, error) {
	cfg, err := kubeclient.Flags{Kubeconfig: m.kubeconfig, Context: m.context}.Config()
	if err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	return cfg, nil
}

func (c *cli) hubClientset() (*kubernetes.Clientset, error) {
	cfg, err := c.kube.Config()
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

// leave

var leaveCommand = &command{
	name:    "leave",
	args:    "CLUSTER|--all",
	summary: "Unregister a member cluster from the hub",
	kube:    true,
	details: `
Deletes the Secret CLUSTER in --hub-namespace on the hub: the hub stops serving
the cluster and withdraws its route tables. With --member-kubeconfig or
--member-context (the member's admin), also revokes the hub's token there
(deletes the credential Secrets join made, then waits until the member refuses
the token, at most --revoke-timeout) and deletes what the hub and join made:
the ValidatingWebhookConfiguration gatehouse-routes (nothing answers it any
more), the managed proxies' Deployments, Services, ServiceAccounts, ConfigMaps
and PodDisruptionBudgets (the Gateways stay), the ClusterRoleBinding and
ClusterRole gatehouse-hub, the token Secret and the ServiceAccount — only
objects labelled as made by join or the hub, so what charts/gatehouse-member
installed stays. The namespace and the statuses the hub wrote stay. Leaving a
cluster that is not a member is not an error.

With --all, every member leaves, each as the admin of the context named after
it in --member-kubeconfig (default: the default kubeconfig); run it before
uninstalling the hub. It changes nothing unless it reaches every member.`,
	examples: `
gatehousectl leave edge-1
gatehousectl leave edge-1 --member-kubeconfig edge-1.kubeconfig

# Before helm uninstall of the hub: contexts edge-1, prod-eu, ... name the members.
gatehousectl leave --all --member-kubeconfig fleet.kubeconfig`,
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := join.Options{HubNamespace: defaultHubNamespace, MemberNamespace: defaultHubNamespace}
		var m memberFlags
		var all bool
		m.register(fs)
		fs.StringVar(&o.HubNamespace, "hub-namespace", o.HubNamespace, "hub namespace holding the members' kubeconfig Secrets")
		fs.StringVar(&o.MemberNamespace, "member-namespace", o.MemberNamespace, "member namespace of the hub's ServiceAccount")
		fs.DurationVar(&o.RevokeTimeout, "revoke-timeout", join.DefaultRevokeTimeout, "how long to wait for the member to refuse the hub's revoked token")
		fs.BoolVar(&all, "all", false, "every member leaves, each with the context named after it in --member-kubeconfig")
		return func(ctx context.Context, c *cli, args []string) error {
			o.Out = c.stdout
			switch {
			case all && (len(args) != 0 || m.context != ""):
				return usagef("leave --all takes no CLUSTER and no --member-context: each member's context is named after it")
			case !all && len(args) != 1:
				return usagef("leave takes one CLUSTER name (or --all), got %d arguments", len(args))
			}
			hub, err := c.hubClientset()
			if err != nil {
				return err
			}
			if all {
				return join.LeaveAll(ctx, hub, func(cluster string) (*rest.Config, error) {
					return kubeclient.Flags{Kubeconfig: m.kubeconfig, Context: cluster}.Config()
				}, o)
			}
			o.Cluster = args[0]
			var member *rest.Config
			if m.set() {
				if member, err = m.config(); err != nil {
					return err
				}
			}
			return join.Leave(ctx, hub, member, o)
		}
	},
}

// policy test

var policyTestCommand = &command{
	name:    "policy test",
	args:    "POLICY.rego|ROUTEPOLICY.yaml --route ROUTES.yaml",
	summary: "Evaluate a RoutePolicy against routes offline, as the hub and its admission webhook do",
	details: `
POLICY is a Rego module (.rego; the policy is named after the file and denies
unless --enforcement says otherwise) or a RoutePolicy (.yaml, .yml), whose
spec.rego, enforcement, parameters and match are used. --route holds one or
more routes (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute) or
ListenerSets ("-": standard input).

Evaluation is the hub's own: the same engine and decision code, input
{"review": {...}, "parameters"} and data.gatehouse.tenants from --tenants.
With --tenants, each route's tenant comes from its namespace (and
--namespace-labels, --cluster-labels) as on the hub, and tenancy's own checks
(namespace, hostnames) are reported too; --tenant forces the tenant. Tenant
limits and Gateway delegations need the live fleet and are not checked.

Prints, per route, "allowed", "denied" or "warned" and each violation with the
field it names (details.field; "spec" when the policy names none). Exit code 0
when every route is allowed or warned, 3 when one is denied, 1 when the policy
does not compile (the errors name file:line:col) or a file cannot be read.`,
	examples: `
gatehousectl policy test require-team-label.rego --route route.yaml --enforcement warn
gatehousectl policy test policies/timeouts.yaml --route route.yaml --tenants tenants.yaml
kubectl get httproute -n web shop -o yaml | gatehousectl policy test p.rego --route - --tenant web`,
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := policycheck.Options{Unassigned: tenancy.Platform}
		var clusterLabels, nsLabels labelsFlag
		unassigned := string(tenancy.Platform)
		fs.StringVar(&o.RouteFile, "route", "", "file of the routes to check (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute, ListenerSet; multi-document YAML); - for standard input")
		fs.StringVar(&o.Kind, "kind", "HTTPRoute", "kind of route documents that name none")
		fs.StringVar(&o.Tenant, "tenant", "", "the routes' tenant (default: from --tenants by namespace; none without it)")
		fs.StringVar(&o.TenantsFile, "tenants", "", "file of Tenant objects: data.gatehouse.tenants and the namespace-to-tenant mapping")
		fs.StringVar(&o.Name, "name", "", "the policy's name (default: the RoutePolicy's, or the .rego file's base name)")
		fs.StringVar(&o.Enforcement, "enforcement", "", "deny, warn or audit (default: the RoutePolicy's, deny for a .rego file)")
		fs.StringVar(&o.ParametersFile, "parameters", "", "YAML or JSON file of input.parameters (default: the RoutePolicy's)")
		fs.StringVar(&o.Cluster.Name, "cluster", "", "the member cluster the routes live in (input.review.cluster)")
		fs.Var(&clusterLabels, "cluster-labels", "`labels` of that cluster's Secret on the hub, e.g. env=prod (spec.match.clusters, Tenant namespace claims)")
		fs.Var(&nsLabels, "namespace-labels", "`labels` of the routes' namespace (Tenants that select namespaces by label)")
		fs.StringVar(&unassigned, "unassigned-namespaces", unassigned, "platform or deny: the hub's --unassigned-namespaces, with --tenants")
		fs.StringVar(&o.Operation, "operation", "", "CREATE or UPDATE as at admission; empty as when the hub computes status")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) != 1 {
				return usagef("policy test takes one policy file, got %d arguments", len(args))
			}
			if o.RouteFile == "" {
				return usagef("--route is required")
			}
			switch o.Unassigned = tenancy.Unassigned(unassigned); o.Unassigned {
			case tenancy.Platform, tenancy.Deny:
			default:
				return usagef("--unassigned-namespaces %q: want platform or deny", unassigned)
			}
			switch o.Operation {
			case "", "CREATE", "UPDATE":
			default:
				return usagef("--operation %q: want CREATE, UPDATE or nothing", o.Operation)
			}
			o.PolicyFile, o.Cluster.Labels, o.NamespaceLabels = args[0], clusterLabels, nsLabels
			results, err := policycheck.Check(ctx, o)
			if err != nil {
				return err
			}
			if err := policycheck.Write(c.stdout, results); err != nil {
				return err
			}
			if policycheck.AnyDenied(results) {
				return errDenied
			}
			return nil
		}
	},
}

// migrate ingress

var migrateIngressCommand = &command{
	name:    "migrate ingress",
	args:    "",
	summary: "Convert Ingresses (with ingress-nginx annotations) to HTTPRoutes on a shared Gateway",
	kube:    true,
	details: `
Reads Ingresses and Services from the cluster (-n NAMESPACE, default the
context's; -A for all namespaces) or from files (-f, repeatable, multi-document
YAML or kubectl List output; "-" for standard input), converts the Ingresses
to HTTPRoutes attached to --gateway and prints them as YAML on standard output.
Everything that could not be carried over is printed on standard error, one
note per issue, saying what to do. With --apply, the routes are server-side
applied to the cluster (field manager gatehousectl) instead of printed.`,
	examples: `
gatehousectl migrate ingress -n shop --gateway infra/shared > routes.yaml
gatehousectl migrate ingress -A --gateway infra/shared --section-name https --ingress-class nginx
gatehousectl migrate ingress -f ingresses.yaml -f services.yaml --gateway infra/shared
gatehousectl migrate ingress -n shop --gateway infra/shared --apply`,
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		var (
			o           migrate.Options
			ns, gateway string
			all, apply  bool
			files       filesFlag
		)
		for _, name := range []string{"n", "namespace"} {
			fs.StringVar(&ns, name, "", "namespace to read Ingresses from (default: the context's; with -f, every namespace in the files)")
		}
		for _, name := range []string{"A", "all-namespaces"} {
			fs.BoolVar(&all, name, false, "read Ingresses of all namespaces")
		}
		fs.StringVar(&gateway, "gateway", "", "NAMESPACE/NAME of the shared Gateway the routes attach to (required)")
		fs.StringVar(&o.SectionName, "section-name", "", "listener of the Gateway the routes attach to (default: all that accept them)")
		fs.StringVar(&o.IngressClass, "ingress-class", "", "convert only Ingresses of this class")
		fs.Var(&files, "f", "`file` of Ingresses and Services to read instead of the cluster (repeatable; - for standard input)")
		fs.BoolVar(&apply, "apply", false, "server-side apply the routes instead of printing them")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) != 0 {
				return usagef("migrate ingress takes no arguments, got %q", args)
			}
			gw, err := namespacedName(gateway, "")
			if err != nil || gateway == "" || gw.Namespace == "" {
				return usagef("--gateway %q: give the shared Gateway as NAMESPACE/NAME", gateway)
			}
			if all && ns != "" {
				return usagef("-n and -A exclude each other")
			}
			o.Gateway = gw
			return c.migrateIngress(ctx, o, files, ns, all, apply)
		}
	},
}

func (c *cli) migrateIngress(ctx context.Context, o migrate.Options, files []string, ns string, all, apply bool) error {
	var cl client.Client
	if len(files) == 0 || apply {
		var err error
		if cl, err = c.kube.Client(scheme()); err != nil {
			return err
		}
	}
	var ingresses []networkingv1.Ingress
	var services []corev1.Service
	var err error
	switch {
	case len(files) > 0:
		ingresses, services, err = readIngressFiles(files, ns)
	case ns == "" && !all:
		if ns, err = c.kube.Namespace(); err == nil {
			ingresses, services, err = listIngresses(ctx, cl, ns, false)
		}
	default:
		ingresses, services, err = listIngresses(ctx, cl, ns, all)
	}
	if err != nil {
		return err
	}
	if len(ingresses) == 0 {
		fmt.Fprintln(c.stderr, "no Ingresses found")
		return nil
	}
	svcs := map[types.NamespacedName]*corev1.Service{}
	for i := range services {
		svcs[types.NamespacedName{Namespace: services[i].Namespace, Name: services[i].Name}] = &services[i]
	}
	res := migrate.Convert(ingresses, svcs, o)
	for _, n := range res.Notes {
		fmt.Fprintf(c.stderr, "note: %s\n", n)
	}
	if !apply {
		return migrate.WriteYAML(c.stdout, migrate.Result{Routes: res.Routes})
	}
	return applyRoutes(ctx, cl, res.Routes, c.stdout)
}

func listIngresses(ctx context.Context, cl client.Client, ns string, all bool) ([]networkingv1.Ingress, []corev1.Service, error) {
	var opts []client.ListOption
	if !all {
		opts = append(opts, client.InNamespace(ns))
	}
	var ings networkingv1.IngressList
	var svcs corev1.ServiceList
	if err := cl.List(ctx, &ings, opts...); err != nil {
		return nil, nil, fmt.Errorf("listing Ingresses: %w", err)
	}
	if err := cl.List(ctx, &svcs, opts...); err != nil {
		return nil, nil, fmt.Errorf("listing Services (to resolve named ports): %w", err)
	}
	return ings.Items, svcs.Items, nil
}

// readIngressFiles reads Ingresses and Services; objects of other kinds are
// skipped. Objects without a namespace are in ns ("default" when empty);
// with ns, Ingresses of other namespaces are left out.
func readIngressFiles(files []string, ns string) ([]networkingv1.Ingress, []corev1.Service, error) {
	only := ns
	if ns == "" {
		ns = "default"
	}
	var ings []networkingv1.Ingress
	var svcs []corev1.Service
	for _, f := range files {
		var docs []manifest.Document
		var err error
		if f == "-" {
			docs, err = manifest.Read(os.Stdin)
		} else {
			docs, err = manifest.ReadFile(f)
		}
		if err != nil {
			return nil, nil, err
		}
		for _, d := range docs {
			switch d.Kind {
			case "Ingress":
				var ing networkingv1.Ingress
				if err := d.Into(&ing); err != nil {
					return nil, nil, fmt.Errorf("%s: %w", f, err)
				}
				if ing.Namespace == "" {
					ing.Namespace = ns
				}
				ings = append(ings, ing)
			case "Service":
				var svc corev1.Service
				if err := d.Into(&svc); err != nil {
					return nil, nil, fmt.Errorf("%s: %w", f, err)
				}
				if svc.Namespace == "" {
					svc.Namespace = ns
				}
				svcs = append(svcs, svc)
			}
		}
	}
	if only != "" {
		ings = slices.DeleteFunc(ings, func(i networkingv1.Ingress) bool { return i.Namespace != only })
	}
	return ings, svcs, nil
}

// applyRoutes server-side applies the routes, without the status and
// creationTimestamp a typed object would carry.
func applyRoutes(ctx context.Context, cl client.Client, routes []*gwv1.HTTPRoute, out io.Writer) error {
	for _, r := range routes {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r)
		if err != nil {
			return err
		}
		delete(m, "status")
		unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
		u := &unstructured.Unstructured{Object: m}
		if err := cl.Patch(ctx, u, client.Apply, client.FieldOwner(join.FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying HTTPRoute %s/%s: %w", r.Namespace, r.Name, err)
		}
		fmt.Fprintf(out, "httproute.gateway.networking.k8s.io/%s applied (namespace %s)\n", r.Name, r.Namespace)
	}
	return nil
}

// namespacedName reads NAMESPACE/NAME, or NAME in namespace def.
func namespacedName(s, def string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return types.NamespacedName{Namespace: def, Name: s}, nil
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%q is not NAMESPACE/NAME", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}
