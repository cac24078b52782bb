package routetable

import "testing"

// Values and hosts each check takes (ok) and refuses.
func TestCheckFieldValueAndHost(t *testing.T) {
	checks := map[string]struct {
		check   func(string) error
		ok, bad []string
	}{
		"CheckFieldValue": {CheckFieldValue,
			[]string{"", "a", "a b\tc", "café", `"quoted", list`},
			[]string{"a\r\nX-Injected: 1", "a\nb", "a\x00b", "\x07", "a\x7f", " a", "a\t"}},
		"CheckHost": {CheckHost,
			[]string{"example.com", "Example.COM:8443", "10.0.0.1:80", "[2001:db8::1]", "[2001:db8::1]:8080"},
			[]string{"", "a b", "a.example/admin", "a\r\nb", "a:", "a:65536", "2001:db8::1", "[2001:db8::1", "[10.0.0.1]", "user@host"}},
	}
	for name, c := range checks {
		for _, v := range c.ok {
			if err := c.check(v); err != nil {
				t.Errorf("%s(%q): %v", name, v, err)
			}
		}
		for _, v := range c.bad {
			if c.check(v) == nil {
				t.Errorf("%s(%q) took it", name, v)
			}
		}
	}
}

func TestCheckHeaderEdit(t *testing.T) {
	type edit struct {
		request bool
		op      HeaderOp
		name    string
	}
	ok := []edit{
		{true, OpSet, "X-A"}, {false, OpSet, "Host"}, {true, OpRemove, "Connection"},
		{false, OpSet, "Date"}, {true, OpRemove, "Date"}, {false, OpRemove, "X_A"},
	}
	refused := []edit{
		{true, OpSet, "Host"}, {true, OpAdd, "host"}, {true, OpRemove, "HOST"},
		{true, OpSet, "Connection"}, {false, OpAdd, "Keep-Alive"}, {true, OpSet, "TE"},
		{false, OpSet, "Content-Length"}, {true, OpRemove, "Transfer-Encoding"},
		{true, OpSet, "Expect"}, {false, OpRemove, "Date"}, {true, OpSet, ":authority"},
		{true, OpSet, "X A"}, {true, OpSet, ""},
	}
	for _, e := range ok {
		if err := CheckHeaderEdit(e.request, e.op, e.name, "v"); err != nil {
			t.Errorf("%+v: %v", e, err)
		}
	}
	for _, e := range refused {
		if CheckHeaderEdit(e.request, e.op, e.name, "v") == nil {
			t.Errorf("%+v was taken", e)
		}
	}
}

func TestCheckEmittedTakesWhatTheHubWrites(t *testing.T) {
	r := &Route{
		RequestHeaders:  &HeaderMutation{Set: []*Header{{Name: "X-A", Value: "café"}}, Remove: []string{"Connection"}},
		ResponseHeaders: &HeaderMutation{Set: []*Header{{Name: "Host", Value: "x"}}},
		Action: &Route_Route{Route: &RouteAction{HostRewrite: "[2001:db8::1]:8080",
			Backends: []*WeightedBackend{{Backend: "b", Weight: 1, HostRewrite: "inner.test:80"}}}},
		Cors: &CorsPolicy{AllowOrigins: []string{"https://*.example.com"}, AllowMethods: []string{"GET", "*"}, AllowHeaders: []string{"*"}, ExposeHeaders: []string{"X-A"}},
	}
	if err := r.CheckEmitted(); err != nil {
		t.Fatal(err)
	}
	r.Cors.ExposeHeaders = []string{"X-A, X-B"}
	if err := r.CheckEmitted(); err == nil {
		t.Error("a CORS list entry that is not a token was taken")
	}
	redirect := &Route{Action: &Route_Redirect{Redirect: &RedirectAction{Scheme: "https", Hostname: "example.org", Path: &PathRewrite{Rewrite: &PathRewrite_Full{Full: "/a\nb"}}}}}
	if err := redirect.CheckEmitted(); err == nil {
		t.Error("a redirect path with a line feed was taken")
	}
}
