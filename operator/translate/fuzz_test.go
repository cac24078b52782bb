package translate_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// FuzzTranslate feeds random but well-shaped clusters to Translate: it must
// never panic, must give the same output twice, and what it outputs must hold
// together (every route parent has Accepted and ResolvedRefs; attachedRoutes
// never exceeds the routes; tables reference only backends they carry).
func FuzzTranslate(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(seed, uint8(3), uint8(2), uint8(20))
	}
	f.Fuzz(func(t *testing.T, seed uint64, namespaces, gateways, routes uint8) {
		g := gen{r: rand.New(rand.NewPCG(seed, binary.LittleEndian.Uint64([]byte("gatehous"))))}
		in := g.input(int(namespaces%8), int(gateways%4), int(routes%64))
		out := translate.Translate(in)
		again := translate.Translate(in)
		if !bytes.Equal(render(t, out), render(t, again)) {
			t.Fatal("two translations of the same input differ")
		}
		for k, parents := range out.HTTPRoutes {
			for _, p := range parents {
				if meta(p.Conditions, "Accepted") == nil || meta(p.Conditions, "ResolvedRefs") == nil {
					t.Fatalf("route %s parent %s lacks Accepted or ResolvedRefs: %+v", k, p.ParentRef.Name, p.Conditions)
				}
			}
		}
		for k, gs := range out.Gateways {
			for _, l := range gs.Listeners {
				if int(l.AttachedRoutes) > len(in.HTTPRoutes) {
					t.Fatalf("gateway %s listener %s counts %d routes of %d", k, l.Name, l.AttachedRoutes, len(in.HTTPRoutes))
				}
			}
		}
		for k, table := range out.Tables {
			have := map[string]bool{}
			for _, b := range table.Backends {
				have[b.Name] = true
			}
			for _, l := range table.Listeners {
				for _, vh := range l.VirtualHosts {
					for _, r := range vh.Routes {
						for _, wb := range r.GetRoute().GetBackends() {
							if wb.Backend != "" && !have[wb.Backend] {
								t.Fatalf("table %s routes to backend %s it does not carry", k, wb.Backend)
							}
						}
					}
				}
			}
			opts := proto.MarshalOptions{Deterministic: true}
			if _, err := opts.Marshal(table); err != nil {
				t.Fatalf("table %s does not marshal: %v", k, err)
			}
		}
	})
}

func meta(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
