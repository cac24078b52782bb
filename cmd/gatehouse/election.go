package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// leaseName is the Lease the hub's replicas elect their leader with.
const leaseName = "gatehouse-hub"

// election is how replicas elect the active hub: a Lease in the hub
// namespace, released when the leader stops.
type election struct {
	enabled             bool
	lease, renew, retry time.Duration
}

// validate refuses timings under which a leader could lose its lease while
// it still acts as the leader, or never renew it in time.
func (e election) validate() error {
	if !e.enabled {
		return nil
	}
	switch {
	case e.retry <= 0 || e.renew <= 0 || e.lease <= 0:
		return errors.New("--leader-elect-lease-duration, --leader-elect-renew-deadline and --leader-elect-retry-period must be positive")
	case e.renew >= e.lease:
		return fmt.Errorf("--leader-elect-renew-deadline (%s) must be shorter than --leader-elect-lease-duration (%s): a leader still renewing would act after standbys may take over", e.renew, e.lease)
	case e.retry >= e.renew:
		return fmt.Errorf("--leader-elect-retry-period (%s) must be shorter than --leader-elect-renew-deadline (%s): the leader would get no second try to renew", e.retry, e.renew)
	}
	return nil
}

// lock is the hub's Lease. Its holder is named after the replica's Pod
// (else its host name), so that `kubectl get lease gatehouse-hub` says
// which Pod leads.
func (e election) lock(cfg *rest.Config, namespace, pod string) (resourcelock.Interface, error) {
	id := pod
	if id == "" {
		var err error
		if id, err = os.Hostname(); err != nil {
			return nil, err
		}
	}
	cfg = rest.AddUserAgent(cfg, "gatehouse-leader-election")
	// One hung request must not cost the lease: half the renew deadline,
	// as controller-runtime does.
	cfg.Timeout = max(e.renew/2, time.Second)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return resourcelock.New(resourcelock.LeasesResourceLock, namespace, leaseName, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: id + "_" + string(uuid.NewUUID())})
}

// errElectionLost is what controller-runtime reports when its leader
// election ends, whatever the reason.
const errElectionLost = "leader election lost"

// errNotSynced is how controller-runtime reports a watch cancelled before
// its first list completed.
var errNotSynced = regexp.MustCompile(`^Timeout: failed waiting for \S+ Informer to sync$`)

// quietStop wraps the manager's logger so that a clean shutdown logs no
// error. When the hub stops on purpose (stopping ends), controller-runtime
// ends its leader election after the lease was released and reports that
// end as the error "leader election lost", and reports watches it cancels
// before their first list as errors too: both are expected steps of the
// stop, logged at info. The same while the hub runs stay errors.
func quietStop(l logr.Logger, stopping context.Context) logr.Logger {
	return logr.New(&quietSink{LogSink: l.GetSink(), stopping: stopping})
}

type quietSink struct {
	logr.LogSink
	stopping context.Context
}

func (q *quietSink) Error(err error, msg string, kv ...any) {
	if err != nil && q.stopping.Err() != nil {
		switch {
		case err.Error() == errElectionLost:
			q.LogSink.Info(0, "leader election ended: the lease was released for a standby to take over", kv...)
			return
		case errNotSynced.MatchString(err.Error()):
			q.LogSink.Info(0, "stopped a watch before its first list: "+err.Error(), kv...)
			return
		}
	}
	q.LogSink.Error(err, msg, kv...)
}

func (q *quietSink) WithValues(kv ...any) logr.LogSink {
	return &quietSink{LogSink: q.LogSink.WithValues(kv...), stopping: q.stopping}
}

func (q *quietSink) WithName(name string) logr.LogSink {
	return &quietSink{LogSink: q.LogSink.WithName(name), stopping: q.stopping}
}
