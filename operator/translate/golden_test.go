package translate_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current output")

// TestGolden translates every testdata/<case>.in.yaml and compares the result
// with testdata/<case>.out.yaml. Run with -update to accept a new output, and
// review the diff.
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no golden cases in testdata/")
	}
	for _, in := range cases {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			input, err := decodeInput(data)
			if err != nil {
				t.Fatalf("decoding %s: %v", in, err)
			}
			got := render(t, translate.Translate(input))
			if again := render(t, translate.Translate(input)); !bytes.Equal(got, again) {
				t.Fatal("two translations of the same input differ")
			}
			// The hub translates the objects of its caches, not copies.
			if pristine, _ := decodeInput(data); !equality.Semantic.DeepEqual(pristine, withoutSeams(input)) {
				t.Fatal("translation changed its input")
			}
			outPath := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(outPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatalf("reading %s (run with -update to create it): %v", outPath, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update and review the diff):\n%s", outPath, diffLines(string(want), string(got)))
			}
		})
	}
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(corev1.AddToScheme(s))
	utilruntime.Must(discoveryv1.AddToScheme(s))
	utilruntime.Must(gwv1.Install(s))
	utilruntime.Must(gwv1beta1.Install(s))
	return s
}()

// withoutSeams is the objects of an input, without the authorizer and
// sources that decodeInput does not set.
func withoutSeams(in translate.Input) translate.Input {
	in.Authorizer, in.Owners, in.Certificates = nil, nil, nil
	return in
}

// decodeInput reads a multi-document YAML file of Kubernetes objects.
func decodeInput(data []byte) (translate.Input, error) {
	var in translate.Input
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := docs.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return in, nil
			}
			return in, err
		}
		if onlyComments(doc) {
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return in, fmt.Errorf("document %d: %w", i, err)
		}
		switch o := obj.(type) {
		case *gwv1.GatewayClass:
			in.GatewayClasses = append(in.GatewayClasses, o)
		case *gwv1.Gateway:
			in.Gateways = append(in.Gateways, o)
		case *gwv1.ListenerSet:
			in.ListenerSets = append(in.ListenerSets, o)
		case *gwv1.HTTPRoute:
			in.HTTPRoutes = append(in.HTTPRoutes, o)
		case *gwv1.GRPCRoute:
			in.GRPCRoutes = append(in.GRPCRoutes, o)
		case *gwv1.TLSRoute:
			in.TLSRoutes = append(in.TLSRoutes, o)
		case *gwv1.TCPRoute:
			in.TCPRoutes = append(in.TCPRoutes, o)
		case *gwv1.UDPRoute:
			in.UDPRoutes = append(in.UDPRoutes, o)
		case *gwv1.ReferenceGrant:
			in.ReferenceGrants = append(in.ReferenceGrants, o)
		case *gwv1beta1.ReferenceGrant:
			in.ReferenceGrantsV1B = append(in.ReferenceGrantsV1B, o)
		case *gwv1.BackendTLSPolicy:
			in.BackendTLSPolicies = append(in.BackendTLSPolicies, o)
		case *corev1.Namespace:
			in.Namespaces = append(in.Namespaces, o)
		case *corev1.Service:
			in.Services = append(in.Services, o)
		case *discoveryv1.EndpointSlice:
			in.EndpointSlices = append(in.EndpointSlices, o)
		case *corev1.Secret:
			// The API server folds stringData into data.
			for k, v := range o.StringData {
				if o.Data == nil {
					o.Data = map[string][]byte{}
				}
				o.Data[k] = []byte(v)
			}
			o.StringData = nil
			in.Secrets = append(in.Secrets, o)
		case *corev1.ConfigMap:
			in.ConfigMaps = append(in.ConfigMaps, o)
		default:
			return in, fmt.Errorf("document %d: kind %T is not an input of translate", i, obj)
		}
	}
}

// render writes an Output as YAML with sorted keys; route tables go through
// protojson so that their field names are the schema's.
func render(t testing.TB, out translate.Output) []byte {
	t.Helper()
	doc := map[string]any{}
	add := func(section string, m map[string]any) {
		if len(m) > 0 {
			doc[section] = m
		}
	}
	toMap := func(n int, each func(func(k string, v any))) map[string]any {
		m := make(map[string]any, n)
		each(func(k string, v any) { m[k] = v })
		return m
	}
	add("gatewayClasses", toMap(len(out.GatewayClasses), func(put func(string, any)) {
		for k, v := range out.GatewayClasses {
			put(k, v)
		}
	}))
	add("gateways", toMap(len(out.Gateways), func(put func(string, any)) {
		for k, v := range out.Gateways {
			put(k.String(), v)
		}
	}))
	add("listenerSets", toMap(len(out.ListenerSets), func(put func(string, any)) {
		for k, v := range out.ListenerSets {
			put(k.String(), v)
		}
	}))
	add("httpRoutes", toMap(len(out.HTTPRoutes), func(put func(string, any)) {
		for k, v := range out.HTTPRoutes {
			put(k.String(), v)
		}
	}))
	for section, routes := range map[string]map[types.NamespacedName][]gwv1.RouteParentStatus{
		"grpcRoutes": out.GRPCRoutes, "tlsRoutes": out.TLSRoutes, "tcpRoutes": out.TCPRoutes, "udpRoutes": out.UDPRoutes,
	} {
		add(section, toMap(len(routes), func(put func(string, any)) {
			for k, v := range routes {
				put(k.String(), v)
			}
		}))
	}
	add("backendTLSPolicies", toMap(len(out.BackendTLSPolicies), func(put func(string, any)) {
		for k, v := range out.BackendTLSPolicies {
			put(k.String(), v)
		}
	}))
	add("parameters", toMap(len(out.Parameters), func(put func(string, any)) {
		for k, v := range out.Parameters {
			put(k, map[string]any{"mode": v.Mode, "addresses": v.Addresses})
		}
	}))
	add("tables", toMap(len(out.Tables), func(put func(string, any)) {
		for k, v := range out.Tables {
			raw, err := protojson.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var generic any
			if err := json.Unmarshal(raw, &generic); err != nil {
				t.Fatal(err)
			}
			put(k.String(), generic)
		}
	}))
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	// Translate leaves transition times to the status writer.
	dropNullTimes(generic)
	data, err := yaml.Marshal(generic)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func dropNullTimes(v any) {
	switch v := v.(type) {
	case map[string]any:
		if t, ok := v["lastTransitionTime"]; ok && t == nil {
			delete(v, "lastTransitionTime")
		}
		for _, child := range v {
			dropNullTimes(child)
		}
	case []any:
		for _, child := range v {
			dropNullTimes(child)
		}
	}
}

// diffLines shows the first lines that differ, enough to see what changed.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 30; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}

func onlyComments(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return false
		}
	}
	return true
}
