package translate

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/resource"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// durationKey is a class parameter holding a duration; zeroOK says whether
// 0s (none) may be written.
type durationKey struct {
	name   string
	zeroOK string // what 0s means, when it is allowed
	field  func(*routetable.Limits) **routetable.Duration
}

// countKey is a class parameter holding a size or a count within bounds.
type countKey struct {
	name     string
	min, max int64
	example  string
	field    func(*routetable.Limits) *uint32
}

// The limit keys of a GatewayClass's parameters; docs/limits.md explains
// each and its default.
var (
	limitDurations = []durationKey{
		{"requestTimeout", "no default timeout", func(l *routetable.Limits) **routetable.Duration { return &l.RequestTimeout }},
		{"backendTimeout", "no default per attempt", func(l *routetable.Limits) **routetable.Duration { return &l.BackendTimeout }},
		{"maxRequestTimeout", "no maximum", func(l *routetable.Limits) **routetable.Duration { return &l.MaxRequestTimeout }},
		{"idleTimeout", "", func(l *routetable.Limits) **routetable.Duration { return &l.IdleTimeout }},
		{"requestHeaderTimeout", "", func(l *routetable.Limits) **routetable.Duration { return &l.RequestHeaderTimeout }},
		{"requestBodyTimeout", "", func(l *routetable.Limits) **routetable.Duration { return &l.RequestBodyTimeout }},
		{"streamIdleTimeout", "", func(l *routetable.Limits) **routetable.Duration { return &l.StreamIdleTimeout }},
	}
	limitCounts = []countKey{
		{"minRequestBodyRate", 1, 1 << 30, "500 (bytes per second)", func(l *routetable.Limits) *uint32 { return &l.MinRequestBodyRate }},
		{"maxRequestHeaderBytes", 1 << 10, 1 << 20, "60Ki", func(l *routetable.Limits) *uint32 { return &l.MaxRequestHeaderBytes }},
		{"maxURILength", 256, 1 << 20, "16Ki", func(l *routetable.Limits) *uint32 { return &l.MaxUriLength }},
		{"maxConnectionsPerBackend", 1, 1 << 20, "1024", func(l *routetable.Limits) *uint32 { return &l.MaxConnectionsPerBackend }},
		{"maxPendingRequestsPerBackend", 1, 1 << 20, "1024", func(l *routetable.Limits) *uint32 { return &l.MaxPendingRequestsPerBackend }},
		{"maxStreamConnections", 1, 1 << 24, "10000", func(l *routetable.Limits) *uint32 { return &l.MaxStreamConnections }},
	}
)

// parseLimits reads the limit keys of a class's ConfigMap over the
// defaults, or says what is wrong with each bad value and what to write.
func parseLimits(data map[string]string) (*routetable.Limits, []string) {
	l := routetable.DefaultLimits()
	var problems []string
	for _, k := range limitDurations {
		v, ok := data[k.name]
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		d, valid := parseDuration(gwv1.Duration(v))
		switch {
		case !valid:
			problems = append(problems, fmt.Sprintf("%s %q is not a duration: write one such as 30s or 1m30s (units h, m, s, ms)", k.name, v))
		case d == 0 && k.zeroOK == "":
			problems = append(problems, fmt.Sprintf("%s must be longer than 0s: write a duration such as 30s, or remove the key for the default", k.name))
		default:
			*k.field(l) = routetable.Millis(d)
		}
	}
	for _, k := range limitCounts {
		v, ok := data[k.name]
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		q, err := resource.ParseQuantity(v)
		n, exact := q.AsInt64()
		switch {
		case err != nil || !exact:
			problems = append(problems, fmt.Sprintf("%s %q is not a whole number: write one such as %s", k.name, v, k.example))
		case n < k.min || n > k.max:
			problems = append(problems, fmt.Sprintf("%s %s is out of range: write a number from %d to %d, such as %s", k.name, v, k.min, k.max, k.example))
		default:
			*k.field(l) = uint32(n)
		}
	}
	if d, m := l.RequestTimeout.Std(), l.MaxRequestTimeout.Std(); m > 0 && d > m {
		problems = append(problems, fmt.Sprintf("requestTimeout %s exceeds maxRequestTimeout %s: lower requestTimeout or raise maxRequestTimeout", d, m))
	}
	if d, m := l.BackendTimeout.Std(), l.MaxRequestTimeout.Std(); m > 0 && d > m {
		problems = append(problems, fmt.Sprintf("backendTimeout %s exceeds maxRequestTimeout %s: lower backendTimeout or raise maxRequestTimeout", d, m))
	}
	return l, problems
}

// clampRoute is a table route within its class's maximum timeout: the
// route itself when it is within, else a copy with the timeouts clamped
// and what was clamped, for the route's status. A route compiled once
// serves Gateways of several classes, so the table's copy changes, never
// the route's.
func clampRoute(rt *routetable.Route, max time.Duration) (*routetable.Route, []string) {
	a := rt.GetRoute()
	if a == nil || max <= 0 {
		return rt, nil
	}
	var notes []string
	clamp := func(d *routetable.Duration, field string) *routetable.Duration {
		if d == nil {
			return nil
		}
		got, clamped := routetable.ClampTimeout(d.Std(), max)
		if !clamped {
			return d
		}
		asked := d.Std().String()
		if d.Std() == 0 {
			asked = "0s (no timeout)"
		}
		notes = append(notes, fmt.Sprintf("spec.rules[%d].timeouts.%s: %s is beyond the GatewayClass's maxRequestTimeout, so the proxies use %s (ask the platform team if you need more)",
			rt.GetSource().GetRule(), field, asked, got))
		return routetable.Millis(got)
	}
	req, be := clamp(a.RequestTimeout, "request"), clamp(a.BackendTimeout, "backendRequest")
	if len(notes) == 0 {
		return rt, nil
	}
	out := proto.Clone(rt).(*routetable.Route)
	out.GetRoute().RequestTimeout, out.GetRoute().BackendTimeout = req, be
	return out, notes
}

// clampTable clamps every route of a table to max.
func clampTable(table *routetable.RouteTable, max time.Duration) {
	for _, l := range table.Listeners {
		for _, vh := range l.VirtualHosts {
			for i, rt := range vh.Routes {
				vh.Routes[i], _ = clampRoute(rt, max)
			}
		}
	}
}

// clampNotes says which timeouts of r a Gateway of the given class clamps.
func (t *translator) clampNotes(r *route, gw *gateway) string {
	max := t.out.Parameters[string(gw.obj.Spec.GatewayClassName)].Limits.GetMaxRequestTimeout().Std()
	var notes []string
	for _, e := range r.entries {
		if e.match != 0 {
			continue // one note per rule: its matches share the action
		}
		_, n := clampRoute(e.r, max)
		notes = append(notes, n...)
	}
	return strings.Join(notes, "; ")
}
