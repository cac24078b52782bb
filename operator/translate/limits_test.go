package translate

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

func TestParseLimits(t *testing.T) {
	cases := []struct {
		name    string
		data    map[string]string
		check   func(*routetable.Limits) bool
		problem string // a part of the message; empty: valid
	}{
		{"none gives the defaults", nil, func(l *routetable.Limits) bool {
			return l.RequestTimeout.Std() == routetable.DefaultRequestTimeout && l.MaxUriLength == routetable.DefaultMaxURILength
		}, ""},
		{"0s request timeout means none", map[string]string{"requestTimeout": "0s"}, func(l *routetable.Limits) bool {
			return l.RequestTimeout != nil && l.RequestTimeout.Std() == 0
		}, ""},
		{"0s maximum means no maximum", map[string]string{"maxRequestTimeout": "0s", "requestTimeout": "3h"}, func(l *routetable.Limits) bool {
			return l.MaxRequestTimeout.Std() == 0 && l.RequestTimeout.Std() == 3*time.Hour
		}, ""},
		{"sizes as quantities", map[string]string{"maxRequestHeaderBytes": " 32Ki ", "minRequestBodyRate": "2k"}, func(l *routetable.Limits) bool {
			return l.MaxRequestHeaderBytes == 32<<10 && l.MinRequestBodyRate == 2000
		}, ""},
		{"header timeout cannot be off", map[string]string{"requestHeaderTimeout": "0s"}, nil, "requestHeaderTimeout must be longer than 0s"},
		{"go-style durations are not ours", map[string]string{"idleTimeout": "1.5s"}, nil, `idleTimeout "1.5s" is not a duration: write one such as 30s`},
		{"default above the maximum", map[string]string{"requestTimeout": "5m", "maxRequestTimeout": "1m"}, nil, "requestTimeout 5m0s exceeds maxRequestTimeout 1m0s"},
		{"fractional count", map[string]string{"maxConnectionsPerBackend": "1.5"}, nil, `maxConnectionsPerBackend "1.5" is not a whole number`},
		{"zero pending", map[string]string{"maxPendingRequestsPerBackend": "0"}, nil, "maxPendingRequestsPerBackend 0 is out of range: write a number from 1"},
		{"stream limits", map[string]string{"streamIdleTimeout": "10m", "maxStreamConnections": "20k"}, func(l *routetable.Limits) bool {
			return l.StreamIdleTimeout.Std() == 10*time.Minute && l.MaxStreamConnections == 20000
		}, ""},
		{"stream idle timeout cannot be off", map[string]string{"streamIdleTimeout": "0s"}, nil, "streamIdleTimeout must be longer than 0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, problems := parseLimits(c.data)
			got := strings.Join(problems, "; ")
			if c.problem == "" {
				if got != "" || !c.check(l) {
					t.Fatalf("got %v with problems %q", l, got)
				}
				return
			}
			if !strings.Contains(got, c.problem) {
				t.Fatalf("problems %q, want one containing %q", got, c.problem)
			}
		})
	}
}

func TestClampRoute(t *testing.T) {
	rt := &routetable.Route{Action: &routetable.Route_Route{Route: &routetable.RouteAction{
		RequestTimeout: routetable.Millis(10 * time.Minute), BackendTimeout: routetable.Millis(time.Second)}}}
	got, notes := clampRoute(rt, time.Minute)
	if got == rt || len(notes) != 1 || got.GetRoute().RequestTimeout.Std() != time.Minute || got.GetRoute().BackendTimeout.Std() != time.Second {
		t.Fatalf("clamped to %v with notes %q; want a copy with request 1m and backend 1s, one note", got, notes)
	}
	if rt.GetRoute().RequestTimeout.Std() != 10*time.Minute {
		t.Fatal("clampRoute changed the route it was given, which other tables share")
	}
	if same, notes := clampRoute(rt, 0); same != rt || notes != nil {
		t.Fatal("without a maximum the route must stay as it is")
	}
}
