package adversarial

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestPath: path normalisation and encoding. Matching sees the path
// normalised the way Envoy's normalize_path and merge_slashes do it
// (percent-encoded unreserved characters decoded, dot segments removed,
// slashes merged, other escapes kept with upper-case hex); the backend and
// a redirect's Location get that same path, never a decoded reserved
// character (docs/adversarial.md, "Paths").
func TestPath(t *testing.T) {
	b := newBed(t)

	// backendPath: a request for target reaches the backend with this
	// request-target.
	backendPath := func(target, want string) func(t *testing.T) {
		return func(t *testing.T) {
			c := dialRaw(t, b.port)
			resp, body := c.roundTrip("GET " + target + " HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
			line, _, _ := strings.Cut(body, "\r\n")
			if resp.StatusCode != http.StatusOK || line != "GET "+want+" HTTP/1.1" {
				t.Fatalf("%s: got %d, the backend saw %q; want %q", target, resp.StatusCode, line, "GET "+want+" HTTP/1.1")
			}
		}
	}
	// proxyAnswers: the proxy answers target itself with code, and the
	// backend never sees it.
	proxyAnswers := func(code int) func(target string) func(t *testing.T) {
		return func(target string) func(t *testing.T) {
			return func(t *testing.T) {
				b.answeredByProxy(t, "GET "+target+" HTTP/1.1\r\nHost: a.example.com\r\n\r\n", code)
			}
		}
	}
	// denied: the request matches no /public route: the 403 of the
	// catch-all route.
	denied, refused := proxyAnswers(http.StatusForbidden), proxyAnswers(http.StatusBadRequest)

	runCases(t, "path", []adversarialCase{
		{"encoded-slash-kept", "RFC 3986 §2.2: %2F is data, not a separator (Envoy KEEP_UNCHANGED)",
			backendPath("/public/a%2Fb", "/public/a%2Fb")},
		{"encoded-slash-no-match", "Envoy: %2F does not end a prefix segment; /public%2Fx is not under /public",
			denied("/public%2Fx")},
		{"escape-hex-upper", "RFC 3986 §6.2.2.1: percent-encodings normalised to upper-case hex",
			backendPath("/public/a%2fb%3f", "/public/a%2Fb%3F")},
		{"encoded-percent-once", "RFC 3986 §2.4: decode at most once; %252F stays %252F",
			backendPath("/public/%252F", "/public/%252F")},
		{"unreserved-decoded", "RFC 3986 §6.2.2.2: %70 is 'p'; matching sees /public",
			backendPath("/%70ublic/%7Euser", "/public/~user")},
		{"dot-dot", "RFC 3986 §5.2.4: dot segments removed before matching",
			denied("/public/../admin")},
		{"encoded-dot-dot", "RFC 3986 §6.2.2.2: %2e%2e is '..' and is removed before matching",
			denied("/public/%2e%2e/admin")},
		{"mixed-dot-dot", "RFC 3986 §6.2.2.2: .%2E is '..' as well",
			denied("/public/.%2E/admin")},
		{"dot-dot-above-root", "RFC 3986 §5.2.4: '..' above the root stays at the root",
			backendPath("/../../public/x", "/public/x")},
		{"merged-slashes", "nginx merge_slashes on: //public//x is /public/x",
			backendPath("//public//x", "/public/x")},
		{"backslash", "Envoy/nginx (Unix): a backslash is data, sent encoded, never a separator",
			denied(`/public\..\admin`)},
		{"nul", "nginx: a NUL in the path (%00) is refused: 400",
			refused("/public/%00")},
		{"query-untouched", "RFC 9112 §3.2.1: the query is forwarded as received",
			backendPath("/public?a=%2F&b=%3F+x", "/public?a=%2F&b=%3F+x")},
		{"not-origin-form", "RFC 9112 §3.2.1: origin-form starts with '/': 400",
			refused("public")},
		{"redirect-keeps-escapes", "RFC 9110 §10.2.2: Location is a URI; %3F %23 %0D%0A stay encoded", func(t *testing.T) {
			c := dialRaw(t, b.port)
			resp, _ := c.roundTrip("GET /redirect/a%3Fb%23c%0d%0aSet-Cookie:%20x HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
			loc := resp.Header.Get("Location")
			want := fmt.Sprintf("http://r.example.com:%d/redirect/a%%3Fb%%23c%%0D%%0ASet-Cookie:%%20x", b.port)
			if resp.StatusCode != http.StatusFound || loc != want {
				t.Fatalf("got %d Location %q, want 302 %q", resp.StatusCode, loc, want)
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Fatal("a header was injected through the Location")
			}
		}},
		{"redirect-query", "RFC 9110 §10.2.2: the query travels into Location unchanged", func(t *testing.T) {
			c := dialRaw(t, b.port)
			resp, _ := c.roundTrip("GET /redirect/x?q=%23a HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
			if loc := resp.Header.Get("Location"); loc != fmt.Sprintf("http://r.example.com:%d/redirect/x?q=%%23a", b.port) {
				t.Fatalf("Location %q", loc)
			}
		}},
	})
}
