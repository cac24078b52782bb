package rego

import (
	"bytes"
	"encoding/json"
	"encoding/json/jsontext"
	"errors"
	"fmt"
	"io"

	"github.com/open-policy-agent/opa/v1/ast"
)

// toValue converts a Go value to OPA's. JSON-like values are converted
// directly; json.RawMessage is parsed; anything else, typed API objects
// above all, is marshalled to JSON and parsed, which is several times
// cheaper than OPA's own conversion of a typed value (a round trip through
// map[string]any). nil, and a nil pointer, become null.
func toValue(x any) (ast.Value, error) {
	switch x := x.(type) {
	case nil:
		return ast.NullValue, nil
	case ast.Value:
		return x, nil
	case json.RawMessage:
		return parseJSON(x)
	case map[string]any, []any, string, bool, float64, int, int64, json.Number:
		return ast.InterfaceToValue(x)
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, err
	}
	return parseJSON(b)
}

// parseJSON builds the value straight from JSON tokens, without the
// map[string]any in between.
func parseJSON(b []byte) (ast.Value, error) {
	d := decoder{dec: jsontext.NewDecoder(bytes.NewReader(b)), strings: map[string]*ast.Term{}}
	t, err := d.term()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := d.dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: more than one value")
	}
	return t.Value, nil
}

type decoder struct {
	dec *jsontext.Decoder
	// strings holds each distinct string once: an API object repeats its
	// keys ("name", "value", "type") and many values throughout.
	strings map[string]*ast.Term
	buf     []byte
}

func (d *decoder) term() (*ast.Term, error) {
	switch d.dec.PeekKind() {
	case '"':
		return d.string()
	case '[':
		return d.array()
	case '{':
		return d.object()
	}
	tok, err := d.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case 'n':
		return ast.NullTerm(), nil
	case 'f', 't':
		return ast.InternedTerm(tok.Bool()), nil
	case '0':
		return ast.NumberTerm(json.Number(tok.String())), nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok.Kind())
}

func (d *decoder) string() (*ast.Term, error) {
	raw, err := d.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		if d.buf, err = jsontext.AppendUnquote(d.buf[:0], raw); err != nil {
			return nil, err
		}
		s = d.buf
	}
	if t, ok := d.strings[string(s)]; ok {
		return t, nil
	}
	t := ast.StringTerm(string(s))
	d.strings[string(t.Value.(ast.String))] = t
	return t, nil
}

func (d *decoder) array() (*ast.Term, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, err
	}
	var elems []*ast.Term
	for d.dec.PeekKind() != ']' {
		t, err := d.term()
		if err != nil {
			return nil, err
		}
		elems = append(elems, t)
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, err
	}
	return ast.ArrayTerm(elems...), nil
}

func (d *decoder) object() (*ast.Term, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, err
	}
	var items [][2]*ast.Term
	for d.dec.PeekKind() != '}' {
		// The decoder has checked that a key is a string.
		k, err := d.string()
		if err != nil {
			return nil, err
		}
		v, err := d.term()
		if err != nil {
			return nil, err
		}
		items = append(items, ast.Item(k, v))
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, err
	}
	return ast.ObjectTerm(items...), nil
}
