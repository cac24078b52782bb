package adversarial

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// stray is a whole response nobody asked for: a client that ever receives
// it got bytes the backend sent outside any exchange.
const stray = "HTTP/1.1 200 OK\r\nX-Request-Id: stray\r\nContent-Length: 5\r\n\r\nstray"

const earlyHints = "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n"

// answer is a well-behaved backend's response to request id: 200, the id
// as header and body.
func answer(id string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n%s", id, len(id), id)
}

func idOf(sr seenRequest) string { return sr.req.Header.Get("X-Request-Id") }

// behindProxy serves every Host and path from be through a proxy whose
// table has the given limits, and returns the listener's port. The backend
// speaks HTTP1, as the hub says of a plain Service port: the pooled
// HTTP/1.1 transport whose connections every route to the backend shares.
func behindProxy(t *testing.T, be *rawBackend, limits *routetable.Limits) uint32 {
	t.Helper()
	port := freePort(t)
	b := backendAt(t, "shared/api:80", be.addr)
	b.Protocol = routetable.AppProtocol_HTTP1
	tbl := table([]*routetable.Listener{httpListener("http", port, "", vhost("*", prefixRoute("app", "/", b.Name)))}, b)
	tbl.Limits = limits
	startProxy(t, proxyOptions{}, tbl)
	return port
}

// load is what ownResponses sends: clients concurrent clients, each
// sending each requests, pause apart; request returns the method and path
// of a client's i-th request. POSTs carry a small body.
type load struct {
	clients, each int
	pause         time.Duration
	request       func(i int) (method, path string)
}

func gets(int) (string, string) { return "GET", "/r" }

// ownResponses sends l through the proxy at port and fails the test unless
// every request gets its own response: a status below 500, naming the
// request's id, with no body or its id as the body.
func ownResponses(t *testing.T, port uint32, l load) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: l.clients}}
	t.Cleanup(client.CloseIdleConnections)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range l.each {
				time.Sleep(l.pause)
				method, path := l.request(i)
				id := fmt.Sprintf("%d-%d", g, i)
				if err := ownResponse(client, port, method, path, id); err != nil && failures.Add(1) <= 5 {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests did not get their own response", n, l.clients*l.each)
	}
}

func ownResponse(client *http.Client, port uint32, method, path, id string) error {
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("upload of " + id)
	}
	req, err := http.NewRequest(method, "http://"+listenerAddr(port)+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("X-Request-Id", id)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s (id %s): %v", method, path, id, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); err != nil || resp.StatusCode >= 500 || got != id || (len(data) > 0 && string(data) != id) {
		return fmt.Errorf("%s %s (id %s) got %d, X-Request-Id %q, body %q (%v)", method, path, id, resp.StatusCode, got, data, err)
	}
	return nil
}

// TestBackend: backends that send what nobody asked for (interim
// responses, bytes on idle connections, bodies where none may be, a 101),
// answer too early or close without a word, or are slow. Each request
// still gets its own response, and a connection whose state is in doubt is
// never handed to the next request, whichever tenant sends it.
func TestBackend(t *testing.T) {
	runCases(t, "backend", []adversarialCase{
		{"100-then-answer", "RFC 9110 §15.2: a 1xx is not the answer; the final response that follows is", func(t *testing.T) {
			be, _ := httpBackend(t, func(c net.Conn, _ *bufio.Reader, sr seenRequest) bool {
				_, err := io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+answer(idOf(sr)))
				return err == nil
			})
			ownResponses(t, behindProxy(t, be, nil), load{clients: 4, each: 25, request: func(i int) (string, string) {
				return [...]string{"GET", "POST"}[i%2], "/r"
			}})
		}},
		{"early-hints-relayed", "RFC 8297, RFC 9110 §15.2: 103 and its Link reach an HTTP/1.1 client, a backend's 100 does not (Envoy)", func(t *testing.T) {
			port := behindProxy(t, hintingBackend(t), nil)
			c := dialRaw(t, port)
			c.send("GET /page HTTP/1.1\r\nHost: app.example\r\nX-Request-Id: hinted\r\n\r\n")
			hint, _ := c.response("GET")
			if hint.StatusCode != http.StatusEarlyHints || hint.Header.Get("Link") != "</app.css>; rel=preload" {
				t.Fatalf("first response %d with Link %q, want the backend's 103 with its Link", hint.StatusCode, hint.Header.Get("Link"))
			}
			if resp, body := c.response("GET"); resp.StatusCode != http.StatusOK || body != "hinted" {
				t.Fatalf("then %d %q, want 200 with the request's own id", resp.StatusCode, body)
			}
		}},
		{"no-interim-to-http10", "RFC 9110 §15.2: a server MUST NOT send a 1xx response to an HTTP/1.0 client", func(t *testing.T) {
			port := behindProxy(t, hintingBackend(t), nil)
			c := dialRaw(t, port)
			c.send("GET /page HTTP/1.0\r\nHost: app.example\r\nX-Request-Id: old\r\n\r\n")
			if resp, body := c.response("GET"); resp.StatusCode != http.StatusOK || body != "old" {
				t.Fatalf("an HTTP/1.0 client got %d %q first, want its final 200", resp.StatusCode, body)
			}
		}},
		{"endless-interim", "a backend that sends 1xx without end gets 502 and its connection closed (Go http.Transport: 5)", func(t *testing.T) {
			be, _ := httpBackend(t, func(c net.Conn, _ *bufio.Reader, sr seenRequest) bool {
				_, err := io.WriteString(c, strings.Repeat(earlyHints, 20)+answer(idOf(sr)))
				return err == nil
			})
			port := behindProxy(t, be, nil)
			const requests = 3
			for i := range requests {
				c := dialRaw(t, port)
				c.send(fmt.Sprintf("GET /r HTTP/1.1\r\nHost: app.example\r\nX-Request-Id: %d\r\nConnection: close\r\n\r\n", i))
				resp, body := c.response("GET")
				for relayed := 0; resp.StatusCode < 200; relayed++ {
					if relayed == 20 {
						t.Fatalf("request %d: the proxy relayed all 20 of the backend's 1xx responses", i)
					}
					resp, body = c.response("GET")
				}
				if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Request-Id") != "" {
					t.Fatalf("request %d got %d (X-Request-Id %q) %q, want 502", i, resp.StatusCode, resp.Header.Get("X-Request-Id"), body)
				}
			}
			if n := be.connections(); n < requests {
				t.Fatalf("%d requests reached the backend over %d connections: a connection with 1xx left unread was reused", requests, n)
			}
		}},
		{"bytes-on-idle-connection", "RFC 9112 §9.3: a response with no request is not the next request's; the connection is dropped", func(t *testing.T) {
			be, _ := httpBackend(t, func(c net.Conn, _ *bufio.Reader, sr seenRequest) bool {
				io.WriteString(c, answer(idOf(sr)))
				time.Sleep(2 * time.Millisecond)
				_, err := io.WriteString(c, stray)
				return err == nil
			})
			ownResponses(t, behindProxy(t, be, nil), load{clients: 1, each: 25, pause: 10 * time.Millisecond, request: gets})
		}},
		{"silent-close", "RFC 9112 §9.3.1: a client MUST recover from an idle connection's close; a request without a body goes again", func(t *testing.T) {
			be, _ := httpBackend(t, func(c net.Conn, _ *bufio.Reader, sr seenRequest) bool {
				io.WriteString(c, answer(idOf(sr)))
				return false
			})
			ownResponses(t, behindProxy(t, be, nil), load{clients: 4, each: 25, request: gets})
		}},
		{"body-after-head", "RFC 9110 §9.3.2: a response to HEAD has no content; what follows is not the next request's", func(t *testing.T) {
			be, _ := httpBackend(t, func(c net.Conn, _ *bufio.Reader, sr seenRequest) bool {
				if sr.req.Method != "HEAD" {
					_, err := io.WriteString(c, answer(idOf(sr)))
					return err == nil
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n", idOf(sr), len(stray))
				time.Sleep(time.Millisecond)
				_, err := io.WriteString(c, stray)
				return err == nil
			})
			ownResponses(t, behindProxy(t, be, nil), load{clients: 4, each: 25, request: func(i int) (string, string) {
				return [...]string{"HEAD", "GET"}[i%2], "/r"
			}})
		}},
		{"body-on-204", "RFC 9110 §15.3.5: a 204 ends at its header section; what follows is not the next request's", func(t *testing.T) {
			be, _ := httpBackend(t, func(c net.Conn, _ *bufio.Reader, sr seenRequest) bool {
				if sr.req.URL.Path != "/empty" {
					_, err := io.WriteString(c, answer(idOf(sr)))
					return err == nil
				}
				io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-Request-Id: "+idOf(sr)+"\r\n\r\n")
				time.Sleep(time.Millisecond)
				_, err := io.WriteString(c, stray)
				return err == nil
			})
			ownResponses(t, behindProxy(t, be, nil), load{clients: 4, each: 25, request: func(i int) (string, string) {
				return "GET", [...]string{"/empty", "/r"}[i%2]
			}})
		}},
		{"answer-before-body", "RFC 9112 §9.6: a backend that answered before reading the body may read the rest as a request; its connection is not reused", answerBeforeBody},
		{"unsolicited-101-http1", "RFC 9110 §15.2.2: a 101 to a request without Upgrade is a bad gateway, not a tunnel (pooled HTTP/1.1 transport)", func(t *testing.T) {
			be, _ := httpBackend(t, func(c net.Conn, _ *bufio.Reader, _ seenRequest) bool {
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\ntunnel open\n")
				return false
			})
			c := dialRaw(t, behindProxy(t, be, nil))
			resp, body := c.roundTrip("GET /r HTTP/1.1\r\nHost: app.example\r\nX-Request-Id: plain\r\n\r\n")
			if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, "tunnel") {
				t.Fatalf("got %d %q, want 502 and none of the backend's bytes", resp.StatusCode, body)
			}
		}},
		{"circuit-breaker", "Envoy circuit breaker: past max connections and pending requests a backend's overflow is 503 at once", circuitBreaker},
		{"expect-continue-answered", "RFC 9110 §10.1.1; Envoy: the proxy answers 100-continue itself and does not forward Expect", func(t *testing.T) {
			be, seen := httpBackend(t, func(c net.Conn, _ *bufio.Reader, sr seenRequest) bool {
				_, err := io.WriteString(c, answer(idOf(sr)))
				return err == nil
			})
			c := dialRaw(t, behindProxy(t, be, nil))
			const body = "upload"
			c.send(fmt.Sprintf("POST /r HTTP/1.1\r\nHost: app.example\r\nX-Request-Id: up\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body)))
			// The backend answers only once it has the body: without the
			// proxy's own 100 the client would wait for ever.
			c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			cont, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
			if err != nil || cont.StatusCode != http.StatusContinue {
				t.Fatalf("before sending the body the client got %v %v, want the proxy's 100 Continue", cont, err)
			}
			c.send(body)
			if resp, got := c.response("POST"); resp.StatusCode != http.StatusOK || got != "up" {
				t.Fatalf("got %d %q, want 200 with the request's own id", resp.StatusCode, got)
			}
			if sr := <-seen; sr.req.Header.Get("Expect") != "" || string(sr.body) != body {
				t.Fatalf("the backend saw Expect %q and body %q, want no Expect and the body", sr.req.Header.Get("Expect"), sr.body)
			}
		}},
	})
}

// hintingBackend sends 100 Continue and 103 Early Hints before each
// answer.
func hintingBackend(t *testing.T) *rawBackend {
	be, _ := httpBackend(t, func(c net.Conn, _ *bufio.Reader, sr seenRequest) bool {
		_, err := io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+earlyHints+answer(idOf(sr)))
		return err == nil
	})
	return be
}

// answerBeforeBody: the backend answers /early as soon as it has the head
// and reads the rest of the connection as garbage. If the proxy pooled
// that connection, the next request would vanish into it.
func answerBeforeBody(t *testing.T) {
	be := startRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			id := req.Header.Get("X-Request-Id")
			if req.URL.Path == "/early" {
				io.WriteString(c, answer(id))
				io.Copy(io.Discard, br)
				return
			}
			io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(c, answer(id)); err != nil {
				return
			}
		}
	})
	port := behindProxy(t, be, nil)
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	for i := range 3 {
		req, _ := http.NewRequest("POST", "http://"+listenerAddr(port)+"/early", strings.NewReader(strings.Repeat("x", 4<<20)))
		req.Header.Set("X-Request-Id", fmt.Sprint("early-", i))
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err := ownResponse(client, port, "GET", "/next", fmt.Sprint("next-", i)); err != nil {
			t.Fatalf("the request after an early answer: %v (the early answer's connection was reused)", err)
		}
	}
}

// circuitBreaker: a backend that holds every answer, a table that allows
// it 4 connections and 2 waiting requests, and 10 requests at once: 4 are
// refused while it holds them, the other 6 get their own answers once it
// lets go, and it never has more than 4 connections open.
func circuitBreaker(t *testing.T) {
	const conns, pending, total = 4, 2, 10
	release := make(chan struct{})
	var mu sync.Mutex
	open, most := 0, 0
	be := startRawBackend(t, func(c net.Conn) {
		mu.Lock()
		open++
		most = max(most, open)
		mu.Unlock()
		defer func() { mu.Lock(); open--; mu.Unlock() }()
		br := bufio.NewReader(c)
		for {
			sr, err := readRequest(br)
			if err != nil {
				return
			}
			<-release
			if _, err := io.WriteString(c, answer(idOf(sr))); err != nil {
				return
			}
		}
	})
	port := behindProxy(t, be, &routetable.Limits{MaxConnectionsPerBackend: conns, MaxPendingRequestsPerBackend: pending})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // first: a failing test still lets the backend answer

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: total}}
	t.Cleanup(client.CloseIdleConnections)
	results := make(chan error, total)
	for i := range total {
		go func() { results <- ownResponse(client, port, "GET", "/slow", fmt.Sprint("slow-", i)) }()
	}
	deadline := time.After(5 * time.Second)
	for refused := 0; refused < total-conns-pending; refused++ {
		select {
		case err := <-results:
			if err == nil || !strings.Contains(err.Error(), " got 503,") {
				t.Fatalf("while the backend held %d requests and %d waited: %v, want 503", conns, pending, err)
			}
		case <-deadline:
			t.Fatalf("%d requests refused within 5s, want %d at once", refused, total-conns-pending)
		}
	}
	free()
	for range conns + pending {
		if err := <-results; err != nil {
			t.Errorf("a request within the limits: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most > conns {
		t.Fatalf("the backend had %d connections open at once, the limit is %d", most, conns)
	}
}
