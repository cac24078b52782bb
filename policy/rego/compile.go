package rego

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	oparego "github.com/open-policy-agent/opa/v1/rego"
)

// forbiddenBuiltins are left out of the policies' capabilities: policies
// run in the hub on routes that tenants write, so they must not reach the
// network or learn about the hub itself. Each value says why, for the error.
var forbiddenBuiltins = map[string]string{
	"http.send":          "policies may not reach the network",
	"net.lookup_ip_addr": "policies may not resolve names",
	"opa.runtime":        "policies may not read the hub's environment or configuration",
	// A JSON schema's $ref is loaded by these: a file:// reference reads
	// the hub's files (allow_net only stops http:// ones).
	"json.match_schema":  "a schema's $ref may read the hub's files",
	"json.verify_schema": "a schema's $ref may read the hub's files",
}

// capabilities are this OPA version's, less forbiddenBuiltins, with no host
// allowed for network access.
func capabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion(ast.CapabilitiesRegoVersion(ast.RegoV1))
	builtins := make([]*ast.Builtin, 0, len(c.Builtins))
	for _, b := range c.Builtins {
		if _, forbidden := forbiddenBuiltins[b.Name]; !forbidden {
			builtins = append(builtins, b)
		}
	}
	c.Builtins = builtins
	c.AllowNet = []string{}
	return c
}

// policy is a compiled module, ready to evaluate.
type policy struct {
	name   string
	source string
	params []byte // as given, to tell whether a later Load changed them

	parameters *ast.Term // input.parameters, converted once
	query      oparego.PreparedEvalQuery
}

var violationVar = ast.Var("violation")

// prepare compiles m into a query for data.<its package>.violation over
// the engine's store.
func (e *Engine) prepare(m Module) (*policy, error) {
	e.compiles.Add(1)
	file := m.Name + ".rego"
	mod, err := ast.ParseModuleWithOpts(file, m.Source, ast.ParserOptions{
		RegoVersion:  ast.RegoV1,
		Capabilities: e.caps,
	})
	if err != nil {
		return nil, compileError(err)
	}
	if err := checkModule(mod); err != nil {
		return nil, err
	}
	params, err := parameters(m.Parameters)
	if err != nil {
		return nil, fmt.Errorf("%s: parameters: %w", file, err)
	}

	query := ast.NewBody(ast.NewExpr(ast.NewTerm(mod.Package.Path.Append(ast.StringTerm(string(violationVar))))))
	pq, err := oparego.New(
		oparego.ParsedModule(mod),
		oparego.ParsedQuery(query),
		oparego.Store(e.store),
		oparego.Capabilities(e.caps),
		oparego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(context.Background())
	if err != nil {
		return nil, compileError(err)
	}

	return &policy{
		name:       m.Name,
		source:     m.Source,
		params:     bytes.Clone(m.Parameters),
		parameters: ast.NewTerm(params),
		query:      pq,
	}, nil
}

// checkModule rejects what the engine must not load: a package under
// data.gatehouse and a module with no violation rule, which the compiler
// accepts, and calls of forbidden builtins, which it rejects only as
// undefined functions.
func checkModule(mod *ast.Module) error {
	var errs ast.Errors
	if path := mod.Package.Path; len(path) > 1 && path[1].Value.Compare(ast.String("gatehouse")) == 0 {
		errs = append(errs, ast.NewError(ast.CompileErr, mod.Package.Location,
			"package %v is reserved: data.gatehouse holds the fleet's tenants and gateways; choose a package outside it, e.g. policies.<name>",
			path))
	}
	errs = append(errs, forbiddenCalls(mod)...)
	if !definesViolation(mod) {
		errs = append(errs, ast.NewError(ast.CompileErr, mod.Package.Location,
			"package %v defines no violation rule; add one, e.g. violation contains {\"msg\": msg} if { ... }",
			mod.Package.Path))
	}
	if len(errs) == 0 {
		return nil
	}
	return compileError(errs)
}

func definesViolation(mod *ast.Module) bool {
	for _, r := range mod.Rules {
		if ref := r.Head.Ref(); len(ref) > 0 && ref[0].Value.Compare(violationVar) == 0 {
			return true
		}
	}
	return false
}

// forbiddenCalls finds every call of a forbidden builtin. The compiler would
// reject them too, as undefined functions, which would not tell the author why.
func forbiddenCalls(mod *ast.Module) ast.Errors {
	var errs ast.Errors
	check := func(op *ast.Term) {
		name := op.String()
		if why, ok := forbiddenBuiltins[name]; ok {
			errs = append(errs, ast.NewError(ast.CompileErr, op.Location,
				"%s is not available to gatehouse policies: %s", name, why))
		}
	}
	ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case *ast.Expr:
			if x.IsCall() {
				check(x.OperatorTerm())
			}
		case ast.Call:
			check(x[0])
		}
		return false
	}).Walk(mod)
	return errs
}

// parameters converts a policy's parameters, nil meaning an empty object.
func parameters(raw []byte) (ast.Value, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ast.NewObject(), nil
	}
	return parseJSON(raw)
}

// compileError renders OPA's errors one per line as file:line:col: code:
// message, followed by any detail OPA gives (for parse errors, the line with
// a caret under the fault).
func compileError(err error) error {
	var astErrs ast.Errors
	if !errors.As(err, &astErrs) {
		var one *ast.Error
		if !errors.As(err, &one) {
			return err
		}
		astErrs = ast.Errors{one}
	}
	astErrs.Sort()
	var sb strings.Builder
	for i, e := range astErrs {
		if i > 0 {
			sb.WriteByte('\n')
		}
		if loc := e.Location; loc != nil {
			fmt.Fprintf(&sb, "%s:%d:%d: ", loc.File, loc.Row, loc.Col)
		}
		sb.WriteString(e.Code)
		sb.WriteString(": ")
		sb.WriteString(e.Message)
		if e.Details != nil {
			for _, line := range e.Details.Lines() {
				sb.WriteString("\n\t")
				sb.WriteString(line)
			}
		}
	}
	return errors.New(sb.String())
}
