// Package e2e runs Gatehouse as it runs in production — the hub binary,
// proxy processes, real control planes, real HTTP — inside a private
// network namespace, where backends get pod-like addresses (10.244.0.0/16)
// that kube-apiserver accepts in EndpointSlices.
package e2e

import (
	"os"
	"testing"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

func TestMain(m *testing.M) {
	env.EnterTestNetwork()
	os.Exit(m.Run())
}
