// Package manifest reads the YAML files people hand to gatehousectl: one or
// more documents separated by "---", each an object or a List of objects
// (what `kubectl get -o yaml` prints), into typed API objects.
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Document is one object of a file: its apiVersion and kind (empty when
// the document names none), and the object as JSON.
type Document struct {
	APIVersion string
	Kind       string
	// Index is the object's position in the file, from 0, for messages.
	Index int
	JSON  []byte
}

// ReadFile reads every object of a YAML or JSON file.
func ReadFile(path string) ([]Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	docs, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return docs, nil
}

// Read reads every object of a YAML or JSON stream. Empty documents are
// skipped; the items of a List come out as objects of their own.
func Read(r io.Reader) ([]Document, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []Document
	for n := 0; ; n++ {
		raw, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n+1, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n+1, err)
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue // only comments
		}
		if out, err = appendObjects(out, js); err != nil {
			return nil, fmt.Errorf("document %d: %w", n+1, err)
		}
	}
}

type header struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

func appendObjects(out []Document, js []byte) ([]Document, error) {
	var h header
	if err := json.Unmarshal(js, &h); err != nil {
		return nil, fmt.Errorf("not an object: %w", err)
	}
	if h.Kind == "List" || (h.Items != nil && strings.HasSuffix(h.Kind, "List")) {
		for _, item := range h.Items {
			var err error
			if out, err = appendObjects(out, item); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return append(out, Document{APIVersion: h.APIVersion, Kind: h.Kind, Index: len(out), JSON: js}), nil
}

// Into decodes the document into obj, refusing fields obj does not have, so
// that a misspelt field is an error rather than silently ignored.
func (d Document) Into(obj any) error {
	if err := yaml.UnmarshalStrict(d.JSON, obj); err != nil {
		return fmt.Errorf("%s #%d: %w", d.Kind, d.Index+1, err)
	}
	return nil
}
