// Command fleet starts a local hub and member clusters (real etcd and
// kube-apiserver each) for people and for the demo, prints how to reach
// them, and stops everything on Ctrl-C or SIGTERM.
//
//	go run ./test/env/cmd/fleet up --members 2
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "up" {
		fmt.Fprintln(os.Stderr, "usage: fleet up [--members N] [--dir DIR] [--verbose]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	members := fs.Int("members", 2, "number of member clusters")
	dir := fs.String("dir", "", "directory for cluster state and kubeconfigs (default: a temporary directory, removed on exit)")
	verbose := fs.Bool("verbose", false, "print the control planes' logs")
	_ = fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := up(ctx, *members, *dir, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func up(ctx context.Context, members int, dir string, verbose bool) error {
	opts := env.Options{Members: members}
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		// State from an earlier run would not match the new certificates.
		if err := os.RemoveAll(abs); err != nil {
			return err
		}
		opts.Dir = abs
	}
	if verbose {
		opts.Log = os.Stderr
	}
	start := time.Now()
	f, err := env.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping the fleet")
		if err := f.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
		}
	}()

	fmt.Printf("fleet up in %v: a hub and %d member(s)\n\n", time.Since(start).Round(time.Millisecond), members)
	kubectl := kubectlPath()
	for _, c := range f.Clusters() {
		fmt.Printf("  %-10s %s\n             %s --kubeconfig %s get gateways,httproutes -A\n", c.Name, c.Config.Host, kubectl, c.KubeconfigPath)
	}
	fmt.Printf("\nmembers are registered on the hub as Secrets in namespace %s\n", env.HubNamespace)
	fmt.Println("press Ctrl-C to stop")
	<-ctx.Done()
	return nil
}

// kubectlPath prefers the kubectl that 'make tools' built.
func kubectlPath() string {
	dir := os.Getenv("GATEHOUSE_BIN_DIR")
	if dir == "" {
		if root, err := env.RepoRoot(); err == nil {
			dir = filepath.Join(root, "bin")
		}
	}
	if p := filepath.Join(dir, "kubectl"); dir != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "kubectl"
}
