package policy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/referencegrant"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// fuzzBytes hands out the fuzzer's input one choice at a time.
type fuzzBytes struct{ b []byte }

func (f *fuzzBytes) next(n int) int {
	if len(f.b) == 0 || n <= 0 {
		return 0
	}
	v := int(f.b[0]) % n
	f.b = f.b[1:]
	return v
}

var fuzzLabels = []string{"a", "b", "example", "com", "shop", "*"}

// hostname builds a hostname or wildcard of up to four labels.
func (f *fuzzBytes) hostname() string {
	n := 1 + f.next(4)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fuzzLabels[f.next(len(fuzzLabels)-1)]
	}
	if f.next(3) == 0 {
		parts[0] = "*"
	}
	return strings.Join(parts, ".")
}

// FuzzDecide builds tenants, a route and ReferenceGrants from the input and
// checks what must always hold: no panic; the same answer twice; a route in
// a tenant's namespace is allowed only if the tenant owns every hostname it
// names; a platform route only if no tenant owns any; every denial has a
// reason and a field path.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{3, 3, 3, 1, 0, 2, 2, 1, 5, 0, 4, 4, 4, 4, 1, 1})
	f.Add([]byte("shop.example.com delegated twice"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzBytes{data}
		var tenants []*tenancyv1.Tenant
		for i := range in.next(5) {
			spec := tenancyv1.TenantSpec{Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{fmt.Sprintf("ns%d", in.next(4))}}}}
			for range in.next(4) {
				spec.Hostnames = append(spec.Hostnames, gwv1.Hostname(in.hostname()))
			}
			if in.next(2) == 0 {
				spec.Gateways = []tenancyv1.GatewayDelegation{{Name: fmt.Sprintf("gw%d", in.next(2))}}
			}
			if in.next(3) == 0 {
				spec.Limits = &tenancyv1.TenantLimits{MaxRoutes: ptr.To(int32(in.next(3))), MaxHostnames: ptr.To(int32(in.next(4)))}
			}
			tenants = append(tenants, tenant(fmt.Sprintf("t%d", i), in.next(3), spec))
		}
		unassigned := tenancy.Platform
		if in.next(2) == 0 {
			unassigned = tenancy.Deny
		}
		view := tenancy.NewView(tenants, unassigned)
		d := &policy.Decider{Tenancy: view, Routes: tenancy.NewRoutes()}

		ns := fmt.Sprintf("ns%d", in.next(5))
		var hosts []string
		for range in.next(4) {
			hosts = append(hosts, in.hostname())
		}
		r := httpRoute(ns, "r", nil, hosts...)
		if in.next(2) == 0 {
			r.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To(gwv1.Namespace(fmt.Sprintf("ns%d", in.next(5))))
		}
		var grants []*gwv1beta1.ReferenceGrant
		for range in.next(3) {
			grants = append(grants, &gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns%d", in.next(5))}, Spec: gwv1beta1.ReferenceGrantSpec{
				From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: gwv1.Namespace(fmt.Sprintf("ns%d", in.next(5)))}},
				To:   []gwv1beta1.ReferenceGrantTo{{Kind: "Service"}},
			}})
		}
		cl := tenancy.Cluster{Name: "c"}
		s := policy.Subject{Cluster: cl, Kind: "HTTPRoute", Object: r, Operation: []string{"CREATE", "UPDATE", ""}[in.next(3)], Grants: referencegrant.New(nil, grants)}
		ctx := context.Background()
		v := d.Decide(ctx, s)
		if again := d.Decide(ctx, s); again.Message() != v.Message() || again.Tenant != v.Tenant {
			t.Fatalf("two answers: %q then %q", v.Message(), again.Message())
		}
		for _, deny := range v.Denials {
			if deny.Reason == "" || deny.Err == nil || deny.Err.Field == "" {
				t.Fatalf("a denial without reason or field: %+v", deny)
			}
		}
		if !v.Allowed() {
			return
		}
		for _, h := range hosts {
			owner, _ := view.Owner(h)
			if owner != v.Tenant {
				t.Fatalf("route in namespace %q (tenant %q) allowed with %q, which tenant %q owns", ns, v.Tenant, h, owner)
			}
		}
		if v.Tenant == "" && unassigned == tenancy.Deny && !view.Empty() {
			t.Fatalf("a route of no tenant was allowed although such namespaces are denied")
		}
		gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: fmt.Sprintf("gw%d", in.next(2))}}
		for _, deny := range d.Attached(v, s, policy.Attachment{Gateway: gw, Listener: "l", Hostnames: []string{"*"}}).Denials {
			if deny.Reason == "" || deny.Err == nil {
				t.Fatalf("an attachment denial without reason: %+v", deny)
			}
		}
	})
}
