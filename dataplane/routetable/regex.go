package routetable

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// The regular expressions of a route table (path, header and query
// matches) are one dialect with one compiler, CompileRegex: the hub checks
// a route's expressions with it and the proxy compiles them with it, so
// that what the hub accepts the proxy serves. The dialect is RE2 as Go's
// regexp reads it, anchored on the whole value, within the bounds below.
//
// The bounds keep an expression far from Go's own parser limits (1,000
// levels of nesting, counted with the anchoring around it; repeat counts
// up to 1,000), so that a hub and a proxy built with different Go releases
// still agree, and they bound what one match costs: Go's regexp runs in
// time linear in the input times the program size. Envoy bounds its RE2
// programs the same way (re2.max_program_size, 100 by default, counted in
// RE2's units, which are coarser than Go's instructions).
const (
	// MaxRegexLength is the longest expression, in bytes.
	MaxRegexLength = 1024
	// MaxRegexNesting is how deep an expression's syntax tree may be: each
	// group, repetition or alternation around a piece is one level.
	MaxRegexNesting = 32
	// MaxRegexProgram is how many instructions the compiled, anchored
	// program may have.
	MaxRegexProgram = 1000
	// MaxRegexWork bounds what one request's matching may spend on
	// regexes, counted as bytes matched times program instructions (Go's
	// regexp has no DFA: its worst case is about 10 ns per unit). A
	// regex that would take a request past it does not match. 1 Mi units
	// is a 16 KiB path against a 64-instruction program; a typical path
	// regex against a typical path costs a few thousand.
	MaxRegexWork = 1 << 20
)

// Regex is a compiled expression of the dialect.
type Regex struct {
	*regexp.Regexp
	// Program is the number of instructions of the anchored program, what
	// one byte of input costs at worst.
	Program int
}

// MatchWithin reports whether s matches, charging len(s) times the
// program's size to *work. When that would pass MaxRegexWork, s does not
// match and over is true: an expression and a value long enough to cost
// milliseconds are refused their match rather than the CPU.
func (re *Regex) MatchWithin(s string, work *int) (matched, over bool) {
	*work += len(s) * re.Program
	if *work > MaxRegexWork {
		return false, true
	}
	return re.MatchString(s), false
}

// regexSyntaxHelp is where a tenant reads the syntax.
const regexSyntaxHelp = "write it in RE2 syntax (https://github.com/google/re2/wiki/Syntax)"

// CompileRegex compiles a route table's regular expression to match whole
// values, or says what is wrong with it and what to write instead. The
// error quotes the start of the expression.
func CompileRegex(expr string) (*Regex, error) {
	re, err := compileRegex(expr)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", shorten(expr), err)
	}
	return re, nil
}

func compileRegex(expr string) (*Regex, error) {
	if len(expr) > MaxRegexLength {
		return nil, fmt.Errorf("it is %d bytes long and at most %d are allowed: shorten it", len(expr), MaxRegexLength)
	}
	if !utf8.ValidString(expr) {
		return nil, fmt.Errorf("it is not valid UTF-8: %s", regexSyntaxHelp)
	}
	// Parsed alone first: an expression such as "a)|(b" parses only once
	// anchored, and would then escape its anchors.
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, syntaxError(expr, err)
	}
	if d := nesting(tree); d > MaxRegexNesting {
		return nil, fmt.Errorf("it nests %d levels deep and at most %d are allowed: use fewer nested groups and repetitions", d, MaxRegexNesting)
	}
	anchored := "^(?:" + expr + ")$"
	tree, err = syntax.Parse(anchored, syntax.Perl)
	if err != nil {
		return nil, syntaxError(expr, err)
	}
	prog, err := syntax.Compile(tree.Simplify())
	if err != nil {
		return nil, syntaxError(expr, err)
	}
	if n := len(prog.Inst); n > MaxRegexProgram {
		return nil, fmt.Errorf("it compiles to %d instructions and at most %d are allowed: use smaller repeat counts ({n,m}) and fewer alternatives", n, MaxRegexProgram)
	}
	re, err := regexp.Compile(anchored)
	if err != nil {
		return nil, syntaxError(expr, err)
	}
	return &Regex{Regexp: re, Program: len(prog.Inst)}, nil
}

// nesting is the height of an expression's syntax tree.
func nesting(re *syntax.Regexp) int {
	d := 0
	for _, s := range re.Sub {
		d = max(d, nesting(s))
	}
	return d + 1
}

// syntaxError says what the parser found, and where when that is not the
// whole expression (which CompileRegex quotes already).
func syntaxError(expr string, err error) error {
	se, ok := err.(*syntax.Error)
	switch {
	case !ok:
		return fmt.Errorf("%v: %s", err, regexSyntaxHelp)
	case se.Expr == expr || se.Expr == "":
		return fmt.Errorf("%s: %s", se.Code, regexSyntaxHelp)
	}
	return fmt.Errorf("%s at %q: %s", se.Code, shorten(se.Expr), regexSyntaxHelp)
}

// shorten cuts what an error quotes of an expression.
func shorten(expr string) string {
	if len(expr) > 48 {
		return strings.ToValidUTF8(expr[:48], "") + "…"
	}
	return expr
}
