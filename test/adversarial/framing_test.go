package adversarial

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smuggled is a request hidden where a parser that frames differently
// would find the start of the next message.
const smuggled = "GET /public/smuggled HTTP/1.1\r\nHost: a.example.com\r\n\r\n"

// TestFraming: request smuggling and message framing (RFC 9112 §6, §7).
// The invariant behind every case: the backend sees exactly the requests
// the client framed, never bytes of one request as the start of another,
// and a connection whose framing was doubtful is not used again.
func TestFraming(t *testing.T) {
	b := newBed(t)

	// rejected: the proxy answers an error itself, nothing reaches the
	// backend, and the connection is closed.
	rejected := func(raw string, codes ...int) func(t *testing.T) {
		return func(t *testing.T) {
			c := b.answeredByProxy(t, raw, codes...)
			if closed, _ := c.closedWithin(2 * time.Second); !closed {
				t.Fatal("the connection stayed open after a request with broken framing")
			}
		}
	}
	// servedThenClosed: the request may be served, but the connection must
	// be closed after the response and nothing after it be parsed.
	servedThenClosed := func(raw string) func(t *testing.T) {
		return func(t *testing.T) {
			b.drain()
			c := dialRaw(t, b.port)
			resp, body := c.roundTrip(raw)
			if resp.StatusCode >= 500 {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			closed, rest := c.closedWithin(2 * time.Second)
			if !closed {
				t.Fatal("the connection stayed open after the response (RFC 9112 §6.1: the server MUST close it)")
			}
			if rest != "" {
				t.Fatalf("the proxy answered bytes after the request as another request:\n%s", rest)
			}
			if sr, ok := b.backendSaw("/smuggled", 300*time.Millisecond); ok {
				t.Fatalf("the smuggled request reached the backend:\n%s", sr.head)
			}
		}
	}
	// neverSmuggled: whatever the proxy answers, the bytes hidden in the
	// body never reach the backend as a request of their own, and the
	// connection is closed.
	neverSmuggled := func(raw string) func(t *testing.T) {
		return func(t *testing.T) {
			b.drain()
			c := dialRaw(t, b.port)
			c.send(raw)
			if closed, _ := c.closedWithin(5 * time.Second); !closed {
				t.Fatal("the connection stayed open after a request with a broken body")
			}
			if sr, ok := b.backendSaw("/smuggled", 300*time.Millisecond); ok {
				t.Fatalf("the smuggled request reached the backend:\n%s", sr.head)
			}
		}
	}
	const post = "POST /public HTTP/1.1\r\nHost: a.example.com\r\n"
	chunk := func(s string) string { return strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n" }

	runCases(t, "framing", []adversarialCase{
		{"cl-and-te", "RFC 9112 §6.1: TE overrides CL, and the server MUST close after responding",
			servedThenClosed(post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("ab") + "0\r\n\r\n" + smuggled)},
		{"http10-te", "RFC 9112 §6.1: HTTP/1.0 with Transfer-Encoding: framing faulty, close after",
			servedThenClosed("POST /public HTTP/1.0\r\nHost: a.example.com\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
				chunk(smuggled) + "0\r\n\r\n")},
		{"cl-and-te-forwarded", "RFC 9112 §6.1: an intermediary forwards TE alone, never CL with it", func(t *testing.T) {
			b.drain()
			c := dialRaw(t, b.port)
			resp, body := c.roundTrip(post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunk("ab") + "0\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if strings.Contains(strings.ToLower(body), "content-length") && strings.Contains(strings.ToLower(body), "transfer-encoding") {
				t.Fatalf("the backend got both Content-Length and Transfer-Encoding:\n%s", body)
			}
		}},
		{"duplicate-cl-differ", "RFC 9112 §6.3 (5): differing Content-Lengths are unrecoverable: 400, close",
			rejected(post+"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", http.StatusBadRequest)},
		{"cl-signed", "RFC 9110 §8.6: Content-Length is 1*DIGIT; '+4' is invalid: 400",
			rejected(post+"Content-Length: +4\r\n\r\nabcd", http.StatusBadRequest)},
		{"cl-hex", "RFC 9110 §8.6: Content-Length is decimal; '0x4' is invalid: 400",
			rejected(post+"Content-Length: 0x4\r\n\r\nabcd", http.StatusBadRequest)},
		{"te-identity", "RFC 9112 §6.1: a transfer coding the server does not understand: 501",
			rejected(post+"Transfer-Encoding: identity\r\n\r\n"+smuggled, http.StatusNotImplemented, http.StatusBadRequest)},
		{"te-chunked-not-last", "RFC 9112 §6.3 (4): chunked not the final coding: 400, close",
			rejected(post+"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"+smuggled, http.StatusNotImplemented, http.StatusBadRequest)},
		{"te-twice", "RFC 9112 §6.1 / nginx: one Transfer-Encoding field only",
			rejected(post+"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+smuggled, http.StatusNotImplemented, http.StatusBadRequest)},
		{"te-xchunked", "RFC 9112 §6.1: an unknown coding is not chunked: 501",
			rejected(post+"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"+smuggled, http.StatusNotImplemented, http.StatusBadRequest)},
		{"chunk-size-invalid", "RFC 9112 §7.1: chunk-size is 1*HEXDIG; garbage ends the connection",
			neverSmuggled(post + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + smuggled)},
		{"chunk-size-overflow", "RFC 9112 §7.1: a chunk size past 64 bits is an error, not a wrap",
			neverSmuggled(post + "Transfer-Encoding: chunked\r\n\r\n10000000000000001\r\nab\r\n0\r\n\r\n" + smuggled)},
		{"chunk-data-overrun", "RFC 9112 §7.1: chunk data longer than its size is an error",
			neverSmuggled(post + "Transfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n" + smuggled)},
		{"chunk-ext-bare-lf", "RFC 9112 §7.1.1: a bare LF in a chunk extension does not end the line",
			neverSmuggled(post + "Transfer-Encoding: chunked\r\n\r\n2;x\nab\r\n0\r\n\r\n" + smuggled)},
		{"pipelined", "RFC 9112 §9.3.2: pipelined requests answered in order, each by its own", func(t *testing.T) {
			c := dialRaw(t, b.port)
			c.send("GET /public/one HTTP/1.1\r\nHost: a.example.com\r\n\r\nGET /public/two HTTP/1.1\r\nHost: x.example.com\r\n\r\n")
			for _, want := range []string{"GET /public/one ", "GET /public/two "} {
				resp, body := c.response(http.MethodGet)
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, want) {
					t.Fatalf("got %d %q, want the answer to %q", resp.StatusCode, body, want)
				}
			}
		}},
		{"bare-lf-lines", "RFC 9112 §2.2: a bare LF may end a line; the backend gets CRLF only", func(t *testing.T) {
			c := dialRaw(t, b.port)
			resp, body := c.roundTrip("GET /public/lf HTTP/1.1\nHost: a.example.com\nX-A: 1\n\n")
			if resp.StatusCode == http.StatusOK && strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\n") {
				t.Fatalf("the backend got a bare LF:\n%q", body)
			}
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("got %d, want 200 or 400", resp.StatusCode)
			}
		}},
		{"request-line-extra", "RFC 9112 §3: request-line = method SP target SP version: 400",
			rejected("GET /public HTTP/1.1 extra\r\nHost: a.example.com\r\n\r\n", http.StatusBadRequest)},
		{"version-unknown", "RFC 9112 §2.3: HTTP/1.x only on an HTTP/1 connection; HTTP/3.0 is refused",
			rejected("GET /public HTTP/3.0\r\nHost: a.example.com\r\n\r\n", http.StatusBadRequest, http.StatusHTTPVersionNotSupported)},
	})
}

func containsCode(codes []int, c int) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}
