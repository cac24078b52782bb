package migrate

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"
)

// WriteYAML writes the routes as a multi-document YAML stream ready for
// `kubectl apply -f -`, then the Notes as a trailing comment block that starts
// with "# not converted:" and has one "# - " line per Note.
func WriteYAML(w io.Writer, r Result) error {
	var b strings.Builder
	for _, route := range r.Routes {
		doc, err := routeYAML(route)
		if err != nil {
			return fmt.Errorf("HTTPRoute %s/%s: %w", route.Namespace, route.Name, err)
		}
		b.WriteString("---\n")
		b.Write(doc)
	}
	if len(r.Notes) > 0 {
		b.WriteString("# not converted:\n")
		for _, n := range r.Notes {
			b.WriteString("# - " + strings.ReplaceAll(n.String(), "\n", " ") + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// routeYAML renders a route without the empty creationTimestamp and status
// that a plain marshal adds, so the output is what a person would write.
func routeYAML(route any) ([]byte, error) {
	data, err := json.Marshal(route)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	delete(obj, "status")
	if meta, ok := obj["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	return yaml.Marshal(obj)
}
