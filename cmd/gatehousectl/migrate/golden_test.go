package migrate

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the converter's output")

// sharedGateway is the Gateway every test case attaches to (see
// testdata/expectations.yaml).
var sharedGateway = types.NamespacedName{Namespace: "gateway-system", Name: "shared"}

// testCase is one file of testdata/ingress: Ingresses, the Services they
// name, and the options from its "# migrate:" line.
type testCase struct {
	name      string
	ingresses []networkingv1.Ingress
	services  map[types.NamespacedName]*corev1.Service
	opts      Options
}

func loadCases(t *testing.T) []testCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "ingress", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases in testdata/ingress: %v", err)
	}
	var cases []testCase
	for _, f := range files {
		cases = append(cases, loadCase(t, f))
	}
	return cases
}

func loadCase(t *testing.T, file string) testCase {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tc := testCase{name: filepath.Base(file), services: map[types.NamespacedName]*corev1.Service{}, opts: Options{Gateway: sharedGateway}}
	for _, line := range strings.Split(string(data), "\n") {
		opts, ok := strings.CutPrefix(line, "# migrate:")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(opts) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "ingressClass":
				tc.opts.IngressClass = v
			case "sectionName":
				tc.opts.SectionName = v
			default:
				t.Fatalf("%s: unknown option %q", file, k)
			}
		}
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		switch meta.Kind {
		case "":
			continue // comments only
		case "Ingress":
			var ing networkingv1.Ingress
			if err := yaml.UnmarshalStrict(doc, &ing); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			tc.ingresses = append(tc.ingresses, ing)
		case "Service":
			var svc corev1.Service
			if err := yaml.UnmarshalStrict(doc, &svc); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			tc.services[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = &svc
		default:
			t.Fatalf("%s: unexpected kind %q", file, meta.Kind)
		}
	}
	return tc
}

func (tc testCase) convert() Result {
	return Convert(tc.ingresses, tc.services, tc.opts)
}

// TestGolden compares the YAML of every test case with testdata/golden; run
// with -update to regenerate after an intended change and review the diff.
func TestGolden(t *testing.T) {
	for _, tc := range loadCases(t) {
		t.Run(strings.TrimSuffix(tc.name, ".yaml"), func(t *testing.T) {
			var got bytes.Buffer
			if err := WriteYAML(&got, tc.convert()); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", tc.name)
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run the test with -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("output differs from %s (run with -update and review the diff):\n%s", golden, lineDiff(string(want), got.String()))
			}
		})
	}
}

// lineDiff shows the first differing line of two texts with some context.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, wl, gl)
		}
	}
	return ""
}
