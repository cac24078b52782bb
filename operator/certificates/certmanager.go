package certificates

import (
	"context"
	"fmt"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
)

// The hub may start before cert-manager is installed on its cluster, or
// cert-manager may come later. Until its Certificate API is served, the
// Issuer waits: a listener that asks for a certificate says cert-manager
// is missing, nothing is written to the hub, and the hub checks its API
// every CertManagerPoll. Once the API appears, the Issuer starts its
// controller and the listeners get their certificates, without a restart.

// CertManagerPoll is how often a waiting Issuer asks the hub for
// cert-manager's API: one discovery request.
const CertManagerPoll = 10 * time.Second

// APIDiscovery is what the Issuer asks of the hub's discovery API
// (client-go's discovery.DiscoveryInterface has it).
type APIDiscovery interface {
	ServerResourcesForGroupVersion(groupVersion string) (*metav1.APIResourceList, error)
}

// CertManagerServed reports whether the hub serves cert-manager's
// Certificates.
func CertManagerServed(d APIDiscovery) (bool, error) {
	list, err := d.ServerResourcesForGroupVersion(cmv1.SchemeGroupVersion.String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Kind == cmv1.CertificateKind {
			return true, nil
		}
	}
	return false, nil
}

// SetupWhenServed sets the Issuer up with mgr (SetupWithManager) at once
// when the hub serves cert-manager's API, and otherwise as soon as it
// does; retranslate is then called, so that the listeners waiting for
// cert-manager ask again.
func (i *Issuer) SetupWhenServed(mgr ctrl.Manager, d APIDiscovery, trigger func(cluster string), clusters func() []string, retranslate func()) error {
	served, err := CertManagerServed(d)
	if err != nil {
		return fmt.Errorf("asking the hub whether it serves cert-manager's API: %w", err)
	}
	if served {
		return i.SetupWithManager(mgr, trigger, clusters)
	}
	i.waiting.Store(true)
	i.log.Warn("cert-manager is not installed on the hub (no " + cmv1.SchemeGroupVersion.String() + " Certificate API): listeners that ask for a certificate wait; issuing starts once it is installed, without a restart")
	return mgr.Add(&arrival{i: i, d: d, every: CertManagerPoll, retranslate: retranslate,
		setup: func() error { return i.SetupWithManager(mgr, trigger, clusters) }})
}

// arrival waits for cert-manager's API, then starts the Issuer's
// controller. Every replica runs it, so a standby that takes over issues
// at once.
type arrival struct {
	i           *Issuer
	d           APIDiscovery
	every       time.Duration
	setup       func() error
	retranslate func()
}

func (a *arrival) NeedLeaderElection() bool { return false }

func (a *arrival) Start(ctx context.Context) error {
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		served, err := CertManagerServed(a.d)
		if err != nil {
			a.i.log.Warn("asking the hub for cert-manager's API failed; asking again", "in", a.every, "error", err)
			continue
		}
		if !served {
			continue
		}
		if err := a.setup(); err != nil {
			return fmt.Errorf("starting the listener certificate controller: %w", err)
		}
		a.i.waiting.Store(false)
		a.i.log.Info("cert-manager is installed on the hub: issuing listener certificates")
		a.retranslate()
		return nil
	}
}

// notInstalled is what a listener asking for a certificate says while
// cert-manager is missing.
func notInstalled(ref string) string {
	return fmt.Sprintf("%s asks for a certificate, but cert-manager is not installed on the hub (no %s Certificate API): install it there; the hub starts issuing without a restart",
		ref, cmv1.SchemeGroupVersion.String())
}
