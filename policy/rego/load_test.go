package rego_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/policy/rego"
)

const okSource = `package policies.ok

violation contains {"msg": "always"} if true
`

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name   string
		module rego.Module
		want   []string // substrings of the error
	}{{
		name: "parse error carries line and column",
		module: rego.Module{Name: "bad", Source: `package policies.bad

violation contains msg if {
	msg := 
}
`},
		want: []string{"bad.rego:5:1: rego_parse_error: "},
	}, {
		name: "Rego v0 syntax is a parse error",
		module: rego.Module{Name: "old", Source: `package policies.old

violation[msg] {
	msg := "x"
}
`},
		want: []string{"old.rego:3:", "rego_parse_error", "`if` keyword is required before rule body"},
	}, {
		name: "unsafe variable",
		module: rego.Module{Name: "unsafe", Source: `package policies.unsafe

violation contains {"msg": msg} if {
	msg := y
}
`},
		want: []string{"unsafe.rego:4:2: rego_unsafe_var_error: var y is unsafe"},
	}, {
		name: "type error",
		module: rego.Module{Name: "typed", Source: `package policies.typed

violation contains {"msg": "x"} if {
	count(1) > 0
}
`},
		want: []string{"typed.rego:4:2: rego_type_error: count: invalid argument(s)"},
	}, {
		name:   "package gatehouse is reserved",
		module: rego.Module{Name: "root", Source: "package gatehouse\n\nviolation contains \"x\" if true\n"},
		want:   []string{"root.rego:1:1: rego_compile_error: package data.gatehouse is reserved", "choose a package outside it"},
	}, {
		name:   "packages under gatehouse are reserved",
		module: rego.Module{Name: "tenants", Source: "package gatehouse.tenants.web\n\nviolation contains \"x\" if true\n"},
		want:   []string{"tenants.rego:1:1: rego_compile_error: package data.gatehouse.tenants.web is reserved"},
	}, {
		name: "http.send is forbidden",
		module: rego.Module{Name: "net", Source: `package policies.net

violation contains {"msg": r.body} if {
	r := http.send({"method": "GET", "url": "http://hub.internal"})
}
`},
		want: []string{"net.rego:4:7: rego_compile_error: http.send is not available to gatehouse policies: policies may not reach the network"},
	}, {
		name: "net.lookup_ip_addr is forbidden",
		module: rego.Module{Name: "dns", Source: `package policies.dns

violation contains {"msg": "x"} if {
	count(net.lookup_ip_addr(input.review.object.spec.hostnames[0])) > 0
}
`},
		want: []string{"dns.rego:4:8: rego_compile_error: net.lookup_ip_addr is not available"},
	}, {
		name: "opa.runtime is forbidden",
		module: rego.Module{Name: "env", Source: `package policies.env

violation contains {"msg": opa.runtime().env.HOME} if true
`},
		want: []string{"env.rego:3:28: rego_compile_error: opa.runtime is not available", "environment"},
	}, {
		name: "json.match_schema is forbidden: a $ref could read the hub's files",
		module: rego.Module{Name: "schema", Source: `package policies.schema

violation contains {"msg": "x"} if {
	[false, _] := json.match_schema(input.review.object, {"$ref": "file:///etc/gatehouse/config.json"})
}
`},
		want: []string{"schema.rego:4:16: rego_compile_error: json.match_schema is not available", "hub's files"},
	}, {
		name: "json.verify_schema is forbidden",
		module: rego.Module{Name: "verify", Source: `package policies.verify

violation contains {"msg": "x"} if {
	[false, _] := json.verify_schema({"$ref": "file:///etc/gatehouse/config.json"})
}
`},
		want: []string{"verify.rego:4:16: rego_compile_error: json.verify_schema is not available"},
	}, {
		name:   "no violation rule",
		module: rego.Module{Name: "deny", Source: "package policies.deny\n\ndeny contains \"x\" if true\n"},
		want:   []string{"deny.rego:1:1: rego_compile_error: package data.policies.deny defines no violation rule"},
	}, {
		name:   "parameters that are not JSON",
		module: rego.Module{Name: "params", Source: okSource, Parameters: []byte(`{"max": `)},
		want:   []string{"params.rego: parameters: invalid JSON: "},
	}, {
		name:   "no name",
		module: rego.Module{Source: okSource},
		want:   []string{"policy has no name"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := rego.New(rego.Options{})
			errs := e.Load([]rego.Module{{Name: "ok", Source: okSource}, tt.module})

			if len(errs) != 1 || errs[tt.module.Name] == nil {
				t.Fatalf("Load errors = %v, want exactly one, for %q", errs, tt.module.Name)
			}
			msg := errs[tt.module.Name].Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain %q", msg, w)
				}
			}
			if got := e.Policies(); !slices.Equal(got, []string{"ok"}) {
				t.Errorf("Policies() = %v, want [ok]", got)
			}
		})
	}
}

func TestLoadRejectsDuplicateNames(t *testing.T) {
	e := rego.New(rego.Options{})
	errs := e.Load([]rego.Module{
		{Name: "twice", Source: okSource},
		{Name: "ok", Source: okSource},
		{Name: "twice", Source: okSource},
	})
	if err := errs["twice"]; err == nil || !strings.Contains(err.Error(), `policy "twice" is given 2 times`) {
		t.Errorf("error for twice = %v, want one naming the duplicate", err)
	}
	if got := e.Policies(); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("Policies() = %v, want [ok]", got)
	}
}

// TestLoadCompilesOnlyChanges loads a sequence of policy sets into one
// engine and checks, at each step, how many modules were compiled.
func TestLoadCompilesOnlyChanges(t *testing.T) {
	a := rego.Module{Name: "a", Source: okSource}
	b := rego.Module{Name: "b", Source: okSource, Parameters: []byte(`{"max": 1}`)}
	bParams := rego.Module{Name: "b", Source: okSource, Parameters: []byte(`{"max": 2}`)}
	aSource := rego.Module{Name: "a", Source: okSource + "\n# reworded\n"}
	broken := rego.Module{Name: "c", Source: "package policies.c\n\nviolation contains"}

	steps := []struct {
		name         string
		mods         []rego.Module
		wantCompiles int64
		wantPolicies []string
		wantErrors   []string
	}{
		{name: "first load", mods: []rego.Module{a, b}, wantCompiles: 2, wantPolicies: []string{"a", "b"}},
		{name: "same set", mods: []rego.Module{b, a}, wantCompiles: 0, wantPolicies: []string{"a", "b"}},
		{name: "parameters changed", mods: []rego.Module{a, bParams}, wantCompiles: 1, wantPolicies: []string{"a", "b"}},
		{name: "source changed", mods: []rego.Module{aSource, bParams}, wantCompiles: 1, wantPolicies: []string{"a", "b"}},
		{name: "broken module added", mods: []rego.Module{aSource, bParams, broken}, wantCompiles: 1, wantPolicies: []string{"a", "b"}, wantErrors: []string{"c"}},
		{name: "broken module unchanged", mods: []rego.Module{aSource, bParams, broken}, wantCompiles: 0, wantPolicies: []string{"a", "b"}, wantErrors: []string{"c"}},
		{name: "module removed", mods: []rego.Module{aSource}, wantCompiles: 0, wantPolicies: []string{"a"}},
		{name: "removed module back", mods: []rego.Module{aSource, bParams}, wantCompiles: 1, wantPolicies: []string{"a", "b"}},
		{name: "empty set", mods: nil, wantCompiles: 0, wantPolicies: []string{}},
	}
	e := rego.New(rego.Options{})
	for _, s := range steps {
		before := e.Compiles()
		errs := e.Load(s.mods)
		if got := e.Compiles() - before; got != s.wantCompiles {
			t.Errorf("%s: compiled %d modules, want %d", s.name, got, s.wantCompiles)
		}
		if got := e.Policies(); !slices.Equal(got, s.wantPolicies) {
			t.Errorf("%s: Policies() = %v, want %v", s.name, got, s.wantPolicies)
		}
		var failed []string
		for name := range errs {
			failed = append(failed, name)
		}
		slices.Sort(failed)
		if !slices.Equal(failed, s.wantErrors) {
			t.Errorf("%s: failed modules = %v, want %v", s.name, failed, s.wantErrors)
		}
	}
}
