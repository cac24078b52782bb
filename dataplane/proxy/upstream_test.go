package proxy_test

import (
	"bufio"
	"encoding/json"
	"encoding/pem"
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

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

func endpointOf(t *testing.T, url string) *rt.Endpoint {
	host, port, err := net.SplitHostPort(url[strings.Index(url, "//")+2:])
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &rt.Endpoint{Address: host, Port: uint32(p)}
}

func oneRoute(port uint32, backend *rt.Backend, mirrors ...*rt.RequestMirror) *rt.RouteTable {
	backends := []*rt.Backend{backend}
	return &rt.RouteTable{Gateway: "infra/gw", Listeners: []*rt.Listener{{Name: "http", Port: port, Protocol: rt.Protocol_HTTP,
		VirtualHosts: []*rt.VirtualHost{{Domain: "*", Routes: []*rt.Route{{
			Match:  &rt.RouteMatch{Path: &rt.RouteMatch_Prefix{Prefix: "/"}},
			Action: &rt.Route_Route{Route: &rt.RouteAction{Backends: []*rt.WeightedBackend{{Backend: backend.Name, Weight: 1}}, Mirrors: mirrors}},
		}}}}}}, Backends: backends}
}

func TestH2CBackend(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%s", r.Proto)
	}))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	defer srv.Close()
	port := freePort(t)
	start(t, oneRoute(port, &rt.Backend{Name: "h2c", Protocol: rt.AppProtocol_H2C, Endpoints: []*rt.Endpoint{endpointOf(t, srv.URL)}}))
	if r := do(t, port, "GET", "x", "/", nil); r.code != 200 || r.rawBody != "proto=HTTP/2.0" {
		t.Errorf("h2c backend saw %d %q, want HTTP/2.0", r.code, r.rawBody)
	}
}

func TestBackendTLSVerifiesTheServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sni=%s", r.TLS.ServerName)
	}))
	defer srv.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	port := freePort(t)
	p := start(t)
	apply := func(tlsCfg *rt.BackendTLS) int {
		t.Helper()
		if err := p.Apply("v", []*rt.RouteTable{oneRoute(port, &rt.Backend{Name: "tls", Protocol: rt.AppProtocol_HTTP1, Tls: tlsCfg, Endpoints: []*rt.Endpoint{endpointOf(t, srv.URL)}})}, nil); err != nil {
			t.Fatal(err)
		}
		return do(t, port, "GET", "x", "/", nil).code
	}
	// httptest's certificate is for example.com.
	if code := apply(&rt.BackendTLS{Sni: "example.com", CaPem: ca}); code != 200 {
		t.Errorf("trusted CA and matching SNI: %d", code)
	}
	if r := do(t, port, "GET", "x", "/", nil); r.rawBody != "sni=example.com" {
		t.Errorf("backend saw %q", r.rawBody)
	}
	if code := apply(&rt.BackendTLS{Sni: "other.test", CaPem: ca}); code != 502 {
		t.Errorf("SNI not in the certificate: %d, want 502", code)
	}
	if code := apply(&rt.BackendTLS{Sni: "other.test", CaPem: ca, SubjectAltNames: []string{"example.com"}}); code != 200 {
		t.Errorf("SAN accepted instead of the SNI: %d", code)
	}
	if code := apply(&rt.BackendTLS{Sni: "example.com"}); code != 502 {
		t.Errorf("no trust anchor (invalid policy): %d, want 502", code)
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want an upgrade", 400)
			return
		}
		echoLines(w)
	}))
	defer srv.Close()
	port := freePort(t)
	start(t, oneRoute(port, &rt.Backend{Name: "ws", Protocol: rt.AppProtocol_WEBSOCKET, Endpoints: []*rt.Endpoint{endpointOf(t, srv.URL)}}))
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(conn, "hello\n")
	line, _ := br.ReadString('\n')
	if line != "echo:hello\n" {
		t.Errorf("through the upgraded connection: %q", line)
	}
}

func TestConnectionErrorsGoToAnotherEndpoint(t *testing.T) {
	live := newEcho(t, "live")
	dead := freePort(t) // nothing listens there
	port := freePort(t)
	b := live.backend()
	b.Endpoints = append(b.Endpoints, &rt.Endpoint{Address: "127.0.0.1", Port: dead})
	start(t, oneRoute(port, b))
	for i := range 50 {
		if r := do(t, port, "GET", "x", "/", nil); r.code != 200 {
			t.Fatalf("request %d: %d (a refused connection must be retried elsewhere)", i, r.code)
		}
	}
}

func TestMirrorsAFraction(t *testing.T) {
	primary := newEcho(t, "primary")
	var mirrored atomic.Int64
	shadow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "payload" && r.URL.Path == "/m" {
			mirrored.Add(1)
		}
	}))
	defer shadow.Close()
	port := freePort(t)
	tbl := oneRoute(port, primary.backend(), &rt.RequestMirror{Backend: "shadow", Numerator: 1, Denominator: 2})
	tbl.Backends = append(tbl.Backends, &rt.Backend{Name: "shadow", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{endpointOf(t, shadow.URL)}})
	start(t, tbl)
	for range 400 {
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/m", port), "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("primary answered %d", resp.StatusCode)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && mirrored.Load() < 150 {
		time.Sleep(20 * time.Millisecond)
	}
	if n := mirrored.Load(); n < 150 || n > 250 {
		t.Errorf("mirrored %d of 400 at 1/2, want about 200 with the body", n)
	}
}

// A backend that closes keep-alive connections without saying so: the next
// request on such a connection must go again on a new one, not fail.
func TestStaleKeepAliveConnectionsAreRetried(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		fmt.Fprint(buf, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		buf.Flush()
		time.Sleep(20 * time.Millisecond)
		c.Close() // no "Connection: close": the proxy keeps the connection as idle
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	port := freePort(t)
	start(t, oneRoute(port, &rt.Backend{Name: "flaky", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{endpointOf(t, srv.URL)}}))
	for i := range 20 {
		if r := do(t, port, "GET", "x", "/", nil); r.code != 200 || r.rawBody != "ok" {
			t.Fatalf("request %d: %d %q", i, r.code, r.rawBody)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if n := conns.Load(); n < 10 {
		t.Errorf("the backend saw %d connections for 20 requests it closed after each", n)
	}
}

// A client that goes away while its request waits for a slow backend ends
// the backend request (its connection closes), on HTTP/1.1 as on the
// net/http path, so that the backend's slot is not held for nothing.
func TestClientGoneEndsTheBackendRequest(t *testing.T) {
	for _, c := range []struct {
		name     string
		pipeline bool
	}{{"closed", false}, {"pipelined request kept", true}} {
		t.Run(c.name, func(t *testing.T) {
			cancelled := make(chan struct{}, 4)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/fast" {
					io.WriteString(w, "fast")
					return
				}
				select {
				case <-r.Context().Done():
					cancelled <- struct{}{}
				case <-time.After(600 * time.Millisecond):
					io.WriteString(w, "slow")
				}
			}))
			t.Cleanup(srv.Close)
			port := freePort(t)
			start(t, oneRoute(port, &rt.Backend{Name: "slow", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{endpointOf(t, srv.URL)}}))
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
			if c.pipeline {
				// A client that sends its next request while waiting is
				// not gone: both are answered, in order.
				req += "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
				io.WriteString(conn, req)
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(conn)
				for _, want := range []string{"slow", "fast"} {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != 200 || string(body) != want {
						t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
					}
				}
				return
			}
			io.WriteString(conn, req)
			time.Sleep(150 * time.Millisecond) // past the moment the proxy starts watching
			conn.Close()
			select {
			case <-cancelled:
			case <-time.After(2 * time.Second):
				t.Fatal("the client closed its connection, but the backend request went on")
			}
		})
	}
}

// One keep-alive connection, used every way a client may: request after
// request, after pauses longer than the proxy's short waits, several
// requests in one write, and a request sent before the previous answer
// was read. Every answer comes, in order.
func TestKeepAliveClientPatterns(t *testing.T) {
	be := newEcho(t, "b")
	port := freePort(t)
	start(t, oneRoute(port, be.backend()))
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	req := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	expect := func(paths ...string) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for _, p := range paths {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("answer to %s: %v", p, err)
			}
			var got echoed
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || got.Path != p {
				t.Fatalf("answer to %s: %d %+v %v", p, resp.StatusCode, got, err)
			}
			resp.Body.Close()
		}
	}
	for i := range 20 {
		p := fmt.Sprintf("/seq/%d", i)
		io.WriteString(conn, req(p))
		expect(p)
	}
	for i := range 3 {
		time.Sleep(120 * time.Millisecond)
		p := fmt.Sprintf("/after-pause/%d", i)
		io.WriteString(conn, req(p))
		expect(p)
	}
	io.WriteString(conn, req("/p/1")+req("/p/2")+req("/p/3"))
	expect("/p/1", "/p/2", "/p/3")
	for i := range 10 {
		// The next request goes out before this answer is read.
		a, b := fmt.Sprintf("/early/%d/a", i), fmt.Sprintf("/early/%d/b", i)
		io.WriteString(conn, req(a))
		time.Sleep(time.Millisecond)
		io.WriteString(conn, req(b))
		expect(a, b)
	}
}
