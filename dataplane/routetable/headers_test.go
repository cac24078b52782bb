package routetable

import "testing"

func TestCheckFieldValue(t *testing.T) {
	for _, c := range []struct {
		v  string
		ok bool
	}{
		{"", true}, {"a", true}, {"a b\tc", true}, {"café", true}, {`"quoted", list`, true},
		{"a\r\nX-Injected: 1", false}, {"a\nb", false}, {"a\x00b", false}, {"\x07", false}, {"a\x7f", false},
		{" a", false}, {"a\t", false},
	} {
		if err := CheckFieldValue(c.v); (err == nil) != c.ok {
			t.Errorf("CheckFieldValue(%q) = %v, want ok %v", c.v, err, c.ok)
		}
	}
}

func TestCheckHost(t *testing.T) {
	for _, c := range []struct {
		h  string
		ok bool
	}{
		{"example.com", true}, {"Example.COM:8443", true}, {"10.0.0.1:80", true}, {"[2001:db8::1]", true}, {"[2001:db8::1]:8080", true},
		{"", false}, {"a b", false}, {"a.example/admin", false}, {"a\r\nb", false}, {"a:", false}, {"a:65536", false},
		{"2001:db8::1", false}, {"[2001:db8::1", false}, {"[10.0.0.1]", false}, {"user@host", false},
	} {
		if err := CheckHost(c.h); (err == nil) != c.ok {
			t.Errorf("CheckHost(%q) = %v, want ok %v", c.h, err, c.ok)
		}
	}
}

func TestCheckHeaderEdit(t *testing.T) {
	for _, c := range []struct {
		request bool
		op      HeaderOp
		name    string
		ok      bool
	}{
		{true, OpSet, "X-A", true}, {false, OpSet, "Host", true}, {true, OpRemove, "Connection", true},
		{false, OpSet, "Date", true}, {true, OpRemove, "Date", true}, {false, OpRemove, "X_A", true},
		{true, OpSet, "Host", false}, {true, OpAdd, "host", false}, {true, OpRemove, "HOST", false},
		{true, OpSet, "Connection", false}, {false, OpAdd, "Keep-Alive", false}, {true, OpSet, "TE", false},
		{false, OpSet, "Content-Length", false}, {true, OpRemove, "Transfer-Encoding", false},
		{true, OpSet, "Expect", false}, {false, OpRemove, "Date", false}, {true, OpSet, ":authority", false},
		{true, OpSet, "X A", false}, {true, OpSet, "", false},
	} {
		if err := CheckHeaderEdit(c.request, c.op, c.name, "v"); (err == nil) != c.ok {
			t.Errorf("CheckHeaderEdit(request %v, %v, %q) = %v, want ok %v", c.request, c.op, c.name, err, c.ok)
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
