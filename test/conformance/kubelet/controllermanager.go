package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// Controllers are the kube-controller-manager controllers that
// StartControllerManager runs: enough for Deployments, Services, namespace
// cleanup and PodDisruptionBudgets (which evictions, and so kubectl drain,
// consult), with no node lifecycle, scheduler or cloud parts.
var Controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"endpointslice-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"disruption-controller",
}

// StartControllerManager runs binDir/kube-controller-manager against the
// cluster of kubeconfigPath with the Controllers, without leader election
// and without serving. It returns once the process has survived its first
// second (bad flags or an unreachable cluster fail fast), or when ctx ends.
// Stop the returned process when done.
func StartControllerManager(ctx context.Context, binDir, kubeconfigPath string, log io.Writer) (*env.Process, error) {
	bin := filepath.Join(binDir, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("kube-controller-manager: %w", err)
	}
	args := []string{
		"--kubeconfig=" + kubeconfigPath,
		"--controllers=" + strings.Join(Controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
		"--concurrent-service-endpoint-syncs=10",
		"--concurrent-gc-syncs=10",
	}
	p, err := env.StartProcess("kube-controller-manager", bin, args, log)
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return nil, errors.Join(ctx.Err(), p.Stop(5*time.Second))
	}
	if exited, err := p.Exited(); exited {
		return nil, fmt.Errorf("kube-controller-manager exited at once (see its log): %v", err)
	}
	return p, nil
}
