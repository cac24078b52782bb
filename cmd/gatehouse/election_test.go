package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

func TestElectionValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		e    election
		want string // "" for valid
	}{
		{"off ignores timings", election{}, ""},
		{"defaults", election{enabled: true, lease: 15 * time.Second, renew: 10 * time.Second, retry: time.Second}, ""},
		{"renew not shorter than lease", election{enabled: true, lease: 10 * time.Second, renew: 10 * time.Second, retry: time.Second}, "--leader-elect-renew-deadline (10s) must be shorter than --leader-elect-lease-duration (10s)"},
		{"retry not shorter than renew", election{enabled: true, lease: 15 * time.Second, renew: 2 * time.Second, retry: 2 * time.Second}, "--leader-elect-retry-period (2s) must be shorter"},
		{"zero", election{enabled: true, lease: 15 * time.Second, renew: 10 * time.Second}, "must be positive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.e.validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// TestQuietStop: the errors a deliberate stop causes are logged at info;
// the same errors while the hub runs, and any other error, stay errors.
func TestQuietStop(t *testing.T) {
	for _, c := range []struct {
		name      string
		err       error
		stopping  bool
		wantError bool
	}{
		{"lease lost while running", errors.New(errElectionLost), false, true},
		{"election ended by the stop", errors.New(errElectionLost), true, false},
		{"watch cancelled by the stop", errors.New("Timeout: failed waiting for *v1alpha1.Tenant Informer to sync"), true, false},
		{"watch not synced while running", errors.New("Timeout: failed waiting for *v1alpha1.Tenant Informer to sync"), false, true},
		{"another error while stopping", errors.New("connection refused"), true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.stopping {
				cancel()
			}
			rec := &recordingSink{}
			quietStop(logr.New(rec), ctx).WithName("manager").WithValues("k", "v").Error(c.err, "something")
			if rec.errors != btoi(c.wantError) || rec.infos != btoi(!c.wantError) {
				t.Fatalf("logged %d errors and %d infos, want an error: %v", rec.errors, rec.infos, c.wantError)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type recordingSink struct{ errors, infos int }

func (r *recordingSink) Init(logr.RuntimeInfo)          {}
func (r *recordingSink) Enabled(int) bool               { return true }
func (r *recordingSink) Info(int, string, ...any)       { r.infos++ }
func (r *recordingSink) Error(error, string, ...any)    { r.errors++ }
func (r *recordingSink) WithValues(...any) logr.LogSink { return r }
func (r *recordingSink) WithName(string) logr.LogSink   { return r }
