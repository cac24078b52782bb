package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// misbehaving is a plaintext HTTP/1.1 backend on a bare socket: it reads
// each request with its body and lets answer write whatever it likes on
// the connection. A well-behaved answer names the request's X-Request-Id.
type misbehaving struct {
	addr  string
	conns atomic.Int64
}

func newMisbehaving(t *testing.T, answer func(c net.Conn, req *http.Request)) *misbehaving {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &misbehaving{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var open sync.Map
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.conns.Add(1)
			open.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer open.Delete(c)
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.URL.Path != "/early" {
						_, _ = io.Copy(io.Discard, req.Body)
					}
					answer(c, req)
					if req.URL.Path == "/early" {
						// Answered without reading the body: the rest of
						// this connection is garbage to the backend.
						time.Sleep(100 * time.Millisecond)
						_, _ = io.Copy(io.Discard, c)
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return m
}

func (m *misbehaving) backend(name string) *rt.Backend {
	host, port, _ := net.SplitHostPort(m.addr)
	p, _ := strconv.Atoi(port)
	return &rt.Backend{Name: name, Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{{Address: host, Port: uint32(p)}}}
}

// answerFor is a complete response naming the request id, as a backend
// that behaves sends it.
func answerFor(id string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n%s", id, len(id), id)
}

// injected is a response nobody asked for: if a client ever receives it,
// the proxy read a connection out of step.
var injected = answerFor("injected")

const earlyHints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"

// TestEachResponseGoesToItsOwnRequest: whatever a plaintext backend sends
// around its answers (interim responses asked for or not, bytes after the
// answer or on an idle connection, bodies where none may be), every client
// gets the response to its own request, never one meant for another.
func TestEachResponseGoesToItsOwnRequest(t *testing.T) {
	cases := []struct {
		name   string
		answer func(c net.Conn, req *http.Request)
		// method and body of the requests sent; expect adds Expect:
		// 100-continue.
		method string
		body   int
		expect bool
		// serial sends the requests one at a time with a pause between
		// them, for misbehaviour on idle connections.
		serial bool
	}{
		{name: "100 Continue, then the answer", method: "POST", body: 10, expect: true, answer: func(c net.Conn, req *http.Request) {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+answerFor(req.Header.Get("X-Request-Id")))
		}},
		{name: "100 Continue nobody asked for", method: "GET", answer: func(c net.Conn, req *http.Request) {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+answerFor(req.Header.Get("X-Request-Id")))
		}},
		{name: "100 Continue in its own segment", method: "GET", answer: func(c net.Conn, req *http.Request) {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			time.Sleep(time.Millisecond)
			io.WriteString(c, answerFor(req.Header.Get("X-Request-Id")))
		}},
		{name: "103 Early Hints, then the answer", method: "GET", answer: func(c net.Conn, req *http.Request) {
			io.WriteString(c, earlyHints+answerFor(req.Header.Get("X-Request-Id")))
		}},
		{name: "three interim responses", method: "POST", body: 5, expect: true, answer: func(c net.Conn, req *http.Request) {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+earlyHints+"HTTP/1.1 102 Processing\r\n\r\n"+answerFor(req.Header.Get("X-Request-Id")))
		}},
		{name: "a response after the answer", method: "GET", answer: func(c net.Conn, req *http.Request) {
			io.WriteString(c, answerFor(req.Header.Get("X-Request-Id"))+injected)
		}},
		{name: "a response on the idle connection", method: "GET", serial: true, answer: func(c net.Conn, req *http.Request) {
			io.WriteString(c, answerFor(req.Header.Get("X-Request-Id")))
			time.Sleep(2 * time.Millisecond)
			io.WriteString(c, injected)
		}},
		{name: "a body to HEAD", method: "HEAD", answer: func(c net.Conn, req *http.Request) {
			id := req.Header.Get("X-Request-Id")
			io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n", id, len(injected)))
			time.Sleep(time.Millisecond)
			io.WriteString(c, injected)
		}},
		{name: "a body to 204", method: "GET", answer: func(c net.Conn, req *http.Request) {
			io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-Request-Id: "+req.Header.Get("X-Request-Id")+"\r\n\r\n")
			time.Sleep(time.Millisecond)
			io.WriteString(c, injected)
		}},
		{name: "closes its idle connections without saying so", method: "GET", answer: func(c net.Conn, req *http.Request) {
			io.WriteString(c, answerFor(req.Header.Get("X-Request-Id")))
			c.(*net.TCPConn).CloseWrite()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newMisbehaving(t, tc.answer)
			port := freePort(t)
			start(t, oneRoute(port, be.backend("shared")))
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
			var wg sync.WaitGroup
			var failures atomic.Int64
			clients, pause := 4, time.Duration(0)
			if tc.serial {
				clients, pause = 1, 10*time.Millisecond
			}
			for g := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 25 {
						time.Sleep(pause)
						id := fmt.Sprintf("%d-%d", g, i)
						code, got, err := send(client, port, tc.method, id, tc.body, tc.expect)
						if err != nil || got != id || code >= 500 {
							if failures.Add(1) <= 5 {
								t.Errorf("request %s: got %d for id %q (%v)", id, code, got, err)
							}
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// send makes one request with an id and returns the status and the id
// the response names (its header, or its body when it has one).
func send(client *http.Client, port uint32, method, id string, bodyLen int, expect bool) (int, string, error) {
	var body io.Reader
	if bodyLen > 0 {
		body = strings.NewReader(strings.Repeat("b", bodyLen))
	}
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/r", port), body)
	req.Header.Set("X-Request-Id", id)
	if expect {
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	got := resp.Header.Get("X-Request-Id")
	if len(data) > 0 && string(data) != got {
		got += "|body:" + string(data)
	}
	return resp.StatusCode, got, err
}

// A backend that answers before it read the request body (and then reads
// the rest as garbage) must not have its connection reused: the next
// request on it would get no answer or another's.
func TestAnswerBeforeTheBodyIsNotReused(t *testing.T) {
	be := newMisbehaving(t, func(c net.Conn, req *http.Request) {
		io.WriteString(c, answerFor(req.Header.Get("X-Request-Id")))
	})
	port := freePort(t)
	start(t, oneRoute(port, be.backend("early")))
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		id := fmt.Sprintf("early-%d", i)
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/early", port), strings.NewReader(strings.Repeat("x", 16<<20)))
		req.Header.Set("X-Request-Id", id)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		next := fmt.Sprintf("next-%d", i)
		if code, got, err := send(client, port, "GET", next, 0, false); err != nil || got != next {
			t.Fatalf("the request after an early answer: %d %q %v (the early answer's connection was reused)", code, got, err)
		}
	}
}

// Interim responses reach the client as httputil.ReverseProxy relays them:
// 103 goes on, a backend's 100 does not (the proxy sends its own when it
// reads the body), and an HTTP/1.0 client gets none.
func TestInterimResponsesRelayed(t *testing.T) {
	be := newMisbehaving(t, func(c net.Conn, req *http.Request) {
		id := req.Header.Get("X-Request-Id")
		if req.Header.Get("Expect") != "" {
			id = "expect-forwarded"
		}
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+earlyHints+answerFor(id))
	})
	port := freePort(t)
	start(t, oneRoute(port, be.backend("hints")))

	var got []int
	var hint string
	trace := &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, code)
			if code == 103 {
				hint = h.Get("Link")
			}
			return nil
		},
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST",
		fmt.Sprintf("http://127.0.0.1:%d/", port), strings.NewReader("body"))
	req.Header.Set("X-Request-Id", "one")
	req.Header.Set("Expect", "100-continue")
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "one" {
		t.Errorf("answer for %q, want one (Expect must not reach the backend)", resp.Header.Get("X-Request-Id"))
	}
	if time.Since(began) > 3*time.Second {
		t.Error("the client waited for its 100 Continue: the proxy must send it when it reads the body")
	}
	// The client's own 100 comes from the proxy; the backend's is not relayed.
	if len(got) != 2 || got[0] != 100 || got[1] != 103 || hint != "</style.css>; rel=preload" {
		t.Errorf("interim responses %v (Link %q), want the proxy's 100 then the backend's 103 with its Link", got, hint)
	}

	// HTTP/1.0: no interim response at all.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\nX-Request-Id: old\r\n\r\n")
	first, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(first, " 200 ") {
		t.Errorf("an HTTP/1.0 client got %q first, want the final 200", first)
	}
}

// More than a few interim responses is a backend that never answers: 502,
// and the connection is not reused.
func TestEndlessInterimResponses(t *testing.T) {
	be := newMisbehaving(t, func(c net.Conn, req *http.Request) {
		io.WriteString(c, strings.Repeat(earlyHints, 20)+answerFor(req.Header.Get("X-Request-Id")))
	})
	port := freePort(t)
	start(t, oneRoute(port, be.backend("chatty")))
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		code, got, _ := send(client, port, "GET", strconv.Itoa(i), 0, false)
		if code != http.StatusBadGateway {
			t.Errorf("request %d: %d %q, want 502", i, code, got)
		}
	}
}

// A 101 to a request that asked for no upgrade would be a raw tunnel to
// the backend past routing and filters: 502 instead, over plaintext and
// TLS alike.
func TestSwitchingProtocolsOnlyForUpgrades(t *testing.T) {
	const switched = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\nTUNNEL"
	plain := newMisbehaving(t, func(c net.Conn, req *http.Request) { io.WriteString(c, switched) })
	overTLS := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		buf.WriteString(switched)
		buf.Flush()
		time.Sleep(100 * time.Millisecond)
	}))
	t.Cleanup(overTLS.Close)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: overTLS.Certificate().Raw}))
	for name, b := range map[string]*rt.Backend{
		"plaintext": plain.backend("switcher"),
		"tls": {Name: "switcher", Protocol: rt.AppProtocol_HTTP1, Tls: &rt.BackendTLS{Sni: "example.com", CaPem: ca},
			Endpoints: []*rt.Endpoint{endpointOf(t, overTLS.URL)}},
	} {
		t.Run(name, func(t *testing.T) {
			port := freePort(t)
			start(t, oneRoute(port, b))
			if code, got, err := send(&http.Client{Timeout: 5 * time.Second}, port, "GET", "a", 0, false); code != http.StatusBadGateway {
				t.Errorf("got %d %q %v, want 502", code, got, err)
			}
		})
	}
}

// Backends reached through http.Transport (TLS, h2c, h2) relay 103, not a
// backend's 100, never see Expect, and answer each request its own.
func TestInterimResponsesOverOtherProtocols(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if r.Header.Get("Expect") != "" {
			id = "expect-forwarded"
		}
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusContinue)
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("X-Request-Id", id)
		io.WriteString(w, id)
	})
	tlsServer := func(h2 bool) *httptest.Server {
		s := httptest.NewUnstartedServer(handler)
		s.EnableHTTP2 = h2
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	h2c := httptest.NewUnstartedServer(handler)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c.Config.Protocols = &p
	h2c.Start()
	t.Cleanup(h2c.Close)
	plain := httptest.NewServer(handler)
	t.Cleanup(plain.Close)
	caOf := func(s *httptest.Server) *rt.BackendTLS {
		return &rt.BackendTLS{Sni: "example.com", CaPem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))}
	}
	tls1, tls2 := tlsServer(false), tlsServer(true)
	backends := map[string]*rt.Backend{
		"tls":  {Name: "tls", Protocol: rt.AppProtocol_HTTP1, Tls: caOf(tls1), Endpoints: []*rt.Endpoint{endpointOf(t, tls1.URL)}},
		"h2":   {Name: "h2", Protocol: rt.AppProtocol_H2, Tls: caOf(tls2), Endpoints: []*rt.Endpoint{endpointOf(t, tls2.URL)}},
		"h2c":  {Name: "h2c", Protocol: rt.AppProtocol_H2C, Endpoints: []*rt.Endpoint{endpointOf(t, h2c.URL)}},
		"http": {Name: "http", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{endpointOf(t, plain.URL)}},
	}
	for name, b := range backends {
		t.Run(name, func(t *testing.T) {
			port := freePort(t)
			start(t, oneRoute(port, b))
			var mu sync.Mutex
			var codes []int
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
				mu.Lock()
				codes = append(codes, code)
				mu.Unlock()
				return nil
			}}
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{}}}
			for i := range 20 {
				id := fmt.Sprintf("%s-%d", name, i)
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST",
					fmt.Sprintf("http://127.0.0.1:%d/", port), strings.NewReader("body"))
				req.Header.Set("X-Request-Id", id)
				req.Header.Set("Expect", "100-continue")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(data) != id {
					t.Fatalf("request %s: %d %q", id, resp.StatusCode, data)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for i := 0; i+1 < len(codes); i += 2 {
				if codes[i] != 100 || codes[i+1] != 103 {
					t.Fatalf("interim responses %v, want the proxy's 100 then the backend's 103 for each request", codes)
				}
			}
			if len(codes) != 40 {
				t.Fatalf("%d interim responses for 20 requests, want 40: %v", len(codes), codes)
			}
		})
	}
}
