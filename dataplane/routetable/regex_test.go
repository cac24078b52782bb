package routetable_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// deepGroups nests n capturing groups around "a".
func deepGroups(n int) string {
	return strings.Repeat("(", n) + "a" + strings.Repeat(")", n)
}

// The expression that froze a shared Gateway: Go compiles it alone but not
// with the anchors the proxy adds, so a check of the bare expression let
// through what no proxy could serve. The dialect refuses it, with why.
func TestRegexThatCompilesOnlyUnanchoredIsRefused(t *testing.T) {
	expr := deepGroups(999)
	if _, err := regexp.Compile(expr); err != nil {
		t.Fatalf("the case lost its point: Go no longer compiles it unanchored: %v", err)
	}
	if _, err := regexp.Compile("^(?:" + expr + ")$"); err == nil {
		t.Fatalf("the case lost its point: Go now compiles it anchored")
	}
	_, err := routetable.CompileRegex(expr)
	if err == nil || !strings.Contains(err.Error(), "is 1999 bytes long and at most 1024 are allowed") {
		t.Fatalf("error = %v, want it to say how long it is and the bound", err)
	}
	if len(err.Error()) > 200 {
		t.Errorf("the error repeats the expression (%d bytes): %s", len(err.Error()), err)
	}
}

func TestRegexDialect(t *testing.T) {
	atLength := strings.Repeat("[a-z]", 204) + "abcd"
	if len(atLength) != routetable.MaxRegexLength {
		t.Fatalf("the length case is %d bytes, want %d", len(atLength), routetable.MaxRegexLength)
	}
	for _, tc := range []struct {
		name, expr string
		// want is a part of the error; "" compiles.
		want         string
		match, other string
	}{
		{name: "a path", expr: `/api/v[0-9]+/users/[^/]+`, match: "/api/v2/users/ann", other: "/api/v2/users/ann/x"},
		{name: "anchored on the whole value", expr: `b`, match: "b", other: "abc"},
		{name: "alternation stays inside the anchors", expr: `a|b`, match: "b", other: "ab"},
		{name: "a DNS label", expr: `[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?`, match: "shop-1", other: "-shop"},
		{name: "case-insensitive flag", expr: `(?i)bearer [a-z0-9._~+/-]+=*`, match: "Bearer abc==", other: "basic abc"},
		{name: "at the nesting bound", expr: deepGroups(31), match: "a", other: "b"},
		{name: "one level past the nesting bound", expr: deepGroups(32), want: "nests 33 levels deep and at most 32 are allowed"},
		{name: "at the length bound", expr: atLength, match: strings.Repeat("q", 204) + "abcd", other: "abcd"},
		{name: "past the length bound", expr: strings.Repeat("a", routetable.MaxRegexLength+1), want: "is 1025 bytes long and at most 1024 are allowed"},
		{name: "a large repeat count", expr: `.{0,1000}`, want: "at most 1000 are allowed: use smaller repeat counts"},
		{name: "a repeat count within the program bound", expr: `.{0,490}`, match: "abc", other: strings.Repeat("x", 491)},
		{name: "escaping its anchors", expr: `a)|(b`, want: "regular expression \"a)|(b\": unexpected ): write it in RE2 syntax"},
		{name: "a trailing backslash", expr: `a\`, want: "trailing backslash"},
		{name: "unclosed group", expr: `((`, want: "missing closing )"},
		{name: "backreference (not RE2)", expr: `(a)\1`, want: "invalid escape sequence"},
		{name: "lookahead (not RE2)", expr: `a(?=b)`, want: "invalid or unsupported Perl syntax"},
		{name: "invalid UTF-8", expr: "a\xff", want: "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			re, err := routetable.CompileRegex(tc.expr)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error = %v, want %q in it", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !re.MatchString(tc.match) {
				t.Errorf("%q does not match %q", tc.expr, tc.match)
			}
			if re.MatchString(tc.other) {
				t.Errorf("%q matches %q", tc.expr, tc.other)
			}
		})
	}
}

// Whatever the dialect accepts, Go compiles anchored, whichever of the
// anchored and bare forms a caller tries first.
func FuzzRegexDialect(f *testing.F) {
	for _, s := range []string{`a|b`, `a)|(b`, deepGroups(40), `.{0,490}`, `(?i)x+`, `[[:alpha:]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		re, err := routetable.CompileRegex(expr)
		if err != nil {
			return
		}
		if _, err := regexp.Compile(expr); err != nil {
			t.Fatalf("%q accepted, but does not compile alone: %v", expr, err)
		}
		if re.String() != "^(?:"+expr+")$" {
			t.Fatalf("%q compiled as %q", expr, re.String())
		}
	})
}

// TestRegexWorkIsBounded: a request's matching stops at routetable.MaxRegexWork; the
// match that would pass it does not match, and says so.
func TestRegexWorkIsBounded(t *testing.T) {
	re, err := routetable.CompileRegex(strings.Repeat(".*a", 200) + "b")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 60<<10) + "b"
	work := 0
	if ok, over := re.MatchWithin(long, &work); ok || !over {
		t.Errorf("a 60 KiB value against a %d-instruction program: matched %v, over %v; want refused", re.Program, ok, over)
	}
	work = 0
	short := strings.Repeat("a", 200) + "b"
	if ok, over := re.MatchWithin(short, &work); !ok || over {
		t.Errorf("a short value: matched %v, over %v; want a match within the bound", ok, over)
	}
	// The bound is per request: what earlier matches spent counts.
	work = routetable.MaxRegexWork - len(short)*re.Program + 1
	if ok, over := re.MatchWithin(short, &work); ok || !over {
		t.Errorf("a short value after the request spent the rest: matched %v, over %v; want refused", ok, over)
	}
}
