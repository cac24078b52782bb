package proxy_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// A header filter that adds a cookie adds it as the cookie's own field: a
// Set-Cookie joined to the backend's with a comma would be one cookie with
// the other inside its value (and a cookie's Expires holds a comma), and a
// request's Cookie joins with "; ". On the fast path and through net/http
// alike.
func TestAddedCookiesStayCookies(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(map[bool]string{true: "fast path", false: "net/http"}[fast], func(t *testing.T) {
			v1 := newEcho(t, "v1")
			port := freePort(t)
			p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", DrainTimeout: time.Second, NoFastPath: !fast})
			if err := p.Apply("v1", []*rt.RouteTable{table(t, port, `{"gateway":"infra/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP","virtualHosts":[{"domain":"*","routes":[
				{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]},
				 "requestHeaders":{"add":[{"name":"Cookie","value":"tenant=shop"},{"name":"X-Add","value":"b"}]},
				 "responseHeaders":{"add":[{"name":"Set-Cookie","value":"seen=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT"},{"name":"X-Backend","value":"proxy"}]}}
			]}]}]}`, v1)}, nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close(t.Context()) })

			r := do(t, port, "GET", "shop.test", "/?cookie="+url.QueryEscape("session=abc; Path=/"), map[string]string{"Cookie": "a=1", "X-Add": "a"})
			if got := r.header.Values("Set-Cookie"); !slices.Equal(got, []string{"session=abc; Path=/", "seen=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT"}) {
				t.Errorf("client saw Set-Cookie %q, want the backend's and the filter's as two fields", got)
			}
			if got := r.header.Values("X-Backend"); !slices.Equal(got, []string{"v1,proxy"}) {
				t.Errorf("client saw X-Backend %q, want one field, comma-joined", got)
			}
			if got := strings.Join(r.body.Headers["Cookie"], "|"); got != "a=1; tenant=shop" {
				t.Errorf("backend saw Cookie %q, want %q", got, "a=1; tenant=shop")
			}
			if got := strings.Join(r.body.Headers["X-Add"], "|"); got != "a,b" {
				t.Errorf("backend saw X-Add %q, want a,b", got)
			}
			// With nothing there, the filter's value alone.
			r = do(t, port, "GET", "shop.test", "/", nil)
			if got := r.header.Values("Set-Cookie"); len(got) != 1 || got[0] != "seen=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT" {
				t.Errorf("client saw Set-Cookie %q, want the filter's", got)
			}
			if got := strings.Join(r.body.Headers["Cookie"], "|"); got != "tenant=shop" {
				t.Errorf("backend saw Cookie %q, want tenant=shop", got)
			}
		})
	}
}
