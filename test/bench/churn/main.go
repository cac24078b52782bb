// Command churn measures route propagation under churn: with R routes per
// member already served, it adds, modifies and deletes routes one at a time
// while clients send traffic to other routes, and reports for each change
// the time from the write to the change showing in traffic through the
// member's proxy and to the route's status being Programmed at its new
// generation, the errors the clients saw, and what the hub and the proxies
// spent doing it.
//
//	go run ./test/bench/churn --members 1 --routes 1000 --changes 100
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The tenant every route belongs to, and what its backend answers.
const (
	tenant = "shop"
	answer = "ok"
)

type config struct {
	binDir, logPath     string
	cpuProfile          string
	members, routes     int
	changes             int
	loadClients         int
	loadHosts           int
	loadRate            int
	changeTimeout, poll time.Duration
}

func main() {
	env.EnterTestNetwork()
	// The clients' own logs say nothing the report does not.
	ctrllog.SetLogger(logr.Discard())
	var c config
	flag.StringVar(&c.binDir, "bin", "bin", "directory with gatehouse, gatehouse-proxy and the control-plane binaries")
	flag.StringVar(&c.logPath, "log", "", "write the hub's and proxies' logs here (default: discarded with the run)")
	flag.IntVar(&c.members, "members", 1, "member clusters, each with its own proxy; with more than one, every member churns at the same time")
	flag.IntVar(&c.routes, "routes", 1000, "routes per member before the churn")
	flag.IntVar(&c.changes, "changes", 100, "changes per member, cycling add, modify, delete")
	flag.IntVar(&c.loadClients, "load-clients", 4, "concurrent keep-alive clients per member sending traffic to existing routes")
	flag.IntVar(&c.loadHosts, "load-hosts", 32, "existing routes the clients cycle over (at most half the routes)")
	flag.IntVar(&c.loadRate, "load-rate", 400, "requests per second per member of the background load (0: as fast as the clients go)")
	flag.DurationVar(&c.changeTimeout, "change-timeout", 30*time.Second, "how long one change may take to show in traffic or status before it counts as timed out")
	flag.DurationVar(&c.poll, "poll", time.Millisecond, "pause between two requests probing a change through the proxy")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write the hub's CPU profile of the first 30 s of the churn to this file")
	flag.Parse()
	if c.members < 1 || c.routes < 1 || c.changes < 0 || c.loadClients < 0 {
		fmt.Fprintln(os.Stderr, "churn: --members and --routes must be at least 1, --changes and --load-clients not negative")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "churn:", err)
		os.Exit(1)
	}
}

// bed is the running fleet: the hub process and one shared Gateway with its
// proxy per member.
type bed struct {
	hub         *env.Process
	metricsAddr string
	gws         []*env.SharedGateway
}

func run(ctx context.Context, c config) error {
	binDir, _ := filepath.Abs(c.binDir)
	dir, err := os.MkdirTemp("", "gatehouse-churn-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if c.logPath == "" {
		c.logPath = filepath.Join(dir, "log")
	}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	fleet, err := env.Start(ctx, env.Options{Members: c.members, BinDir: binDir, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		return err
	}
	defer fleet.Stop()
	hub, err := env.StartHub(ctx, fleet, env.HubOptions{BinDir: binDir, Dir: dir, Log: logFile, Metrics: true, Pprof: true, Debug: true})
	if err != nil {
		return err
	}
	defer hub.Stop(10 * time.Second)
	b := bed{hub: hub.Process, metricsAddr: hub.MetricsAddress}
	for i, m := range fleet.Members {
		g, err := env.SetUpSharedGateway(ctx, i+1, m, []env.Tenant{{Namespace: tenant, Hostname: initialHost(0), Answer: answer}},
			env.ProxyOptions{Binary: filepath.Join(binDir, "gatehouse-proxy"), XDSAddress: hub.XDSAddress, CAFile: hub.CAFile, CacheDir: filepath.Join(dir, m.Name), Log: logFile})
		if err != nil {
			return err
		}
		defer g.Close()
		b.gws = append(b.gws, g)
	}
	if err := b.createRoutes(ctx, c.routes); err != nil {
		return err
	}
	profiled := env.Profile(ctx, hub.PprofAddress, c.cpuProfile)
	err = b.churn(ctx, c)
	if perr := profiled(); perr != nil {
		fmt.Fprintln(os.Stderr, "churn: cpu profile:", perr)
	}
	return err
}

func initialName(i int) string { return "r-" + strconv.Itoa(i) }
func initialHost(i int) string { return initialName(i) + ".apps.example.test" }

// createRoutes waits for every proxy to serve the tenant's first route,
// creates routes 1..n-1 in every member (16 writes at a time) and waits
// until every route is Accepted and Programmed and the last one is served.
func (b *bed) createRoutes(ctx context.Context, n int) error {
	for _, g := range b.gws {
		if err := until(ctx, 2*time.Minute, 20*time.Millisecond, func() bool { got, _ := g.Get(initialHost(0)); return got == answer }); err != nil {
			return fmt.Errorf("%s: the first route was never served: %w", g.Cluster.Name, err)
		}
	}
	fmt.Printf("fleet ready: hub and %d members, one proxy each; creating %d routes per member...\n", len(b.gws), n)
	start := time.Now()
	var eg errgroup.Group
	eg.SetLimit(16)
	for _, g := range b.gws {
		for i := 1; i < n; i++ {
			eg.Go(func() error { return g.Client.Create(ctx, env.TenantRoute(tenant, initialName(i), initialHost(i))) })
		}
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	for _, g := range b.gws {
		// Listing thousands of routes loads the API servers the hub writes
		// to: ask every 250 ms.
		if err := until(ctx, 10*time.Minute, 250*time.Millisecond, func() bool { return countProgrammed(ctx, g.Client) >= n }); err != nil {
			return fmt.Errorf("%s: routes never all Programmed: %w", g.Cluster.Name, err)
		}
		if err := until(ctx, 2*time.Minute, 20*time.Millisecond, func() bool { got, _ := g.Get(initialHost(n - 1)); return got == answer }); err != nil {
			return fmt.Errorf("%s: the last route was never served: %w", g.Cluster.Name, err)
		}
	}
	fmt.Printf("%d routes per member served and Programmed after %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// countProgrammed is how many of the tenant's routes are Programmed at their
// current generation.
func countProgrammed(ctx context.Context, c client.Client) int {
	var list gwv1.HTTPRouteList
	if err := c.List(ctx, &list, client.InNamespace(tenant)); err != nil {
		return 0
	}
	n := 0
	for i := range list.Items {
		if programmed(&list.Items[i]) {
			n++
		}
	}
	return n
}

// until calls cond every interval until it holds, for at most timeout.
func until(ctx context.Context, timeout, every time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %v", timeout)
		case <-t.C:
		}
	}
	return nil
}
