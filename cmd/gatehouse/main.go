// Command gatehouse is the hub: it watches every member cluster registered
// as a kubeconfig Secret in its namespace, decides every attachment, writes
// status back into the members and pushes route tables to their proxies.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"
	"sigs.k8s.io/multicluster-runtime/providers/kubeconfig"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/internal/jsonlog"
	"github.com/gatehouse-dev/gatehouse/internal/version"
	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/hub"
	"github.com/gatehouse-dev/gatehouse/operator/members"
	"github.com/gatehouse-dev/gatehouse/operator/servingcert"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/operator/webhooktoken"
	"github.com/gatehouse-dev/gatehouse/policy/admission"
	policyv1 "github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

func main() {
	var (
		namespace   = flag.String("namespace", "gatehouse-system", "hub namespace holding the members' kubeconfig Secrets")
		xdsAddr     = flag.String("xds-address", ":18000", "address proxies connect to for their route tables (always TLS)")
		xdsCertDir  = flag.String("xds-cert-dir", "", "directory with tls.crt, tls.key and ca.crt of the push server (e.g. a mounted cert-manager Secret); empty: a CA of the hub's own, kept in the Secret gatehouse-push-ca")
		xdsHosts    = flag.String("xds-hosts", "", "comma-separated names and IPs of the push server's certificate (default: the hosts of --proxy-xds-address and --xds-address)")
		metricsAddr = flag.String("metrics-address", "127.0.0.1:8080", `address of /metrics ("0" disables)`)
		healthAddr  = flag.String("health-address", "127.0.0.1:8081", `address of /healthz and /readyz ("0" disables)`)
		pprofAddr   = flag.String("pprof-address", "0", `address of Go's /debug/pprof/ profiles, for finding where the hub spends its time ("0" disables; bind it to localhost)`)
		leaderElect = flag.Bool("leader-elect", false, "elect one active hub among replicas")
		leaseTime   = flag.Duration("leader-elect-lease-duration", 15*time.Second, "how long standbys wait before taking over from a leader that stopped renewing without releasing its lease (a crash)")
		renewTime   = flag.Duration("leader-elect-renew-deadline", 10*time.Second, "how long the leader retries renewing its lease before it stops; shorter than the lease duration")
		retryTime   = flag.Duration("leader-elect-retry-period", time.Second, "how often standbys try to take the lease and the leader renews it; a released lease is taken within one period")
		podName     = flag.String("pod-name", "", "this replica's Pod in --namespace (the downward API's metadata.name): the elected replica labels it "+roleLabel+"="+roleActive+" so that the push and webhook Services select it; empty: label nothing")
		debounce    = flag.Duration("debounce", 50*time.Millisecond, "the least time between two passes over a cluster in a burst: a change after a quiet spell, or a single one during a pass, is translated at once; changes during a pass that followed changes during the one before are gathered until this much time has passed since it")
		grace       = flag.Duration("startup-grace", 20*time.Second, "after a restart, keep stored Programmed conditions this long while proxies reconnect")
		logLevel    = flag.String("log-level", "info", "debug, info, warn or error")
		proxyImage  = flag.String("proxy-image", "", "image of gatehouse-proxy for Gateways of managed-mode classes; empty: create no proxies")
		proxyXDS    = flag.String("proxy-xds-address", "", "where proxies in member clusters reach the push server (default: --xds-address)")
		unassigned  = flag.String("unassigned-namespaces", "platform", `routes in namespaces of no tenant: "platform" (may use hostnames no tenant holds) or "deny"`)
		whAddr      = flag.String("webhook-address", ":9443", `address of the admission webhook server ("0" disables the webhook)`)
		whURL       = flag.String("webhook-url", "", "base URL members' API servers reach the webhook at (https://host:port); empty: do not register the webhook in members")
		whHosts     = flag.String("webhook-hosts", "", "comma-separated names and IPs of the serving certificate (default: the host of --webhook-url)")
		whCertDir   = flag.String("webhook-cert-dir", "", "directory with tls.crt, tls.key and ca.crt (e.g. a mounted cert-manager Secret); empty: a CA of the hub's own, kept in the Secret gatehouse-webhook-ca")
		certs       = flag.Bool("certificates", true, "issue certificates of HTTPS listeners through cert-manager on the hub (needs its CRDs on the hub)")
		classIssuer = flag.String("class-issuers", "", "comma-separated cert-manager issuers on the hub (ClusterIssuer/NAME or Issuer/NAME) that GatewayClass parameters may name; a class naming another gets no certificates")
		whFailure   = flag.String("webhook-failure-policy", "Ignore", "what members do when the hub cannot be reached: Ignore (status still refuses) or Fail")
	)
	flag.Var(version.Flag("gatehouse"), "version", "print the version and exit")
	// --kubeconfig (the hub cluster) is controller-runtime's own flag.
	flag.Parse()
	ctrlmetrics.Registry.MustRegister(version.Collector())
	var level slog.Level
	_ = level.UnmarshalText([]byte(*logLevel))
	// Every logger in the process, klog's and gRPC's too, writes these JSON lines.
	logger := jsonlog.New(os.Stderr, level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.SetLogger(quietStop(logr.FromSlogHandler(logger.Handler()), ctx))
	if *unassigned != string(tenancy.Platform) && *unassigned != string(tenancy.Deny) {
		logger.Error(`--unassigned-namespaces must be "platform" or "deny"`, "value", *unassigned)
		os.Exit(2)
	}
	if *whFailure != string(admissionregistrationv1.Ignore) && *whFailure != string(admissionregistrationv1.Fail) {
		logger.Error(`--webhook-failure-policy must be "Ignore" or "Fail"`, "value", *whFailure)
		os.Exit(2)
	}
	if err := (election{enabled: *leaderElect, lease: *leaseTime, renew: *renewTime, retry: *retryTime}).validate(); err != nil {
		logger.Error("leader election", "error", err)
		os.Exit(2)
	}
	offered, err := certificates.ParseIssuers(splitList(*classIssuer))
	if err != nil {
		logger.Error("--class-issuers", "error", err)
		os.Exit(2)
	}
	err = run(ctx, logger, options{
		namespace: *namespace, xdsAddr: *xdsAddr, xdsCertDir: *xdsCertDir, xdsHosts: *xdsHosts, metricsAddr: *metricsAddr,
		healthAddr: *healthAddr, pprofAddr: *pprofAddr, debounce: *debounce, grace: *grace, podName: *podName,
		election:     election{enabled: *leaderElect, lease: *leaseTime, renew: *renewTime, retry: *retryTime},
		provisioning: hub.Provisioning{Image: *proxyImage, XDSAddress: *proxyXDS},
		unassigned:   tenancy.Unassigned(*unassigned),
		certificates: *certs, classIssuers: offered,
		webhook: webhookOptions{address: *whAddr, url: *whURL, hosts: *whHosts, certDir: *whCertDir,
			failurePolicy: admissionregistrationv1.FailurePolicyType(*whFailure)},
	})
	if err != nil {
		logger.Error("gatehouse hub stopped", "error", err)
		os.Exit(1)
	}
}

type options struct {
	namespace, xdsAddr, metricsAddr, healthAddr string
	pprofAddr                                   string
	xdsCertDir, xdsHosts                        string
	podName                                     string
	election                                    election
	classIssuers                                []tenancyv1.IssuerReference
	debounce, grace                             time.Duration
	provisioning                                hub.Provisioning
	unassigned                                  tenancy.Unassigned
	certificates                                bool
	webhook                                     webhookOptions
}

type webhookOptions struct {
	address, url, hosts, certDir string
	failurePolicy                admissionregistrationv1.FailurePolicyType
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(gwv1.Install(s))
	utilruntime.Must(gwv1beta1.Install(s))
	utilruntime.Must(tenancyv1.AddToScheme(s))
	utilruntime.Must(policyv1.AddToScheme(s))
	utilruntime.Must(cmv1.AddToScheme(s))
	return s
}

func run(ctx context.Context, logger *slog.Logger, o options) error {
	cfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return fmt.Errorf("hub kubeconfig: %w", err)
	}
	s := scheme()
	provider := kubeconfig.New(kubeconfig.Options{
		Namespace: o.namespace,
		ClusterOptions: []cluster.Option{func(co *cluster.Options) {
			co.Scheme = s
			hub.ClusterCache(co)
		}},
		// Status writes are one request per object: a client-side limit of
		// tens per second would take minutes for thousands of routes. The
		// members' API Priority and Fairness protects them.
		// A forged member Secret must not make the hub send its own files
		// or run commands: only credentials written in the kubeconfig.
		RESTOptions: []func(*rest.Config) error{members.CheckConfig, func(c *rest.Config) error { c.QPS, c.Burst = 1000, 2000; return nil }},
	})
	var lock resourcelock.Interface
	if o.election.enabled {
		if lock, err = o.election.lock(cfg, o.namespace, o.podName); err != nil {
			return err
		}
	}
	mgr, err := mcmanager.New(cfg, provider, manager.Options{
		Scheme:                              s,
		Metrics:                             metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:              o.healthAddr,
		PprofBindAddress:                    o.pprofAddr,
		LeaderElection:                      o.election.enabled,
		LeaderElectionResourceLockInterface: lock,
		LeaderElectionID:                    leaseName,
		LeaderElectionNamespace:             o.namespace,
		// A hub that stops hands the lease over at once instead of making
		// the standbys wait for it to expire.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.election.lease,
		RenewDeadline:                 &o.election.renew,
		RetryPeriod:                   &o.election.retry,
		// Only the members' Secrets in the hub namespace are read.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			// A member kubeconfig that names files or commands never reaches the
			// kubeconfig provider, which would read those files as it parses.
			&corev1.Secret{}: {Namespaces: map[string]cache.Config{o.namespace: {}}, Transform: members.GuardSecrets(logger.With("component", "members"))},
		}},
		// One member that cannot be reached must not hold up the others.
		Controller: config.Controller{GroupKindConcurrency: map[string]int{"Secret": 4}},
	})
	if err != nil {
		return err
	}
	if err := provider.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	if err := healthChecks(mgr.GetLocalManager()); err != nil {
		return err
	}
	if o.podName != "" {
		if err := setUpRole(ctx, mgr.GetLocalManager(), o, logger); err != nil {
			return err
		}
	}

	push := xds.NewServer(ctx, nil, logger.With("component", "xds"))
	if o.provisioning.XDSAddress == "" {
		o.provisioning.XDSAddress = o.xdsAddr
	}
	pushCerts, err := pushCertificates(mgr, o)
	if err != nil {
		return err
	}
	o.provisioning.CABundle = pushCerts.CABundle
	decisions := hub.NewDecisions(mgr.GetLocalManager().GetClient(), hub.DecisionsOptions{
		Namespace: o.namespace, Unassigned: o.unassigned, Log: logger.With("component", "tenancy")})
	hopts := hub.Options{Namespace: o.namespace, Debounce: o.debounce, StartupGrace: o.grace, Provisioning: o.provisioning, Log: logger.With("component", "hub"), Decisions: decisions}
	var certs servingcert.Source
	var tokens *webhooktoken.Keyring
	if o.webhook.address != "0" {
		if certs, err = webhookCertificates(mgr, o); err != nil {
			return err
		}
		if tokens, err = webhookTokens(mgr, o); err != nil {
			return err
		}
		if o.webhook.url != "" {
			hopts.Webhook = &hub.WebhookRegistration{URL: o.webhook.url, CABundle: certs.CABundle, Token: tokens.Token, FailurePolicy: o.webhook.failurePolicy,
				ExcludeNamespaces: []string{"kube-system", "kube-public", "kube-node-lease", o.namespace}}
		}
	}
	if o.certificates {
		secrets, err := client.New(cfg, client.Options{Scheme: s})
		if err != nil {
			return err
		}
		hopts.Issuer = certificates.New(mgr.GetLocalManager().GetClient(), secrets, push, logger.With("component", "certificates")).
			OfferToClasses(o.classIssuers...)
	}
	h := hub.New(push, hopts)
	if err := h.SetupWithManager(mgr); err != nil {
		return err
	}
	// Uncached: a cache would watch every ConfigMap of the hub cluster.
	direct, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return err
	}
	go servingcert.PublishBundle(ctx, direct, pushCerts,
		types.NamespacedName{Namespace: o.namespace, Name: hub.PushCABundleName}, h.TriggerAll, logger.With("component", "push-certificates"))
	if err := decisions.SetupWithManager(mgr.GetLocalManager(), h.TriggerAll); err != nil {
		return err
	}
	if hopts.Issuer != nil {
		// cert-manager may be installed after the hub: the Issuer then
		// starts issuing once its API appears, without a restart.
		disco, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			return err
		}
		if err := hopts.Issuer.SetupWhenServed(mgr.GetLocalManager(), disco, h.Trigger, h.Clusters, h.TriggerAll); err != nil {
			return err
		}
	}
	if certs != nil {
		if err := serveWebhook(ctx, mgr, h, certs, tokens, s, o, logger); err != nil {
			return err
		}
	}
	push.SetAuthorizer(hub.NewProxyAuth(h))

	ln, err := net.Listen("tcp", o.xdsAddr)
	if err != nil {
		return fmt.Errorf("push server: %w", err)
	}
	g := grpc.NewServer(append(xds.ServerOptions(credentials.NewTLS(&tls.Config{GetCertificate: pushCerts.GetCertificate, MinVersion: tls.VersionTLS12})),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.ChainStreamInterceptor(refuseWhileStandby(mgr.GetLocalManager().Elected())))...)
	push.Register(g)
	go func() {
		<-ctx.Done()
		g.Stop()
	}()
	go func() {
		if err := g.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			logger.Error("push server stopped", "error", err)
		}
	}()
	logger.Info("gatehouse hub starting", "version", version.Get().Version, "namespace", o.namespace, "xds", ln.Addr().String())
	return mgr.Start(ctx)
}

// webhookCertificates returns the serving certificate source: files (for
// instance a cert-manager Secret) or a CA of the hub's own.
func webhookCertificates(mgr mcmanager.Manager, o options) (servingcert.Source, error) {
	log := slog.Default().With("component", "webhook-certificates")
	if o.webhook.certDir != "" {
		f, err := servingcert.NewFiles(o.webhook.certDir, log)
		if err != nil {
			return nil, err
		}
		return f, mgr.GetLocalManager().Add(f)
	}
	hosts := splitList(o.webhook.hosts)
	if len(hosts) == 0 && o.webhook.url != "" {
		u, err := url.Parse(o.webhook.url)
		if err != nil {
			return nil, fmt.Errorf("--webhook-url: %w", err)
		}
		hosts = []string{u.Hostname()}
	}
	if len(hosts) == 0 {
		hosts = []string{"localhost"}
	}
	// Uncached: replicas race to create and rotate the CA and must read
	// each other's writes at once.
	c, err := client.New(mgr.GetLocalManager().GetConfig(), client.Options{Scheme: mgr.GetLocalManager().GetScheme()})
	if err != nil {
		return nil, err
	}
	a := servingcert.NewAuthority(c, o.namespace, "gatehouse-webhook-ca", hosts, servingcert.AuthorityOptions{Log: log})
	return a, mgr.GetLocalManager().Add(a)
}

// pushCertificates returns the push server's certificate source: files (for
// instance a cert-manager Secret) or a CA of the hub's own, kept in the
// Secret gatehouse-push-ca.
func pushCertificates(mgr mcmanager.Manager, o options) (servingcert.Source, error) {
	log := slog.Default().With("component", "push-certificates")
	if o.xdsCertDir != "" {
		f, err := servingcert.NewFiles(o.xdsCertDir, log)
		if err != nil {
			return nil, fmt.Errorf("--xds-cert-dir: %w", err)
		}
		if len(f.CABundle()) == 0 {
			return nil, fmt.Errorf("--xds-cert-dir %s has no ca.crt: proxies need the CA bundle that signs the push server's certificate", o.xdsCertDir)
		}
		return f, mgr.GetLocalManager().Add(f)
	}
	hosts := splitList(o.xdsHosts)
	if len(hosts) == 0 {
		for _, addr := range []string{o.provisioning.XDSAddress, o.xdsAddr} {
			if host, _, err := net.SplitHostPort(addr); err == nil && host != "" && !slices.Contains(hosts, host) {
				if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
					hosts = append(hosts, host)
				}
			}
		}
	}
	if len(hosts) == 0 {
		return nil, errors.New("the push server's certificate needs a name: give --xds-hosts (the names and IPs proxies dial) or --proxy-xds-address")
	}
	c, err := client.New(mgr.GetLocalManager().GetConfig(), client.Options{Scheme: mgr.GetLocalManager().GetScheme()})
	if err != nil {
		return nil, err
	}
	a := servingcert.NewAuthority(c, o.namespace, "gatehouse-push-ca", hosts, servingcert.AuthorityOptions{Log: log})
	return a, mgr.GetLocalManager().Add(a)
}

// webhookTokens returns the key that members' tokens are made from, kept in
// the Secret gatehouse-webhook-key.
func webhookTokens(mgr mcmanager.Manager, o options) (*webhooktoken.Keyring, error) {
	// Uncached, as for the CA: replicas race to create the key.
	c, err := client.New(mgr.GetLocalManager().GetConfig(), client.Options{Scheme: mgr.GetLocalManager().GetScheme()})
	if err != nil {
		return nil, err
	}
	k := webhooktoken.New(c, o.namespace, "gatehouse-webhook-key", webhooktoken.Options{Log: slog.Default().With("component", "webhook-key")})
	return k, mgr.GetLocalManager().Add(k)
}

// serveWebhook runs the admission webhook server, which answers only
// members' API servers, and re-registers the webhook in every member when
// the CA bundle or the members' tokens change.
func serveWebhook(ctx context.Context, mgr mcmanager.Manager, h *hub.Hub, certs servingcert.Source, tokens *webhooktoken.Keyring, s *runtime.Scheme, o options, logger *slog.Logger) error {
	host, portText, err := net.SplitHostPort(o.webhook.address)
	if err != nil {
		return fmt.Errorf("--webhook-address: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("--webhook-address: %w", err)
	}
	srv := webhook.NewServer(webhook.Options{Host: host, Port: port, TLSOpts: []func(*tls.Config){func(c *tls.Config) {
		c.GetCertificate = certs.GetCertificate
		c.MinVersion = tls.VersionTLS12
	}}})
	srv.Register(admission.PathPrefix, standbyHandler(mgr.GetLocalManager().Elected(), admission.New(h.AdmissionFleet(), tokens, s, admission.Options{
		Controller: translate.ControllerName, Log: logger.With("component", "admission")})))
	if err := mgr.GetLocalManager().AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
		return err
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-certs.Changed():
				h.TriggerAll()
			case <-tokens.Changed():
				h.TriggerAll()
			}
		}
	}()
	return mgr.GetLocalManager().Add(srv)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// healthChecks: /healthz answers while the process runs; /readyz on every
// replica whose servers run, standbys included: a rolling update and a
// drain proceed only over Ready replicas. Which replica gets the traffic is
// the role label's business (see podRole), not readiness.
func healthChecks(mgr manager.Manager) error {
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("ping", healthz.Ping)
}
