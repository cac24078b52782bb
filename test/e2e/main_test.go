// Package e2e runs Gatehouse as it runs in production — the hub binary,
// proxy processes, real control planes, real HTTP — inside a private
// network namespace, where backends get pod-like addresses (10.244.0.0/16)
// that kube-apiserver accepts in EndpointSlices.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

const netnsEnv = "GATEHOUSE_E2E_NETNS"

// TestMain re-runs the test binary inside a new network namespace with
// loopback up and 10.244.0.0/16 routed locally. Nothing outside it is
// touched, and it goes away with the process.
func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" {
		cmd := exec.Command("unshare", append([]string{"--net", "--", os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), netnsEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			if exit, ok := err.(*exec.ExitError); ok {
				os.Exit(exit.ExitCode())
			}
			fmt.Fprintf(os.Stderr, "e2e: cannot create a network namespace (needs root and unshare): %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"route", "add", "local", "10.244.0.0/16", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: ip %v: %v\n%s", args, err, out)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}
