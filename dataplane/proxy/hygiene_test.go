package proxy

import (
	"net/http"
	"net/url"
	"testing"
)

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{
		"":                     true,
		"a.example.com":        true,
		"A.Example.com:8080":   true,
		"a.example.com:":       true,
		"10.0.0.1:80":          true,
		"[::1]":                true,
		"[2001:db8::1]:443":    true,
		"b.example.com:evil":   false,
		"[a.example.com]":      false,
		"[10.0.0.1]":           false,
		"[fe80::1%25eth0]":     false,
		"[::1]x":               false,
		"[::1":                 false,
		"a.example.com:80:8":   false,
		"a.example.com:65536":  false,
		"a.example.com:123456": false,
		"user@a.example.com":   false,
		"a%2eexample.com":      false,
		"a/b":                  false,
	} {
		if got := validHost(h); got != want {
			t.Errorf("validHost(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestRoutingPath(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":              "/a/b",
		"/a%2Fb":            "/a%2Fb",
		"/a%2fb%3f":         "/a%2Fb%3F",
		"/%70ublic/%7euser": "/public/~user",
		"/a/%2e%2e/b":       "/b",
		"/a/.%2E/b":         "/b",
		"/%252F":            "/%252F",
		"//a//b/":           "/a/b/",
		"/caf%c3%a9":        "/caf%C3%A9",
		"/a%20b":            "/a%20b",
	} {
		u, err := url.ParseRequestURI(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := routingPath(u); got != want {
			t.Errorf("routingPath(%q) = %q, want %q", in, got, want)
		}
		out := &url.URL{}
		setPath(out, want)
		if got := out.EscapedPath(); got != want {
			t.Errorf("setPath(%q) is written %q", want, got)
		}
	}
}

func TestStripH2CUpgrade(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"h2c"}, ""},
		{[]string{"H2C, websocket"}, "websocket"},
		{[]string{"websocket"}, "websocket"},
		{[]string{"h2c", "h2c"}, ""},
	} {
		h := http.Header{"Upgrade": c.in, "Http2-Settings": {"AAA"}}
		stripH2CUpgrade(h)
		if got := h.Get("Upgrade"); got != c.want || h.Get("Http2-Settings") != "" {
			t.Errorf("stripH2CUpgrade(%q) left Upgrade %q, HTTP2-Settings %q; want %q", c.in, got, h.Get("Http2-Settings"), c.want)
		}
	}
}
