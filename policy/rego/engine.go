// Package rego evaluates the platform team's RoutePolicies: Rego v1 modules
// in Gatekeeper's convention, each defining a set "violation", run against
// one route at a time with the fleet's tenants and gateways under
// data.gatehouse.
//
// Each module is compiled on its own, so two policies may share a package
// name, but all of them read the one data store the Engine owns. Prepared
// queries read that store when they run, so SetData never recompiles.
package rego

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// DefaultTimeout bounds one policy's evaluation when Options.Timeout is zero.
const DefaultTimeout = 100 * time.Millisecond

// Options configures an Engine.
type Options struct {
	// Timeout bounds the evaluation of each policy; zero means DefaultTimeout.
	Timeout time.Duration
}

// Module is one policy: the RoutePolicy's name, its Rego source and its
// parameters as JSON (nil means {}).
type Module struct {
	Name       string
	Source     string
	Parameters []byte
}

// Engine holds the loaded policies and the fleet data they read. Its
// methods are safe for concurrent use.
type Engine struct {
	timeout time.Duration
	caps    *ast.Capabilities
	store   storage.Store

	// set is swapped whole by Load; Evaluate reads it with one atomic load,
	// so an evaluation in flight keeps the set it started with.
	set atomic.Pointer[policySet]

	loadMu sync.Mutex // serialises Load
	// failed remembers the last Load's broken modules so that loading them
	// again unchanged does not recompile them just to fail the same way.
	failed map[string]*failure

	compiles atomic.Int64 // modules compiled so far; tests use it to see reuse
}

type policySet struct {
	policies []*policy // sorted by name
}

// failure is a module that did not compile, with the inputs that made it fail.
type failure struct {
	source string
	params []byte
	err    error
}

// New returns an Engine with no policies and empty data.
func New(opts Options) *Engine {
	e := &Engine{
		timeout: opts.Timeout,
		caps:    capabilities(),
		// AST values on read: policies then walk the data without converting
		// it from Go values on every evaluation.
		store:  inmem.NewWithOpts(inmem.OptReturnASTValuesOnRead(true)),
		failed: map[string]*failure{},
	}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	e.set.Store(&policySet{})
	return e
}

// Load replaces the policy set with mods. Only modules whose source or
// parameters changed since the last Load are compiled again. The new set
// replaces the old one at once; evaluations already running finish with the
// old one. The result holds, by name, why each module that is left out of
// the set failed to compile; it is nil when all of them compiled.
func (e *Engine) Load(mods []Module) map[string]error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()

	current := map[string]*policy{}
	for _, p := range e.set.Load().policies {
		current[p.name] = p
	}
	counts := map[string]int{}
	for _, m := range mods {
		counts[m.Name]++
	}

	errs := map[string]error{}
	failed := map[string]*failure{}
	next := make([]*policy, 0, len(mods))
	for _, m := range mods {
		if err := checkName(m.Name, counts[m.Name]); err != nil {
			errs[m.Name] = err
			continue
		}
		if p := current[m.Name]; p != nil && p.source == m.Source && bytes.Equal(p.params, m.Parameters) {
			next = append(next, p)
			continue
		}
		if f := e.failed[m.Name]; f != nil && f.source == m.Source && bytes.Equal(f.params, m.Parameters) {
			errs[m.Name], failed[m.Name] = f.err, f
			continue
		}
		p, err := e.prepare(m)
		if err != nil {
			errs[m.Name] = err
			failed[m.Name] = &failure{source: m.Source, params: bytes.Clone(m.Parameters), err: err}
			continue
		}
		next = append(next, p)
	}
	slices.SortFunc(next, func(a, b *policy) int { return strings.Compare(a.name, b.name) })

	e.set.Store(&policySet{policies: next})
	e.failed = failed
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func checkName(name string, count int) error {
	switch {
	case name == "":
		return errors.New("policy has no name")
	case count > 1:
		return fmt.Errorf("policy %q is given %d times; policy names must be unique", name, count)
	}
	return nil
}

// Policies returns the names of the loaded policies, sorted.
func (e *Engine) Policies() []string {
	set := e.set.Load()
	names := make([]string, len(set.policies))
	for i, p := range set.policies {
		names[i] = p.name
	}
	return names
}

// SetData replaces data.gatehouse.<key> with value: JSON-like Go values
// (maps, slices, strings, numbers, bools, nil), json.RawMessage, or anything
// that marshals to JSON. Evaluations that start after SetData returns see
// the new value; each policy reads the data as it starts, so an Evaluate
// running meanwhile may show some policies the old value and some the new.
func (e *Engine) SetData(ctx context.Context, key string, value any) error {
	if key == "" {
		return errors.New("data key is empty; use e.g. \"tenants\" or \"gateways\"")
	}
	v, err := toValue(value)
	if err != nil {
		return fmt.Errorf("data.gatehouse.%s: %w", key, err)
	}
	txn, err := e.store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return err
	}
	if err := writeData(ctx, e.store, txn, storage.Path{"gatehouse", key}, v); err != nil {
		e.store.Abort(ctx, txn)
		return fmt.Errorf("data.gatehouse.%s: %w", key, err)
	}
	return e.store.Commit(ctx, txn)
}

func writeData(ctx context.Context, store storage.Store, txn storage.Transaction, path storage.Path, v ast.Value) error {
	if err := storage.MakeDir(ctx, store, txn, path[:len(path)-1]); err != nil {
		return err
	}
	return store.Write(ctx, txn, storage.AddOp, path, v)
}
