package env

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"
)

// HubOptions says how StartHub runs the hub binary.
type HubOptions struct {
	// BinDir holds the gatehouse binary.
	BinDir string
	// Dir receives the push server's CA bundle.
	Dir string
	// Log receives the hub's log; nil discards it.
	Log io.Writer
	// Metrics and Pprof serve the hub's metrics and profiles on addresses
	// of their own; Debug logs at debug level.
	Metrics, Pprof, Debug bool
}

// Hub is the hub binary running against a fleet's hub cluster, with where
// it serves what (an address is empty when not served) and its push
// server's CA bundle, for the proxies.
type Hub struct {
	*Process
	XDSAddress, MetricsAddress, PprofAddress string
	CAFile                                   string
}

// StartHub runs the hub against fleet's hub cluster and waits until its push
// server's CA bundle is published. The caller stops it.
func StartHub(ctx context.Context, fleet *Fleet, o HubOptions) (*Hub, error) {
	h := &Hub{}
	addr := func(on bool) (string, error) {
		if !on {
			return "", nil
		}
		port, err := freePort("127.0.0.1")
		return net.JoinHostPort("127.0.0.1", port), err
	}
	var err error
	if h.XDSAddress, err = addr(true); err != nil {
		return nil, err
	}
	if h.MetricsAddress, err = addr(o.Metrics); err != nil {
		return nil, err
	}
	if h.PprofAddress, err = addr(o.Pprof); err != nil {
		return nil, err
	}
	args := []string{"--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", h.XDSAddress,
		"--metrics-address", or(h.MetricsAddress, "0"), "--health-address", "0", "--pprof-address", or(h.PprofAddress, "0")}
	if o.Debug {
		args = append(args, "--log-level", "debug")
	}
	if h.Process, err = StartProcess("hub", filepath.Join(o.BinDir, "gatehouse"), args, o.Log); err != nil {
		return nil, err
	}
	if h.CAFile, err = PushCABundle(ctx, fleet.Hub, o.Dir); err != nil {
		_ = h.Stop(10 * time.Second)
		return nil, fmt.Errorf("the hub's push CA bundle: %w", err)
	}
	return h, nil
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
