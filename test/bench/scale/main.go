// Command scale measures the hub at scale: N members with R routes each.
// It reports the time from creating the last route to every route's status
// being written (Accepted and Programmed), and to the last route of every
// member being served by its proxy, and the hub's resident memory.
//
//	go run ./test/bench/scale --members 3 --routes 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

func main() {
	env.EnterTestNetwork()
	members := flag.Int("members", 3, "member clusters")
	routes := flag.Int("routes", 1000, "routes per member")
	binDir := flag.String("bin", "bin", "directory with gatehouse, gatehouse-proxy and the control-plane binaries")
	logPath := flag.String("log", "", "write the hub's and proxies' logs here (default: discarded with the run)")
	flag.StringVar(&heapProfile, "heapprofile", "", "write the hub's heap profile at the end to this file")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write the hub's CPU profile of the 30 s from the first route created to this file")
	flag.Parse()
	hubLog = *logPath
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := run(ctx, *binDir, *members, *routes); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

var hubLog, cpuProfile, heapProfile string

func run(ctx context.Context, binDir string, members, routes int) error {
	binDir, _ = filepath.Abs(binDir)
	dir, err := os.MkdirTemp("", "gatehouse-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if hubLog == "" {
		hubLog = filepath.Join(dir, "log")
	}
	logFile, err := os.Create(hubLog)
	if err != nil {
		return err
	}
	defer logFile.Close()

	fleet, err := env.Start(ctx, env.Options{Members: members, BinDir: binDir, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		return err
	}
	defer fleet.Stop()
	hub, err := env.StartHub(ctx, fleet, env.HubOptions{BinDir: binDir, Dir: dir, Log: logFile, Metrics: true,
		Pprof: cpuProfile != "" || heapProfile != "", Debug: true})
	if err != nil {
		return err
	}
	defer hub.Stop(10 * time.Second)
	xdsAddr, caFile, pprofAddr, metricsAddr := hub.XDSAddress, hub.CAFile, hub.PprofAddress, hub.MetricsAddress

	var gws []*env.SharedGateway
	for i, c := range fleet.Members {
		g, err := env.SetUpSharedGateway(ctx, i+1, c, []env.Tenant{{Namespace: "shop", Hostname: "r-0.apps.example.test", Answer: "ok"}},
			env.ProxyOptions{Binary: filepath.Join(binDir, "gatehouse-proxy"), XDSAddress: xdsAddr, CAFile: caFile, CacheDir: filepath.Join(dir, c.Name), Log: logFile})
		if err != nil {
			return err
		}
		defer g.Close()
		gws = append(gws, g)
	}
	for _, g := range gws {
		if err := wait(ctx, 2*time.Minute, func() bool { got, _ := g.Get("r-0.apps.example.test"); return got == "ok" }); err != nil {
			return fmt.Errorf("%s: first route never served: %w", g.Cluster.Name, err)
		}
	}
	fmt.Printf("fleet ready: hub and %d members, one proxy each; creating %d routes per member...\n", members, routes)

	profileDone := env.Profile(ctx, pprofAddr, cpuProfile)
	// Routes 1..R; route 0 exists already (the tenant's own).
	var eg errgroup.Group
	eg.SetLimit(16)
	for _, g := range gws {
		for i := 1; i < routes; i++ {
			eg.Go(func() error {
				return g.Client.Create(ctx, env.TenantRoute("shop", "r-"+strconv.Itoa(i), fmt.Sprintf("r-%d.apps.example.test", i)))
			})
		}
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	created := time.Now()

	var statusAt, servedAt time.Time
	var wg sync.WaitGroup
	wg.Go(func() {
		last := fmt.Sprintf("r-%d.apps.example.test", routes-1)
		if wait(ctx, 10*time.Minute, func() bool {
			for _, g := range gws {
				if got, _ := g.Get(last); got != "ok" {
					return false
				}
			}
			return true
		}) == nil {
			servedAt = time.Now()
		}
	})
	// Listing thousands of routes loads the apiservers the hub writes to:
	// poll that less often than the proxies.
	if err := waitEvery(ctx, 10*time.Minute, 250*time.Millisecond, func() bool { return allProgrammed(ctx, gws, routes) }); err != nil {
		return fmt.Errorf("statuses: %w", err)
	}
	statusAt = time.Now()
	wg.Wait()
	if err := profileDone(); err != nil {
		fmt.Fprintln(os.Stderr, "scale: cpu profile:", err)
	}
	rss := rssMiB(hub.PID())
	if heapProfile != "" {
		if err := env.Fetch(ctx, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", heapProfile); err != nil {
			fmt.Fprintln(os.Stderr, "scale: heap profile:", err)
		}
	}
	fmt.Printf("\n| members | routes | last route created → all %d statuses Accepted+Programmed | → last route served by every proxy | hub RSS |\n", members*routes)
	fmt.Printf("|---:|---:|---:|---:|---:|\n")
	fmt.Printf("| %d | %d | %v | %v | %d MiB |\n", members, members*routes, statusAt.Sub(created).Round(time.Millisecond), servedAt.Sub(created).Round(time.Millisecond), rss)
	printPhases(metricsAddr)
	return nil
}

// allProgrammed reports whether every route of every member has our parent
// status with Accepted and Programmed True.
func allProgrammed(ctx context.Context, gws []*env.SharedGateway, routes int) bool {
	for _, g := range gws {
		var list gwv1.HTTPRouteList
		if err := g.Client.List(ctx, &list, client.InNamespace("shop")); err != nil || len(list.Items) < routes {
			return false
		}
		for _, r := range list.Items {
			if len(r.Status.Parents) == 0 {
				return false
			}
			c := r.Status.Parents[0].Conditions
			if !meta.IsStatusConditionTrue(c, "Accepted") || !meta.IsStatusConditionTrue(c, "Programmed") {
				return false
			}
		}
	}
	return true
}

func wait(ctx context.Context, timeout time.Duration, cond func() bool) error {
	return waitEvery(ctx, timeout, 20*time.Millisecond, cond)
}

func waitEvery(ctx context.Context, timeout, every time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not within %v", timeout)
		}
		time.Sleep(every)
	}
	return nil
}

func rssMiB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return -1
}

// printPhases prints the hub's passes: how many, and the mean time of each
// phase, from its metrics.
func printPhases(addr string) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sums, counts := map[string]float64{}, map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "gatehouse_hub_status_writes_total") {
			fmt.Println(line)
		}
		name, rest, ok := strings.Cut(line, "{phase=\"")
		if !ok || !strings.HasPrefix(name, "gatehouse_hub_pass_phase_seconds_") {
			continue
		}
		phase, value, _ := strings.Cut(rest, "\"} ")
		v, _ := strconv.ParseFloat(value, 64)
		switch strings.TrimPrefix(name, "gatehouse_hub_pass_phase_seconds_") {
		case "sum":
			sums[phase] = v
		case "count":
			counts[phase] = v
		}
	}
	fmt.Printf("\nhub passes: %.0f; mean per pass:", counts["read"])
	for _, p := range []string{"read", "translate", "push", "provision", "status"} {
		if counts[p] > 0 {
			fmt.Printf(" %s %.1f ms", p, 1000*sums[p]/counts[p])
		}
	}
	fmt.Println()
}
