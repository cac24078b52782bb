package hub

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

func TestProgrammedConditionAlwaysHasAReason(t *testing.T) {
	translated := func() []metav1.Condition {
		return []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed", ObservedGeneration: 3}}
	}
	storedAt := func(gen int64) []metav1.Condition {
		return []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed", Message: "served", ObservedGeneration: gen}}
	}
	tests := []struct {
		name       string
		f          served
		stored     []metav1.Condition
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{"served", served{ok: true, reason: "Programmed", message: "m"}, nil, metav1.ConditionTrue, "Programmed"},
		{"rejected", served{reason: ReasonProxyRejected, message: "m"}, nil, metav1.ConditionFalse, ReasonProxyRejected},
		{"unknown fleet state", served{}, nil, metav1.ConditionFalse, ReasonPending},
		{"restart keeps what is stored for this generation", served{keep: true}, storedAt(3), metav1.ConditionTrue, "Programmed"},
		{"restart does not carry an older generation's over", served{keep: true}, storedAt(2), metav1.ConditionFalse, ReasonPending},
		{"restart with nothing stored", served{keep: true}, nil, metav1.ConditionFalse, ReasonPending},
		// A Gateway's proxies reconnected to a restarted hub and have not
		// acknowledged its first table yet: no flap to Pending.
		{"settling keeps what is stored for this generation", served{settling: true, reason: ReasonPending, message: "waiting"}, storedAt(3), metav1.ConditionTrue, "Programmed"},
		{"settling does not carry an older generation's over", served{settling: true, reason: ReasonPending, message: "waiting"}, storedAt(2), metav1.ConditionFalse, ReasonPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := programmed(translated(), tt.f, tt.stored)[0]
			if c.Status != tt.wantStatus || c.Reason != tt.wantReason || c.Reason == "" {
				t.Errorf("got %s/%q, want %s/%q", c.Status, c.Reason, tt.wantStatus, tt.wantReason)
			}
			if c.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d, want the object's current 3", c.ObservedGeneration)
			}
		})
	}
	// A False Programmed from translate (invalid configuration) is not the fleet's to change.
	invalid := []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionFalse, Reason: "Invalid"}}
	if c := programmed(invalid, served{ok: true, reason: "Programmed"}, nil)[0]; c.Reason != "Invalid" {
		t.Errorf("translate's Invalid was overwritten: %+v", c)
	}
}

func TestOnlyConflicts(t *testing.T) {
	gr := schema.GroupResource{Group: "gateway.networking.k8s.io", Resource: "httproutes"}
	conflict := fmt.Errorf("HTTPRoute a/b: %w", apierrors.NewConflict(gr, "b", errors.New("stale")))
	invalid := apierrors.NewBadRequest("status.parents[0].conditions[2].reason: Invalid value")
	if !onlyConflicts(errors.Join(conflict, conflict)) {
		t.Error("two conflicts are only conflicts")
	}
	if onlyConflicts(errors.Join(conflict, invalid)) {
		t.Error("a rejected write among conflicts must back off and be logged")
	}
	if onlyConflicts(invalid) {
		t.Error("a rejected write is not a conflict")
	}
}

func TestTableContentsTrackGenerations(t *testing.T) {
	w := &worker{}
	table := func(gen int64) *routetable.RouteTable {
		return &routetable.RouteTable{Listeners: []*routetable.Listener{{VirtualHosts: []*routetable.VirtualHost{{Routes: []*routetable.Route{{
			Source: &routetable.RouteSource{Kind: "HTTPRoute", Namespace: "shop", Name: "web", Generation: gen},
		}}}}}}}
	}
	w.record("c/infra/gw", "h1", table(1), nil, nil)
	w.record("c/infra/gw", "h2", table(2), nil, nil)
	if !w.carries("c/infra/gw", "h1", objectKey("HTTPRoute", "shop", "web", 1)) || w.carries("c/infra/gw", "h1", objectKey("HTTPRoute", "shop", "web", 2)) {
		t.Error("h1 carries generation 1 only")
	}
	for i := 3; i < 3+keptVersions; i++ {
		w.record("c/infra/gw", fmt.Sprintf("h%d", i), table(int64(i)), nil, nil)
	}
	if w.carries("c/infra/gw", "h1", objectKey("HTTPRoute", "shop", "web", 1)) {
		t.Errorf("more than %d versions are remembered", keptVersions)
	}
}

func TestEveryReplicaMustServe(t *testing.T) {
	w := &worker{}
	const node = "c/infra/gw"
	route := objectKey("HTTPRoute", "shop", "web", 4)
	w.record(node, "old", &routetable.RouteTable{}, nil, nil)
	w.record(node, "new", &routetable.RouteTable{Listeners: []*routetable.Listener{{VirtualHosts: []*routetable.VirtualHost{{Routes: []*routetable.Route{{
		Source: &routetable.RouteSource{Kind: "HTTPRoute", Namespace: "shop", Name: "web", Generation: 4},
	}}}}}}}, nil, nil)
	if w.allServe(node, nil, route) {
		t.Error("no replica connected cannot serve")
	}
	if w.allServe(node, []xds.Replica{{Acked: map[string]string{node: "new"}}, {Acked: map[string]string{node: "old"}}}, route) {
		t.Error("a replica still on the old table does not serve the route")
	}
	if !w.allServe(node, []xds.Replica{{Acked: map[string]string{node: "new"}}, {Acked: map[string]string{node: "new"}}}, route) {
		t.Error("both replicas on the new table serve the route")
	}
}

// A listener a proxy does not serve takes the routes it carries with it,
// for the parents that attach to it, and nothing else.
func TestARouteOnAListenerNotServed(t *testing.T) {
	w := &worker{}
	const node = "c/infra/gw"
	route := func(name string) *routetable.Route {
		return &routetable.Route{Source: &routetable.RouteSource{Kind: "HTTPRoute", Namespace: "shop", Name: name, Generation: 1}}
	}
	listener := func(name string, routes ...*routetable.Route) *routetable.Listener {
		return &routetable.Listener{Name: name, VirtualHosts: []*routetable.VirtualHost{{Routes: routes}}}
	}
	w.record(node, "h", &routetable.RouteTable{Listeners: []*routetable.Listener{
		listener("http", route("web"), route("both")),
		listener("held", route("held"), route("both")),
		listener("shop/extra/held", route("set")),
	}}, nil, nil)
	const why = "binding listener port 8090: address already in use: free it, or move the listener to another port"
	st := xds.NodeStatus{Node: node, Replicas: []xds.Replica{
		{Acked: map[string]string{node: "h"}},
		{Acked: map[string]string{node: "h"}, NotServed: map[string]map[string]string{node: {"held": why, "shop/extra/held": why}}},
	}}
	gateway := gwv1.ParentReference{Name: "gw", Namespace: ptr.To[gwv1.Namespace]("infra")}
	section := func(p gwv1.ParentReference, s string) gwv1.ParentReference {
		p.SectionName = ptr.To(gwv1.SectionName(s))
		return p
	}
	set := gwv1.ParentReference{Kind: ptr.To[gwv1.Kind]("ListenerSet"), Name: "extra"}
	for _, c := range []struct {
		name      string
		route     string
		parent    gwv1.ParentReference
		wantFound string
	}{
		{"a route on a served listener only", "web", gateway, ""},
		{"a route on the held listener", "held", gateway, "held"},
		{"a route on both, through the Gateway", "both", gateway, "held"},
		{"a route on both, through the served section", "both", section(gateway, "http"), ""},
		{"a route of the ListenerSet's held listener", "set", set, "shop/extra/held"},
		{"the ListenerSet's listener is not the Gateway's", "set", section(gateway, "held"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, msg, found := w.routeNotServed(node, st, objectKey("HTTPRoute", "shop", c.route, 1), onParent("shop", c.parent))
			if l != c.wantFound || found != (c.wantFound != "") {
				t.Fatalf("found %q (%v), want %q", l, found, c.wantFound)
			}
			if found && msg != why {
				t.Errorf("message %q, want the proxy's", msg)
			}
		})
	}
	if m := routeOnUnservedListener("shop/extra/held", why); !strings.HasPrefix(m, "binding listener port 8090") || !strings.Contains(m, `listener "held" of ListenerSet shop/extra`) {
		t.Errorf("route message %q: want the proxy's words first, then the listener named as its owner knows it", m)
	}
	conds := partlyServed([]metav1.Condition{{Type: "Programmed", Status: metav1.ConditionTrue, Message: "served by the Gateway's proxies (2 connected)"}}, unserved(node, st))
	if c := conds[0]; c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, `not served: listener "held": binding listener port 8090`) ||
		!strings.Contains(c.Message, `listener "held" of ListenerSet shop/extra: binding`) {
		t.Errorf("the Gateway's Programmed: %s %q; want True, naming both listeners and why", c.Status, c.Message)
	}
}

// A route a proxy left out of its table (it does not compile there) is
// not served, with the proxy's words, at the generation the proxy compiled
// and for no other route.
func TestARouteAProxyLeftOut(t *testing.T) {
	const node = "c/infra/gw"
	const why = `HTTPRoute shop/deep rule 0 match 0: regular expression "((((…": it is 1999 bytes long and at most 1024 are allowed: shorten it`
	st := xds.NodeStatus{Node: node, Replicas: []xds.Replica{
		{Acked: map[string]string{node: "h"}},
		{Acked: map[string]string{node: "h"}, RoutesNotServed: map[string]map[string]string{node: {objectKey("HTTPRoute", "shop", "deep", 2): why}}},
	}}
	if got, found := routeLeftOut(node, st, objectKey("HTTPRoute", "shop", "deep", 2)); !found || got != why {
		t.Errorf("the left-out route: %q (%v), want the proxy's words", got, found)
	}
	if _, found := routeLeftOut(node, st, objectKey("HTTPRoute", "shop", "deep", 3)); found {
		t.Error("a later generation of the route is reported with the earlier one's error")
	}
	if _, found := routeLeftOut(node, st, objectKey("HTTPRoute", "shop", "web", 2)); found {
		t.Error("another route of the Gateway is reported not served")
	}
	if m := routeNotCompiled(why); !strings.Contains(m, "do not serve this route, and serve the Gateway's other routes: "+why) {
		t.Errorf("message %q: want it to say the others are served, then the proxy's words", m)
	}
}

func TestUsableAddresses(t *testing.T) {
	ip := func(v string) gwv1.GatewayStatusAddress {
		return gwv1.GatewayStatusAddress{Type: ptr.To(gwv1.IPAddressType), Value: v}
	}
	for _, c := range []struct {
		name         string
		addrs, class []gwv1.GatewayStatusAddress
		advertised   []string
		wantUsable   int
		wantUnusable []string
	}{
		{name: "nothing known yet keeps every address", addrs: []gwv1.GatewayStatusAddress{ip("10.0.0.1")}, wantUsable: 1},
		{name: "an address a proxy advertises is usable", addrs: []gwv1.GatewayStatusAddress{ip("10.0.0.1")}, advertised: []string{"10.0.0.1"}, wantUsable: 1},
		{name: "an address the class lists is usable", addrs: []gwv1.GatewayStatusAddress{ip("10.0.0.1")}, class: []gwv1.GatewayStatusAddress{ip("10.0.0.1")}, wantUsable: 1},
		{name: "an address nobody serves is not", addrs: []gwv1.GatewayStatusAddress{ip("10.0.0.9"), ip("10.0.0.1")}, advertised: []string{"10.0.0.1"},
			wantUsable: 1, wantUnusable: []string{"10.0.0.9"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			usable, unusable := usableAddresses(c.addrs, c.class, c.advertised)
			if len(usable) != c.wantUsable || !slices.Equal(unusable, c.wantUnusable) {
				t.Errorf("usable %v, unusable %v; want %d usable and %v unusable", usable, unusable, c.wantUsable, c.wantUnusable)
			}
		})
	}
}
