package wire_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/net/http/httpguts"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy/wire"
)

// The differential targets below hold the parser to its contract: a head
// it calls Complete is one net/http reads without error, and net/http
// reads from it the same method, target, fields, body framing and
// connection handling, consuming exactly the bytes the parser says the
// head takes.

// requestSeeds are well-formed requests and the classic ways of making a
// front end and a back end read one differently.
var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
	typicalGET,
	"POST /submit HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2",
	"PUT /obj/k%20ey HTTP/1.1\r\nHost: s3.test:9000\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	"DELETE /x?y HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
	"OPTIONS /cors HTTP/1.1\r\nHost: h\r\nOrigin: https://o.test\r\nAccess-Control-Request-Method: PUT\r\n\r\n",
	"PATCH /p? HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
	"GET /a%2Fb/%7e?q=%41%2b+x&&=&k HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET //evil.test/path HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /!$&'()*+,=:@-._~ HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /%25 HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nCache-Control: max-age=0\r\n\r\n",
	"GET / HTTP/1.1\r\nhost:h\r\nconnection:CLOSE\r\ncontent-length:0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: \t h \t\r\nX-Empty:\r\nX-A: a \t b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^`|~09: v\r\n\r\n",
	"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + strings.Repeat("v", 5000) + "\r\n\r\n",
	"GET /" + strings.Repeat("p", 4100) + " HTTP/1.1\r\nHost: h\r\n\r\n",
	manyFields(wire.MaxFields - 1),
	manyFields(wire.MaxFields),
	// Host values net/http's server refuses.
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: user@h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\"\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	// Smuggling classics.
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0bchunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: identity\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nX: x\r\n Transfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 \r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000000\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent_Length: 5\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\x00\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\rHost: b\r\n\r\n",
	"GET / HTTP/1.1\nHost: h\n\n",
	"GET / HTTP/1.1\r\nHost: h\r\n\n",
	"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
	"GET http://h/ HTTP/1.1\r\nHost: other\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a%00 HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a?%00 HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a;b?c HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a?b;c HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a?b%zz HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: \x00\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: \x7f\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nTrailer: X\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nKeep-Alive: 300\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nProxy-Authorization: Basic eA==\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret\r\n\r\n",
	"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\n\r",
	"GET / HTTP/1.1\r\nHost: h\r\n",
}

// responseSeeds are the same for responses to a GET.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 302 Found\r\nLocation: /x\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 1234\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.1  200 OK\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("v", 5000) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", wire.MaxFields) + "\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
}

// canonical groups fields as net/http's Header does.
func canonical(fs []wire.Field) http.Header {
	h := http.Header{}
	for _, f := range fs {
		k := http.CanonicalHeaderKey(string(f.Name))
		h[k] = append(h[k], string(f.Value))
	}
	return h
}

// fixPragma is what net/http does to Pragma: no-cache on reading a head.
func fixPragma(h http.Header) {
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
}

func sameHeader(t *testing.T, got, want http.Header) {
	t.Helper()
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("field %s: net/http %q, parser %q", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("field %s: net/http %q, parser none", k, v)
		}
	}
}

// inside reports whether every slice the parser returned points into
// the head it parsed.
func inside(head []byte, parts ...[]byte) bool {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(head)))
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
		if at < lo || at-lo+uintptr(len(p)) > uintptr(len(head)) {
			return false
		}
	}
	return true
}

// checkPrefixes: a caller reading a head a little at a time must be
// told Incomplete, never Other, for every prefix of a head that is
// Complete once whole. Checking a few cuts keeps the target fast.
func checkPrefixes(t *testing.T, n int, parse func([]byte) wire.Verdict, data []byte) {
	t.Helper()
	for _, k := range []int{0, 1, n / 3, n / 2, n - 4, n - 3, n - 2, n - 1} {
		if k < 0 || k >= n {
			continue
		}
		if v := parse(data[:k]); v != wire.Incomplete {
			t.Errorf("prefix of %d bytes of a complete head: verdict %d, want Incomplete", k, v)
		}
	}
}

// consumed is how many bytes of data a bufio.Reader over rd has taken.
func consumed(data []byte, rd *bytes.Reader, br *bufio.Reader) int {
	return len(data) - rd.Len() - br.Buffered()
}

// headRead checks a verdict against net/http's reading of the same bytes
// (err, and the bytes it consumed) and reports whether the head is
// Complete, for the caller to compare the rest.
func headRead(t *testing.T, data []byte, n int, v wire.Verdict, err error, used int) bool {
	t.Helper()
	switch v {
	case wire.Incomplete:
		if n != 0 || bytes.Contains(data, []byte("\r\n\r\n")) {
			t.Fatalf("Incomplete with n %d for a buffer holding CRLFCRLF", n)
		}
		if err == nil {
			t.Fatalf("Incomplete, but net/http read a whole head of %d bytes", used)
		}
		return false
	case wire.Other:
		if n != 0 {
			t.Fatalf("Other with n %d", n)
		}
		return false
	case wire.Complete:
	default:
		t.Fatalf("verdict %d", v)
	}
	if err != nil {
		t.Fatalf("Complete, but net/http refuses the head: %v", err)
	}
	if n < 4 || n > len(data) || string(data[n-4:n]) != "\r\n\r\n" {
		t.Fatalf("head length %d does not end in CRLFCRLF", n)
	}
	if used != n {
		t.Fatalf("head length: parser %d, net/http consumed %d", n, used)
	}
	return true
}

func FuzzRequestHead(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var w wire.Request
		n, v := w.ParseRequest(data)
		rd := bytes.NewReader(data)
		br := bufio.NewReader(rd)
		req, err := http.ReadRequest(br)
		if !headRead(t, data, n, v, err, consumed(data, rd, br)) {
			return
		}

		// What net/http's server checks past ReadRequest, which has
		// already refused a second Host and taken Host out of Header.
		if !httpguts.ValidHostHeader(req.Host) {
			t.Errorf("Complete, but net/http's server refuses Host %q as malformed", req.Host)
		}
		for k, vv := range req.Header {
			if !httpguts.ValidHeaderFieldName(k) {
				t.Errorf("net/http's server refuses field name %q", k)
			}
			for _, x := range vv {
				if !httpguts.ValidHeaderFieldValue(x) {
					t.Errorf("net/http's server refuses value %q of %s", x, k)
				}
			}
		}

		if string(w.Method) != req.Method {
			t.Errorf("method: parser %q, net/http %q", w.Method, req.Method)
		}
		if string(w.Target) != req.RequestURI {
			t.Errorf("target: parser %q, net/http %q", w.Target, req.RequestURI)
		}
		if string(w.Host) != req.Host {
			t.Errorf("host: parser %q, net/http %q", w.Host, req.Host)
		}
		if w.ContentLength != req.ContentLength || len(req.TransferEncoding) != 0 {
			t.Errorf("body: parser length %d, net/http length %d coding %q", w.ContentLength, req.ContentLength, req.TransferEncoding)
		}
		if (req.Body == http.NoBody) != (w.ContentLength == 0) {
			t.Errorf("body: parser length %d, net/http body %T", w.ContentLength, req.Body)
		}
		if w.Close != req.Close {
			t.Errorf("close: parser %v, net/http %v", w.Close, req.Close)
		}
		want := canonical(w.Fields)
		fixPragma(want)
		delete(want, "Host")
		sameHeader(t, req.Header, want)
		hb := 0
		for _, fl := range w.Fields {
			hb += len(fl.Name) + len(fl.Value) + 4
		}
		if w.HeaderBytes != hb {
			t.Errorf("HeaderBytes %d, fields add up to %d", w.HeaderBytes, hb)
		}
		parts := [][]byte{w.Method, w.Target, w.Path, w.Query, w.Host}
		for _, fl := range w.Fields {
			parts = append(parts, fl.Name, fl.Value)
		}
		if !inside(data[:n], parts...) {
			t.Errorf("a slice of the result points outside the head")
		}

		// The target, as the proxy forwards it.
		path, query, hasQuery := string(w.Target), "", false
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path, query, hasQuery = path[:i], path[i+1:], true
		}
		if string(w.Path) != path || string(w.Query) != query || w.HasQuery != hasQuery {
			t.Errorf("split of %q: path %q query %q (%v)", w.Target, w.Path, w.Query, w.HasQuery)
		}
		u, err := url.ParseRequestURI(string(w.Target))
		if err != nil {
			t.Fatalf("url.ParseRequestURI(%q): %v", w.Target, err)
		}
		if u.EscapedPath() != string(w.Path) || req.URL.EscapedPath() != string(w.Path) {
			t.Errorf("path: parser %q, net/url %q", w.Path, u.EscapedPath())
		}
		if u.Host != "" || u.Scheme != "" || u.Opaque != "" {
			t.Errorf("target %q read as scheme %q host %q opaque %q", w.Target, u.Scheme, u.Host, u.Opaque)
		}
		if w.HasQuery {
			if req.URL.RawQuery != string(w.Query) {
				t.Errorf("query: parser %q, net/http %q", w.Query, req.URL.RawQuery)
			}
			// httputil.ReverseProxy re-encodes a query that ParseQuery
			// finds fault with; the fast path forwards it as it came.
			if _, err := url.ParseQuery(string(w.Query)); err != nil {
				t.Errorf("url.ParseQuery(%q): %v", w.Query, err)
			}
		} else if req.URL.RawQuery != "" || req.URL.ForceQuery {
			t.Errorf("no query, but net/http reads %q", req.URL.RawQuery)
		}

		var again wire.Request
		checkPrefixes(t, n, func(b []byte) wire.Verdict { _, v := again.ParseRequest(b); return v }, data)
		if m, v := again.ParseRequest(data[:n]); m != n || v != wire.Complete {
			t.Errorf("the head alone: %d, %d", m, v)
		}
	})
}

func FuzzResponseHead(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s))
	}
	get := &http.Request{Method: http.MethodGet}
	f.Fuzz(func(t *testing.T, data []byte) {
		var w wire.Response
		n, v := w.ParseResponse(data)
		rd := bytes.NewReader(data)
		br := bufio.NewReader(rd)
		resp, err := http.ReadResponse(br, get)
		if !headRead(t, data, n, v, err, consumed(data, rd, br)) {
			return
		}
		if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
			t.Errorf("net/http reads version %d.%d", resp.ProtoMajor, resp.ProtoMinor)
		}
		if w.Status != resp.StatusCode {
			t.Errorf("status: parser %d, net/http %d", w.Status, resp.StatusCode)
		}
		if w.ContentLength != resp.ContentLength {
			t.Errorf("length: parser %d, net/http %d", w.ContentLength, resp.ContentLength)
		}
		netChunked := slices.Equal(resp.TransferEncoding, []string{"chunked"})
		if !netChunked && len(resp.TransferEncoding) != 0 {
			t.Errorf("net/http reads transfer codings %q", resp.TransferEncoding)
		}
		if resp.Body == http.NoBody {
			// A length of 0, or a 204 or 304, whatever its head says.
			if w.Chunked || w.ContentLength != 0 {
				t.Errorf("net/http reads no body; parser length %d chunked %v", w.ContentLength, w.Chunked)
			}
		} else if w.Chunked != netChunked {
			t.Errorf("chunked: parser %v, net/http %q", w.Chunked, resp.TransferEncoding)
		}
		// The parser's Close is Connection: close; net/http's is that, or
		// a body that runs to the close (length -1 and not chunked).
		wantClose := w.Close || (w.ContentLength == -1 && !w.Chunked)
		if wantClose != resp.Close {
			t.Errorf("close: parser %v (length %d chunked %v), net/http %v", w.Close, w.ContentLength, w.Chunked, resp.Close)
		}

		want := canonical(w.Fields)
		fixPragma(want)
		delete(want, "Transfer-Encoding")
		if w.Close {
			delete(want, "Connection")
		}
		sameHeader(t, resp.Header, want)
		var parts [][]byte
		for _, fl := range w.Fields {
			parts = append(parts, fl.Name, fl.Value)
		}
		if !inside(data[:n], parts...) {
			t.Errorf("a slice of the result points outside the head")
		}

		var again wire.Response
		checkPrefixes(t, n, func(b []byte) wire.Verdict { _, v := again.ParseResponse(b); return v }, data)
		if m, v := again.ParseResponse(data[:n]); m != n || v != wire.Complete {
			t.Errorf("the head alone: %d, %d", m, v)
		}
	})
}

// FuzzPlainPath: a path PlainPath passes is one net/url reads back as the
// same escaped path, so the proxy may forward it without re-escaping.
func FuzzPlainPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/a%2Fb", "/%7e%41", "/a b", "/a?b", "/a#b", "/a;b", "a", "", "/%", "/%g0", "//x", "/!$&'()*+,=:@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !wire.PlainPath(p) {
			return
		}
		u, err := url.ParseRequestURI(p)
		if err != nil {
			t.Fatalf("PlainPath(%q), but net/url: %v", p, err)
		}
		if u.EscapedPath() != p || u.RawQuery != "" || u.ForceQuery || u.Host != "" || u.Fragment != "" {
			t.Errorf("PlainPath(%q), but net/url reads path %q query %q host %q", p, u.EscapedPath(), u.RawQuery, u.Host)
		}
	})
}

// FuzzValidField: a field line ValidField passes is one net/textproto
// reads, as the same name and value (the proxy relays trailers so).
func FuzzValidField(f *testing.F) {
	for _, s := range []string{"X-Sum: 1", "x:", "X : 1", " X: 1", "X: a\x00", "X: a\r\nY: b", "X_Y: 1", ": v", "X: \t v \t", "X: caf\xc3\xa9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if !wire.ValidField(line) {
			return
		}
		var w wire.Request
		head := "GET / HTTP/1.1\r\nHost: h\r\n" + string(line) + "\r\n\r\n"
		if strings.HasPrefix(strings.ToLower(string(line)), "host:") {
			head = "GET / HTTP/1.1\r\n" + string(line) + "\r\n\r\n"
		}
		tp := textproto.NewReader(bufio.NewReader(strings.NewReader(string(line) + "\r\n\r\n")))
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			t.Fatalf("ValidField(%q), but net/textproto: %v", line, err)
		}
		if len(h) != 1 {
			t.Fatalf("ValidField(%q), but net/textproto reads %d fields", line, len(h))
		}
		colon := bytes.IndexByte(line, ':')
		name := http.CanonicalHeaderKey(string(line[:colon]))
		value := strings.Trim(string(line[colon+1:]), " \t")
		if got := h[name]; len(got) != 1 || got[0] != value {
			t.Errorf("ValidField(%q): net/textproto reads %q", line, h)
		}
		// The field parser of the request head agrees, unless the field is
		// one that makes a request Other.
		if _, v := w.ParseRequest([]byte(head)); v == wire.Complete {
			last := w.Fields[len(w.Fields)-1]
			if !bytes.Equal(last.Name, line[:colon]) || string(last.Value) != value {
				t.Errorf("ValidField(%q): the request parser reads %q: %q", line, last.Name, last.Value)
			}
		}
	})
}
