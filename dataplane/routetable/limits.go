package routetable

import (
	"time"

	"google.golang.org/protobuf/proto"
)

// The defaults of Limits: what a Gateway gets when its class says nothing,
// and what a proxy applies to a table without limits (a table file, an
// older hub). docs/limits.md sets them beside Envoy's and nginx's.
const (
	DefaultRequestTimeout           = 60 * time.Second
	DefaultBackendTimeout           = 0 // the request timeout bounds every attempt
	DefaultMaxRequestTimeout        = time.Hour
	DefaultIdleTimeout              = 2 * time.Minute
	DefaultRequestHeaderTimeout     = 10 * time.Second
	DefaultRequestBodyTimeout       = 30 * time.Second
	DefaultMinRequestBodyRate       = 500 // bytes per second
	DefaultMaxRequestHeaderBytes    = 60 << 10
	DefaultMaxURILength             = 16 << 10
	DefaultMaxConnectionsPerBackend = 1024
	DefaultMaxPendingPerBackend     = 1024
)

// Millis is a Duration of d.
func Millis(d time.Duration) *Duration { return &Duration{Milliseconds: d.Milliseconds()} }

// Std is d as a time.Duration; nil is zero.
func (d *Duration) Std() time.Duration {
	return time.Duration(d.GetMilliseconds()) * time.Millisecond
}

// DefaultLimits are the limits of a class that sets none.
func DefaultLimits() *Limits {
	return &Limits{
		RequestTimeout:               Millis(DefaultRequestTimeout),
		BackendTimeout:               Millis(DefaultBackendTimeout),
		MaxRequestTimeout:            Millis(DefaultMaxRequestTimeout),
		IdleTimeout:                  Millis(DefaultIdleTimeout),
		RequestHeaderTimeout:         Millis(DefaultRequestHeaderTimeout),
		RequestBodyTimeout:           Millis(DefaultRequestBodyTimeout),
		MinRequestBodyRate:           DefaultMinRequestBodyRate,
		MaxRequestHeaderBytes:        DefaultMaxRequestHeaderBytes,
		MaxUriLength:                 DefaultMaxURILength,
		MaxConnectionsPerBackend:     DefaultMaxConnectionsPerBackend,
		MaxPendingRequestsPerBackend: DefaultMaxPendingPerBackend,
	}
}

// WithDefaults is a copy of l whose unset fields hold the defaults; nil
// gives DefaultLimits.
func (l *Limits) WithDefaults() *Limits {
	out := DefaultLimits()
	if l == nil {
		return out
	}
	// A set Duration counts even at zero ("none"); a zero count is unset.
	for _, f := range []struct {
		dst **Duration
		src *Duration
	}{
		{&out.RequestTimeout, l.RequestTimeout}, {&out.BackendTimeout, l.BackendTimeout},
		{&out.MaxRequestTimeout, l.MaxRequestTimeout}, {&out.IdleTimeout, l.IdleTimeout},
		{&out.RequestHeaderTimeout, l.RequestHeaderTimeout}, {&out.RequestBodyTimeout, l.RequestBodyTimeout},
		{&out.StreamIdleTimeout, l.StreamIdleTimeout},
	} {
		if f.src != nil {
			*f.dst = proto.Clone(f.src).(*Duration)
		}
	}
	for _, f := range []struct {
		dst *uint32
		src uint32
	}{
		{&out.MinRequestBodyRate, l.MinRequestBodyRate}, {&out.MaxRequestHeaderBytes, l.MaxRequestHeaderBytes},
		{&out.MaxUriLength, l.MaxUriLength}, {&out.MaxConnectionsPerBackend, l.MaxConnectionsPerBackend},
		{&out.MaxPendingRequestsPerBackend, l.MaxPendingRequestsPerBackend}, {&out.MaxStreamConnections, l.MaxStreamConnections},
	} {
		if f.src != 0 {
			*f.dst = f.src
		}
	}
	return out
}

// ClampTimeout is the timeout a route gets for one it asks for: what it
// asks, unless that is longer than max (or none, zero) while max is set.
// clamped says the route asked for more.
func ClampTimeout(asked, max time.Duration) (got time.Duration, clamped bool) {
	if max > 0 && (asked == 0 || asked > max) {
		return max, true
	}
	return asked, false
}
