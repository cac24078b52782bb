package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// FuzzFastPathMatchesNetHTTP sends the same raw bytes to two proxies that
// serve the same route table, one with the fast path (fast.go) and one
// with NoFastPath, and holds them to the same outcome: what the client
// reads back (status, header, body and trailers of each response) and
// what the backend receives (method, request target, Host, header and
// body of each request). The differences the fast path has on purpose
// are taken out in one place, fastPathLicence; any other is a failure.
func FuzzFastPathMatchesNetHTTP(f *testing.F) {
	bed := newDiffBed(f)
	for _, s := range diffSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, methods, ok := diffInput(raw)
		if !ok {
			t.Skip("no HTTP/1 request to send")
		}
		fast, slow := bed.run(bed.fast, in, methods), bed.run(bed.slow, in, methods)
		fastPathLicence(&fast, &slow)
		if d := fast.differences(&slow); len(d) > 0 {
			t.Errorf("input %q\nsent %q\ndifferences:\n  %s\nfast path:\n%s\nnet/http path:\n%s", raw, in, strings.Join(d, "\n  "), fast.describe(), slow.describe())
		}
	})
}

// fastPathLicence takes out of two outcomes of one input the differences
// the fast path has on purpose. Those the comparison cannot see need no
// entry here:
//   - the fast path forwards field names as they were sent, net/http
//     canonicalises them: the backend's record and the client's reading
//     canonicalise both (http.ReadRequest, http.ReadResponse);
//   - the order of the fields is the client's or backend's on the fast
//     path and map order on net/http's: the comparison is by name;
//   - a Date holds the second it was written in: Date is not compared;
//   - whatever the fast parser does not take goes to net/http with its
//     bytes unread, so malformed or unusual input (and net/http's own 400
//     answers to it) is the same on both by construction.
func fastPathLicence(fast, slow *diffOutcome) {
	for i := range min(len(fast.answers), len(slow.answers)) {
		fa, sa := &fast.answers[i], &slow.answers[i]
		// net/http's ResponseWriter sniffs a Content-Type for a body the
		// backend sent without one; the fast path relays the response as
		// the backend stated it, with no type. Only that case is let
		// through: the net/http side's type must be the sniffed one.
		if _, typed := fa.header["Content-Type"]; !typed && sa.header.Get("Content-Type") == http.DetectContentType([]byte(sa.body)) {
			delete(sa.header, "Content-Type")
		}
	}
}

// diffOutcome is what one proxy made of an input.
type diffOutcome struct {
	answers []diffAnswer
	// rest is what followed the last response that parsed: bytes that are
	// not a response, and why.
	rest string
	// readErr is how the connection ended, when not by the proxy closing
	// it: "timeout" or "reset".
	readErr string
	got     []diffReceived
}

// diffAnswer is one response as the client reads it.
type diffAnswer struct {
	status  int
	header  http.Header
	trailer http.Header
	body    string
}

// diffReceived is one request as the backend reads it; err when it did
// not read as a request.
type diffReceived struct {
	method, uri, host string
	header            http.Header
	body              string
	err               string
}

// differences lists where o and other differ, Date aside.
func (o *diffOutcome) differences(other *diffOutcome) []string {
	var out []string
	if len(o.answers) != len(other.answers) {
		out = append(out, fmt.Sprintf("%d responses against %d", len(o.answers), len(other.answers)))
	}
	for i := range min(len(o.answers), len(other.answers)) {
		a, b := &o.answers[i], &other.answers[i]
		if a.status != b.status {
			out = append(out, fmt.Sprintf("response %d: status %d against %d", i, a.status, b.status))
		}
		if d := headerDifference(a.header, b.header, "Date"); d != "" {
			out = append(out, fmt.Sprintf("response %d: header %s", i, d))
		}
		if d := headerDifference(a.trailer, b.trailer); d != "" {
			out = append(out, fmt.Sprintf("response %d: trailer %s", i, d))
		}
		if a.body != b.body {
			out = append(out, fmt.Sprintf("response %d: body %q against %q", i, a.body, b.body))
		}
	}
	if o.rest != other.rest {
		out = append(out, fmt.Sprintf("after the responses: %q against %q", o.rest, other.rest))
	}
	if o.readErr != other.readErr {
		out = append(out, fmt.Sprintf("connection ended by %q against %q", o.readErr, other.readErr))
	}
	if len(o.got) != len(other.got) {
		out = append(out, fmt.Sprintf("backend received %d requests against %d", len(o.got), len(other.got)))
	}
	for i := range min(len(o.got), len(other.got)) {
		a, b := &o.got[i], &other.got[i]
		switch {
		case a.err != b.err:
			out = append(out, fmt.Sprintf("backend request %d: read error %q against %q", i, a.err, b.err))
		case a.method != b.method || a.uri != b.uri || a.host != b.host:
			out = append(out, fmt.Sprintf("backend request %d: %s %s (Host %q) against %s %s (Host %q)", i, a.method, a.uri, a.host, b.method, b.uri, b.host))
		}
		if d := headerDifference(a.header, b.header); d != "" {
			out = append(out, fmt.Sprintf("backend request %d: header %s", i, d))
		}
		if a.body != b.body {
			out = append(out, fmt.Sprintf("backend request %d: body %q against %q", i, a.body, b.body))
		}
	}
	return out
}

// headerDifference describes how two canonical headers differ, less the
// names skipped; "" when they do not.
func headerDifference(a, b http.Header, skip ...string) string {
	var d []string
	names := map[string]bool{}
	for n := range a {
		names[n] = true
	}
	for n := range b {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if slices.Contains(skip, n) {
			continue
		}
		va, oka := a[n]
		vb, okb := b[n]
		if oka != okb || !slices.Equal(va, vb) {
			d = append(d, fmt.Sprintf("%s: %s against %s", n, fieldValues(va, oka), fieldValues(vb, okb)))
		}
	}
	return strings.Join(d, "; ")
}

func fieldValues(vs []string, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return fmt.Sprintf("%q", vs)
}

func (o *diffOutcome) describe() string {
	var b strings.Builder
	for _, a := range o.answers {
		fmt.Fprintf(&b, "  response %d %v body %q", a.status, a.header, a.body)
		if len(a.trailer) > 0 {
			fmt.Fprintf(&b, " trailer %v", a.trailer)
		}
		b.WriteByte('\n')
	}
	if o.rest != "" {
		fmt.Fprintf(&b, "  then %q\n", o.rest)
	}
	if o.readErr != "" {
		fmt.Fprintf(&b, "  connection: %s\n", o.readErr)
	}
	for _, g := range o.got {
		if g.err != "" {
			fmt.Fprintf(&b, "  backend: unreadable request: %s\n", g.err)
			continue
		}
		fmt.Fprintf(&b, "  backend: %s %s Host %q %v body %q\n", g.method, g.uri, g.host, g.header, g.body)
	}
	return b.String()
}

// diffMaxRequests bounds the requests of an input: one, or a few
// pipelined.
const diffMaxRequests = 3

// diffSentinel follows every input that leaves its connection open: a
// request the fast path hands to net/http (its route answers directly),
// whose Connection: close ends the exchange without a timeout.
const diffSentinel = "GET /fuzz-end HTTP/1.1\r\nHost: end.example\r\nConnection: close\r\n\r\n"

// diffInput is what to send for raw: its first requests as net/http reads
// them, up to diffMaxRequests, then the sentinel. A request cut short (a
// head or body that does not end) is left out, since either proxy would
// wait for its end; what does not read as a request at all is kept, and
// both proxies should refuse it alike. methods are the requests' methods,
// to read their responses by. ok is false when nothing is left to send.
func diffInput(raw []byte) (in []byte, methods []string, ok bool) {
	if len(raw) > 16<<10 {
		return nil, nil, false
	}
	r := bytes.NewReader(raw)
	br := bufio.NewReader(r)
	consumed := func() int { return len(raw) - r.Len() - br.Buffered() }
	end, closing := 0, false
	malformed := false
	for len(methods) < diffMaxRequests && !closing {
		req, err := http.ReadRequest(br)
		if err == nil && req.ProtoMajor != 1 {
			break // HTTP/2's preface: another protocol
		}
		if err == nil {
			_, err = io.Copy(io.Discard, req.Body)
		}
		if err != nil {
			malformed = !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF)
			break
		}
		methods = append(methods, req.Method)
		end, closing = consumed(), req.Close
	}
	if malformed {
		end = len(raw)
	}
	if end == 0 {
		return nil, nil, false
	}
	in = append([]byte(nil), raw[:end]...)
	if !closing {
		in = append(in, diffSentinel...)
		methods = append(methods, http.MethodGet)
	}
	return in, methods, true
}

// diffBed is the recording backend and the two proxies in front of it.
type diffBed struct {
	be         *diffBackend
	fast, slow string // the proxies' addresses
	mu         sync.Mutex
}

func newDiffBed(tb testing.TB) *diffBed {
	be := newDiffBackend(tb)
	bed := &diffBed{be: be}
	for _, noFast := range []bool{false, true} {
		port := diffPort(tb)
		var tbl rt.RouteTable
		js := fmt.Sprintf(diffTable, port, be.port(0), be.port(0), be.port(1))
		if err := protojson.Unmarshal([]byte(js), &tbl); err != nil {
			tb.Fatalf("route table: %v", err)
		}
		p := New(Options{BindAddress: "127.0.0.1", DrainTimeout: time.Second, NoFastPath: noFast})
		if err := p.Apply("diff", []*rt.RouteTable{&tbl}, nil); err != nil {
			tb.Fatalf("apply: %v", err)
		}
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = p.Close(ctx)
		})
		if len(p.NotServed()) > 0 || len(p.RoutesNotServed()) > 0 {
			tb.Fatalf("not served: %v %v", p.NotServed(), p.RoutesNotServed())
		}
		addr := p.Addr(port).String()
		if noFast {
			bed.slow = addr
		} else {
			bed.fast = addr
		}
	}
	return bed
}

func diffPort(tb testing.TB) uint32 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

// diffTable is the route table both proxies serve (the listener's port,
// then the backends' ports). Requests for app.example meet header matches
// (one on a field the client may send twice), request and response
// header filters (an add to a field the client may send, a remove of one
// it may send), a prefix and host rewrite, a retry policy, and a backend
// of two endpoints; any other host goes to the catch-all, whose
// /fuzz-end the proxy answers itself.
const diffTable = `{"gateway":"fuzz/diff","listeners":[{"name":"http","port":%d,"protocol":"HTTP","virtualHosts":[
 {"domain":"app.example","routes":[
  {"match":{"prefix":"/api","headers":[{"name":"X-Tenant","exact":"t1"}]},
   "route":{"backends":[{"backend":"pair","weight":1,"requestHeaders":{"set":[{"name":"X-Share","value":"pair"}]},"responseHeaders":{"add":[{"name":"Cache-Control","value":"private"}]}}]},
   "requestHeaders":{"set":[{"name":"X-Env","value":"prod"}],"add":[{"name":"X-Trace","value":"gatehouse"}],"remove":["X-Debug"]},
   "responseHeaders":{"set":[{"name":"X-Served-By","value":"gatehouse"}],"add":[{"name":"Vary","value":"X-Tenant"}],"remove":["X-Internal"]}},
  {"match":{"prefix":"/api","headers":[{"name":"x-tenant","regex":"t[0-9]+(,t[0-9]+)*"}]},
   "route":{"backends":[{"backend":"one","weight":1}]},
   "requestHeaders":{"add":[{"name":"X-Tenant","value":"checked"}],"remove":["Cookie"]}},
  {"match":{"prefix":"/old/"},
   "route":{"backends":[{"backend":"one","weight":1}],"pathRewrite":{"prefix":"/new"},"hostRewrite":"internal.example"}},
  {"match":{"prefix":"/retry"},
   "route":{"backends":[{"backend":"pair","weight":1}],"retry":{"codes":[503],"attempts":2}}},
  {"match":{"exact":"/exact","method":"POST"},"route":{"backends":[{"backend":"one","weight":1}]}},
  {"match":{"prefix":"/q","queryParameters":[{"name":"v","exact":"1"}]},
   "route":{"backends":[{"backend":"one","weight":1}]},"responseHeaders":{"add":[{"name":"Set-Cookie","value":"q=1"}]}},
  {"match":{"prefix":"/"},"route":{"backends":[{"backend":"one","weight":1}]}}
 ]},
 {"domain":"*","routes":[
  {"match":{"exact":"/fuzz-end"},"directResponse":{"status":200,"body":"end"}},
  {"match":{"prefix":"/"},"route":{"backends":[{"backend":"pair","weight":1}]}}
 ]}
]}],
"backends":[
 {"name":"one","protocol":"HTTP1","endpoints":[{"address":"127.0.0.1","port":%d}]},
 {"name":"pair","protocol":"HTTP1","endpoints":[{"address":"127.0.0.1","port":%d},{"address":"127.0.0.1","port":%d}]}
]}`

// run sends in on a new connection to addr and reads everything that
// comes back until the proxy closes it, within two seconds.
func (b *diffBed) run(addr string, in []byte, methods []string) diffOutcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.be.reset()
	var o diffOutcome
	c, err := net.Dial("tcp", addr)
	if err != nil {
		o.readErr = "dial: " + err.Error()
		return o
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var raw []byte
	if _, err = c.Write(in); err == nil {
		raw, err = io.ReadAll(io.LimitReader(c, 1<<20))
	}
	c.Close()
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		o.readErr = "timeout"
	default:
		o.readErr = "reset"
	}
	o.answers, o.rest = diffAnswers(raw, methods)
	o.got = b.be.snapshot()
	return o
}

// diffAnswers reads raw as the responses to requests of methods.
func diffAnswers(raw []byte, methods []string) ([]diffAnswer, string) {
	r := bytes.NewReader(raw)
	br := bufio.NewReader(r)
	var out []diffAnswer
	for i := 0; ; {
		if _, err := br.Peek(1); err != nil {
			return out, ""
		}
		req := &http.Request{Method: http.MethodGet}
		if i < len(methods) {
			req.Method = methods[i]
		}
		resp, err := http.ReadResponse(br, req)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
		}
		if err != nil {
			left := raw[len(raw)-r.Len()-br.Buffered():]
			return out, fmt.Sprintf("%v: %q", err, left)
		}
		out = append(out, diffAnswer{status: resp.StatusCode, header: resp.Header, trailer: resp.Trailer, body: string(body)})
		if resp.StatusCode >= 200 {
			i++
		}
	}
}

// diffBackend records the requests it reads, on two ports, and answers
// each as its target asks (diffResponses).
type diffBackend struct {
	lns   [2]net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// run counts the exchanges; got are the requests whose first byte
	// came during the current one.
	run int
	got []diffReceived
	// flaky: a request with "flaky" in its target was answered 503 in
	// this run; the next is answered as usual.
	flaky bool
}

func newDiffBackend(tb testing.TB) *diffBackend {
	b := &diffBackend{conns: map[net.Conn]struct{}{}}
	for i := range b.lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		b.lns[i] = ln
		b.wg.Add(1)
		go b.accept(ln)
	}
	tb.Cleanup(func() {
		for _, ln := range b.lns {
			ln.Close()
		}
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *diffBackend) port(i int) int { return b.lns[i].Addr().(*net.TCPAddr).Port }

func (b *diffBackend) accept(ln net.Listener) {
	defer b.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go b.serve(c)
	}
}

func (b *diffBackend) serve(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		c.Close()
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		if _, err := br.Peek(1); err != nil {
			return // closed between requests, or by the cleanup
		}
		b.mu.Lock()
		run := b.run
		b.mu.Unlock()
		// A request a proxy gave up on before the backend had it whole (a
		// client's body that turned out malformed) reaches it at a moment
		// the exchange does not order, perhaps after the client's answer:
		// only whole requests count.
		req, err := http.ReadRequest(br)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) && !errors.Is(err, io.ErrUnexpectedEOF) {
				b.record(run, diffReceived{err: err.Error()})
			}
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if err != nil {
			return
		}
		// A request without a Host reaches the backend with the address
		// of the endpoint it went to, which either proxy picks at random.
		host := req.Host
		if host == c.LocalAddr().String() {
			host = "(the endpoint's address)"
		}
		b.record(run, diffReceived{method: req.Method, uri: req.RequestURI, host: host, header: req.Header, body: string(body)})
		resp, closing := b.answer(req.RequestURI)
		if _, err := c.Write(resp); err != nil || closing || req.Close {
			return
		}
	}
}

// diffResponse is a raw response of the backend, chosen by a token in the
// target it receives; closing, that the backend closes after it.
type diffResponse struct {
	token   string
	raw     string
	closing bool
}

var diffResponses = []diffResponse{
	{token: "resp=chunked", raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n" +
		"6\r\nchunk-\r\n4\r\nbody\r\n0\r\nX-Checksum: 10\r\n\r\n"},
	{token: "resp=empty", raw: "HTTP/1.1 204 No Content\r\nX-Empty: yes\r\n\r\n"},
	{token: "resp=hop", raw: "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: dropped\r\nKeep-Alive: timeout=5\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nhop"},
	{token: "resp=keepalive", raw: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=100\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nka"},
	{token: "resp=cookies", raw: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nContent-Type: text/plain\r\nSet-Cookie: b=2; HttpOnly\r\nContent-Length: 7\r\n\r\ncookies"},
	{token: "resp=untyped", raw: "HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n<html><b>untyped</b></html>"},
	{token: "resp=close", raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the backend closes", closing: true},
	{token: "resp=http10", raw: "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nold", closing: true},
	{token: "resp=hints", raw: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhints"},
	{token: "resp=notmodified", raw: "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n"},
}

const (
	diffDefault = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Internal: secret\r\nVary: Accept\r\nContent-Length: 6\r\n\r\nhello\n"
	diffFlaky   = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nflaky"
)

func (b *diffBackend) answer(target string) ([]byte, bool) {
	if strings.Contains(target, "flaky") {
		b.mu.Lock()
		first := !b.flaky
		b.flaky = true
		b.mu.Unlock()
		if first {
			return []byte(diffFlaky), false
		}
	}
	for _, r := range diffResponses {
		if strings.Contains(target, r.token) {
			return []byte(r.raw), r.closing
		}
	}
	return []byte(diffDefault), false
}

func (b *diffBackend) record(run int, r diffReceived) {
	b.mu.Lock()
	if run == b.run {
		b.got = append(b.got, r)
	}
	b.mu.Unlock()
}

func (b *diffBackend) reset() {
	b.mu.Lock()
	b.run++
	b.got, b.flaky = nil, false
	b.mu.Unlock()
}

func (b *diffBackend) snapshot() []diffReceived {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got)
}

// diffSeeds are everyday requests, each shape the fast path takes, and
// adversarial ones it must hand to net/http.
func diffSeeds() [][]byte {
	req := func(head, body string) string {
		if body != "" {
			head += fmt.Sprintf("Content-Length: %d\r\n", len(body))
		}
		return head + "\r\n" + body
	}
	const app = "Host: app.example\r\n"
	seeds := []string{
		req("GET /api/v1/items?id=7&sort=asc HTTP/1.1\r\n"+app+"User-Agent: seed\r\nAccept: */*\r\n", ""),
		req("GET /api/v1/items HTTP/1.1\r\n"+app+"X-Tenant: t1\r\nX-Trace: client\r\nX-Debug: 1\r\nX-Env: dev\r\n", ""),
		req("GET /api/v1/items HTTP/1.1\r\n"+app+"X-Tenant: t2\r\nx-tenant: t3\r\nCookie: a=1\r\n", ""),
		req("GET /api/v1/items HTTP/1.1\r\n"+app+"X-Tenant: t1\r\nX-Tenant: t1\r\n", ""),
		req("POST /exact HTTP/1.1\r\n"+app+"Content-Type: application/json\r\n", `{"a":1}`),
		req("POST /retry/submit?flaky=1 HTTP/1.1\r\n"+app+"Content-Type: text/plain\r\n", "hello world"),
		req("PUT /retry/x HTTP/1.1\r\n"+app, ""),
		req("DELETE /api/x HTTP/1.1\r\n"+app+"X-Tenant: t1\r\n", "gone"),
		req("GET /api/x HTTP/1.1\r\n"+app+"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nForwarded: for=10.0.0.1\r\n", ""),
		req("GET /old/path/x?q=1 HTTP/1.1\r\n"+app+"Connection: close\r\n", ""),
		req("GET /old/ HTTP/1.1\r\n"+app+"Connection: keep-alive\r\n", ""),
		req("GET /api/a HTTP/1.1\r\n"+app, "") + req("POST /api/b HTTP/1.1\r\n"+app+"X-Tenant: t1\r\n", "second"),
		req("GET /q?v=1 HTTP/1.1\r\n"+app, "") + req("GET /q?v=1&resp=cookies HTTP/1.1\r\n"+app+"Connection: close\r\n", ""),
		req("GET /api/%7euser/a%2Fb/%41%2f?x=%20 HTTP/1.1\r\n"+app, ""),
		req("GET /api/../old/./x/../y HTTP/1.1\r\n"+app, ""),
		req("GET //api//v1///items HTTP/1.1\r\n"+app, ""),
		req("GET /old/a!b(c)*'d;e=f HTTP/1.1\r\n"+app, ""),
		req("GET /api/x HTTP/1.1\r\nHost: APP.Example\r\nX-Tenant: t1\r\n", ""),
		req("GET /old/x HTTP/1.1\r\nHost: app.example:8080\r\n", ""),
		req("GET /x HTTP/1.1\r\nHost: [::1]:80\r\n", ""),
		req("GET /x HTTP/1.1\r\n"+app+"User-Agent:\r\nAccept:  spaced \t\r\nX-Empty:\r\n", ""),
		req("GET /x HTTP/1.1\r\n"+app+"Connection: close\r\nClose: yes\r\n", ""),
		// Differences this target found, fixed: the first User-Agent
		// only; a body that ends at the backend's close keeps the client
		// connection; sub-delimiters in the path go as sent on both
		// paths; an empty Host; CR LF after a POST's body.
		req("GET /x HTTP/1.1\r\n"+app+"User-Agent: one\r\nUser-Agent: two\r\n", ""),
		req("GET /api/x?resp=close HTTP/1.1\r\n"+app, ""),
		req("GET /x!y HTTP/1.1\r\n"+app, ""),
		req("GET /old/a!b(c)*'d HTTP/1.1\r\n"+app, ""),
		req("GET /x HTTP/1.1\r\nHost:\r\n", ""),
		req("POST /x HTTP/1.1\r\n"+app, "ok") + "\r\n",
		req("GET /x HTTP/1.1\r\n"+app+"Content-Length: 0\r\n", ""),
		req("POST /x HTTP/1.1\r\n"+app+"Content-Length: 0\r\n", ""),
		req("OPTIONS /x HTTP/1.1\r\n"+app, ""),
		req("PATCH /x HTTP/1.1\r\n"+app, "0123456789"),
		req("GET /q?v=2&v=1 HTTP/1.1\r\n"+app, "") + req("GET /q?x=1&v=1 HTTP/1.1\r\n"+app, ""),
		req("GET /retry/a?flaky&resp=chunked HTTP/1.1\r\n"+app, "") + req("GET /api/b?resp=hints HTTP/1.1\r\n"+app+"X-Tenant: t1\r\n", "") +
			req("GET /old/c?resp=empty HTTP/1.1\r\n"+app+"Connection: close\r\n", ""),
	}
	for _, r := range diffResponses {
		head := "GET /api/x?" + r.token + " HTTP/1.1\r\n" + app + "X-Tenant: t1\r\n"
		if r.closing {
			head += "Connection: close\r\n"
		}
		seeds = append(seeds, req(head, ""))
	}
	seeds = append(seeds, req("GET /any?resp=chunked HTTP/1.1\r\nHost: other.example\r\n", ""),
		req("GET /retry?resp=untyped&flaky HTTP/1.1\r\n"+app, ""))
	// Adversarial: each is outside what the fast parser takes.
	seeds = append(seeds,
		"POST /api/x HTTP/1.1\r\n"+app+"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /api/x HTTP/1.1\r\n"+app+"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET /api/x HTTP/1.1\n"+"Host: app.example\n\n",
		"GET /api/x HTTP/1.1\r\n"+app+"X-Tenant: t\r\n 1\r\n\r\n",
		"GET /api/x HTTP/1.1\r\n"+app+"Host: other.example\r\n\r\n",
		"GET /api/x HTTP/1.1\r\nHost: user@app.example\r\n\r\n",
		"GET http://app.example/api/x HTTP/1.1\r\n"+app+"\r\n",
		"GET /api/x HTTP/1.0\r\n"+app+"\r\n",
		"GET /api/x HTTP/1.1\r\n"+app+"Content-Length: +5\r\n\r\nhello",
		"GET /api/x HTTP/1.1\r\n"+app+"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		"GET /api/x HTTP/1.1\r\nHost : app.example\r\n\r\n",
		"GET /api/x HTTP/1.1\r\n"+app+"X_Tenant: t1\r\n\r\n",
		"GET /api/a%00b HTTP/1.1\r\n"+app+"\r\n",
		"POST /api/x HTTP/1.1\r\n"+app+"Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
		"GET /api/x HTTP/1.1\r\n"+app+"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
		"GET /api/x?a=1;b=2 HTTP/1.1\r\n"+app+"\r\n",
		"HEAD /api/x HTTP/1.1\r\n"+app+"\r\n",
		"get /api/x HTTP/1.1\r\n"+app+"\r\n",
		"GET /api/x HTTP/1.1\r\n"+app+"Connection: keep-alive, X-Tenant\r\nX-Tenant: t1\r\n\r\n",
		"GET /api/x HTTP/1.1\r\n"+app+"X-Tenant: t1\x01\r\n\r\n",
		"GET /api/x HTTP/1.1\r\nHost: app.example\r\n\r\nGET /api/y HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\n\r\nab",
	)
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}
