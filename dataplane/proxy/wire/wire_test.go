package wire_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy/wire"
)

// kv is a header field as a test expects it.
type kv struct{ name, value string }

func fieldsOf(fs []wire.Field) []kv {
	out := make([]kv, len(fs))
	for i, f := range fs {
		out[i] = kv{string(f.Name), string(f.Value)}
	}
	return out
}

func sameFields(got []wire.Field, want []kv) bool {
	g := fieldsOf(got)
	if len(g) != len(want) {
		return false
	}
	for i := range g {
		if g[i] != want[i] {
			return false
		}
	}
	return true
}

// headEnd is the length of the head at the start of s, CRLFCRLF included.
func headEnd(s string) int {
	return strings.Index(s, "\r\n\r\n") + 4
}

// manyFields is a request head with n fields besides Host.
func manyFields(n int) string {
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\nHost: a\r\n")
	for i := range n {
		fmt.Fprintf(&b, "X-F%d: v\r\n", i)
	}
	b.WriteString("\r\n")
	return b.String()
}

const typicalGET = "GET /api/v1/items?page=2&sort=name HTTP/1.1\r\n" +
	"Host: shop.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: session=3f2a9c; theme=dark\r\n" +
	"\r\n"

func TestParseRequestComplete(t *testing.T) {
	type want struct {
		method, target, path, query string
		hasQuery                    bool
		host                        string
		cl                          int64
		close                       bool
		fields                      []kv
	}
	cases := []struct {
		name string
		in   string
		want want
	}{
		{
			name: "minimal GET",
			in:   "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
			want: want{method: "GET", target: "/", path: "/", host: "example.com",
				fields: []kv{{"Host", "example.com"}}},
		},
		{
			name: "typical GET with query",
			in:   typicalGET,
			want: want{method: "GET", target: "/api/v1/items?page=2&sort=name", path: "/api/v1/items",
				query: "page=2&sort=name", hasQuery: true, host: "shop.example.com",
				fields: []kv{
					{"Host", "shop.example.com"},
					{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"},
					{"Accept", "application/json, text/plain, */*"},
					{"Accept-Language", "en-US,en;q=0.5"},
					{"Accept-Encoding", "gzip, deflate, br"},
					{"Cookie", "session=3f2a9c; theme=dark"},
				}},
		},
		{
			name: "POST with Content-Length, body left alone",
			in:   "POST /submit HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"k\":\"value\"}",
			want: want{method: "POST", target: "/submit", path: "/submit", host: "a.test", cl: 13,
				fields: []kv{{"Host", "a.test"}, {"Content-Type", "application/json"}, {"Content-Length", "13"}}},
		},
		{
			name: "each method of the subset",
			in:   "PATCH /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
			want: want{method: "PATCH", target: "/x", path: "/x", host: "h",
				fields: []kv{{"Host", "h"}, {"Content-Length", "0"}}},
		},
		{
			name: "percent escapes in path and query",
			in:   "DELETE /a%20b/%2Fc%7e?q=%41%2b+x HTTP/1.1\r\nHost: h\r\n\r\n",
			want: want{method: "DELETE", target: "/a%20b/%2Fc%7e?q=%41%2b+x", path: "/a%20b/%2Fc%7e",
				query: "q=%41%2b+x", hasQuery: true, host: "h", fields: []kv{{"Host", "h"}}},
		},
		{
			name: "empty query",
			in:   "OPTIONS /p? HTTP/1.1\r\nHost: h\r\n\r\n",
			want: want{method: "OPTIONS", target: "/p?", path: "/p", hasQuery: true, host: "h",
				fields: []kv{{"Host", "h"}}},
		},
		{
			name: "'?' inside the query",
			in:   "PUT /p?a=?b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok",
			want: want{method: "PUT", target: "/p?a=?b", path: "/p", query: "a=?b", hasQuery: true, host: "h", cl: 2,
				fields: []kv{{"Host", "h"}, {"Content-Length", "2"}}},
		},
		{
			name: "sub-delims, ':' and '@' in the path",
			in:   "GET /!$&'()*+,=:@-._~/x HTTP/1.1\r\nHost: h\r\n\r\n",
			want: want{method: "GET", target: "/!$&'()*+,=:@-._~/x", path: "/!$&'()*+,=:@-._~/x", host: "h",
				fields: []kv{{"Host", "h"}}},
		},
		{
			name: "Connection: close",
			in:   "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			want: want{method: "GET", target: "/", path: "/", host: "h", close: true,
				fields: []kv{{"Host", "h"}, {"Connection", "close"}}},
		},
		{
			name: "Connection: close in any case, among keep-alive",
			in:   "GET / HTTP/1.1\r\nhost: h\r\nconnection: Keep-Alive\r\nCONNECTION: CLOSE\r\n\r\n",
			want: want{method: "GET", target: "/", path: "/", host: "h", close: true,
				fields: []kv{{"host", "h"}, {"connection", "Keep-Alive"}, {"CONNECTION", "CLOSE"}}},
		},
		{
			name: "Connection: keep-alive",
			in:   "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
			want: want{method: "GET", target: "/", path: "/", host: "h",
				fields: []kv{{"Host", "h"}, {"Connection", "keep-alive"}}},
		},
		{
			name: "values trimmed of spaces and tabs, inner ones kept",
			in:   "GET / HTTP/1.1\r\nHost:\t h:8080 \t\r\nX-A:a  b\r\nX-Empty:\r\nX-Blank:  \t \r\nContent-Length:  7 \r\n\r\n",
			want: want{method: "GET", target: "/", path: "/", host: "h:8080", cl: 7,
				fields: []kv{{"Host", "h:8080"}, {"X-A", "a  b"}, {"X-Empty", ""}, {"X-Blank", ""}, {"Content-Length", "7"}}},
		},
		{
			name: "every tchar but '_' in a name",
			in:   "GET / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^`|~09azAZ: v\r\n\r\n",
			want: want{method: "GET", target: "/", path: "/", host: "h",
				fields: []kv{{"Host", "h"}, {"!#$%&'*+-.^`|~09azAZ", "v"}}},
		},
		{
			name: "largest Content-Length taken",
			in:   "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n",
			want: want{method: "POST", target: "/", path: "/", host: "h", cl: 999999999999999999,
				fields: []kv{{"Host", "h"}, {"Content-Length", "999999999999999999"}}},
		},
		{
			name: "leading zeros in Content-Length",
			in:   "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0012\r\n\r\n",
			want: want{method: "POST", target: "/", path: "/", host: "h", cl: 12,
				fields: []kv{{"Host", "h"}, {"Content-Length", "0012"}}},
		},
		{
			name: "MaxFields fields",
			in:   manyFields(wire.MaxFields - 1),
			want: want{method: "GET", target: "/", path: "/", host: "a"},
		},
		{
			name: "pipelined: only the first head",
			in:   "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
			want: want{method: "GET", target: "/1", path: "/1", host: "h", fields: []kv{{"Host", "h"}}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r wire.Request
			n, v := r.ParseRequest([]byte(c.in))
			if v != wire.Complete {
				t.Fatalf("verdict %d, want Complete", v)
			}
			if want := headEnd(c.in); n != want {
				t.Errorf("n = %d, want %d", n, want)
			}
			w := c.want
			if string(r.Method) != w.method || string(r.Target) != w.target || string(r.Path) != w.path ||
				string(r.Query) != w.query || r.HasQuery != w.hasQuery {
				t.Errorf("method %q target %q path %q query %q (%v), want %q %q %q %q (%v)",
					r.Method, r.Target, r.Path, r.Query, r.HasQuery, w.method, w.target, w.path, w.query, w.hasQuery)
			}
			if string(r.Host) != w.host || r.ContentLength != w.cl || r.Close != w.close {
				t.Errorf("host %q length %d close %v, want %q %d %v", r.Host, r.ContentLength, r.Close, w.host, w.cl, w.close)
			}
			if w.fields != nil && !sameFields(r.Fields, w.fields) {
				t.Errorf("fields %q, want %q", fieldsOf(r.Fields), w.fields)
			}
			hb := 0
			for _, f := range r.Fields {
				hb += len(f.Name) + len(f.Value) + len(": \r\n")
			}
			if r.HeaderBytes != hb {
				t.Errorf("HeaderBytes = %d, want %d", r.HeaderBytes, hb)
			}
		})
	}
}

func TestParseRequestHeaderBytes(t *testing.T) {
	var r wire.Request
	// "Host" "h" and "X-Long" with a trimmed value of 10 bytes.
	in := "GET / HTTP/1.1\r\nHost:h\r\nX-Long:   0123456789  \r\n\r\n"
	if _, v := r.ParseRequest([]byte(in)); v != wire.Complete {
		t.Fatalf("verdict %d", v)
	}
	if want := (4 + 1 + 4) + (6 + 10 + 4); r.HeaderBytes != want {
		t.Errorf("HeaderBytes = %d, want %d", r.HeaderBytes, want)
	}
}

func TestParseRequestOther(t *testing.T) {
	const host = "Host: h\r\n"
	cases := []struct{ name, in string }{
		{"HEAD", "HEAD / HTTP/1.1\r\n" + host + "\r\n"},
		{"CONNECT", "CONNECT h:443 HTTP/1.1\r\n" + host + "\r\n"},
		{"TRACE", "TRACE / HTTP/1.1\r\n" + host + "\r\n"},
		{"PRI", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"lower-case method", "get / HTTP/1.1\r\n" + host + "\r\n"},
		{"unknown method", "BREW / HTTP/1.1\r\n" + host + "\r\n"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n" + host + "\r\n"},
		{"HTTP/2.0", "GET / HTTP/2.0\r\n" + host + "\r\n"},
		{"lower-case version", "GET / http/1.1\r\n" + host + "\r\n"},
		{"no version", "GET /\r\n" + host + "\r\n"},
		{"trailing space after version", "GET / HTTP/1.1 \r\n" + host + "\r\n"},
		{"two spaces after method", "GET  / HTTP/1.1\r\n" + host + "\r\n"},
		{"tab as separator", "GET\t/ HTTP/1.1\r\n" + host + "\r\n"},
		{"space in target", "GET /a b HTTP/1.1\r\n" + host + "\r\n"},
		{"absolute-form", "GET http://h/ HTTP/1.1\r\n" + host + "\r\n"},
		{"asterisk-form", "OPTIONS * HTTP/1.1\r\n" + host + "\r\n"},
		{"authority-form", "GET h:80 HTTP/1.1\r\n" + host + "\r\n"},
		{"empty line first", "\r\nGET / HTTP/1.1\r\n" + host + "\r\n"},
		{"bare LF ends the head", "GET / HTTP/1.1\n" + "Host: h\n\n"},
		{"bare LF in a field", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"},
		{"bare LF, no end yet", "GET / HTTP/1.1\nHost: h\r\n"},
		{"bare CR in request line", "GET /\r HTTP/1.1\r\n" + host + "\r\n"},
		{"bare CR in a value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"},
		{"obs-fold", "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n"},
		{"obs-fold with tab", "GET / HTTP/1.1\r\n" + host + "X: a\r\n\tb\r\n\r\n"},
		{"first field folded", "GET / HTTP/1.1\r\n " + host + "\r\n"},
		{"NUL in value", "GET / HTTP/1.1\r\n" + host + "X: a\x00b\r\n\r\n"},
		{"VT in value", "GET / HTTP/1.1\r\n" + host + "X: a\x0bb\r\n\r\n"},
		{"DEL in value", "GET / HTTP/1.1\r\n" + host + "X: a\x7fb\r\n\r\n"},
		{"non-ASCII in value", "GET / HTTP/1.1\r\n" + host + "X: caf\xc3\xa9\r\n\r\n"},
		{"control char in path", "GET /a\x01 HTTP/1.1\r\n" + host + "\r\n"},
		{"non-ASCII in path", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n"},
		{"%00 in path", "GET /a%00b HTTP/1.1\r\n" + host + "\r\n"},
		{"bad escape in path", "GET /a%zzb HTTP/1.1\r\n" + host + "\r\n"},
		{"short escape at end of path", "GET /a%4 HTTP/1.1\r\n" + host + "\r\n"},
		{"'%' at end of path", "GET /a% HTTP/1.1\r\n" + host + "\r\n"},
		{"bad escape in query", "GET /a?x=%G1 HTTP/1.1\r\n" + host + "\r\n"},
		{"'%' at end of query", "GET /a?x=% HTTP/1.1\r\n" + host + "\r\n"},
		{"';' in path", "GET /a;jsessionid=1 HTTP/1.1\r\n" + host + "\r\n"},
		{"';' in query", "GET /a?x=1;y=2 HTTP/1.1\r\n" + host + "\r\n"},
		{"'#' in path", "GET /a#frag HTTP/1.1\r\n" + host + "\r\n"},
		{"'#' in query", "GET /a?b#frag HTTP/1.1\r\n" + host + "\r\n"},
		{"'[' in path", "GET /[a] HTTP/1.1\r\n" + host + "\r\n"},
		{"'\\' in path", "GET /a\\b HTTP/1.1\r\n" + host + "\r\n"},
		{"'\"' in query", "GET /a?\"x\" HTTP/1.1\r\n" + host + "\r\n"},
		{"duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{"duplicate Host, same value, other case", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"},
		{"space in Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
		{"'/' in Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
		{"userinfo in Host", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n"},
		{"missing Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"},
		{"no fields", "GET / HTTP/1.1\r\n\r\n"},
		{"duplicate Content-Length, same value", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"},
		{"duplicate Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"},
		{"list in Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 5\r\n\r\n"},
		{"signed Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\n"},
		{"negative Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n"},
		{"hex Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 0x10\r\n\r\n"},
		{"space in Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1 2\r\n\r\n"},
		{"empty Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: \r\n\r\n"},
		{"19-digit Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1000000000000000000\r\n\r\n"},
		{"Transfer-Encoding", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n"},
		{"CL.TE", "POST / HTTP/1.1\r\n" + host + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"},
		{"TE.CL", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n"},
		{"Transfer-Encoding: identity", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\n\r\n"},
		{"Expect", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n"},
		{"Upgrade", "GET / HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
		{"Upgrade alone", "GET / HTTP/1.1\r\n" + host + "Upgrade: h2c\r\n\r\n"},
		{"HTTP2-Settings", "GET / HTTP/1.1\r\n" + host + "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"},
		{"TE", "GET / HTTP/1.1\r\n" + host + "TE: trailers\r\n\r\n"},
		{"Keep-Alive", "GET / HTTP/1.1\r\n" + host + "Keep-Alive: timeout=5\r\n\r\n"},
		{"Proxy-Connection", "GET / HTTP/1.1\r\n" + host + "Proxy-Connection: keep-alive\r\n\r\n"},
		{"Proxy-Authorization", "GET / HTTP/1.1\r\n" + host + "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n\r\n"},
		{"Proxy-Authenticate", "GET / HTTP/1.1\r\n" + host + "Proxy-Authenticate: Basic\r\n\r\n"},
		{"Connection with a list", "GET / HTTP/1.1\r\n" + host + "Connection: close, keep-alive\r\n\r\n"},
		{"Connection naming a field", "GET / HTTP/1.1\r\n" + host + "Connection: X-Secret\r\nX-Secret: 1\r\n\r\n"},
		{"Connection: upgrade", "GET / HTTP/1.1\r\n" + host + "Connection: upgrade\r\n\r\n"},
		{"empty Connection", "GET / HTTP/1.1\r\n" + host + "Connection:\r\n\r\n"},
		{"'_' in a name", "GET / HTTP/1.1\r\n" + host + "X_Forwarded_For: 1.2.3.4\r\n\r\n"},
		{"Content_Length", "POST / HTTP/1.1\r\n" + host + "Content_Length: 5\r\n\r\n"},
		{"too many fields", manyFields(wire.MaxFields)},
		{"empty name", "GET / HTTP/1.1\r\n" + host + ": v\r\n\r\n"},
		{"space before colon", "GET / HTTP/1.1\r\n" + host + "Content-Length : 5\r\n\r\n"},
		{"tab before colon", "GET / HTTP/1.1\r\n" + host + "X\t: 5\r\n\r\n"},
		{"space in name", "GET / HTTP/1.1\r\n" + host + "X Y: 5\r\n\r\n"},
		{"no colon", "GET / HTTP/1.1\r\n" + host + "NoColon\r\n\r\n"},
		{"'(' in name", "GET / HTTP/1.1\r\n" + host + "X(y): 5\r\n\r\n"},
		{"non-ASCII in name", "GET / HTTP/1.1\r\n" + host + "X\xc3\xa9: 5\r\n\r\n"},
		{"NUL in name", "GET / HTTP/1.1\r\n" + host + "X\x00: 5\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r wire.Request
			if n, v := r.ParseRequest([]byte(c.in)); v != wire.Other {
				t.Fatalf("ParseRequest(%q) = %d, %d; want Other", c.in, n, v)
			}
		})
	}
}

func TestParseRequestIncomplete(t *testing.T) {
	full := typicalGET
	var r wire.Request
	for i := 0; i < len(full); i++ {
		if n, v := r.ParseRequest([]byte(full[:i])); v != wire.Incomplete || n != 0 {
			t.Fatalf("ParseRequest(%q) = %d, %d; want Incomplete", full[:i], n, v)
		}
	}
	if _, v := r.ParseRequest([]byte(full)); v != wire.Complete {
		t.Fatalf("whole head: verdict %d", v)
	}
	// Garbage that has not ended a line yet is not judged.
	if _, v := r.ParseRequest([]byte("\x00\x01 not http")); v != wire.Incomplete {
		t.Errorf("unterminated garbage: verdict %d, want Incomplete", v)
	}
}

func TestParseRequestReuse(t *testing.T) {
	var r wire.Request
	first := "POST /a?b=c HTTP/1.1\r\nHost: one\r\nContent-Length: 5\r\nConnection: close\r\nX-A: 1\r\n\r\n"
	if _, v := r.ParseRequest([]byte(first)); v != wire.Complete {
		t.Fatalf("first: verdict %d", v)
	}
	second := "GET /z HTTP/1.1\r\nHost: two\r\n\r\n"
	if _, v := r.ParseRequest([]byte(second)); v != wire.Complete {
		t.Fatalf("second: verdict %d", v)
	}
	if r.HasQuery || r.Query != nil || r.ContentLength != 0 || r.Close || string(r.Host) != "two" ||
		!sameFields(r.Fields, []kv{{"Host", "two"}}) || r.HeaderBytes != len("Host: two\r\n") {
		t.Errorf("state of the first request left over: %+v", r)
	}
}

func TestParseResponseComplete(t *testing.T) {
	type want struct {
		status  int
		cl      int64
		chunked bool
		close   bool
		fields  []kv
	}
	cases := []struct {
		name string
		in   string
		want want
	}{
		{
			name: "200 with Content-Length",
			in:   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
			want: want{status: 200, cl: 5, fields: []kv{{"Content-Type", "text/plain"}, {"Content-Length", "5"}}},
		},
		{
			name: "chunked",
			in:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			want: want{status: 200, cl: -1, chunked: true, fields: []kv{{"Transfer-Encoding", "chunked"}}},
		},
		{
			name: "chunked in upper case",
			in:   "HTTP/1.1 201 Created\r\ntransfer-encoding:  CHUNKED \r\n\r\n",
			want: want{status: 201, cl: -1, chunked: true, fields: []kv{{"transfer-encoding", "CHUNKED"}}},
		},
		{
			name: "no length: read to close",
			in:   "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>",
			want: want{status: 200, cl: -1, fields: []kv{{"Content-Type", "text/html"}}},
		},
		{
			name: "no reason phrase",
			in:   "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
			want: want{status: 200, cl: 0, fields: []kv{{"Content-Length", "0"}}},
		},
		{
			name: "empty reason phrase",
			in:   "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
			want: want{status: 404, cl: 0, fields: []kv{{"Content-Length", "0"}}},
		},
		{
			name: "reason phrase with spaces and tab",
			in:   "HTTP/1.1 503 Service\tTemporarily Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			want: want{status: 503, cl: 0, close: true, fields: []kv{{"Content-Length", "0"}, {"Connection", "close"}}},
		},
		{
			name: "no fields",
			in:   "HTTP/1.1 200 OK\r\n\r\n",
			want: want{status: 200, cl: -1, fields: []kv{}},
		},
		{
			name: "repeated fields kept in order",
			in:   "HTTP/1.1 302 Found\r\nLocation: /x\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
			want: want{status: 302, cl: 0, fields: []kv{{"Location", "/x"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"Content-Length", "0"}}},
		},
		{
			name: "hop-by-hop fields other than Trailer pass",
			in:   "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
			want: want{status: 200, cl: 1, fields: []kv{{"Keep-Alive", "timeout=5"}, {"Connection", "keep-alive"}, {"Content-Length", "1"}}},
		},
		{
			name: "highest status",
			in:   "HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n",
			want: want{status: 999, cl: 0, fields: []kv{{"Content-Length", "0"}}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r wire.Response
			n, v := r.ParseResponse([]byte(c.in))
			if v != wire.Complete {
				t.Fatalf("verdict %d, want Complete", v)
			}
			if want := headEnd(c.in); n != want {
				t.Errorf("n = %d, want %d", n, want)
			}
			w := c.want
			if r.Status != w.status || r.ContentLength != w.cl || r.Chunked != w.chunked || r.Close != w.close {
				t.Errorf("status %d length %d chunked %v close %v, want %d %d %v %v",
					r.Status, r.ContentLength, r.Chunked, r.Close, w.status, w.cl, w.chunked, w.close)
			}
			if !sameFields(r.Fields, w.fields) {
				t.Errorf("fields %q, want %q", fieldsOf(r.Fields), w.fields)
			}
		})
	}
}

func TestParseResponseOther(t *testing.T) {
	cases := []struct{ name, in string }{
		{"100 Continue", "HTTP/1.1 100 Continue\r\n\r\n"},
		{"101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
		{"103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"},
		{"status 000", "HTTP/1.1 000 X\r\n\r\n"},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n"},
		{"lower-case version", "http/1.1 200 OK\r\n\r\n"},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n"},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"letters in status", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"signed status", "HTTP/1.1 +20 OK\r\n\r\n"},
		{"two spaces before status", "HTTP/1.1  200 OK\r\n\r\n"},
		{"tab before status", "HTTP/1.1\t200 OK\r\n\r\n"},
		{"tab after status", "HTTP/1.1 200\tOK\r\n\r\n"},
		{"no status", "HTTP/1.1\r\n\r\n"},
		{"control char in reason", "HTTP/1.1 200 O\x01K\r\n\r\n"},
		{"non-ASCII in reason", "HTTP/1.1 200 \xc3\xa9\r\n\r\n"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
		{"bare CR", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"},
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"},
		{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
		{"TE xchunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n"},
		{"TE identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n"},
		{"TE twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"TE with VT", "HTTP/1.1 200 OK\r\nTransfer-Encoding:\x0bchunked\r\n\r\n"},
		{"Trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"},
		{"duplicate Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"},
		{"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\n"},
		{"Connection with a list", "HTTP/1.1 200 OK\r\nConnection: close, x\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n"},
		{"'_' in a name", "HTTP/1.1 200 OK\r\nX_Y: 1\r\n\r\n"},
		{"NUL in value", "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n"},
		{"too many fields", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", wire.MaxFields+1) + "\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r wire.Response
			if n, v := r.ParseResponse([]byte(c.in)); v != wire.Other {
				t.Fatalf("ParseResponse(%q) = %d, %d; want Other", c.in, n, v)
			}
		})
	}
}

// A 204 or a 304 has no body whatever its head says (a 304 may carry the
// Content-Length of the representation): the parser must not tell the
// caller to read one. Handing such a head to net/http is as good.
func TestParseResponseNoBodyStatus(t *testing.T) {
	for _, in := range []string{
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n",
	} {
		var r wire.Response
		n, v := r.ParseResponse([]byte(in))
		if v == wire.Other {
			continue
		}
		if v != wire.Complete || n != len(in) || r.ContentLength != 0 || r.Chunked {
			t.Errorf("ParseResponse(%q) = %d, %d, length %d chunked %v; want Other, or no body", in, n, v, r.ContentLength, r.Chunked)
		}
	}
}

func TestParseResponseIncomplete(t *testing.T) {
	full := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
	var r wire.Response
	for i := 0; i < len(full); i++ {
		if n, v := r.ParseResponse([]byte(full[:i])); v != wire.Incomplete || n != 0 {
			t.Fatalf("ParseResponse(%q) = %d, %d; want Incomplete", full[:i], n, v)
		}
	}
}

func TestIsHopByHop(t *testing.T) {
	for _, name := range []string{"Connection", "transfer-encoding", "Keep-Alive", "Proxy-Connection",
		"PROXY-AUTHENTICATE", "Proxy-Authorization", "te", "Upgrade"} {
		if !wire.IsHopByHop([]byte(name)) {
			t.Errorf("IsHopByHop(%q) = false", name)
		}
	}
	for _, name := range []string{"Host", "Content-Length", "Trailer", "Expect", "Te2", "X-Upgrade", "", "t"} {
		if wire.IsHopByHop([]byte(name)) {
			t.Errorf("IsHopByHop(%q) = true", name)
		}
	}
}

func TestEqualFold(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"X-Tenant", "x-tenant", true},
		{"x-tenant", "X-TENANT", true},
		{"X-Tenant", "X-Tenan", false},
		{"X-Tenant", "X-Tenanu", false},
		{"", "", true},
		// Only ASCII letters fold: '[' and '{' are not 'Z'+1 and 'z'+1 alike.
		{"[", "{", false},
		{"@", "`", false},
	}
	for _, c := range cases {
		if got := wire.EqualFold([]byte(c.a), c.b); got != c.want {
			t.Errorf("EqualFold(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	buf := []byte(typicalGET)
	var r wire.Request
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, v := r.ParseRequest(buf); v != wire.Complete {
			b.Fatalf("verdict %d", v)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 128\r\n" +
		"Date: Mon, 02 Nov 2026 10:00:00 GMT\r\nCache-Control: no-store\r\nVary: Accept-Encoding\r\n\r\n")
	var r wire.Response
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, v := r.ParseResponse(buf); v != wire.Complete {
			b.Fatalf("verdict %d", v)
		}
	}
}

func TestPlainPath(t *testing.T) {
	for _, c := range []struct {
		p    string
		want bool
	}{
		{"/", true}, {"/a/b%2Fc", true}, {"/!$&'()*+,=:@-._~", true}, {"/%7e", true},
		{"", false}, {"a/b", false}, {"/a b", false}, {"/a?b", false}, {"/a#b", false},
		{"/a;b", false}, {"/%", false}, {"/%4", false}, {"/%zz", false}, {"/caf\xc3\xa9", false},
	} {
		if got := wire.PlainPath(c.p); got != c.want {
			t.Errorf("PlainPath(%q) = %v", c.p, got)
		}
	}
}

func TestValidField(t *testing.T) {
	for _, c := range []struct {
		line string
		want bool
	}{
		{"X-Sum: 1", true}, {"x:", true}, {"X: \t a b \t", true},
		{"", false}, {": v", false}, {"X : 1", false}, {" X: 1", false}, {"X_Y: 1", false},
		{"X: a\x00", false}, {"X: a\rb", false}, {"X: a\r\nY: b", false}, {"X: a\nY: b", false}, {"NoColon", false},
	} {
		if got := wire.ValidField([]byte(c.line)); got != c.want {
			t.Errorf("ValidField(%q) = %v", c.line, got)
		}
	}
}
