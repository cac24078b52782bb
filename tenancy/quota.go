package tenancy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// RouteEntry is one route as quotas count it.
type RouteEntry struct {
	Cluster, Kind, Namespace, Name string
	Tenant                         string
	Created                        time.Time
	Hostnames                      []string
}

// ID names a route across the fleet.
func (e RouteEntry) ID() string { return e.Cluster + "/" + e.Kind + "/" + e.Namespace + "/" + e.Name }

// Routes is the fleet-wide index of every tenant's routes, which limits
// are counted against. Each cluster's pass replaces that cluster's entries.
// Routes are ranked oldest first, so a new route is the one refused when a
// tenant is at its limit, and older routes keep serving.
type Routes struct {
	mu        sync.Mutex
	byCluster map[string]map[string]RouteEntry
	// over: per tenant, the routes beyond a limit and why; recomputed when
	// the tenant's routes or the view change.
	over map[string]map[string]string
	seen *View
}

// NewRoutes returns an empty index.
func NewRoutes() *Routes {
	return &Routes{byCluster: map[string]map[string]RouteEntry{}, over: map[string]map[string]string{}}
}

// SetCluster replaces a cluster's entries and returns the tenants whose
// routes changed.
func (x *Routes) SetCluster(cluster string, entries []RouteEntry) []string {
	next := make(map[string]RouteEntry, len(entries))
	for _, e := range entries {
		e.Cluster = cluster
		next[e.ID()] = e
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	changed := map[string]bool{}
	prev := x.byCluster[cluster]
	for id, e := range next {
		if p, ok := prev[id]; !ok || p.Tenant != e.Tenant || !slices.Equal(p.Hostnames, e.Hostnames) {
			changed[e.Tenant] = true
			if ok {
				changed[p.Tenant] = true
			}
		}
	}
	for id, p := range prev {
		if _, ok := next[id]; !ok {
			changed[p.Tenant] = true
		}
	}
	x.byCluster[cluster] = next
	var out []string
	for t := range changed {
		delete(x.over, t)
		if t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// RemoveCluster forgets a cluster that left the fleet.
func (x *Routes) RemoveCluster(cluster string) []string {
	return x.SetCluster(cluster, nil)
}

// Count returns how many routes a tenant has fleet-wide.
func (x *Routes) Count(tenant string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.routesOf(tenant))
}

// OverLimit says why a route is beyond its tenant's limits, or "" when it
// is within them (or not indexed).
func (x *Routes) OverLimit(v *View, e RouteEntry) string {
	if v.Limits(e.Tenant) == nil {
		return ""
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.seen != v {
		x.over, x.seen = map[string]map[string]string{}, v
	}
	over, ok := x.over[e.Tenant]
	if !ok {
		over = x.rank(v, e.Tenant, nil)
		x.over[e.Tenant] = over
	}
	return over[e.ID()]
}

// Admit says why a route being created or changed would be beyond its
// tenant's limits, or "" when it fits. Unlike OverLimit it counts the route
// as given, not as indexed.
func (x *Routes) Admit(v *View, e RouteEntry) string {
	if v.Limits(e.Tenant) == nil {
		return ""
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.rank(v, e.Tenant, &e)[e.ID()]
}

func (x *Routes) routesOf(tenant string) []RouteEntry {
	var out []RouteEntry
	for _, routes := range x.byCluster {
		for _, e := range routes {
			if e.Tenant == tenant {
				out = append(out, e)
			}
		}
	}
	return out
}

// rank walks a tenant's routes oldest first and marks those beyond a limit.
// extra, when set, replaces or joins the indexed routes; a route not yet
// created ranks last.
func (x *Routes) rank(v *View, tenant string, extra *RouteEntry) map[string]string {
	limits := v.Limits(tenant)
	routes := x.routesOf(tenant)
	if extra != nil {
		routes = slices.DeleteFunc(routes, func(e RouteEntry) bool { return e.ID() == extra.ID() })
		e := *extra
		if e.Created.IsZero() {
			e.Created = time.Unix(1<<40, 0)
		}
		routes = append(routes, e)
	}
	slices.SortFunc(routes, func(a, b RouteEntry) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID(), b.ID()))
	})
	over := map[string]string{}
	hostnames := map[string]bool{}
	admitted := 0
	for _, e := range routes {
		if limits.MaxRoutes != nil && admitted >= int(*limits.MaxRoutes) {
			over[e.ID()] = fmt.Sprintf("tenant %q may have at most %d routes across the fleet and has %d; delete a route or ask the platform team to raise spec.limits.maxRoutes of the Tenant", tenant, *limits.MaxRoutes, len(routes))
			continue
		}
		if limits.MaxHostnames != nil {
			var fresh []string
			for _, h := range e.Hostnames {
				if !hostnames[h] && !slices.Contains(fresh, h) {
					fresh = append(fresh, h)
				}
			}
			if len(hostnames)+len(fresh) > int(*limits.MaxHostnames) {
				over[e.ID()] = fmt.Sprintf("tenant %q may use at most %d distinct hostnames across the fleet; this route would add %d to the %d in use (%s); reuse a hostname or ask the platform team to raise spec.limits.maxHostnames of the Tenant", tenant, *limits.MaxHostnames, len(fresh), len(hostnames), joinSorted(hostnames))
				continue
			}
			for _, h := range fresh {
				hostnames[h] = true
			}
		}
		admitted++
	}
	return over
}

func joinSorted(set map[string]bool) string {
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	slices.Sort(out)
	if len(out) > 5 {
		return fmt.Sprintf("%s and %d more", strings.Join(out[:5], ", "), len(out)-5)
	}
	return strings.Join(out, ", ")
}
