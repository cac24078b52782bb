package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The kinds of change, in the order a member cycles through them.
const (
	opAdd    = "add"
	opModify = "modify"
	opDelete = "delete"
)

var cycle = []string{opAdd, opModify, opDelete}

// sample is one change as measured.
type sample struct {
	member string
	op     string
	// call is how long the write itself took; the other durations count
	// from just before it.
	call time.Duration
	// traffic: until the proxy answered as the change says; programmed:
	// until the status said Accepted and Programmed at the new generation
	// (not for deletes). Zero with the ok flag false when it timed out.
	traffic, programmed     time.Duration
	trafficOK, programmedOK bool
	// probeErrors are answers to the probe that neither the old nor the
	// new state of the route explains (5xx, a wrong body, a connection
	// error).
	probeErrors int
}

// churn runs the load and the changes in every member at once and prints
// the report.
func (b *bed) churn(ctx context.Context, c config) error {
	loadHosts := min(c.loadHosts, max(1, c.routes/2))
	before := b.sampleProcesses()
	metricsBefore := scrapeHubMetrics(b.metricsAddr)
	fmt.Printf("churn: %d changes per member, %d members at once, load: %d clients per member over %d routes\n",
		c.changes, len(b.gws), c.loadClients, loadHosts)

	loadCtx, stopLoad := context.WithCancel(ctx)
	loads := make([]*load, len(b.gws))
	for i, g := range b.gws {
		loads[i] = startLoad(loadCtx, g.Address, loadHosts, c.loadClients, c.loadRate)
	}
	start := time.Now()
	samples := make([][]sample, len(b.gws))
	var eg errgroup.Group
	for i, g := range b.gws {
		eg.Go(func() error {
			ch, err := newChurner(g, c, loadHosts)
			if err != nil {
				return err
			}
			samples[i], err = ch.run(ctx, c.changes)
			return err
		})
	}
	err := eg.Wait()
	elapsed := time.Since(start)
	stopLoad()
	for _, l := range loads {
		l.wait()
	}
	if err != nil {
		return err
	}
	after := b.sampleProcesses()
	report(c, elapsed, samples, loads, before, after)
	printHubMetrics(metricsBefore, scrapeHubMetrics(b.metricsAddr))
	return nil
}

// churner changes one member's routes one at a time.
type churner struct {
	g       *env.SharedGateway
	watcher client.WithWatch
	probe   *http.Client
	timeout time.Duration
	poll    time.Duration
	// modifiable are initial routes outside the load's set, modified in
	// turn; added are the routes added by the churn and still there,
	// oldest first.
	modifiable []string
	added      []string
	// next numbers new routes and header values; modified counts the
	// modifications, to take the modifiable routes in turn.
	next, modified int
}

func newChurner(g *env.SharedGateway, c config, loadHosts int) (*churner, error) {
	wc, err := client.NewWithWatch(g.Cluster.Config, client.Options{Scheme: env.Scheme()})
	if err != nil {
		return nil, err
	}
	ch := &churner{g: g, watcher: wc, probe: keepAliveClient(time.Second), timeout: c.changeTimeout, poll: c.poll}
	for i := c.routes - 1; i >= loadHosts; i-- {
		ch.modifiable = append(ch.modifiable, initialName(i))
	}
	return ch, nil
}

func (ch *churner) run(ctx context.Context, changes int) ([]sample, error) {
	var out []sample
	for i := range changes {
		var s sample
		var err error
		switch op := cycle[i%len(cycle)]; op {
		case opAdd:
			s, err = ch.add(ctx)
		case opModify:
			s, err = ch.modify(ctx)
		case opDelete:
			s, err = ch.delete(ctx)
		}
		if err != nil {
			return out, fmt.Errorf("%s: change %d: %w", ch.g.Cluster.Name, i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (ch *churner) add(ctx context.Context) (sample, error) {
	ch.next++
	name := "c-" + strconv.Itoa(ch.next)
	host := name + ".apps.example.test"
	route := env.TenantRoute(tenant, name, host)
	s, err := ch.measure(ctx, opAdd, name, host, func() error { return ch.g.Client.Create(ctx, route) }, route,
		func(resp *http.Response, body string) verdict {
			return expect(resp, body, http.StatusOK, "", http.StatusNotFound)
		})
	if err == nil {
		ch.added = append(ch.added, name)
	}
	return s, err
}

// modify sets a response header with a new value on a route, so that the
// change shows in every answer.
func (ch *churner) modify(ctx context.Context) (sample, error) {
	name := ""
	switch {
	case len(ch.modifiable) > 0:
		name = ch.modifiable[ch.modified%len(ch.modifiable)]
		ch.modified++
	case len(ch.added) > 0:
		name = ch.added[len(ch.added)-1]
	default:
		return sample{}, fmt.Errorf("no route to modify")
	}
	ch.next++
	value := strconv.Itoa(ch.next)
	var route gwv1.HTTPRoute
	if err := ch.g.Client.Get(ctx, client.ObjectKey{Namespace: tenant, Name: name}, &route); err != nil {
		return sample{}, err
	}
	orig := route.DeepCopy()
	route.Spec.Rules[0].Filters = []gwv1.HTTPRouteFilter{{
		Type:                   gwv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "x-churn", Value: value}}},
	}}
	// A merge patch carries no resourceVersion, so the hub's status writes
	// cannot make it conflict.
	return ch.measure(ctx, opModify, name, string(route.Spec.Hostnames[0]), func() error { return ch.g.Client.Patch(ctx, &route, client.MergeFrom(orig)) }, &route,
		func(resp *http.Response, body string) verdict {
			return expect(resp, body, http.StatusOK, value, http.StatusOK)
		})
}

func (ch *churner) delete(ctx context.Context) (sample, error) {
	if len(ch.added) == 0 {
		return sample{}, fmt.Errorf("no added route to delete")
	}
	name := ch.added[0]
	ch.added = ch.added[1:]
	route := env.TenantRoute(tenant, name, name+".apps.example.test")
	return ch.measure(ctx, opDelete, name, string(route.Spec.Hostnames[0]), func() error { return ch.g.Client.Delete(ctx, route) }, nil,
		func(resp *http.Response, body string) verdict {
			return expect(resp, body, http.StatusNotFound, "", http.StatusOK)
		})
}

// measure watches the route, makes the write and times it to the change
// showing in traffic (check says when) and, when route is not nil, to the
// route being Programmed at the generation the write gave it.
func (ch *churner) measure(ctx context.Context, op, name, host string, write func() error, route *gwv1.HTTPRoute, check func(*http.Response, string) verdict) (sample, error) {
	s := sample{member: ch.g.Cluster.Name, op: op}
	// The watch opens before the write so that no status written after it
	// is missed; its events wait in the stream until they are read.
	var w *routeWatch
	if route != nil {
		var err error
		if w, err = ch.watch(ctx, name); err != nil {
			return s, err
		}
		defer w.stop()
	}
	start := time.Now()
	if err := write(); err != nil {
		return s, fmt.Errorf("%s %s: %w", op, name, err)
	}
	s.call = time.Since(start)
	var status <-chan time.Time
	if w != nil {
		status = w.programmedAt(start.Add(ch.timeout), route.Generation)
	}
	s.traffic, s.trafficOK, s.probeErrors = ch.probeUntil(ctx, start, host, check)
	if status != nil {
		if at, ok := <-status; ok {
			s.programmed, s.programmedOK = at.Sub(start), true
		}
	}
	return s, nil
}

// programmed reports whether the route's status has our parent with
// Accepted and Programmed True, both for the route's current generation.
func programmed(r *gwv1.HTTPRoute) bool {
	for _, p := range r.Status.Parents {
		if p.ControllerName != translate.ControllerName || p.ParentRef.Name != env.GatewayName {
			continue
		}
		ok := 0
		for _, t := range []string{"Accepted", "Programmed"} {
			if c := meta.FindStatusCondition(p.Conditions, t); c != nil && c.Status == "True" && c.ObservedGeneration == r.Generation {
				ok++
			}
		}
		return ok == 2
	}
	return false
}
