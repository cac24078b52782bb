package policy_test

import (
	"context"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tenancy"
)

// TestStatusAndAdmissionAgree: the hub composes a Verdict from the tenant
// it computed for the pass and a policy result it keeps across passes,
// then asks one attachment at a time; the webhook calls Decide and asks of
// all attachments at once. Same Decider, same object: same verdict.
func TestStatusAndAdmissionAgree(t *testing.T) {
	ctx := context.Background()
	cl := tenancy.Cluster{Name: "member-1"}
	regex := httpRoute("web", "regex", map[string]string{"team": "web"}, "a.web.example.com")
	regex.Spec.Rules[0].Matches = []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchRegularExpression), Value: ptr.To("/x.*")}}}
	ls := &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "ls"}, Spec: gwv1.ListenerSetSpec{
		Listeners: []gwv1.ListenerEntry{{Name: "a", Hostname: ptr.To[gwv1.Hostname]("a.web.example.com")}, {Name: "b"}}}}
	objects := []struct {
		kind string
		obj  client.Object
	}{
		{"HTTPRoute", httpRoute("web", "ok", map[string]string{"team": "web"}, "a.web.example.com")},
		{"HTTPRoute", httpRoute("web", "nolabel", nil, "a.web.example.com")},
		{"HTTPRoute", httpRoute("web", "grab", nil, "a.web.example.com", "shop.example.com")},
		{"HTTPRoute", httpRoute("web", "any", nil)},
		{"HTTPRoute", regex},
		{"HTTPRoute", httpRoute("infra", "site", nil, "www.example.org")},
		{"GRPCRoute", &gwv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "api"}, Spec: gwv1.GRPCRouteSpec{Hostnames: []gwv1.Hostname{"shop.example.com"}}}},
		{"ListenerSet", ls},
		{"TLSRoute", tlsRoute("web", "db", "db.web.example.com", "shop.example.com")},
		{"TCPRoute", tcpRoute("web", "db")},
		{"TCPRoute", tcpRoute("infra", "db")},
	}
	shared := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}}
	internal := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "internal"}}
	attachments := []policy.Attachment{
		{Gateway: shared, Listener: "http", Hostnames: []string{"a.web.example.com"}},
		{Gateway: shared, Listener: "any", Hostnames: []string{"*"}},
		{Gateway: internal, Listener: "http", Hostnames: []string{"shop.example.com"}},
	}
	for _, unassigned := range []tenancy.Unassigned{tenancy.Platform, tenancy.Deny} {
		d := decider(t, unassigned)
		for _, o := range objects {
			for _, op := range []string{"", "CREATE"} {
				s := policy.Subject{Cluster: cl, Kind: o.kind, Object: o.obj, Operation: op}
				admitted := d.Decide(ctx, s)

				tenant, _ := d.Tenancy.NamespaceOwner(cl, o.obj.GetNamespace(), nil)
				kept := d.Evaluate(ctx, tenant, s)
				for pass := range 2 {
					status := d.Verdict(tenant, s, kept)
					if !reflect.DeepEqual(status, admitted) {
						t.Fatalf("%s %s/%s (unassigned %s, operation %q), pass %d:\nstatus    %+v\nadmission %+v",
							o.kind, o.obj.GetNamespace(), o.obj.GetName(), unassigned, op, pass, status, admitted)
					}
					var one []policy.Denial
					for _, a := range attachments {
						at := d.Attached(status, s, a)
						if !status.Allowed() && !reflect.DeepEqual(at, status) {
							t.Fatalf("%s %s/%s: refused, yet at %s its verdict is %+v", o.kind, o.obj.GetNamespace(), o.obj.GetName(), a.Listener, at)
						}
						if status.Allowed() {
							one = append(one, at.Denials...)
						}
					}
					all := d.Attached(admitted, s, attachments...)
					if status.Allowed() && !reflect.DeepEqual(one, all.Denials) {
						t.Fatalf("%s %s/%s: one attachment at a time %v, all at once %v", o.kind, o.obj.GetNamespace(), o.obj.GetName(), one, all.Denials)
					}
				}
			}
		}
	}
}
