package rego

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	oparego "github.com/open-policy-agent/opa/v1/rego"
)

// Review is what a policy judges: input.review.
type Review struct {
	// Object and OldObject are the route after and before the change, as
	// typed API objects, JSON-like Go values or json.RawMessage. A nil
	// OldObject is left out of the input, as on create.
	Object, OldObject any
	// Operation is "CREATE", "UPDATE", or empty outside admission.
	Operation string
	// UserInfo is whoever made the change; nil becomes {}.
	UserInfo any
	// Cluster is the member cluster the route lives in; Tenant its tenant,
	// empty when the namespace belongs to none.
	Cluster, Tenant string
	Kind            Kind
}

// Kind is the reviewed object's group, version and kind.
type Kind struct {
	Group, Version, Kind string
}

// Result is one policy's verdict. Err is set when the policy could not be
// evaluated (an error in the policy or a timeout); Violations are then empty.
type Result struct {
	Policy     string
	Violations []Violation
	Err        error
}

// Violation is one member of a policy's violation set.
type Violation struct {
	// Msg is the violation's "msg"; when that is missing or not a string,
	// it is the whole violation rendered as JSON.
	Msg string
	// Details is the violation's "details" when that is an object; any other
	// value is kept as {"value": <it>}.
	Details map[string]any
}

// Evaluate runs every loaded policy whose name only accepts (all of them when
// only is nil) against review and returns their results sorted by policy name.
// Each policy gets the engine's timeout of its own.
func (e *Engine) Evaluate(ctx context.Context, review Review, only func(name string) bool) []Result {
	var selected []*policy
	for _, p := range e.set.Load().policies {
		if only == nil || only(p.name) {
			selected = append(selected, p)
		}
	}
	if len(selected) == 0 {
		return nil
	}

	results := make([]Result, len(selected))
	rv, err := review.value()
	if err != nil {
		for i, p := range selected {
			results[i] = Result{Policy: p.name, Err: fmt.Errorf("policy %q not evaluated: %w", p.name, err)}
		}
		return results
	}
	var stopped atomic.Bool
	defer context.AfterFunc(ctx, func() { stopped.Store(true) })()
	for i, p := range selected {
		results[i] = e.evaluate(ctx, &stopped, p, rv)
	}
	return results
}

var (
	reviewKey     = ast.StringTerm("review")
	parametersKey = ast.StringTerm("parameters")
)

// budget is the cancellation of one policy's evaluation: a timer trips it
// when the policy's time is up, and the caller's context when it gives up.
// OPA checks it before every expression, so checking is one atomic load or
// two, where a context would cost a lock and a goroutine per evaluation.
type budget struct {
	expired atomic.Bool
	stopped *atomic.Bool // shared by one Evaluate call
}

func (b *budget) Cancel()         { b.expired.Store(true) }
func (b *budget) Cancelled() bool { return b.expired.Load() || b.stopped.Load() }

func (e *Engine) evaluate(ctx context.Context, stopped *atomic.Bool, p *policy, review *ast.Term) (result Result) {
	defer func() {
		// OPA evaluates routes that tenants write; should one of them find
		// a panic in a builtin, it fails this policy, not the hub.
		if v := recover(); v != nil {
			result = Result{Policy: p.name, Err: fmt.Errorf("policy %q: evaluation failed: %v", p.name, v)}
		}
	}()
	if ctx.Err() != nil {
		// The caller has given up; a query too short to notice would still run.
		return Result{Policy: p.name, Err: fmt.Errorf("policy %q: evaluation cancelled: %w", p.name, ctx.Err())}
	}
	// Take the store's read lock before the clock starts: waiting behind
	// SetData is not the policy's time.
	txn, err := e.store.NewTransaction(ctx)
	if err != nil {
		return Result{Policy: p.name, Err: fmt.Errorf("policy %q: %w", p.name, err)}
	}
	defer e.store.Abort(ctx, txn)
	b := &budget{stopped: stopped}
	timer := time.AfterFunc(e.timeout, b.Cancel)
	defer timer.Stop()

	input := ast.NewObject(ast.Item(reviewKey, review), ast.Item(parametersKey, p.parameters))
	rs, err := p.query.Eval(ctx,
		oparego.EvalTransaction(txn),
		oparego.EvalParsedInput(input),
		oparego.EvalExternalCancel(b),
		oparego.EvalMetrics(metrics.NoOp()),
		oparego.EvalGenerateJSON(keepTerm),
	)
	switch {
	case err == nil:
		return Result{Policy: p.name, Violations: violations(rs)}
	case ctx.Err() != nil:
		return Result{Policy: p.name, Err: fmt.Errorf("policy %q: evaluation cancelled: %w", p.name, ctx.Err())}
	case b.expired.Load():
		return Result{Policy: p.name, Err: fmt.Errorf("policy %q: evaluation took longer than %v; make the policy cheaper (avoid large comprehensions or nested iteration): %w",
			p.name, e.timeout, context.DeadlineExceeded)}
	}
	return Result{Policy: p.name, Err: fmt.Errorf("policy %q: %w", p.name, err)}
}

// keepTerm hands the query's result back as OPA's own value, so that a set
// can be told from an array and nothing is converted that is not used.
func keepTerm(t *ast.Term, _ *oparego.EvalContext) (any, error) { return t, nil }

// violations reads the violation set; anything other than a set (or no
// result, when violation is undefined) means no violations.
func violations(rs oparego.ResultSet) []Violation {
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil
	}
	t, _ := rs[0].Expressions[0].Value.(*ast.Term)
	if t == nil {
		return nil
	}
	set, ok := t.Value.(ast.Set)
	if !ok || set.Len() == 0 {
		return nil
	}
	out := make([]Violation, 0, set.Len())
	sorted := set.Sorted()
	for i := range sorted.Len() {
		out = append(out, violation(sorted.Elem(i).Value))
	}
	return out
}

var (
	msgKey     = ast.StringTerm("msg")
	detailsKey = ast.StringTerm("details")
)

func violation(v ast.Value) Violation {
	var out Violation
	obj, _ := v.(ast.Object)
	if obj != nil {
		if d := obj.Get(detailsKey); d != nil {
			out.Details = details(d.Value)
		}
		if m := obj.Get(msgKey); m != nil {
			if s, ok := m.Value.(ast.String); ok {
				out.Msg = string(s)
				return out
			}
		}
	}
	out.Msg = renderJSON(v)
	return out
}

func details(v ast.Value) map[string]any {
	x, err := ast.JSON(v)
	if err != nil {
		return map[string]any{"value": v.String()}
	}
	if m, ok := x.(map[string]any); ok {
		return m
	}
	return map[string]any{"value": x}
}

func renderJSON(v ast.Value) string {
	x, err := ast.JSON(v)
	if err != nil {
		return v.String()
	}
	b, err := json.Marshal(x)
	if err != nil {
		return v.String()
	}
	return string(b)
}

var (
	objectKey    = ast.StringTerm("object")
	oldObjectKey = ast.StringTerm("oldObject")
	operationKey = ast.StringTerm("operation")
	userInfoKey  = ast.StringTerm("userInfo")
	clusterKey   = ast.StringTerm("cluster")
	tenantKey    = ast.StringTerm("tenant")
	kindKey      = ast.StringTerm("kind")
	groupKey     = ast.StringTerm("group")
	versionKey   = ast.StringTerm("version")
)

// value converts the review to input.review, once for all policies.
func (r *Review) value() (*ast.Term, error) {
	object, err := toValue(r.Object)
	if err != nil {
		return nil, fmt.Errorf("review.object: %w", err)
	}
	oldObject, err := toValue(r.OldObject)
	if err != nil {
		return nil, fmt.Errorf("review.oldObject: %w", err)
	}
	userInfo, err := toValue(r.UserInfo)
	if err != nil {
		return nil, fmt.Errorf("review.userInfo: %w", err)
	}
	if isNull(userInfo) {
		userInfo = ast.NewObject()
	}

	review := ast.NewObject(
		ast.Item(objectKey, ast.NewTerm(object)),
		ast.Item(operationKey, ast.StringTerm(r.Operation)),
		ast.Item(userInfoKey, ast.NewTerm(userInfo)),
		ast.Item(clusterKey, ast.StringTerm(r.Cluster)),
		ast.Item(tenantKey, ast.StringTerm(r.Tenant)),
		ast.Item(kindKey, ast.ObjectTerm(
			ast.Item(groupKey, ast.StringTerm(r.Kind.Group)),
			ast.Item(versionKey, ast.StringTerm(r.Kind.Version)),
			ast.Item(kindKey, ast.StringTerm(r.Kind.Kind)),
		)),
	)
	if !isNull(oldObject) {
		review.Insert(oldObjectKey, ast.NewTerm(oldObject))
	}
	return ast.NewTerm(review), nil
}

func isNull(v ast.Value) bool {
	_, null := v.(ast.Null)
	return null
}
