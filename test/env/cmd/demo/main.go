// Command demo runs Gatehouse on a local fleet: a hub and two members (real
// etcd and kube-apiserver each), the hub binary, one proxy per member, a
// platform Gateway for *.apps.example.test in each member and two tenants'
// routes. It prints what each route's status says in each cluster and what
// a request through each proxy answers, then runs until Ctrl-C.
//
// Everything runs in a private network namespace (backends need pod-like
// addresses); the printed commands enter it.
//
//	go run ./test/env/cmd/demo --bin bin
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

var tenants = []env.Tenant{
	{Namespace: "team-a", Hostname: "a.apps.example.test"},
	{Namespace: "team-b", Hostname: "b.apps.example.test"},
}

func main() {
	env.EnterTestNetwork()
	bin := flag.String("bin", "bin", "directory with gatehouse, gatehouse-proxy and the control-plane binaries")
	dir := flag.String("dir", ".demo", "directory for the clusters' state and kubeconfigs (recreated)")
	members := flag.Int("members", 2, "member clusters")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *dir, *members); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, binDir, dir string, members int) error {
	binDir, _ = filepath.Abs(binDir)
	dir, _ = filepath.Abs(dir)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "demo.log")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	fmt.Printf("starting a hub and %d member clusters...\n", members)
	fleet, err := env.Start(ctx, env.Options{Members: members, Dir: dir, BinDir: binDir, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		return err
	}
	defer fleet.Stop()

	hub, err := env.StartHub(ctx, fleet, env.HubOptions{BinDir: binDir, Dir: dir, Log: logFile})
	if err != nil {
		return err
	}
	defer hub.Stop(10 * time.Second)
	xdsAddr, caFile := hub.XDSAddress, hub.CAFile

	var gws []*env.SharedGateway
	for i, c := range fleet.Members {
		ts := make([]env.Tenant, len(tenants))
		for j, t := range tenants {
			t.Answer = fmt.Sprintf("hello from %s in %s", t.Namespace, c.Name)
			ts[j] = t
		}
		g, err := env.SetUpSharedGateway(ctx, i+1, c, ts, env.ProxyOptions{
			Binary: filepath.Join(binDir, "gatehouse-proxy"), XDSAddress: xdsAddr, CAFile: caFile, CacheDir: filepath.Join(dir, c.Name, "proxy-cache"), Log: logFile,
		})
		if err != nil {
			return err
		}
		defer g.Close()
		gws = append(gws, g)
	}

	fmt.Println("waiting for every route to be served...")
	deadline := time.Now().Add(90 * time.Second)
	for !allServed(gws) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let status catch up with the acknowledgements
	report(ctx, gws)
	fmt.Printf("\nThe hub and the proxies log to %s.\n", logPath)
	fmt.Println("Everything runs in a private network namespace; to look around from another shell:")
	pid := os.Getpid()
	for _, c := range fleet.Clusters() {
		fmt.Printf("  nsenter --net=/proc/%d/ns/net %s --kubeconfig %s get gateways,httproutes -A\n", pid, filepath.Join(binDir, "kubectl"), c.KubeconfigPath)
	}
	for _, g := range gws {
		fmt.Printf("  nsenter --net=/proc/%d/ns/net curl -H 'Host: %s' http://%s/\n", pid, tenants[0].Hostname, g.Address)
	}
	fmt.Println("Press Ctrl-C to stop.")
	<-ctx.Done()
	fmt.Println("stopping")
	return nil
}

func allServed(gws []*env.SharedGateway) bool {
	for _, g := range gws {
		for _, t := range g.Tenants {
			if got, _ := g.Get(t.Hostname); got != t.Answer {
				return false
			}
		}
	}
	return true
}

// report prints each route's conditions per cluster and a request through
// each proxy.
func report(ctx context.Context, gws []*env.SharedGateway) {
	fmt.Println()
	for _, g := range gws {
		var gw gwv1.Gateway
		_ = g.Client.Get(ctx, client.ObjectKey{Namespace: env.GatewayNamespace, Name: env.GatewayName}, &gw)
		programmed := "unknown"
		if c := meta.FindStatusCondition(gw.Status.Conditions, "Programmed"); c != nil {
			programmed = fmt.Sprintf("%s (%s)", c.Status, c.Message)
		}
		fmt.Printf("%s: Gateway %s/%s at %s, Programmed=%s\n", g.Cluster.Name, env.GatewayNamespace, env.GatewayName, g.Address, programmed)
		for _, t := range g.Tenants {
			var r gwv1.HTTPRoute
			_ = g.Client.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: "web"}, &r)
			var conds []string
			for _, p := range r.Status.Parents {
				for _, c := range p.Conditions {
					conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
				}
			}
			answer, err := g.Get(t.Hostname)
			if err != nil {
				answer = "error: " + err.Error()
			}
			fmt.Printf("  HTTPRoute %s/web  %-20s %s\n      GET http://%s/ → %q\n", t.Namespace, t.Hostname, strings.Join(conds, " "), t.Hostname, answer)
		}
	}
}
