package main

import (
	"context"
	"flag"
	"strings"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/explain"
)

func init() { commands = append(commands, explainRouteCommand) }

var explainRouteCommand = &command{
	name:    "explain route",
	args:    "NAMESPACE/NAME",
	summary: "Explain why a route is or is not attached and served, in every member that holds it",
	kube:    true,
	details: `
Reads the members' kubeconfig Secrets and the Tenants from the hub (the current
--kubeconfig/--context), then the route, its parents, listeners, backends and
ReferenceGrants from each member (or only --cluster). NAME alone is looked up
in the namespace of the current context.`,
	examples: `
gatehousectl explain route shop/checkout
gatehousectl explain route shop/checkout --cluster prod-eu -o json
gatehousectl explain route shop/payments-api --kind GRPCRoute`,
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := explain.Options{HubNamespace: defaultHubNamespace}
		fs.StringVar(&o.HubNamespace, "hub-namespace", o.HubNamespace, "hub namespace holding the members' kubeconfig Secrets")
		fs.StringVar(&o.Cluster, "cluster", "", "the member to look in (default: every member)")
		fs.StringVar(&o.Kind, "kind", "HTTPRoute", "HTTPRoute or GRPCRoute")
		fs.StringVar(&o.Format, "o", "text", "output format: text or json")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) != 1 {
				return usagef("explain route takes one NAMESPACE/NAME, got %d arguments", len(args))
			}
			switch o.Kind {
			case "HTTPRoute", "GRPCRoute":
			default:
				return usagef("--kind %q: want HTTPRoute or GRPCRoute", o.Kind)
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
			o.Hub, o.Route, o.Out = hub, route, c.stdout
			return explain.Route(ctx, o)
		}
	},
}
