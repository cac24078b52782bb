// Package kubeclient connects gatehousectl to clusters the way kubectl does:
// --kubeconfig and --context over clientcmd's default loading rules
// ($KUBECONFIG, then ~/.kube/config, then in-cluster).
package kubeclient

import (
	"flag"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Flags are the connection flags of a cluster.
type Flags struct {
	Kubeconfig string
	Context    string
}

// Register adds --kubeconfig and --context to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", f.Kubeconfig, "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.Context, "context", f.Context, "kubeconfig context to use (default: the current context)")
}

// loader returns the client configuration the flags select.
func loader(kubeconfig, context string) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
}

// Config is the REST configuration of the selected cluster.
func (f Flags) Config() (*rest.Config, error) {
	cfg, err := loader(f.Kubeconfig, f.Context).ClientConfig()
	if err != nil {
		return nil, f.explain(err)
	}
	return cfg, nil
}

// Namespace is the selected context's namespace, "default" when it names none.
func (f Flags) Namespace() (string, error) {
	ns, _, err := loader(f.Kubeconfig, f.Context).Namespace()
	if err != nil {
		return "", f.explain(err)
	}
	return ns, nil
}

// Client is a controller-runtime client of the selected cluster.
func (f Flags) Client(scheme *runtime.Scheme) (client.Client, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	return c, nil
}

func (f Flags) explain(err error) error {
	where := "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
	if f.Kubeconfig != "" {
		where = f.Kubeconfig
	}
	if f.Context != "" {
		where += ", context " + f.Context
	}
	return fmt.Errorf("reading %s: %w", where, err)
}
