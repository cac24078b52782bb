package proxy_test

import (
	"strings"
	"testing"
)

// A route whose header filters, host rewrite or redirect the proxy could
// not write as the table says (a CR or LF that would end the field early,
// a Host in a header filter that net/http never sends) is not served,
// whatever made the table: its requests go to the next route that matches,
// nothing of it reaches a backend or a client, and the proxy says why.
func TestARouteThatWouldEmitAnInvalidHeaderIsNotServed(t *testing.T) {
	v1, v2 := newEcho(t, "v1"), newEcho(t, "v2")
	port := freePort(t)
	tbl := table(t, port, `{"name":"infra/gw","gateway":"infra/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP","virtualHosts":[{"domain":"*","routes":[
		{"match":{"prefix":"/crlf"},"route":{"backends":[{"backend":"v2","weight":1}]},
		 "requestHeaders":{"set":[{"name":"X-Tenant","value":"a\r\nX-Injected: 1"}]},
		 "source":{"kind":"HTTPRoute","namespace":"shop","name":"crlf","generation":"1"}},
		{"match":{"prefix":"/share"},"route":{"backends":[{"backend":"v2","weight":1,"responseHeaders":{"add":[{"name":"X-Share","value":"a\u0000b"}]}}]},
		 "source":{"kind":"HTTPRoute","namespace":"shop","name":"share","generation":"1"}},
		{"match":{"prefix":"/host"},"route":{"backends":[{"backend":"v2","weight":1}],"hostRewrite":"inner.test\r\nX-Injected: 1"},
		 "source":{"kind":"HTTPRoute","namespace":"shop","name":"host","generation":"1"}},
		{"match":{"prefix":"/set-host"},"route":{"backends":[{"backend":"v2","weight":1}]},
		 "requestHeaders":{"set":[{"name":"Host","value":"inner.test"}]},
		 "source":{"kind":"HTTPRoute","namespace":"shop","name":"set-host","generation":"1"}},
		{"match":{"prefix":"/redirect"},"redirect":{"hostname":"example.org\r\nSet-Cookie: a=b","statusCode":302},
		 "source":{"kind":"HTTPRoute","namespace":"shop","name":"redirect","generation":"1"}},
		{"match":{"prefix":"/framing"},"route":{"backends":[{"backend":"v2","weight":1}]},
		 "responseHeaders":{"set":[{"name":"Transfer-Encoding","value":"chunked"}]},
		 "source":{"kind":"HTTPRoute","namespace":"shop","name":"framing","generation":"1"}},
		{"match":{"prefix":"/ok"},"route":{"backends":[{"backend":"v2","weight":1}]},
		 "requestHeaders":{"set":[{"name":"X-Tenant","value":"a\tb"}]},
		 "source":{"kind":"HTTPRoute","namespace":"shop","name":"ok","generation":"1"}},
		{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]},
		 "source":{"kind":"HTTPRoute","namespace":"shop","name":"rest","generation":"1"}}
	]}]}]}`, v1, v2)
	p := start(t, tbl)

	for _, target := range []string{"/crlf", "/share", "/host", "/set-host", "/redirect", "/framing"} {
		r := do(t, port, "GET", "shop.test", target, nil)
		if r.code != 200 || r.body.Backend != "v1" {
			t.Errorf("GET %s → %d from %q (Location %q), want 200 from v1, the next route", target, r.code, r.body.Backend, r.header.Get("Location"))
		}
		if r.body.Headers["X-Injected"] != nil || r.header.Get("Set-Cookie") != "" || r.header.Get("X-Share") != "" {
			t.Errorf("GET %s: a header of the route that is not served went out: backend saw %v, client saw %v", target, r.body.Headers, r.header)
		}
	}
	if r := do(t, port, "GET", "shop.test", "/ok", nil); r.body.Backend != "v2" || strings.Join(r.body.Headers["X-Tenant"], ",") != "a\tb" {
		t.Errorf("GET /ok → %q with X-Tenant %q, want v2 with a tab inside the value", r.body.Backend, r.body.Headers["X-Tenant"])
	}

	got := p.RoutesNotServed()["infra/gw"]
	for key, want := range map[string]string{
		"HTTPRoute/shop/crlf@1":     "request headers: set[0].value: character 2, a carriage return (0x0D)",
		"HTTPRoute/shop/share@1":    "backend 0: response headers: add[0].value: character 2, a NUL (0x00)",
		"HTTPRoute/shop/host@1":     "host rewrite: value: \"inner.test\\r\\nX-Injected: 1\"",
		"HTTPRoute/shop/set-host@1": "request headers: set[0].name: Host is set by a host rewrite",
		"HTTPRoute/shop/redirect@1": "redirect hostname: value:",
		"HTTPRoute/shop/framing@1":  "response headers: set[0].name: Transfer-Encoding cannot be set",
	} {
		if !strings.Contains(got[key], want) {
			t.Errorf("not served %s: %q, want it to say %q", key, got[key], want)
		}
	}
	if len(got) != 6 {
		t.Errorf("routes not served: %v, want the 6 with invalid headers", got)
	}
}
