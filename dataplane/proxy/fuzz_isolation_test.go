package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// isolationBed is one proxy in front of one backend whose misbehaviour
// each fuzz input scripts; it lives for the whole fuzz run, so its pooled
// connections carry state from one input to the next, as in production.
type isolationBed struct {
	port   uint32
	script atomic.Pointer[[]byte]
	n      atomic.Uint64 // requests the backend read
}

// Behaviour bits of one backend answer, taken from the script.
const (
	sendContinue  = 1 << iota // 100 Continue before the answer
	sendHints                 // 103 Early Hints before the answer
	splitInterim              // the interim responses in their own segment
	trailingBytes             // a whole response more, right after the answer
	closeAfter                // close without saying so
	answerEarly               // answer before reading the body
	bodyToNoBody              // a body to HEAD, or a 204 with a body
	manyInterim               // more interim responses than allowed
)

var (
	bedOnce sync.Once
	bed     *isolationBed
)

func isolationBedFor(f *testing.F) *isolationBed {
	bedOnce.Do(func() {
		bed = &isolationBed{}
		empty := []byte{}
		bed.script.Store(&empty)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go bed.serve(c)
			}
		}()
		host, port, _ := net.SplitHostPort(ln.Addr().String())
		var p uint32
		fmt.Sscan(port, &p)
		be := &rt.Backend{Name: "shared", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{{Address: host, Port: p}}}
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.Fatal(err)
		}
		bed.port = uint32(pl.Addr().(*net.TCPAddr).Port)
		pl.Close()
		tbl := oneRoute(bed.port, be)
		// A backend that never answers costs an input 300ms, not a hang.
		tbl.Listeners[0].VirtualHosts[0].Routes[0].GetRoute().RequestTimeout = &rt.Duration{Milliseconds: 300}
		px := proxy.New(proxy.Options{BindAddress: "127.0.0.1", DrainTimeout: time.Second})
		if err := px.Apply("fuzz", []*rt.RouteTable{tbl}, nil); err != nil {
			f.Fatal(err)
		}
	})
	return bed
}

// serve answers requests on one backend connection as the script says,
// each answer naming the X-Request-Id of the request it answers.
func (b *isolationBed) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		script := *b.script.Load()
		var how byte
		if len(script) > 0 {
			how = script[int(b.n.Add(1)-1)%len(script)]
		}
		if how&answerEarly == 0 {
			_, _ = io.Copy(io.Discard, req.Body)
		}
		id := req.Header.Get("X-Request-Id")
		var out bytes.Buffer
		if how&sendContinue != 0 {
			out.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		}
		if how&sendHints != 0 {
			out.WriteString("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
		}
		if how&manyInterim != 0 {
			out.WriteString(strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 8))
		}
		if how&splitInterim != 0 {
			c.Write(out.Bytes())
			out.Reset()
		}
		switch {
		case how&bodyToNoBody != 0 && req.Method == http.MethodHead:
			fmt.Fprintf(&out, "HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n%s", id, len(injected), injected)
		case how&bodyToNoBody != 0:
			fmt.Fprintf(&out, "HTTP/1.1 204 No Content\r\nX-Request-Id: %s\r\n\r\n%s", id, injected)
		default:
			fmt.Fprintf(&out, "HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n%s", id, len(id), id)
		}
		if how&trailingBytes != 0 {
			out.WriteString(injected)
		}
		if _, err := c.Write(out.Bytes()); err != nil || how&closeAfter != 0 {
			return
		}
	}
}

// FuzzIsolation: two clients send byte streams (well-formed requests with
// and without Expect, bodies, pipelining, and whatever bytes the fuzzer
// adds) through the proxy to one backend that misbehaves as the input
// says. Whatever happens, a response a client receives never carries the
// id of a request it did not send, and its own come in order.
func FuzzIsolation(f *testing.F) {
	b := isolationBedFor(f)
	f.Add([]byte{0}, []byte{0, 1, 2, 3}, []byte{4, 5})
	f.Add([]byte{sendContinue, sendHints | splitInterim, trailingBytes, closeAfter}, []byte{1, 9, 17}, []byte{2, 3})
	f.Add([]byte{answerEarly, bodyToNoBody, manyInterim, sendContinue | sendHints}, []byte{0x22, 0x41, 0x80}, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte{bodyToNoBody}, []byte{2, 2, 2}, []byte{0xff, 0x10})
	f.Fuzz(func(t *testing.T, script, a, bIn []byte) {
		if len(a) > 16 || len(bIn) > 16 || len(script) > 16 {
			return
		}
		s := append([]byte(nil), script...)
		b.script.Store(&s)
		nonce := make([]byte, 4)
		rand.Read(nonce)
		var wg sync.WaitGroup
		for i, in := range [][]byte{a, bIn} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				prefix := fmt.Sprintf("%c%s-", 'A'+i, hex.EncodeToString(nonce))
				if err := isolationClient(b.port, prefix, in); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	})
}

// isolationClient writes the requests its input describes on one
// connection, then reads responses until the proxy stops answering, and
// checks each response names one of its own requests, in order.
func isolationClient(port uint32, prefix string, in []byte) error {
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer c.Close()
	// Without bytes of its own, the stream is well framed: response i
	// answers request i, which lets HEAD in.
	strict := true
	for _, op := range in {
		if op&0xc0 == 0xc0 {
			strict = false
		}
	}
	var stream bytes.Buffer
	var methods []string
	for k, op := range in {
		id := fmt.Sprintf("%s%d", prefix, k)
		if op&0xc0 == 0xc0 {
			// A byte of its own: the stream's framing is the proxy's to judge.
			stream.WriteByte(op)
			continue
		}
		method := [...]string{"GET", "POST", "HEAD", "PUT"}[op&3]
		if method == "HEAD" && !strict {
			method = "DELETE"
		}
		methods = append(methods, method)
		fmt.Fprintf(&stream, "%s /r%d HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n", method, k, id)
		if op&4 != 0 {
			stream.WriteString("Expect: 100-continue\r\n")
		}
		body := strings.Repeat("b", int(op>>3&7)*3)
		switch {
		case op&0x40 != 0 && body != "":
			fmt.Fprintf(&stream, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
		case op&0x40 != 0:
			stream.WriteString("Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
		default:
			fmt.Fprintf(&stream, "Content-Length: %d\r\n\r\n%s", len(body), body)
		}
	}
	// The last request asks the proxy to close once it has answered.
	end := prefix + "end"
	fmt.Fprintf(&stream, "GET /end HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n", end)
	methods = append(methods, "GET")
	c.SetDeadline(time.Now().Add(3 * time.Second))
	go func() { _, _ = c.Write(stream.Bytes()) }()
	br := bufio.NewReader(c)
	next := 0 // the lowest request index a response may still name
	for answered := 0; ; {
		c.SetReadDeadline(time.Now().Add(time.Second))
		req := &http.Request{Method: "GET"}
		if strict && answered < len(methods) {
			req.Method = methods[answered]
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil // the proxy closed, or stopped answering
		}
		if resp.StatusCode < 200 {
			continue // the proxy's 100 Continue, a relayed 103
		}
		// Response bodies are read by their framing; a HEAD's is empty.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		answered++
		got := resp.Header.Get("X-Request-Id")
		if got == end {
			return nil
		}
		if got == "" {
			// The proxy's own answer (400, 502, 504): in a well-framed
			// stream, to the request at its place.
			if strict {
				next = answered
			}
			continue
		}
		var k int
		if !strings.HasPrefix(got, prefix) || func() bool { _, err := fmt.Sscan(got[len(prefix):], &k); return err != nil }() || k < next {
			return fmt.Errorf("client %s got a response for %q (status %d, body %q): not one of its requests still unanswered", prefix, got, resp.StatusCode, body)
		}
		if strict && k != answered-1 {
			return fmt.Errorf("client %s: response %d names request %q", prefix, answered-1, got)
		}
		if len(body) > 0 && string(body) != got {
			return fmt.Errorf("client %s: response for %q carries the body %q", prefix, got, body)
		}
		next = k + 1
	}
}
