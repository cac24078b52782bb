package webhooktoken_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/gatehouse-dev/gatehouse/operator/webhooktoken"
)

var secretName = types.NamespacedName{Namespace: "gatehouse-system", Name: "gatehouse-webhook-key"}

// clock is a time the test moves.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock() *clock {
	c := &clock{}
	c.set(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return c
}
func (c *clock) now() time.Time      { return *c.t.Load() }
func (c *clock) set(t time.Time)     { c.t.Store(&t) }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

// start runs a Keyring on c until the test ends and waits for its first key.
func start(t *testing.T, c client.Client, clk *clock) *webhooktoken.Keyring {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	k := webhooktoken.New(c, secretName.Namespace, secretName.Name, webhooktoken.Options{Resync: 5 * time.Millisecond, Grace: time.Hour, Now: clk.now})
	var wg sync.WaitGroup
	wg.Go(func() { _ = k.Start(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, "the first key", func() bool { return k.Token("member-1") != "" })
	return k
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func secret(t *testing.T, c client.Client) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(context.Background(), secretName, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestATokenSpeaksForItsMemberOnly(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	k := start(t, c, newClock())
	one, two := k.Token("member-1"), k.Token("member-2")
	if one == two {
		t.Fatalf("member-1 and member-2 got the same token")
	}
	if len(secret(t, c).Data[webhooktoken.KeyCurrent]) != 32 {
		t.Errorf("the hub created a key of %d bytes, want 32", len(secret(t, c).Data[webhooktoken.KeyCurrent]))
	}
	for _, c := range []struct {
		name, member, token string
		want                bool
	}{
		{"member-1's own", "member-1", one, true},
		{"member-2's own", "member-2", two, true},
		{"member-1's for member-2", "member-2", one, false},
		{"member-1's for a member with a longer name", "member-10", one, false},
		{"none", "member-1", "", false},
		{"one character changed", "member-1", one[:len(one)-1] + string(one[len(one)-1]^1), false},
		{"one character more", "member-1", one + "A", false},
	} {
		if got := k.Authentic(c.member, c.token); got != c.want {
			t.Errorf("%s: Authentic = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestReplicasShareTheKeyTheFirstOneCreated(t *testing.T) {
	// Another replica creates the Secret between this one's read and its
	// create: this one must take the other's key, not keep its own.
	theirs := bytes.Repeat([]byte{7}, 32)
	var raced atomic.Bool
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if raced.CompareAndSwap(false, true) {
				other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretName.Namespace, Name: secretName.Name},
					Data: map[string][]byte{webhooktoken.KeyCurrent: theirs}}
				if err := c.Create(ctx, other); err != nil {
					return err
				}
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	clk := newClock()
	first := start(t, c, clk)
	second := start(t, c, clk)
	if !raced.Load() {
		t.Fatal("the race was not run")
	}
	if first.Token("member-1") != second.Token("member-1") {
		t.Errorf("replicas disagree on member-1's token")
	}
	if !bytes.Equal(secret(t, c).Data[webhooktoken.KeyCurrent], theirs) {
		t.Errorf("the replica that lost the race overwrote the winner's key")
	}
}

func TestRotationKeepsThePreviousKeyForTheGracePeriod(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	clk := newClock()
	k := start(t, c, clk)
	<-k.Changed() // the first key
	old := k.Token("member-1")

	// What the operators' guide says to run: move the key to previous-key.
	s := secret(t, c)
	s.Data[webhooktoken.KeyPrevious] = s.Data[webhooktoken.KeyCurrent]
	delete(s.Data, webhooktoken.KeyCurrent)
	if err := c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new key", func() bool { return k.Token("member-1") != old })
	select {
	case <-k.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("a new key did not signal Changed: members would keep their old registration")
	}
	if !k.Authentic("member-1", k.Token("member-1")) {
		t.Error("the new token is refused")
	}
	if !k.Authentic("member-1", old) {
		t.Error("the old token is refused during the grace period: members not yet re-registered would be refused")
	}
	if k.Authentic("member-2", old) {
		t.Error("member-1's old token is accepted for member-2")
	}
	want := clk.now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := secret(t, c).Annotations[webhooktoken.AnnotationPreviousExpires]; got != want {
		t.Errorf("previous key expires %q, want %q", got, want)
	}

	clk.add(time.Hour)
	if k.Authentic("member-1", old) {
		t.Error("the old token is accepted after the grace period")
	}
	waitFor(t, "the expired key to leave the Secret", func() bool {
		s := secret(t, c)
		_, prev := s.Data[webhooktoken.KeyPrevious]
		return !prev && s.Annotations[webhooktoken.AnnotationPreviousExpires] == ""
	})
	if !k.Authentic("member-1", k.Token("member-1")) {
		t.Error("the current token is refused after the previous key expired")
	}
}

func TestAShortKeyIsNotUsed(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretName.Namespace, Name: secretName.Name},
		Data: map[string][]byte{webhooktoken.KeyCurrent: []byte("guessable")}}).Build()
	ctx, cancel := context.WithCancel(context.Background())
	k := webhooktoken.New(c, secretName.Namespace, secretName.Name, webhooktoken.Options{Resync: 5 * time.Millisecond})
	done := make(chan struct{})
	go func() { _ = k.Start(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if k.Token("member-1") != "" {
		t.Error("a 9-byte key was used to sign tokens")
	}
	if string(secret(t, c).Data[webhooktoken.KeyCurrent]) != "guessable" {
		t.Error("the hub replaced a key it could not use instead of leaving it to the operator")
	}
}
