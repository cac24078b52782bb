package proxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// echo is a backend that answers with what it received, as JSON.
type echo struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
	// fail makes the next N requests answer 503.
	fail atomic.Int64
}

type echoed struct {
	Backend string              `json:"backend"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Method  string              `json:"method"`
	Headers map[string][]string `json:"headers"`
}

func newEcho(t *testing.T, name string) *echo {
	e := &echo{name: name}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		if e.fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		e.fail.Store(0)
		if d := r.URL.Query().Get("delay"); d != "" {
			dur, _ := time.ParseDuration(d)
			time.Sleep(dur)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		for _, c := range r.URL.Query()["cookie"] {
			w.Header().Add("Set-Cookie", c)
		}
		_ = json.NewEncoder(w).Encode(echoed{Backend: name, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, Method: r.Method, Headers: r.Header})
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *echo) backend() *rt.Backend {
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(e.srv.URL, "http://"))
	p, _ := strconv.Atoi(port)
	return &rt.Backend{Name: e.name, Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{{Address: host, Port: uint32(p)}}}
}

func freePort(t *testing.T) uint32 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

// table builds a one-listener table from a YAML-ish description in JSON.
func table(t *testing.T, port uint32, js string, backends ...*echo) *rt.RouteTable {
	t.Helper()
	tbl := &rt.RouteTable{}
	js = strings.ReplaceAll(js, "PORT", strconv.Itoa(int(port)))
	if err := protojson.Unmarshal([]byte(js), tbl); err != nil {
		t.Fatalf("table: %v", err)
	}
	for _, b := range backends {
		tbl.Backends = append(tbl.Backends, b.backend())
	}
	return tbl
}

func start(t *testing.T, tables ...*rt.RouteTable) *proxy.Proxy {
	t.Helper()
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", DrainTimeout: time.Second})
	if err := p.Apply("v1", tables, nil); err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	return p
}

type result struct {
	code    int
	header  http.Header
	body    echoed
	rawBody string
}

func do(t *testing.T, port uint32, method, host, target string, hdr map[string]string) result {
	t.Helper()
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, target), nil)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{code: resp.StatusCode, header: resp.Header, rawBody: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestRoutingFollowsTableOrderAndPredicates(t *testing.T) {
	v1, v2 := newEcho(t, "v1"), newEcho(t, "v2")
	port := freePort(t)
	start(t, table(t, port, `{"gateway":"infra/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP","virtualHosts":[
		{"domain":"*","routes":[
			{"match":{"exact":"/exact"},"route":{"backends":[{"backend":"v2","weight":1}]}},
			{"match":{"prefix":"/v2"},"route":{"backends":[{"backend":"v2","weight":1}]}},
			{"match":{"prefix":"/","headers":[{"name":"Version","exact":"two"}]},"route":{"backends":[{"backend":"v2","weight":1}]}},
			{"match":{"prefix":"/","queryParameters":[{"name":"animal","regex":"wh.le"}]},"route":{"backends":[{"backend":"v2","weight":1}]}},
			{"match":{"prefix":"/","method":"POST"},"route":{"backends":[{"backend":"v2","weight":1}]}},
			{"match":{"prefix":"/only"},"route":{"backends":[{"backend":"v1","weight":1}]}},
			{"match":{"regex":"/items/[0-9]+"},"route":{"backends":[{"backend":"v2","weight":1}]}}
		]},
		{"domain":"*.example.com","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]}}]}
	]}]}`, v1, v2))

	tests := []struct {
		name, method, host, path string
		hdr                      map[string]string
		want                     string // backend, or a status code
	}{
		{"exact", "GET", "x.test", "/exact", nil, "v2"},
		{"exact does not match below", "GET", "x.test", "/exact/more", nil, "404"},
		{"prefix at segment", "GET", "x.test", "/v2/a", nil, "v2"},
		{"prefix not mid-segment", "GET", "x.test", "/v2example", nil, "404"},
		{"header, case-insensitive name", "GET", "x.test", "/", map[string]string{"version": "two"}, "v2"},
		{"query regex", "GET", "x.test", "/?animal=whale", nil, "v2"},
		{"method", "POST", "x.test", "/", nil, "v2"},
		{"HEAD does not match POST", "HEAD", "x.test", "/", nil, "404"},
		{"regex is anchored", "GET", "x.test", "/items/12", nil, "v2"},
		{"regex anchored at the end", "GET", "x.test", "/items/12/x", nil, "404"},
		{"dot segments are resolved before matching", "GET", "x.test", "/v2/../only/a", nil, "v1"},
		{"wildcard virtual host", "GET", "a.example.com", "/exact", nil, "v1"},
		{"host with port", "GET", "a.example.com:8080", "/anything", nil, "v1"},
		{"wildcard needs a label", "GET", "example.com", "/only", nil, "v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, port, tt.method, tt.host, tt.path, tt.hdr)
			got := r.body.Backend
			if r.code != http.StatusOK {
				got = strconv.Itoa(r.code)
			}
			if got != tt.want {
				t.Errorf("got %s (%d %s), want %s", got, r.code, r.rawBody, tt.want)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	v1 := newEcho(t, "v1")
	port := freePort(t)
	start(t, table(t, port, `{"gateway":"infra/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP","virtualHosts":[{"domain":"*","routes":[
		{"match":{"prefix":"/redirect"},"redirect":{"scheme":"https","statusCode":301}},
		{"match":{"prefix":"/moved"},"redirect":{"hostname":"example.org","path":{"prefix":"/new"},"statusCode":302}},
		{"match":{"prefix":"/same-port"},"redirect":{"hostname":"example.org","statusCode":302}},
		{"match":{"prefix":"/strip"},"route":{"backends":[{"backend":"v1","weight":1}],"pathRewrite":{"prefix":"/"},"hostRewrite":"inner.test"}},
		{"match":{"prefix":"/headers"},"route":{"backends":[{"backend":"v1","weight":1,"requestHeaders":{"set":[{"name":"X-Backend-Set","value":"b"}]}}]},
		 "requestHeaders":{"set":[{"name":"X-Set","value":"s"}],"add":[{"name":"X-Add","value":"a"}],"remove":["X-Remove"]},
		 "responseHeaders":{"set":[{"name":"X-Resp","value":"r"}],"remove":["X-Backend"]}},
		{"match":{"prefix":"/invalid"},"route":{"backends":[{"weight":1,"invalidReason":"Service missing"}]}},
		{"match":{"prefix":"/down"},"directResponse":{"status":500,"body":"no backend"}},
		{"match":{"prefix":"/cors"},"route":{"backends":[{"backend":"v1","weight":1}]},
		 "cors":{"allowOrigins":["https://www.foo.com","https://*.bar.com"],"allowMethods":["GET","OPTIONS"],"allowHeaders":["x-header-1"],"exposeHeaders":["x-header-3"],"allowCredentials":true,"maxAgeSeconds":3600}}
	]}]}]}`, v1))

	t.Run("redirect to https drops the listener port", func(t *testing.T) {
		r := do(t, port, "GET", "shop.test", "/redirect/x?a=1", nil)
		if r.code != 301 || r.header.Get("Location") != "https://shop.test/redirect/x?a=1" {
			t.Errorf("got %d Location %q", r.code, r.header.Get("Location"))
		}
	})
	t.Run("redirect with prefix replacement keeps the listener port", func(t *testing.T) {
		r := do(t, port, "GET", "shop.test", "/moved/a/b", nil)
		want := fmt.Sprintf("http://example.org:%d/new/a/b", port)
		if r.code != 302 || r.header.Get("Location") != want {
			t.Errorf("got %d Location %q, want %q", r.code, r.header.Get("Location"), want)
		}
	})
	t.Run("rewrite prefix and host", func(t *testing.T) {
		r := do(t, port, "GET", "shop.test", "/strip/three?q=1", nil)
		if r.body.Path != "/three" || r.body.Host != "inner.test" || r.body.Query != "q=1" {
			t.Errorf("backend saw %+v", r.body)
		}
		if r := do(t, port, "GET", "shop.test", "/strip", nil); r.body.Path != "/" {
			t.Errorf("/strip became %q, want /", r.body.Path)
		}
	})
	t.Run("header modifiers", func(t *testing.T) {
		r := do(t, port, "GET", "shop.test", "/headers", map[string]string{"X-Add": "mine", "X-Remove": "x", "X-Set": "old"})
		h := r.body.Headers
		if strings.Join(h["X-Set"], ",") != "s" || strings.Join(h["X-Add"], ",") != "mine,a" || h["X-Remove"] != nil || strings.Join(h["X-Backend-Set"], ",") != "b" {
			t.Errorf("backend saw headers %v", h)
		}
		if r.header.Get("X-Resp") != "r" || r.header.Get("X-Backend") != "" {
			t.Errorf("client saw headers %v", r.header)
		}
	})
	t.Run("invalid backend is 500", func(t *testing.T) {
		if r := do(t, port, "GET", "shop.test", "/invalid", nil); r.code != 500 {
			t.Errorf("got %d", r.code)
		}
		if r := do(t, port, "GET", "shop.test", "/down", nil); r.code != 500 || !strings.Contains(r.rawBody, "no backend") {
			t.Errorf("got %d %q", r.code, r.rawBody)
		}
	})
	t.Run("cors preflight answered by the proxy", func(t *testing.T) {
		hits := v1.hits.Load()
		r := do(t, port, "OPTIONS", "shop.test", "/cors", map[string]string{"Origin": "https://a.b.bar.com", "Access-Control-Request-Method": "GET"})
		h := r.header
		if r.code != 204 || h.Get("Access-Control-Allow-Origin") != "https://a.b.bar.com" || h.Get("Access-Control-Allow-Credentials") != "true" ||
			h.Get("Access-Control-Max-Age") != "3600" || h.Get("Access-Control-Expose-Headers") != "x-header-3" {
			t.Errorf("preflight: %d %v", r.code, h)
		}
		if v1.hits.Load() != hits {
			t.Error("the preflight reached the backend")
		}
		r = do(t, port, "OPTIONS", "shop.test", "/cors", map[string]string{"Origin": "https://evil.com", "Access-Control-Request-Method": "GET"})
		if r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("disallowed origin got %v", r.header)
		}
		r = do(t, port, "GET", "shop.test", "/cors", map[string]string{"Origin": "https://www.foo.com"})
		if r.code != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://www.foo.com" {
			t.Errorf("simple request: %d %v", r.code, r.header)
		}
	})
}

func TestRetriesTimeoutsAndWeights(t *testing.T) {
	v1, v2 := newEcho(t, "v1"), newEcho(t, "v2")
	port := freePort(t)
	start(t, table(t, port, `{"gateway":"infra/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP","virtualHosts":[{"domain":"*","routes":[
		{"match":{"prefix":"/retry"},"route":{"backends":[{"backend":"v1","weight":1}],"retry":{"codes":[503],"attempts":2}}},
		{"match":{"prefix":"/no-retry"},"route":{"backends":[{"backend":"v1","weight":1}]}},
		{"match":{"prefix":"/timeout"},"route":{"backends":[{"backend":"v1","weight":1}],"requestTimeout":{"milliseconds":200}}},
		{"match":{"prefix":"/no-timeout"},"route":{"backends":[{"backend":"v1","weight":1}],"requestTimeout":{}}},
		{"match":{"prefix":"/weighted"},"route":{"backends":[{"backend":"v1","weight":3},{"backend":"v2","weight":1},{"weight":0,"invalidReason":"x"}]}}
	]}]}]}`, v1, v2))

	v1.fail.Store(2)
	if r := do(t, port, "GET", "x", "/retry", nil); r.code != 200 {
		t.Errorf("two 503s then success with 2 retries: got %d", r.code)
	}
	v1.fail.Store(3)
	if r := do(t, port, "GET", "x", "/retry", nil); r.code != 503 {
		t.Errorf("three 503s with 2 retries: got %d, want 503", r.code)
	}
	v1.fail.Store(1)
	if r := do(t, port, "GET", "x", "/no-retry", nil); r.code != 503 {
		t.Errorf("no retry policy: got %d, want 503", r.code)
	}
	if r := do(t, port, "GET", "x", "/timeout?delay=1s", nil); r.code != 504 {
		t.Errorf("request timeout: got %d, want 504", r.code)
	}
	if r := do(t, port, "GET", "x", "/no-timeout?delay=300ms", nil); r.code != 200 {
		t.Errorf("zero timeout means none: got %d", r.code)
	}
	counts := map[string]int{}
	for range 400 {
		counts[do(t, port, "GET", "x", "/weighted", nil).body.Backend]++
	}
	if counts["v1"] < 240 || counts["v1"] > 360 || counts["v2"] < 40 || counts[""] != 0 {
		t.Errorf("weights 3:1 over 400 requests gave %v", counts)
	}
}

func TestMetricsCountByRouteBackendAndCode(t *testing.T) {
	v1 := newEcho(t, "v1")
	port := freePort(t)
	reg := prometheus.NewRegistry()
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", Registry: reg})
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	tbl := table(t, port, `{"gateway":"infra/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP","virtualHosts":[{"domain":"*","routes":[
		{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]},"source":{"kind":"HTTPRoute","namespace":"shop","name":"web"}}]}]}]}`, v1)
	if err := p.Apply("v1", []*rt.RouteTable{tbl}, nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		do(t, port, "GET", "x", "/", nil)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() != "gatehouse_proxy_route_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == "HTTPRoute shop/web" && labels["backend"] == "v1" && labels["code"] == "2xx" && m.GetCounter().GetValue() == 3 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no gatehouse_proxy_route_requests_total{route=\"HTTPRoute shop/web\",backend=\"v1\",code=\"2xx\"} 3 in %v", families)
	}
}
