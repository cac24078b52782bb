package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/explain"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/kubeclient"
)

func init() { commands = append(commands, explainRouteCommand) }

var explainRouteCommand = &command{
	name:    "explain route",
	args:    "NAMESPACE/NAME",
	summary: "Explain why a route is or is not attached and served, in every member that holds it",
	kube:    true,
	details: `
Reads the Tenants from the hub (the current --kubeconfig/--context), then the
route, its parents, listeners, backends and ReferenceGrants from each member
you name (or only --cluster), with your own credentials for that member: you
see only what you may see. Name members with --member-kubeconfig NAME=PATH or
--member-context NAME=CONTEXT (a context of your kubeconfig); NAME is the
cluster's name on the hub. Platform admins may instead read every member with
the credentials the hub holds (--hub-credentials), which needs read access to
the members' kubeconfig Secrets on the hub. NAME alone is looked up in the
namespace of the current context.`,
	examples: `
gatehousectl explain route shop/checkout --member-kubeconfig prod-eu=$HOME/.kube/prod-eu
gatehousectl explain route shop/checkout --member-context prod-eu=prod-eu --cluster prod-eu -o json
gatehousectl explain route shop/payments-api --kind GRPCRoute --hub-credentials
gatehousectl explain route shop/postgres --kind TCPRoute --hub-credentials`,
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := explain.Options{HubNamespace: defaultHubNamespace}
		fs.StringVar(&o.HubNamespace, "hub-namespace", o.HubNamespace, "hub namespace holding the members' kubeconfig Secrets")
		fs.StringVar(&o.Cluster, "cluster", "", "the member to look in (default: every member)")
		fs.StringVar(&o.Kind, "kind", explain.KindHTTPRoute, "the route's kind: "+strings.Join(explain.Kinds, ", "))
		fs.StringVar(&o.Format, "o", "text", "output format: text or json")
		var files, contexts memberFlag
		fs.Var(&files, "member-kubeconfig", "NAME=PATH: read member NAME with the kubeconfig file PATH (repeatable)")
		fs.Var(&contexts, "member-context", "NAME=CONTEXT: read member NAME with context CONTEXT of your kubeconfig (repeatable)")
		fs.BoolVar(&o.HubCredentials, "hub-credentials", false, "platform admins: read every member with the credentials the hub holds (its kubeconfig Secrets)")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) != 1 {
				return usagef("explain route takes one NAMESPACE/NAME, got %d arguments", len(args))
			}
			if !slices.Contains(explain.Kinds, o.Kind) {
				return usagef("--kind %q: want one of %s", o.Kind, strings.Join(explain.Kinds, ", "))
			}
			switch o.Format {
			case "text", "json":
			default:
				return usagef("-o %q: want text or json", o.Format)
			}
			ns := ""
			if !strings.Contains(args[0], "/") {
				var err error
				if ns, err = c.kube.Namespace(); err != nil {
					return err
				}
			}
			route, err := namespacedName(args[0], ns)
			if err != nil {
				return usagef("%v", err)
			}
			hub, err := c.kube.Client(scheme())
			if err != nil {
				return err
			}
			if o.HubCredentials && len(files)+len(contexts) > 0 {
				return usagef("--hub-credentials reads every member as the hub does: leave out --member-kubeconfig and --member-context")
			}
			if o.Members, err = members(c.kube, files, contexts); err != nil {
				return err
			}
			o.Hub, o.Route, o.Out = hub, route, c.stdout
			return explain.Route(ctx, o)
		}
	},
}

// memberFlag collects repeated NAME=VALUE flags.
type memberFlag []struct{ name, value string }

func (f *memberFlag) String() string { return "" }

func (f *memberFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" || value == "" {
		return fmt.Errorf("%q: want NAME=VALUE, NAME being the member's name on the hub", v)
	}
	*f = append(*f, struct{ name, value string }{name, value})
	return nil
}

// members are the member clusters the caller names, each with the caller's
// own configuration for it.
func members(kube kubeclient.Flags, files, contexts memberFlag) ([]explain.Member, error) {
	var out []explain.Member
	add := func(name string, f kubeclient.Flags) error {
		cfg, err := f.Config()
		if err != nil {
			return fmt.Errorf("member %s: %w", name, err)
		}
		out = append(out, explain.Member{Name: name, Config: cfg})
		return nil
	}
	for _, m := range files {
		if err := add(m.name, kubeclient.Flags{Kubeconfig: m.value}); err != nil {
			return nil, err
		}
	}
	for _, m := range contexts {
		if err := add(m.name, kubeclient.Flags{Kubeconfig: kube.Kubeconfig, Context: m.value}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
