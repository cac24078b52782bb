package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// gatehousectl runs the command as a user would and returns its exit code,
// standard output and standard error.
func gatehousectl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"gatehousectl"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestPolicyTest(t *testing.T) {
	dir := filepath.Join("testdata", "policy")
	file := func(name string) string { return filepath.Join(dir, name) }
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		stdout    []string // lines, in order
		stderr    []string // substrings
		notStdout []string
	}{
		{
			name:   "allowed",
			args:   []string{file("timeouts.rego"), "--route", file("route-ok.yaml")},
			code:   exitOK,
			stdout: []string{`allowed: HTTPRoute web/shop (no tenant)`},
		},
		{
			name: "denied names the field and the message",
			args: []string{file("timeouts.rego"), "--route", file("route-bad.yaml")},
			code: exitDenied,
			stdout: []string{
				`denied: HTTPRoute web/grab (no tenant)`,
				`  - spec.rules[1].timeouts.request: RoutePolicy "timeouts": rule 1 has no request timeout; set spec.rules[1].timeouts.request, e.g. 10s`,
			},
		},
		{
			name: "warn enforcement warns and exits 0",
			args: []string{file("timeouts.rego"), "--route", file("route-bad.yaml"), "--enforcement", "warn"},
			code: exitOK,
			stdout: []string{
				`warned: HTTPRoute web/grab (no tenant)`,
				`  - spec.rules[1].timeouts.request: RoutePolicy "timeouts": rule 1 has no request timeout; set spec.rules[1].timeouts.request, e.g. 10s`,
			},
		},
		{
			name:   "audit enforcement allows and lists the violations",
			args:   []string{file("timeouts.rego"), "--route", file("route-bad.yaml"), "--enforcement", "audit"},
			code:   exitOK,
			stdout: []string{`allowed: HTTPRoute web/grab (no tenant)`, `(audit: counted in the policy's status, not enforced)`},
		},
		{
			name:   "the RoutePolicy of the tenancy docs warns a labelless route of its tenant",
			args:   []string{file("require-team-label.yaml"), "--route", file("route-bad.yaml"), "--tenant", "web"},
			code:   exitOK,
			stdout: []string{`warned: HTTPRoute web/grab (tenant "web")`, `  - metadata.labels: RoutePolicy "require-team-label": routes must carry the label "team"`},
		},
		{
			name:   "RoutePolicy YAML allows a labelled route",
			args:   []string{file("require-team-label.yaml"), "--route", file("route-ok.yaml"), "--tenant", "web"},
			code:   exitOK,
			stdout: []string{`allowed: HTTPRoute web/shop (tenant "web")`},
		},
		{
			name:   "spec.match leaves out routes of no tenant",
			args:   []string{file("require-team-label.yaml"), "--route", file("route-bad.yaml")},
			code:   exitOK,
			stdout: []string{`allowed: HTTPRoute web/grab (no tenant)`, `spec.match leaves this route out`},
		},
		{
			name: "--parameters replaces the RoutePolicy's",
			args: []string{file("require-team-label.yaml"), "--route", file("route-ok.yaml"), "--tenant", "web", "--parameters", file("params-owner.yaml")},
			code: exitOK,
			stdout: []string{`warned: HTTPRoute web/shop (tenant "web")`,
				`  - metadata.labels: RoutePolicy "require-team-label": routes must carry the label "owner"`},
		},
		{
			name: "tenants give the namespace's tenant, its data and tenancy's denials",
			args: []string{file("within-delegation.rego"), "--route", file("route-bad.yaml"), "--tenants", file("tenants.yaml")},
			code: exitDenied,
			stdout: []string{
				`denied: HTTPRoute web/grab (tenant "web")`,
				`  - spec.hostnames[1]: HostnameOwnedByOtherTenant: "pay.example.com" is delegated to tenant "payments"; this namespace belongs to tenant "web" (delegated: *.web.example.com, www.example.com)`,
				`  - spec.hostnames[0]: RoutePolicy "within-delegation": shop.web.example.com is not listed in tenant web's hostnames`,
				`  - spec.hostnames[1]: RoutePolicy "within-delegation": pay.example.com is not listed in tenant web's hostnames`,
			},
		},
		{
			name:      "tenant data: a listed hostname passes",
			args:      []string{file("within-delegation.rego"), "--route", file("route-ok.yaml"), "--tenants", file("tenants.yaml")},
			code:      exitOK,
			stdout:    []string{`allowed: HTTPRoute web/shop (tenant "web")`},
			notStdout: []string{"  - "},
		},
		{
			name:   "GRPCRoute by kind",
			args:   []string{file("timeouts.rego"), "--route", file("grpcroute.yaml")},
			code:   exitDenied,
			stdout: []string{`denied: GRPCRoute web/api (no tenant)`},
		},
		{
			name: "a TLSRoute's SNI names are judged as hostnames; a TCPRoute has none",
			args: []string{file("within-delegation.rego"), "--route", file("streamroutes.yaml"), "--tenants", file("tenants.yaml")},
			code: exitDenied,
			stdout: []string{
				`denied: TLSRoute web/db (tenant "web")`,
				`  - spec.hostnames[1]: HostnameOwnedByOtherTenant: "pay.example.com" is delegated to tenant "payments"; this namespace belongs to tenant "web" (delegated: *.web.example.com, www.example.com)`,
				`allowed: TCPRoute web/cache (tenant "web")`,
			},
		},
		{
			name:   "compile error with its position",
			args:   []string{file("broken.rego"), "--route", file("route-ok.yaml")},
			code:   exitError,
			stderr: []string{`RoutePolicy "broken" does not compile`, file("broken.rego") + `:5:1: rego_parse_error:`},
		},
		{
			name:   "unknown enforcement",
			args:   []string{file("timeouts.rego"), "--route", file("route-ok.yaml"), "--enforcement", "block"},
			code:   exitError,
			stderr: []string{`enforcement "block": want deny, warn or audit`},
		},
		{
			name:   "no --route is a usage error",
			args:   []string{file("timeouts.rego")},
			code:   exitUsage,
			stderr: []string{"--route is required"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := gatehousectl(t, append([]string{"policy", "test"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			rest := stdout
			for _, want := range tc.stdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Errorf("stdout lacks (in order) %q:\n%s", want, stdout)
					break
				}
				rest = rest[i+len(want):]
			}
			for _, bad := range tc.notStdout {
				if strings.Contains(stdout, bad) {
					t.Errorf("stdout has %q:\n%s", bad, stdout)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}
