package proxy

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// BenchmarkApply is what a proxy pays to serve a table that changed in one
// route, at N routes: one HTTP listener whose routes each match a prefix
// and a header and reach their own backend, either each on a virtual host
// of its own hostname (as the gateway-api-bench suite writes them) or all
// on one. Each op applies the table with the route added, then without it
// (or changed, then as before), alternately, so every op is a change. The
// versions are decoded as the push client decodes them (routetable.Decoder:
// what did not change is the same message in both). "decode" is what the
// client pays before that for a changed version: proto.Unmarshal of the
// whole table, or the Decoder.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		for _, shape := range []struct {
			name   string
			vhosts bool
		}{{"vhost-per-route", true}, {"one-vhost", false}} {
			base := benchTable(n, shape.vhosts)
			b.Run(fmt.Sprintf("routes=%d/%s/add", n, shape.name), func(b *testing.B) {
				benchApply(b, base, benchTable(n+1, shape.vhosts))
			})
			b.Run(fmt.Sprintf("routes=%d/%s/change", n, shape.name), func(b *testing.B) {
				benchApply(b, base, benchChanged(base, n/2, shape.vhosts))
			})
		}
		versions := benchEncode(b, benchTable(n, true), benchTable(n+1, true))
		b.Run(fmt.Sprintf("routes=%d/decode/unmarshal", n), func(b *testing.B) {
			benchLoop(b, func(int) error { return proto.Unmarshal(versions[1], &rt.RouteTable{}) })
		})
		b.Run(fmt.Sprintf("routes=%d/decode/decoder", n), func(b *testing.B) {
			var d rt.Decoder
			benchLoop(b, func(i int) error {
				_, err := d.Decode(versions[i%2])
				return err
			})
		})
	}
}

// benchApply applies first and second alternately, once each before the
// clock starts.
func benchApply(b *testing.B, first, second *rt.RouteTable) {
	p := New(Options{BindAddress: "127.0.0.1"})
	b.Cleanup(func() { _ = p.Close(b.Context()) })
	port := diffPort(b)
	var d rt.Decoder
	var tables [2][]*rt.RouteTable
	for i, data := range benchEncode(b, withPort(first, port), withPort(second, port)) {
		t, err := d.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		tables[i] = []*rt.RouteTable{t}
		if err := p.Apply("warm", tables[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	benchLoop(b, func(i int) error { return p.Apply("v", tables[i%2], nil) })
}

// benchLoop runs op for each iteration, with its count, and reports its
// allocations and the CPU time the process spent per op, garbage
// collection included: on a machine other work shares, that says more
// than the time elapsed.
func benchLoop(b *testing.B, op func(int) error) {
	b.ReportAllocs()
	i, cpu := 0, processCPU(b)
	for b.Loop() {
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(i), "cpu-ns/op")
}

// processCPU is the CPU time the process has spent.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchEncode(b *testing.B, tables ...*rt.RouteTable) [][]byte {
	var out [][]byte
	for _, t := range tables {
		data, err := proto.Marshal(t)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// withPort is a copy of t on port.
func withPort(t *rt.RouteTable, port uint32) *rt.RouteTable {
	c := proto.Clone(t).(*rt.RouteTable)
	c.Listeners[0].Port = port
	return c
}

// benchChanged is a copy of t whose i-th route matches another header value.
func benchChanged(t *rt.RouteTable, i int, vhosts bool) *rt.RouteTable {
	c := proto.Clone(t).(*rt.RouteTable)
	vh, j := 0, i
	if vhosts {
		vh, j = i, 0
	}
	r := c.Listeners[0].VirtualHosts[vh].Routes[j]
	r.Match.Headers[0].Value = &rt.HeaderMatcher_Exact{Exact: "changed"}
	return c
}

// benchTable has n routes, each on a virtual host of its own
// hostname when vhosts, else all on one.
func benchTable(n int, vhosts bool) *rt.RouteTable {
	l := &rt.Listener{Name: "http", Protocol: rt.Protocol_HTTP}
	t := &rt.RouteTable{Gateway: "bench/gw", Name: "c/bench/gw", Listeners: []*rt.Listener{l}}
	if !vhosts {
		l.VirtualHosts = []*rt.VirtualHost{{Domain: "*"}}
	}
	for i := range n {
		be := fmt.Sprintf("bench/svc-%d:80", i)
		t.Backends = append(t.Backends, &rt.Backend{Name: be, Protocol: rt.AppProtocol_HTTP1,
			Endpoints: []*rt.Endpoint{{Address: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Port: 8080}}})
		r := &rt.Route{
			Source: &rt.RouteSource{Kind: "HTTPRoute", Namespace: "bench", Name: fmt.Sprintf("route-%d", i), Generation: 1},
			Match: &rt.RouteMatch{Path: &rt.RouteMatch_Prefix{Prefix: fmt.Sprintf("/svc-%d", i)},
				Headers: []*rt.HeaderMatcher{{Name: "X-Tenant", Value: &rt.HeaderMatcher_Exact{Exact: fmt.Sprintf("t%d", i)}}}},
			Action: &rt.Route_Route{Route: &rt.RouteAction{Backends: []*rt.WeightedBackend{{Backend: be, Weight: 1}}}},
		}
		if vhosts {
			l.VirtualHosts = append(l.VirtualHosts, &rt.VirtualHost{Domain: fmt.Sprintf("svc-%d.example.com", i), Routes: []*rt.Route{r}})
		} else {
			l.VirtualHosts[0].Routes = append(l.VirtualHosts[0].Routes, r)
		}
	}
	return t
}
