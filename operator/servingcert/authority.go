package servingcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AuthorityOptions tune an Authority. The zero value means the defaults.
type AuthorityOptions struct {
	// CAValidity is how long a CA is valid; default 365 days. A CA is
	// replaced when two thirds of it have passed.
	CAValidity time.Duration
	// ServingValidity is how long a serving certificate is valid; default 30
	// days, and never beyond its CA. It is renewed when two thirds of it
	// have passed.
	ServingValidity time.Duration
	// Resync is how often the CA Secret is re-read, so that every replica
	// picks up a CA another one created or rotated; default one minute.
	Resync time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log receives creations, rotations and failures; default discards.
	Log *slog.Logger
}

func (o AuthorityOptions) withDefaults() AuthorityOptions {
	if o.CAValidity <= 0 {
		o.CAValidity = 365 * 24 * time.Hour
	}
	if o.ServingValidity <= 0 {
		o.ServingValidity = 30 * 24 * time.Hour
	}
	if o.Resync <= 0 {
		o.Resync = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Authority is a CA the hub manages itself, kept in a Secret of the hub
// cluster that all replicas share, and the serving certificate each replica
// issues from it in memory. Every replica serves, so an Authority does not
// need leader election; replicas agree on the CA through the Secret's
// resourceVersion.
//
// A CA is rotated when two thirds of its validity have passed. The Secret
// then keeps the old CA certificate as ca-previous.crt and CABundle holds
// both until the old one expires, so members keep trusting serving
// certificates the old CA signed. A running replica keeps serving such a
// certificate until its own renewal is due, which gives the new bundle time
// to reach the members; only a replica that starts just after a rotation
// serves a certificate of the new CA straight away, which a member that has
// not yet received the new bundle rejects until it does.
type Authority struct {
	client client.Client
	secret types.NamespacedName
	hosts  []string
	opts   AuthorityOptions

	changed signal
	current atomic.Pointer[issued]
}

// issued is what an Authority serves: one atomic load per handshake.
type issued struct {
	cert   *tls.Certificate
	signer *x509.Certificate
	// trusted is the CAs of bundle, newest first.
	trusted []*x509.Certificate
	bundle  []byte
}

// NewAuthority returns an Authority keeping its CA in the Secret
// namespace/secretName through c and issuing serving certificates for hosts:
// IP addresses become IP SANs, everything else DNS SANs. It does nothing
// until Start.
//
// c must read the Secret from the API server rather than from an informer
// cache (for example a client.New client, or a manager client with Secrets
// in DisableFor): a cache would need list and watch on Secrets, and would
// answer "not found" just after another replica created the CA.
func NewAuthority(c client.Client, namespace, secretName string, hosts []string, opts AuthorityOptions) *Authority {
	return &Authority{
		client:  c,
		secret:  types.NamespacedName{Namespace: namespace, Name: secretName},
		hosts:   slices.Clone(hosts),
		opts:    opts.withDefaults(),
		changed: newSignal(),
	}
}

// NeedLeaderElection is false: every replica serves the webhook, so every
// replica needs a certificate.
func (a *Authority) NeedLeaderElection() bool { return false }

// Ready reports whether a serving certificate has been issued.
func (a *Authority) Ready() bool { return a.current.Load() != nil }

// GetCertificate returns the serving certificate, or an error until Start
// has issued the first one.
func (a *Authority) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	is := a.current.Load()
	if is == nil {
		return nil, fmt.Errorf("no serving certificate yet: the CA in Secret %s has not been loaded or created", a.secret)
	}
	return is.cert, nil
}

// CABundle returns the PEM certificates of the current CA and, during a
// rotation, the previous one; nil before Start has loaded the CA.
func (a *Authority) CABundle() []byte {
	is := a.current.Load()
	if is == nil {
		return nil
	}
	return bytes.Clone(is.bundle)
}

// Changed receives whenever CABundle or the serving certificate changes.
func (a *Authority) Changed() <-chan struct{} { return a.changed }

// Start loads or creates the CA, issues the serving certificate and keeps
// both current until ctx ends. Failures to reach the Secret are logged and
// retried with backoff; until the first success GetCertificate fails.
func (a *Authority) Start(ctx context.Context) error {
	if len(a.hosts) == 0 || slices.Contains(a.hosts, "") {
		return fmt.Errorf("a serving certificate needs one or more host names or IP addresses, not %q", a.hosts)
	}
	retry := backoff{max: a.opts.Resync}
	for {
		wait, err := a.sync(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = retry.next()
			a.opts.Log.Error("serving certificate not refreshed; retrying", "secret", a.secret.String(), "err", err, "retryIn", wait)
		} else {
			retry.reset()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// sync brings the Secret and the serving certificate up to date and says
// how long they stay so.
func (a *Authority) sync(ctx context.Context) (time.Duration, error) {
	now := a.opts.Now()
	cas, err := a.syncSecret(ctx, now)
	if err != nil {
		return 0, err
	}
	is, err := a.refresh(cas, now)
	if err != nil {
		return 0, err
	}
	return a.untilNextCheck(cas, is, now), nil
}

// refresh serves cas: it rebuilds the bundle and issues a serving
// certificate when there is none, the one there is falls due, or its
// signer is no longer trusted.
func (a *Authority) refresh(cas caSet, now time.Time) (*issued, error) {
	old := a.current.Load()
	next := &issued{trusted: cas.trusted(now)}
	for _, ca := range next.trusted {
		next.bundle = append(next.bundle, encodeCert(ca)...)
	}
	if old != nil && now.Before(dueAt(old.cert.Leaf)) && slices.ContainsFunc(next.trusted, old.signer.Equal) {
		next.cert, next.signer = old.cert, old.signer
	} else {
		cert, err := newServing(cas.current, a.hosts, now, a.opts.ServingValidity)
		if err != nil {
			return nil, fmt.Errorf("issuing the serving certificate: %w", err)
		}
		next.cert, next.signer = cert, cas.current.cert
		a.opts.Log.Info("issued serving certificate", append(describe(cert.Leaf), "hosts", a.hosts, "caSerial", cas.current.cert.SerialNumber.Text(16))...)
	}
	bundleChanged := old == nil || !bytes.Equal(old.bundle, next.bundle)
	if bundleChanged {
		a.opts.Log.Info("CA bundle changed", "cas", len(next.trusted), "currentCASerial", cas.current.cert.SerialNumber.Text(16))
	}
	if bundleChanged || old.cert != next.cert {
		a.current.Store(next)
		a.changed.notify()
	}
	return next, nil
}

// untilNextCheck is the time to the next thing due: the serving
// certificate's renewal, the CA's rotation, the previous CA's expiry (which
// drops it from the bundle), or a periodic re-read of the Secret.
func (a *Authority) untilNextCheck(cas caSet, is *issued, now time.Time) time.Duration {
	next := now.Add(a.opts.Resync)
	due := []time.Time{dueAt(is.cert.Leaf), dueAt(cas.current.cert)}
	if cas.previous != nil && cas.previous.NotAfter.After(now) {
		due = append(due, cas.previous.NotAfter)
	}
	for _, t := range due {
		if t.Before(next) {
			next = t
		}
	}
	return max(next.Sub(now), min(time.Second, a.opts.Resync))
}

// backoff spaces retries from one second up to max.
type backoff struct {
	max  time.Duration
	last time.Duration
}

func (b *backoff) next() time.Duration {
	b.last = min(max(2*b.last, time.Second), b.max)
	return b.last
}

func (b *backoff) reset() { b.last = 0 }
