package proxy

import (
	"fmt"
	"net/http"
	"testing"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// BenchmarkMatch looks up the last of N prefix+header routes in one virtual
// host: the cost a request pays for routing, whatever the table's size.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		vh := &rt.VirtualHost{Domain: "*"}
		for i := range n {
			vh.Routes = append(vh.Routes, &rt.Route{
				Match: &rt.RouteMatch{
					Path:    &rt.RouteMatch_Prefix{Prefix: fmt.Sprintf("/svc-%d", i)},
					Headers: []*rt.HeaderMatcher{{Name: "X-Tenant", Value: &rt.HeaderMatcher_Exact{Exact: fmt.Sprintf("t%d", i)}}},
				},
				Action: &rt.Route_DirectResponse{DirectResponse: &rt.DirectResponse{Status: 200}},
			})
		}
		v, err := compileVhost(vh, nil, map[string]*rt.Regex{}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		last := n - 1
		h := http.Header{"X-Tenant": {fmt.Sprintf("t%d", last)}}
		path := fmt.Sprintf("/svc-%d/items/42", last)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v.match(&request{path: path, method: "GET", header: h}) == nil {
					b.Fatal("no match")
				}
			}
		})
	}
}
