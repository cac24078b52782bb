package rego_test

import (
	"context"
	"testing"

	"github.com/gatehouse-dev/gatehouse/policy/rego"
)

// BenchmarkEvaluate measures one admission's worth of policy work: fifty
// policies of the usual shapes against one typed HTTPRoute of five rules,
// with the fleet's data loaded.
func BenchmarkEvaluate(b *testing.B) {
	e := rego.New(rego.Options{})
	mustLoad(b, e, fleetPolicies(50)...)
	setFleetData(b, e)
	review := routeReview()
	ctx := context.Background()

	bench := func(only func(string) bool, want int) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got := len(e.Evaluate(ctx, review, only)); got != want {
					b.Fatalf("%d results, want %d", got, want)
				}
			}
		}
	}
	b.Run("policies=50", bench(nil, 50))
	b.Run("policies=1", bench(func(name string) bool { return name == "timeouts-1" }, 1))
}
