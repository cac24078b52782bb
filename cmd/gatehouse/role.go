package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// The role label marks the Pod of the elected hub. The push and webhook
// Services select it, so proxies and members' API servers reach the active
// hub only, while standbys stay Ready: a rolling update and a drain wait for
// Ready replicas, and a standby that is never Ready would stall both.
const (
	roleLabel  = "gatehouse.dev/role"
	roleActive = "active"
)

// roleCheckEvery is how often the elected hub makes sure that it alone
// carries the label: a label removed by hand comes back, and one left on a
// former leader that crashed goes.
const roleCheckEvery = 10 * time.Second

// podRole keeps the role label on the elected hub's own Pod and off every
// other Pod of the namespace. One namespace holds one hub: its replicas
// share one Lease there, so any other Pod labelled active is stale.
type podRole struct {
	client    client.Client // uncached: a cache of Pods would watch the namespace for nothing
	namespace string
	name      string
	log       *slog.Logger
}

// NeedLeaderElection: only the elected hub labels itself.
func (r *podRole) NeedLeaderElection() bool { return true }

// Start runs once this replica is elected: it labels its Pod and keeps the
// label its own until ctx ends, then removes it, before the manager
// releases the Lease, so that no Service sends traffic to a hub that stops.
func (r *podRole) Start(ctx context.Context) error {
	ticker := time.NewTicker(roleCheckEvery)
	defer ticker.Stop()
	for {
		if err := r.claim(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("labelling this hub's Pod as the active one; retrying", "pod", r.name, "error", err)
		}
		select {
		case <-ctx.Done():
			// ctx is over: the removal gets a moment of its own.
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := r.set(stop, r.name, false); err != nil {
				r.log.Warn("removing the active label from this hub's Pod; the next elected hub removes it", "pod", r.name, "error", err)
			} else {
				r.log.Info("stepped down: this hub's Pod no longer receives proxies and webhook calls", "pod", r.name)
			}
			return nil
		case <-ticker.C:
		}
	}
}

// claim labels this Pod and removes the label from any other.
func (r *podRole) claim(ctx context.Context) error {
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(r.namespace), client.MatchingLabels{roleLabel: roleActive}); err != nil {
		return err
	}
	var errs []error
	mine := false
	for _, p := range pods.Items {
		if p.Name == r.name {
			mine = true
			continue
		}
		r.log.Info("removing the active label from a former hub's Pod", "pod", p.Name)
		errs = append(errs, r.set(ctx, p.Name, false))
	}
	if !mine {
		if err := r.set(ctx, r.name, true); err != nil {
			return errors.Join(append(errs, err)...)
		}
		r.log.Info("elected: this hub's Pod now receives proxies and webhook calls", "pod", r.name)
	}
	return errors.Join(errs...)
}

// clearOwn removes the label from this Pod at start: a container restarted
// after a crash keeps its Pod, and the Pod its labels. It tries for a while
// and gives up quietly, as the elected hub removes stale labels too.
func (r *podRole) clearOwn(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := r.set(ctx, r.name, false)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			r.log.Warn("removing a leftover active label from this hub's Pod; the elected hub removes it", "pod", r.name, "error", err)
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// set adds or removes the label on one Pod of the namespace. A Pod that is
// gone needs nothing.
func (r *podRole) set(ctx context.Context, pod string, active bool) error {
	var value any // JSON null removes the label
	if active {
		value = roleActive
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{roleLabel: value}}})
	if err != nil {
		return err
	}
	p := &corev1.Pod{}
	p.Namespace, p.Name = r.namespace, pod
	err = r.client.Patch(ctx, p, client.RawPatch(types.MergePatchType, patch))
	if apierrors.IsNotFound(err) && !active {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod %s/%s: %w", r.namespace, pod, err)
	}
	return nil
}

// setUpRole removes a leftover label from this replica's Pod and has the
// manager label it once elected.
func setUpRole(ctx context.Context, mgr manager.Manager, o options, logger *slog.Logger) error {
	c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	r := &podRole{client: c, namespace: o.namespace, name: o.podName, log: logger.With("component", "role")}
	r.clearOwn(ctx)
	return mgr.Add(r)
}
