package env

import (
	"fmt"
	"os"
	"os/exec"
)

const netnsEnv = "GATEHOUSE_TEST_NETNS"

// EnterTestNetwork makes the rest of the program run in a private network
// namespace with loopback up and 10.244.0.0/16 routed locally, so that
// backends can bind pod-like addresses that kube-apiserver accepts in
// EndpointSlices. Outside the namespace it runs the same program again inside
// one (needs root and unshare) and exits with its exit code; inside, it
// returns. Nothing outside the namespace is touched.
func EnterTestNetwork() { EnterNetwork("10.244.0.0/16") }

// EnterNetwork is EnterTestNetwork with the given prefixes routed locally
// instead; addresses outside them can be routed elsewhere, for example to
// pods in network namespaces of their own.
func EnterNetwork(local ...string) {
	if os.Getenv(netnsEnv) == "" {
		cmd := exec.Command("unshare", append([]string{"--net", "--", os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), netnsEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			if exit, ok := err.(*exec.ExitError); ok {
				os.Exit(exit.ExitCode())
			}
			fmt.Fprintf(os.Stderr, "cannot create a network namespace (needs root and unshare): %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	cmds := [][]string{{"link", "set", "lo", "up"}}
	for _, prefix := range local {
		cmds = append(cmds, []string{"route", "add", "local", prefix, "dev", "lo"})
	}
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "ip %v: %v\n%s", args, err, out)
			os.Exit(1)
		}
	}
}

// AdvertiseAddress is a local, non-loopback address inside the test network
// for kube-apiserver, which needs one where there is no default route.
const AdvertiseAddress = "10.244.255.1"
