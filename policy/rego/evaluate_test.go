package rego_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy/rego"
)

func mustLoad(t testing.TB, e *rego.Engine, mods ...rego.Module) {
	t.Helper()
	if errs := e.Load(mods); errs != nil {
		t.Fatalf("Load: %v", errs)
	}
}

// evaluateOne loads a single policy named "p" and evaluates it.
func evaluateOne(t *testing.T, source string, params []byte, review rego.Review) rego.Result {
	t.Helper()
	e := rego.New(rego.Options{})
	mustLoad(t, e, rego.Module{Name: "p", Source: source, Parameters: params})
	results := e.Evaluate(context.Background(), review, nil)
	if len(results) != 1 || results[0].Policy != "p" {
		t.Fatalf("Evaluate returned %+v, want one result for p", results)
	}
	return results[0]
}

func TestEvaluateViolations(t *testing.T) {
	tests := []struct {
		name   string
		source string
		params []byte
		review rego.Review
		want   []rego.Violation
	}{{
		name: "msg and details",
		source: `package policies.timeouts
violation contains {"msg": msg, "details": {"rule": i}} if {
	some i, rule in input.review.object.spec.rules
	not rule.timeouts.request
	msg := sprintf("spec.rules[%d].timeouts.request is required", [i])
}`,
		review: routeReview(),
		want:   []rego.Violation{{Msg: "spec.rules[4].timeouts.request is required", Details: map[string]any{"rule": json.Number("4")}}},
	}, {
		name: "several violations, sorted",
		source: `package p
violation contains {"msg": sprintf("%s is not allowed", [h])} if {
	some h in input.review.object.spec.hostnames
}`,
		review: routeReview(),
		want: []rego.Violation{
			{Msg: "api.web.example.com is not allowed"},
			{Msg: "shop.web.example.com is not allowed"},
			{Msg: "www.web.example.com is not allowed"},
		},
	}, {
		name:   "msg missing: the violation as JSON",
		source: `package p` + "\n" + `violation contains {"reason": "no msg", "n": 1} if true`,
		want:   []rego.Violation{{Msg: `{"n":1,"reason":"no msg"}`}},
	}, {
		name:   "msg not a string: the violation as JSON",
		source: `package p` + "\n" + `violation contains {"msg": ["a", "b"], "details": {"x": true}} if true`,
		want:   []rego.Violation{{Msg: `{"details":{"x":true},"msg":["a","b"]}`, Details: map[string]any{"x": true}}},
	}, {
		name:   "a bare string",
		source: `package p` + "\n" + `violation contains "bare" if true`,
		want:   []rego.Violation{{Msg: `"bare"`}},
	}, {
		name:   "details that are not an object",
		source: `package p` + "\n" + `violation contains {"msg": "m", "details": "text"} if true`,
		want:   []rego.Violation{{Msg: "m", Details: map[string]any{"value": "text"}}},
	}, {
		name:   "empty set",
		source: `package p` + "\n" + `violation contains "x" if input.review.operation == "DELETE"`,
		review: routeReview(),
	}, {
		name:   "undefined",
		source: `package p` + "\n" + `violation := {"x"} if false`,
	}, {
		name:   "not a set",
		source: `package p` + "\n" + `violation := ["x"]`,
	}, {
		name: "parameters reach input.parameters",
		source: `package p
violation contains {"msg": sprintf("at most %d hostnames", [input.parameters.max])} if {
	count(input.review.object.spec.hostnames) > input.parameters.max
}`,
		params: []byte(`{"max": 2}`),
		review: routeReview(),
		want:   []rego.Violation{{Msg: "at most 2 hostnames"}},
	}, {
		name:   "no parameters: an empty object",
		source: `package p` + "\n" + `violation contains {"msg": "empty"} if input.parameters == {}`,
		want:   []rego.Violation{{Msg: "empty"}},
	}, {
		name: "review fields",
		source: `package p
violation contains {"msg": concat(" ", [r.operation, r.cluster, r.tenant, r.kind.group, r.kind.version, r.kind.kind, r.userInfo.username])} if {
	r := input.review
}`,
		review: routeReview(),
		want:   []rego.Violation{{Msg: "CREATE eu-west-1 web gateway.networking.k8s.io v1 HTTPRoute jane@web.example.com"}},
	}, {
		name:   "no oldObject on create",
		source: `package p` + "\n" + `violation contains "no oldObject" if not input.review.oldObject`,
		review: routeReview(),
		want:   []rego.Violation{{Msg: `"no oldObject"`}},
	}, {
		name: "oldObject on update, as JSON text",
		source: `package p
violation contains {"msg": sprintf("was %s", [input.review.oldObject.spec.hostnames[0]])} if true`,
		review: rego.Review{Object: route(), OldObject: json.RawMessage(`{"spec": {"hostnames": ["old.web.example.com"]}}`), Operation: "UPDATE"},
		want:   []rego.Violation{{Msg: "was old.web.example.com"}},
	}, {
		name: "JSON text: escapes, numbers, nesting",
		source: `package p
violation contains {"msg": msg, "details": input.review.object} if {
	o := input.review.object
	o.n + o.f == 1.5
	o.nested[1].ok == true
	o.nothing == null
	msg := concat("|", o.s)
}`,
		review: rego.Review{Object: json.RawMessage(`{"s": ["caf\u00e9", "a\"b", "tab\t", "caf\u00e9"], "n": 1, "f": 0.5, "nested": [[], {"ok": true}], "nothing": null}`)},
		want: []rego.Violation{{Msg: "caf\u00e9|a\"b|tab\t|caf\u00e9", Details: map[string]any{
			"s": []any{"caf\u00e9", "a\"b", "tab\t", "caf\u00e9"}, "n": json.Number("1"), "f": json.Number("0.5"),
			"nested": []any{[]any{}, map[string]any{"ok": true}}, "nothing": nil,
		}}},
	}, {
		name:   "no userInfo: an empty object",
		source: `package p` + "\n" + `violation contains {"msg": "anonymous"} if input.review.userInfo == {}`,
		want:   []rego.Violation{{Msg: "anonymous"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evaluateOne(t, tt.source, tt.params, tt.review)
			if got.Err != nil {
				t.Fatalf("Err = %v", got.Err)
			}
			if !reflect.DeepEqual(got.Violations, tt.want) {
				t.Errorf("Violations = %#v\nwant %#v", got.Violations, tt.want)
			}
		})
	}
}

func TestEvaluateErrorNamesPolicy(t *testing.T) {
	got := evaluateOne(t, `package p
who := input.review.tenant
who := input.review.cluster
violation contains who if true`, nil, routeReview())
	if got.Err == nil || !strings.Contains(got.Err.Error(), `policy "p": `) || !strings.Contains(got.Err.Error(), "eval_conflict_error") {
		t.Errorf("Err = %v, want the conflict, naming policy p", got.Err)
	}
	if got.Violations != nil {
		t.Errorf("Violations = %v, want none", got.Violations)
	}
}

func TestEvaluateBadReview(t *testing.T) {
	e := rego.New(rego.Options{})
	mustLoad(t, e, rego.Module{Name: "a", Source: okSource}, rego.Module{Name: "b", Source: okSource})
	results := e.Evaluate(context.Background(), rego.Review{Object: json.RawMessage(`{"spec": `)}, nil)
	if len(results) != 2 {
		t.Fatalf("Evaluate returned %+v, want a result for each policy", results)
	}
	for _, r := range results {
		if r.Err == nil || !strings.Contains(r.Err.Error(), fmt.Sprintf("policy %q not evaluated: review.object: invalid JSON", r.Policy)) {
			t.Errorf("%s: Err = %v, want the review's fault", r.Policy, r.Err)
		}
	}
}

func TestEvaluateSamePackageTwice(t *testing.T) {
	e := rego.New(rego.Options{})
	mustLoad(t, e,
		rego.Module{Name: "one", Source: "package shared\nviolation contains {\"msg\": \"one\"} if true\n"},
		rego.Module{Name: "two", Source: "package shared\nviolation contains {\"msg\": \"two\"} if true\n"},
	)
	got := e.Evaluate(context.Background(), routeReview(), nil)
	want := []rego.Result{
		{Policy: "one", Violations: []rego.Violation{{Msg: "one"}}},
		{Policy: "two", Violations: []rego.Violation{{Msg: "two"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Evaluate = %+v, want %+v", got, want)
	}
}

func TestEvaluateOnly(t *testing.T) {
	e := rego.New(rego.Options{})
	mustLoad(t, e, fleetPolicies(5)...)
	tests := []struct {
		name string
		only func(string) bool
		want []string
	}{
		{name: "nil: all", only: nil, want: []string{"backends-3", "gateways-4", "headers-2", "hostnames-0", "timeouts-1"}},
		{name: "some", only: func(n string) bool { return strings.HasPrefix(n, "h") }, want: []string{"headers-2", "hostnames-0"}},
		{name: "none", only: func(string) bool { return false }, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range e.Evaluate(context.Background(), routeReview(), tt.only) {
				got = append(got, r.Policy)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("evaluated %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFleetPolicies checks that the benchmark's policies find what the
// route gets wrong, so the benchmark measures real work.
func TestFleetPolicies(t *testing.T) {
	e := rego.New(rego.Options{})
	mustLoad(t, e, fleetPolicies(10)...)
	setFleetData(t, e)

	want := map[string]int{
		"hostnames-0": 0, "timeouts-1": 5, "headers-2": 5, "backends-3": 0, "gateways-4": 1,
		"hostnames-5": 0, "timeouts-6": 5, "headers-7": 5, "backends-8": 0, "gateways-9": 1,
	}
	for _, r := range e.Evaluate(context.Background(), routeReview(), nil) {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Policy, r.Err)
		}
		if len(r.Violations) != want[r.Policy] {
			t.Errorf("%s: %d violations, want %d: %+v", r.Policy, len(r.Violations), want[r.Policy], r.Violations)
		}
	}
}

func setFleetData(t testing.TB, e *rego.Engine) {
	t.Helper()
	ctx := context.Background()
	if err := e.SetData(ctx, "tenants", fleetTenants()); err != nil {
		t.Fatal(err)
	}
	if err := e.SetData(ctx, "gateways", fleetGateways()); err != nil {
		t.Fatal(err)
	}
}

const tenantDomainPolicy = `package policies.domains

violation contains {"msg": msg} if {
	some h in input.review.object.spec.hostnames
	not owned(h)
	msg := sprintf("%s is not under tenant %s's domain", [h, input.review.tenant])
}

owned(h) if endswith(h, concat("", [".", data.gatehouse.tenants[input.review.tenant].domain]))
`

// tenantInfo is data in a typed form, as the tenancy registry keeps it.
type tenantInfo struct {
	Domain string `json:"domain"`
}

func TestSetDataReachesLoadedPolicies(t *testing.T) {
	review := rego.Review{Object: map[string]any{"spec": map[string]any{"hostnames": []any{"shop.web.example.com"}}}, Tenant: "web"}
	steps := []struct {
		name     string
		value    any
		wantMsgs int
	}{
		{name: "tenant elsewhere", value: map[string]any{"web": map[string]any{"domain": "web.example.org"}}, wantMsgs: 1},
		{name: "tenant's domain", value: map[string]any{"web": map[string]any{"domain": "web.example.com"}}, wantMsgs: 0},
		{name: "typed value", value: map[string]tenantInfo{"web": {Domain: "other.example.com"}}, wantMsgs: 1},
		{name: "JSON text", value: json.RawMessage(`{"web": {"domain": "example.com"}}`), wantMsgs: 0},
		{name: "replaced, not merged", value: map[string]any{"payments": map[string]any{"domain": "pay.example.com"}}, wantMsgs: 1},
	}

	e := rego.New(rego.Options{})
	mustLoad(t, e, rego.Module{Name: "domains", Source: tenantDomainPolicy})
	compiles := e.Compiles()
	for _, s := range steps {
		if err := e.SetData(context.Background(), "tenants", s.value); err != nil {
			t.Fatalf("%s: SetData: %v", s.name, err)
		}
		r := e.Evaluate(context.Background(), review, nil)[0]
		if r.Err != nil || len(r.Violations) != s.wantMsgs {
			t.Errorf("%s: got %+v, want %d violations", s.name, r, s.wantMsgs)
		}
	}
	if got := e.Compiles() - compiles; got != 0 {
		t.Errorf("SetData recompiled %d modules, want none", got)
	}
}

func TestSetDataRejects(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		value any
		want  string
	}{
		{name: "empty key", key: "", value: map[string]any{}, want: "data key is empty"},
		{name: "not JSON", key: "tenants", value: map[string]any{"web": make(chan int)}, want: "data.gatehouse.tenants: "},
		{name: "bad JSON text", key: "tenants", value: json.RawMessage(`{"web": `), want: "data.gatehouse.tenants: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rego.New(rego.Options{}).SetData(context.Background(), tt.key, tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SetData = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// slowPolicy never finds a violation but looks at nine million pairs first.
const slowPolicy = `package policies.slow

violation contains {"msg": "found"} if {
	some i in numbers.range(1, 3000)
	some j in numbers.range(1, 3000)
	i * j == -1
}
`

func TestEvaluateTimeout(t *testing.T) {
	e := rego.New(rego.Options{Timeout: 20 * time.Millisecond})
	mustLoad(t, e,
		rego.Module{Name: "slow", Source: slowPolicy},
		rego.Module{Name: "zfast", Source: okSource},
	)
	start := time.Now()
	results := e.Evaluate(context.Background(), routeReview(), nil)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Evaluate took %v, want it cut off near the 20ms timeout", elapsed)
	}

	slow, fast := results[0], results[1]
	if !errors.Is(slow.Err, context.DeadlineExceeded) || !strings.Contains(slow.Err.Error(), `policy "slow"`) {
		t.Errorf("slow: Err = %v, want a timeout naming the policy", slow.Err)
	}
	if fast.Err != nil || len(fast.Violations) != 1 {
		t.Errorf("the policy after the slow one: %+v, want its violation", fast)
	}
}

func TestEvaluateCancelled(t *testing.T) {
	e := rego.New(rego.Options{})
	mustLoad(t, e, rego.Module{Name: "ok", Source: okSource})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := e.Evaluate(ctx, routeReview(), nil)[0]
	if !errors.Is(r.Err, context.Canceled) || !strings.Contains(r.Err.Error(), `policy "ok": evaluation cancelled`) {
		t.Errorf("Err = %v, want cancellation naming the policy", r.Err)
	}
}

// TestConcurrentEvaluate runs Evaluate from many goroutines while the data
// and the policy set change underneath; run it with -race.
func TestConcurrentEvaluate(t *testing.T) {
	// The race detector on a busy machine slows evaluation many times over;
	// this test is about races, not timeouts.
	e := rego.New(rego.Options{Timeout: time.Minute})
	mods := fleetPolicies(10)
	mustLoad(t, e, mods...)
	setFleetData(t, e)
	ctx := context.Background()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := e.SetData(ctx, "gateways", fleetGateways()); err != nil {
				t.Error(err)
			}
			// Alternate one policy's parameters so Load swaps in new sets.
			next := slices.Clone(mods)
			next[1].Parameters = fmt.Appendf(nil, `{"maxRequestSeconds": %d}`, 1+i%2)
			if errs := e.Load(next); errs != nil {
				t.Error(errs)
			}
		}
	})
	var evaluators sync.WaitGroup
	for range 4 {
		evaluators.Go(func() {
			review := routeReview()
			for range 25 {
				results := e.Evaluate(ctx, review, nil)
				if len(results) != len(mods) {
					t.Errorf("%d results, want %d", len(results), len(mods))
					return
				}
				for _, r := range results {
					if r.Err != nil {
						t.Errorf("%s: %v", r.Policy, r.Err)
					}
				}
				// timeouts-1 allows 1s or 2s; the route's 15s is over both.
				if got := len(results[slices.IndexFunc(results, func(r rego.Result) bool { return r.Policy == "timeouts-1" })].Violations); got != 5 {
					t.Errorf("timeouts-1: %d violations, want 5", got)
				}
			}
		})
	}
	evaluators.Wait()
	close(stop)
	wg.Wait()
}
