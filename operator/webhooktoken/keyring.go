// Package webhooktoken is how the hub knows which member's API server calls
// its admission webhook. The hub registers the webhook in each member at a
// URL that ends in a token of that member alone, an HMAC-SHA256 of the
// member's name under a key only the hub holds; a call is answered only when
// its path carries the token of the member it names. A member's token
// therefore speaks for that member and no other, and a caller without one
// gets nothing.
//
// The key lives in a Secret of the hub's namespace that every replica reads
// and the first one to start creates. Rotating it keeps the previous key
// valid for a grace period, so that members keep being answered until the
// hub has registered their new token.
package webhooktoken

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys and annotation of the key Secret.
const (
	// KeyCurrent signs the tokens the hub registers. Remove it (move it to
	// KeyPrevious) to have the hub create a new one.
	KeyCurrent = "key"
	// KeyPrevious is still accepted until AnnotationPreviousExpires.
	KeyPrevious = "previous-key"
	// AnnotationPreviousExpires (RFC 3339) is when KeyPrevious stops being
	// accepted; the hub sets it when it finds KeyPrevious without it.
	AnnotationPreviousExpires = "gatehouse.dev/previous-key-expires"
)

// keyBytes is the size of a key the hub creates and the least it accepts.
const keyBytes = 32

// maxRaces bounds how often one sync re-reads the Secret after losing a
// race to another replica.
const maxRaces = 5

// errRaced means another replica wrote the Secret between our read and our
// write; the answer is to read it again.
var errRaced = errors.New("webhook key Secret changed by another replica")

// Options tune a Keyring; the zero value means the defaults.
type Options struct {
	// Grace is how long the previous key is accepted after a rotation;
	// default one hour. The hub re-registers every reachable member within
	// seconds of a rotation.
	Grace time.Duration
	// Resync is how often the Secret is re-read, which is how a rotation
	// reaches every replica; default one minute.
	Resync time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log receives creations, rotations and failures; default discards.
	Log *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Grace <= 0 {
		o.Grace = time.Hour
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

// Keyring holds the hub's webhook key, kept in a Secret all replicas share.
// Every replica serves the webhook, so a Keyring does not need leader
// election.
type Keyring struct {
	client client.Client
	secret types.NamespacedName
	opts   Options

	keys    atomic.Pointer[keys]
	changed chan struct{}
}

// keys is what the Secret holds, as the Keyring serves it.
type keys struct {
	current, previous []byte
	previousUntil     time.Time
}

// New returns a Keyring keeping its key in the Secret namespace/name through
// c, which must read from the API server rather than from a cache (replicas
// race to create the Secret and must see each other's writes at once). It
// does nothing until Start.
func New(c client.Client, namespace, name string, opts Options) *Keyring {
	return &Keyring{
		client:  c,
		secret:  types.NamespacedName{Namespace: namespace, Name: name},
		opts:    opts.withDefaults(),
		changed: make(chan struct{}, 1),
	}
}

// NeedLeaderElection is false: every replica answers the webhook.
func (k *Keyring) NeedLeaderElection() bool { return false }

// Token is the path segment that authenticates member's API server; "" until
// Start has loaded the key.
func (k *Keyring) Token(member string) string {
	ks := k.keys.Load()
	if ks == nil {
		return ""
	}
	return sign(ks.current, member)
}

// Authentic reports whether token is member's, under the current key or,
// during a rotation's grace period, the previous one. It takes the same time
// whichever member is named and however much of the token is right.
func (k *Keyring) Authentic(member, token string) bool {
	ks := k.keys.Load()
	if ks == nil {
		return false
	}
	ok := equal(sign(ks.current, member), token)
	if ks.previous != nil && k.opts.Now().Before(ks.previousUntil) {
		ok = equal(sign(ks.previous, member), token) || ok
	}
	return ok
}

// Changed receives (buffered, never blocking the Keyring) whenever the key
// that Token signs with changes: every member's registration is then due.
func (k *Keyring) Changed() <-chan struct{} { return k.changed }

func sign(key []byte, member string) string {
	m := hmac.New(sha256.New, key)
	// The domain keeps these tokens apart from anything else this key might
	// one day sign.
	m.Write([]byte("gatehouse admission webhook\x00"))
	m.Write([]byte(member))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func equal(want, got string) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// Start loads or creates the key and re-reads it every Resync until ctx ends.
// Failures are logged and retried sooner; until the first success every
// caller is refused and no member is registered.
func (k *Keyring) Start(ctx context.Context) error {
	retry := time.Duration(0)
	for {
		wait := k.opts.Resync
		if err := k.sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			retry = min(max(2*retry, time.Second), k.opts.Resync)
			wait = retry
			k.opts.Log.Error("webhook key not loaded; members' API servers are refused until it is", "error", err, "retryIn", wait)
		} else {
			retry = 0
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

// sync reads the Secret, writing it first where it is missing, rotated or
// its previous key has no expiry, and serves what it holds.
func (k *Keyring) sync(ctx context.Context) error {
	for range maxRaces {
		ks, err := k.syncOnce(ctx, k.opts.Now())
		if errors.Is(err, errRaced) {
			continue
		}
		if err != nil {
			return err
		}
		k.serve(ks)
		return nil
	}
	return fmt.Errorf("webhook key Secret %s changed under every one of %d attempts to read and write it", k.secret, maxRaces)
}

func (k *Keyring) serve(ks *keys) {
	old := k.keys.Swap(ks)
	if old == nil || !hmac.Equal(old.current, ks.current) {
		select {
		case k.changed <- struct{}{}:
		default:
		}
	}
}

func (k *Keyring) syncOnce(ctx context.Context, now time.Time) (*keys, error) {
	var s corev1.Secret
	err := k.client.Get(ctx, k.secret, &s)
	if apierrors.IsNotFound(err) {
		s = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: k.secret.Namespace, Name: k.secret.Name}, Type: corev1.SecretTypeOpaque}
		return k.write(ctx, &s, &keys{}, now, func(ctx context.Context, o client.Object) error { return k.client.Create(ctx, o) })
	}
	if err != nil {
		return nil, fmt.Errorf("reading webhook key Secret %s: %w", k.secret, err)
	}
	ks, err := k.parse(&s)
	if err != nil {
		return nil, err
	}
	if !ks.due(now) {
		return ks, nil
	}
	return k.write(ctx, &s, ks, now, func(ctx context.Context, o client.Object) error { return k.client.Update(ctx, o) })
}

// parse reads the Secret's keys; a previous key whose expiry is missing or
// unreadable has a zero previousUntil.
func (k *Keyring) parse(s *corev1.Secret) (*keys, error) {
	ks := &keys{current: s.Data[KeyCurrent], previous: s.Data[KeyPrevious]}
	for name, key := range map[string][]byte{KeyCurrent: ks.current, KeyPrevious: ks.previous} {
		if key != nil && len(key) < keyBytes {
			return nil, fmt.Errorf("webhook key Secret %s: %s holds %d bytes, fewer than the %d a key needs; remove it to have the hub create a key", k.secret, name, len(key), keyBytes)
		}
	}
	if ks.previous != nil {
		ks.previousUntil, _ = time.Parse(time.RFC3339, s.Annotations[AnnotationPreviousExpires])
	}
	return ks, nil
}

// due reports whether the Secret needs writing: it has no current key (a
// rotation was asked for), or a previous key without an expiry or past it.
func (ks *keys) due(now time.Time) bool {
	return ks.current == nil || ks.previous != nil && (ks.previousUntil.IsZero() || !now.Before(ks.previousUntil))
}

// write completes s, which holds ks: a new key where there is none, an
// expiry for a previous key that has none or was just rotated out, and no
// previous key once it expired. save stores it (a Create or an Update at
// the resourceVersion read).
func (k *Keyring) write(ctx context.Context, s *corev1.Secret, ks *keys, now time.Time, save func(context.Context, client.Object) error) (*keys, error) {
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	rotated := ks.current == nil
	if rotated {
		key := make([]byte, keyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("creating webhook key: %w", err)
		}
		s.Data[KeyCurrent] = key
	}
	switch {
	case ks.previous == nil:
		delete(s.Annotations, AnnotationPreviousExpires)
	case rotated || ks.previousUntil.IsZero():
		metav1.SetMetaDataAnnotation(&s.ObjectMeta, AnnotationPreviousExpires, now.Add(k.opts.Grace).UTC().Format(time.RFC3339))
	case !now.Before(ks.previousUntil):
		delete(s.Data, KeyPrevious)
		delete(s.Annotations, AnnotationPreviousExpires)
	}
	err := save(ctx, s)
	if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
		k.opts.Log.Info("another replica wrote the webhook key Secret first; using theirs", "secret", k.secret)
		return nil, errRaced
	}
	if err != nil {
		return nil, fmt.Errorf("writing webhook key Secret %s: %w", k.secret, err)
	}
	next, err := k.parse(s)
	if err != nil {
		return nil, err
	}
	k.opts.Log.Info("wrote webhook key Secret", "secret", k.secret, "newKey", rotated, "previousKeyAccepted", next.previous != nil, "previousKeyUntil", next.previousUntil)
	return next, nil
}
