package translate_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// BenchmarkTranslate translates one cluster with N HTTPRoutes over 50
// namespaces and 3 Gateways.
func BenchmarkTranslate(b *testing.B) {
	for _, routes := range []int{1000, 10000} {
		in := gen{r: rand.New(rand.NewPCG(7, 7))}.input(50, 3, routes)
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				translate.Translate(in)
			}
		})
	}
}
