package translate_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// BenchmarkTranslate translates one cluster with N HTTPRoutes over 50
// namespaces and 3 Gateways: from nothing ("full"), and after one route
// changed, reusing what the previous translation compiled ("one-changed"),
// as the hub does.
func BenchmarkTranslate(b *testing.B) {
	for _, routes := range []int{1000, 10000} {
		c := &churn{gen: gen{r: rand.New(rand.NewPCG(7, 7))}}
		c.in = c.input(50, 3, routes)
		for _, r := range c.in.HTTPRoutes {
			c.stamp(r)
		}
		for _, s := range c.in.Services {
			c.stamp(s)
		}
		for _, s := range c.in.EndpointSlices {
			c.stamp(s)
		}
		b.Run(fmt.Sprintf("routes=%d/full", routes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				translate.Translate(c.in)
			}
		})
		b.Run(fmt.Sprintf("routes=%d/one-changed", routes), func(b *testing.B) {
			b.ReportAllocs()
			prev := translate.Translate(c.in)
			for i := 0; b.Loop(); i++ {
				old := c.in.HTTPRoutes[i%routes]
				r := c.route(old.Namespace, old.Name, len(c.in.Gateways), 50)
				r.UID, r.Generation, r.CreationTimestamp = old.UID, old.Generation, old.CreationTimestamp
				c.stamp(r)
				c.in.HTTPRoutes[i%routes] = r
				in := c.in
				in.Compiled = prev.Compiled
				prev = translate.Translate(in)
			}
		})
	}
}
