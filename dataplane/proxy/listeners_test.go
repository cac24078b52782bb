package proxy_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// A listener whose port something else holds costs only that listener: the
// version is applied and served on the other listeners, the held one is
// reported with the error and what to do, and once the port is free the
// proxy binds it on its own and says so.
func TestATakenPortCostsOnlyItsListener(t *testing.T) {
	v1 := newEcho(t, "v1")
	port := freePort(t)
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", DrainTimeout: time.Second, RetryInterval: 50 * time.Millisecond})
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	served := `"virtualHosts":[{"domain":"*","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]}}]}]`
	if err := p.Apply("v1", []*rt.RouteTable{table(t, port, `{"gateway":"infra/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP",`+served+`}]}`, v1)}, nil); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busy := uint32(taken.Addr().(*net.TCPAddr).Port)
	v2 := table(t, port, `{"name":"member-1/infra/gw","gateway":"infra/gw","listeners":[{"name":"http","port":PORT,"protocol":"HTTP",`+served+`},
		{"name":"other","port":`+strconv.Itoa(int(busy))+`,"protocol":"HTTP",`+served+`}]}`, v1)
	if err := p.Apply("v2", []*rt.RouteTable{v2}, nil); err != nil {
		t.Fatalf("a taken port failed the whole version: %v", err)
	}
	if p.Version() != "v2" {
		t.Errorf("version is %q, want v2", p.Version())
	}
	if r := do(t, port, "GET", "x", "/", nil); r.code != 200 {
		t.Errorf("the listener on a free port is not served: %d", r.code)
	}
	got := p.NotServed()
	why := got["member-1/infra/gw"]["other"]
	if len(got) != 1 || len(got["member-1/infra/gw"]) != 1 || !strings.Contains(why, fmt.Sprintf("binding listener port %d", busy)) ||
		!strings.Contains(why, "address already in use") || !strings.Contains(why, "free it, or move the listener to another port") {
		t.Fatalf("not served: %v; want only listener other of member-1/infra/gw, naming the port, the error and the fix", got)
	}

	taken.Close()
	select {
	case <-p.NotServedChanged():
	case <-time.After(5 * time.Second):
		t.Fatal("the freed port was not bound again")
	}
	if got := p.NotServed(); len(got) != 0 {
		t.Errorf("after the port was freed, not served: %v", got)
	}
	if r := do(t, busy, "GET", "x", "/", nil); r.code != 200 || r.body.Backend != "v1" {
		t.Errorf("the listener on the freed port answers %d %q", r.code, r.rawBody)
	}
}

// A key pair that does not load costs only the listeners that name it, and
// their hostname is not handed to a less specific listener on the port: a
// handshake for it fails rather than getting another listener's routes.
func TestABadKeyPairCostsOnlyItsListener(t *testing.T) {
	v1, v2 := newEcho(t, "v1"), newEcho(t, "v2")
	port := freePort(t)
	kpAny, poolAny := selfSigned(t, "infra/any", "example.org", "second.example.org")
	tbl := table(t, port, `{"gateway":"infra/gw","listeners":[
		{"name":"https","port":PORT,"protocol":"HTTPS","tls":{"certificates":["infra/any"]},
		 "virtualHosts":[{"domain":"*","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]}}]}]},
		{"name":"second","port":PORT,"protocol":"HTTPS","hostname":"second.example.org","tls":{"certificates":["infra/broken"]},
		 "virtualHosts":[{"domain":"second.example.org","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v2","weight":1}]}}]}]}
	]}`, v1, v2)
	p := start(t)
	broken := &rt.KeyPair{Name: "infra/broken", CertificateChain: []byte("not a certificate"), PrivateKey: []byte("not a key")}
	if err := p.Apply("tls", []*rt.RouteTable{tbl}, map[string]*rt.KeyPair{"infra/any": kpAny, "infra/broken": broken}); err != nil {
		t.Fatalf("a bad key pair failed the whole version: %v", err)
	}
	why := p.NotServed()["infra/gw"]["second"]
	if !strings.Contains(why, "key pair infra/broken does not load") || !strings.Contains(why, "certificate Secret must hold") {
		t.Errorf("listener second: %q; want the key pair named, with the fix", why)
	}
	if n := len(p.NotServed()["infra/gw"]); n != 1 {
		t.Errorf("%d listeners not served, want 1: %v", n, p.NotServed())
	}
	get := func(sni string) (int, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, RootCAs: poolAny}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/", port), nil)
		req.Host = sni
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get("example.org"); err != nil || code != 200 {
		t.Errorf("the listener with a good key pair: %d, %v", code, err)
	}
	if code, err := get("second.example.org"); err == nil {
		t.Errorf("the listener whose key pair is broken answered %d through another listener's certificate", code)
	}
}

// A port that changes between HTTP and HTTPS from one version to the next
// is released and bound again with the new protocol.
func TestAPortChangesProtocol(t *testing.T) {
	v1 := newEcho(t, "v1")
	port := freePort(t)
	kp, pool := selfSigned(t, "infra/any", "example.org")
	served := `"virtualHosts":[{"domain":"*","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]}}]}]`
	p := start(t, table(t, port, `{"gateway":"infra/gw","listeners":[{"name":"web","port":PORT,"protocol":"HTTP",`+served+`}]}`, v1))
	tbl := table(t, port, `{"gateway":"infra/gw","listeners":[{"name":"web","port":PORT,"protocol":"HTTPS","tls":{"certificates":["infra/any"]},`+served+`}]}`, v1)
	if err := p.Apply("v2", []*rt.RouteTable{tbl}, map[string]*rt.KeyPair{"infra/any": kp}); err != nil {
		t.Fatal(err)
	}
	if n := p.NotServed(); len(n) != 0 {
		t.Fatalf("not served: %v", n)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "example.org", RootCAs: pool}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("HTTPS on the port that was HTTP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HTTPS on the port that was HTTP: %d", resp.StatusCode)
	}
}

// A listener of a protocol the proxy does not serve is reported as not
// served, and its port is not bound, rather than served as HTTP.
func TestAnUnknownProtocolIsNotServed(t *testing.T) {
	v1 := newEcho(t, "v1")
	port, other := freePort(t), freePort(t)
	served := `"virtualHosts":[{"domain":"*","routes":[{"match":{"prefix":"/"},"route":{"backends":[{"backend":"v1","weight":1}]}}]}]`
	p := start(t, table(t, port, `{"gateway":"infra/gw","listeners":[{"name":"web","port":PORT,"protocol":"HTTP",`+served+`},
		{"name":"future","port":`+strconv.Itoa(int(other))+`,"protocol":99,`+served+`}]}`, v1))
	why := p.NotServed()["infra/gw"]["future"]
	if !strings.Contains(why, "protocol 99 is not served") || len(p.NotServed()["infra/gw"]) != 1 {
		t.Errorf("not served: %v; want only listener future, naming its protocol", p.NotServed())
	}
	if p.Addr(other) != nil {
		t.Errorf("port %d of a listener not served is bound", other)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", other)); err == nil {
		c.Close()
		t.Errorf("port %d of a listener not served accepts connections", other)
	}
	if r := do(t, port, "GET", "x", "/", nil); r.code != 200 {
		t.Errorf("the HTTP listener beside it answers %d", r.code)
	}
}
