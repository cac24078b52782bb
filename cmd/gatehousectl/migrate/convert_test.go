package migrate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// parse reads a test case from YAML written inline in a test.
func parse(t *testing.T, docs string) testCase {
	t.Helper()
	file := filepath.Join(t.TempDir(), "case.yaml")
	if err := os.WriteFile(file, []byte(docs), 0o644); err != nil {
		t.Fatal(err)
	}
	return loadCase(t, file)
}

// ingressYAML is an Ingress in namespace ns with one host and the given
// annotations and paths (YAML list items, indented by 6).
func ingressYAML(ns, name, host string, annotations map[string]string, paths string) string {
	var ann strings.Builder
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&ann, "    %s: %q\n", k, annotations[k])
	}
	annBlock := ""
	if ann.Len() > 0 {
		annBlock = "  annotations:\n" + ann.String()
	}
	return fmt.Sprintf(`---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: %s
  namespace: %s
%sspec:
  rules:
  - host: %s
    http:
      paths:
%s`, name, ns, annBlock, host, paths)
}

func pathYAML(path, pathType, service string, port int) string {
	return fmt.Sprintf(`      - path: %q
        pathType: %s
        backend:
          service:
            name: %s
            port:
              number: %d
`, path, pathType, service, port)
}

// TestOrderDoesNotMatter converts every test case with its Ingresses reversed.
func TestOrderDoesNotMatter(t *testing.T) {
	for _, tc := range loadCases(t) {
		var want, got bytes.Buffer
		if err := WriteYAML(&want, tc.convert()); err != nil {
			t.Fatal(err)
		}
		slices.Reverse(tc.ingresses)
		if err := WriteYAML(&got, tc.convert()); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: output depends on the order of the Ingresses:\n%s", tc.name, lineDiff(want.String(), got.String()))
		}
	}
}

func routeNames(r Result) []string {
	var names []string
	for _, route := range r.Routes {
		names = append(names, route.Namespace+"/"+route.Name)
	}
	return names
}

func TestRouteNames(t *testing.T) {
	long := strings.Repeat("very-long-application-name-", 3) + "web"
	tests := []struct {
		name string
		docs string
		want []string
	}{{
		name: "one host keeps the Ingress name",
		docs: ingressYAML("ns", "web", "web.example.com", nil, pathYAML("/", "Prefix", "web", 80)),
		want: []string{"ns/web"},
	}, {
		name: "a long name is cut and ends in a hash",
		docs: ingressYAML("ns", long, "web.example.com", nil, pathYAML("/", "Prefix", "web", 80)),
		want: []string{"ns/very-long-application-name-very-long-application-name-1a596f42"},
	}, {
		name: "several hosts, one of them a wildcard",
		docs: `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: ns}
spec:
  rules:
  - host: "*.example.com"
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}
  - host: b.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}]}
  - http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: c, port: {number: 80}}}}]}
`,
		want: []string{"ns/app-any-host", "ns/app-b-example-com", "ns/app-wildcard-example-com"},
	}, {
		name: "the same name in two namespaces is no clash",
		docs: ingressYAML("ns", "app", "a.example.com", nil, pathYAML("/", "Prefix", "a", 80)) +
			ingressYAML("other", "app", "b.example.com", nil, pathYAML("/", "Prefix", "b", 80)),
		want: []string{"ns/app", "other/app"},
	}}
	v := schemaValidator(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parse(t, tt.docs).convert()
			if got := routeNames(r); !slices.Equal(got, tt.want) {
				t.Errorf("routes %v, want %v", got, tt.want)
			}
			for _, route := range r.Routes {
				for _, e := range routeErrors(t, v, route) {
					t.Errorf("%s: %s", route.Name, e)
				}
			}
		})
	}
}

func TestClashingNamesAreRenamed(t *testing.T) {
	docs := `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: ns}
spec:
  rules:
  - host: b.c
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}
  - host: d.e
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}
` + ingressYAML("ns", "app-b-c", "x.example.com", nil, pathYAML("/", "Prefix", "x", 80))
	names := routeNames(parse(t, docs).convert())
	if len(names) != 3 {
		t.Fatalf("routes %v, want 3", names)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("route name %s used twice in %v", n, names)
		}
		seen[n] = true
	}
	if !seen["ns/app-d-e"] {
		t.Errorf("routes %v: the route without a clash should keep its name app-d-e", names)
	}
}

func TestLimits(t *testing.T) {
	var same, rewrites strings.Builder
	for i := range 150 {
		same.WriteString(pathYAML(fmt.Sprintf("/p%d", i), "Prefix", "web", 80))
	}
	for i := range 20 {
		rewrites.WriteString(pathYAML(fmt.Sprintf("/r%d(/|$)(.*)", i), "ImplementationSpecific", fmt.Sprintf("svc%d", i%3), 80))
	}
	tests := []struct {
		name       string
		docs       string
		wantRoutes int
		wantRules  int
		wantPaths  int
	}{
		{"150 paths to one Service", ingressYAML("ns", "web", "web.example.com", nil, same.String()), 2, 3, 150},
		{"20 prefix rewrites, one rule each", ingressYAML("ns", "rw", "rw.example.com", map[string]string{nginxPrefix + "rewrite-target": "/$2"}, rewrites.String()), 2, 20, 20},
	}
	v := schemaValidator(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parse(t, tt.docs).convert()
			rules, paths := 0, 0
			for _, route := range r.Routes {
				for _, e := range routeErrors(t, v, route) {
					t.Errorf("%s: %s", route.Name, e)
				}
				for _, rule := range route.Spec.Rules {
					rules++
					paths += len(rule.Matches)
				}
			}
			if len(r.Routes) != tt.wantRoutes || rules != tt.wantRules || paths != tt.wantPaths {
				t.Errorf("%d routes, %d rules, %d matches; want %d, %d, %d", len(r.Routes), rules, paths, tt.wantRoutes, tt.wantRules, tt.wantPaths)
			}
		})
	}
}

// TestNotes covers what cannot be converted: each case must produce a Note
// on the field with the message, and the routes it names.
func TestNotes(t *testing.T) {
	primary := ingressYAML("ns", "web", "web.example.com", nil, pathYAML("/", "Prefix", "web", 80))
	canary := func(ns, name string, ann map[string]string) string {
		a := map[string]string{nginxPrefix + "canary": "true"}
		for k, v := range ann {
			a[k] = v
		}
		return ingressYAML(ns, name, "web.example.com", a, pathYAML("/", "Prefix", "web-canary", 80))
	}
	tests := []struct {
		name        string
		docs        string
		opts        Options
		wantField   string
		wantMessage string
		wantRoutes  []string
	}{{
		name:        "rewrite with a capture group of an unknown shape",
		docs:        ingressYAML("ns", "rw", "rw.example.com", map[string]string{nginxPrefix + "rewrite-target": "/x/$1"}, pathYAML(`/items/(\d+)/details`, "ImplementationSpecific", "items", 80)),
		wantField:   "spec.rules[0].http.paths[0].path",
		wantMessage: "cannot be expressed in an HTTPRoute",
	}, {
		name:        "prefix rewrite onto a path that is not a prefix",
		docs:        ingressYAML("ns", "rw", "rw.example.com", map[string]string{nginxPrefix + "rewrite-target": "/$1"}, pathYAML("/api", "Prefix", "api", 80)),
		wantField:   annotationField(nginxPrefix + "rewrite-target"),
		wantMessage: "only <prefix>/$n",
	}, {
		name:        "regular expression that is not RE2",
		docs:        ingressYAML("ns", "re", "re.example.com", map[string]string{nginxPrefix + "use-regex": "true"}, pathYAML("/(?!admin).*", "ImplementationSpecific", "web", 80)),
		wantField:   "spec.rules[0].http.paths[0].path",
		wantMessage: "is not one Gatehouse serves",
	}, {
		name:        "path HTTPRoute refuses",
		docs:        ingressYAML("ns", "bad", "bad.example.com", nil, pathYAML("/a#b", "Prefix", "web", 80)),
		wantField:   "spec.rules[0].http.paths[0].path",
		wantMessage: "is not a path HTTPRoute accepts",
	}, {
		name:        "port name without the Service",
		docs:        strings.Replace(primary, "number: 80", "name: http", 1),
		wantField:   "spec.rules[0].http.paths[0].backend.service.port.name",
		wantMessage: "get HTTP 500",
		wantRoutes:  []string{"ns/web"},
	}, {
		name:        "canary without primary",
		docs:        canary("ns", "web-canary", map[string]string{nginxPrefix + "canary-weight": "10"}),
		wantField:   "spec.rules[0].http.paths[0]",
		wantMessage: "nothing to split",
	}, {
		name:        "canary next to a primary of another namespace",
		docs:        primary + canary("other", "web-canary", map[string]string{nginxPrefix + "canary-weight": "10"}),
		wantField:   "spec.rules[0].http.paths[0]",
		wantMessage: "in another namespace",
		wantRoutes:  []string{"ns/web"},
	}, {
		name:        "second canary of a path",
		docs:        primary + canary("ns", "a-canary", map[string]string{nginxPrefix + "canary-weight": "10"}) + canary("ns", "b-canary", map[string]string{nginxPrefix + "canary-weight": "20"}),
		wantField:   "spec.rules[0].http.paths[0]",
		wantMessage: "supports one canary per path",
		wantRoutes:  []string{"ns/web"},
	}, {
		name:        "canary by cookie",
		docs:        primary + canary("ns", "web-canary", map[string]string{nginxPrefix + "canary-by-cookie": "beta"}),
		wantField:   annotationField(nginxPrefix + "canary-by-cookie"),
		wantMessage: "use canary-by-header",
		wantRoutes:  []string{"ns/web"},
	}, {
		name:        "canary weight that is not a number",
		docs:        primary + canary("ns", "web-canary", map[string]string{nginxPrefix + "canary-weight": "ten"}),
		wantField:   annotationField(nginxPrefix + "canary-weight"),
		wantMessage: "not a non-negative integer",
		wantRoutes:  []string{"ns/web"},
	}, {
		name:        "canary annotation on a primary",
		docs:        ingressYAML("ns", "web", "web.example.com", map[string]string{nginxPrefix + "canary-weight": "10"}, pathYAML("/", "Prefix", "web", 80)),
		wantField:   annotationField(nginxPrefix + "canary-weight"),
		wantMessage: "not a canary",
		wantRoutes:  []string{"ns/web"},
	}, {
		name:        "duplicate path",
		docs:        ingressYAML("ns", "dup", "dup.example.com", nil, pathYAML("/a", "Prefix", "one", 80)+pathYAML("/a", "Prefix", "two", 80)),
		wantField:   "spec.rules[0].http.paths[1]",
		wantMessage: "matches the same requests as spec.rules[0].http.paths[0]",
		wantRoutes:  []string{"ns/dup"},
	}, {
		name:        "redirect URL with a query",
		docs:        ingressYAML("ns", "r", "r.example.com", map[string]string{nginxPrefix + "permanent-redirect": "https://www.example.com/x?utm=1"}, pathYAML("/", "Prefix", "web", 80)),
		wantField:   annotationField(nginxPrefix + "permanent-redirect"),
		wantMessage: "query and fragment",
		wantRoutes:  []string{"ns/r"},
	}, {
		name:        "redirect status HTTPRoute does not have",
		docs:        ingressYAML("ns", "r", "r.example.com", map[string]string{nginxPrefix + "permanent-redirect": "https://www.example.com", nginxPrefix + "permanent-redirect-code": "399"}, pathYAML("/", "Prefix", "web", 80)),
		wantField:   annotationField(nginxPrefix + "permanent-redirect-code"),
		wantMessage: "used 301",
		wantRoutes:  []string{"ns/r"},
	}, {
		name:        "Ingress without class under a class filter",
		docs:        primary,
		opts:        Options{IngressClass: "nginx"},
		wantField:   "spec.ingressClassName",
		wantMessage: "default class",
	}, {
		name: "host without paths",
		docs: `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: empty, namespace: ns}
spec:
  rules:
  - host: empty.example.com
`,
		wantField:   "spec.rules[0]",
		wantMessage: "got no route",
	}, {
		name:        "CORS origin HTTPRoute refuses",
		docs:        ingressYAML("ns", "c", "c.example.com", map[string]string{nginxPrefix + "enable-cors": "true", nginxPrefix + "cors-allow-origin": "https://ok.example.com, not an origin"}, pathYAML("/", "Prefix", "web", 80)),
		wantField:   annotationField(nginxPrefix + "cors-allow-origin"),
		wantMessage: `"not an origin"`,
		wantRoutes:  []string{"ns/c"},
	}, {
		name:        "rewrite together with a redirect",
		docs:        ingressYAML("ns", "r", "r.example.com", map[string]string{nginxPrefix + "permanent-redirect": "https://www.example.com", nginxPrefix + "rewrite-target": "/"}, pathYAML("/", "Prefix", "web", 80)),
		wantField:   annotationField(nginxPrefix + "rewrite-target"),
		wantMessage: "nothing is rewritten",
		wantRoutes:  []string{"ns/r"},
	}, {
		name:        "unknown ingress-nginx annotation",
		docs:        ingressYAML("ns", "u", "u.example.com", map[string]string{nginxPrefix + "custom-http-errors": "404,503"}, pathYAML("/", "Prefix", "web", 80)),
		wantField:   annotationField(nginxPrefix + "custom-http-errors"),
		wantMessage: `"404,503" has no HTTPRoute equivalent`,
		wantRoutes:  []string{"ns/u"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := parse(t, tt.docs)
			tt.opts.Gateway = sharedGateway
			tc.opts = tt.opts
			r := tc.convert()
			found := false
			for _, n := range r.Notes {
				found = found || (n.Field == tt.wantField && strings.Contains(n.Message, tt.wantMessage))
			}
			if !found {
				t.Errorf("no Note on %s containing %q; notes:\n%s", tt.wantField, tt.wantMessage, notesText(r.Notes))
			}
			if got := routeNames(r); !slices.Equal(got, tt.wantRoutes) {
				t.Errorf("routes %v, want %v", got, tt.wantRoutes)
			}
		})
	}
}

func notesText(notes []Note) string {
	var b strings.Builder
	for _, n := range notes {
		b.WriteString(n.String() + "\n")
	}
	return b.String()
}

// TestEveryNoteNamesItsIngress: a Note without a field, a message or a
// known Ingress cannot be acted on.
func TestEveryNoteNamesItsIngress(t *testing.T) {
	for _, tc := range loadCases(t) {
		known := map[types.NamespacedName]bool{}
		for _, ing := range tc.ingresses {
			known[types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}] = true
		}
		for _, n := range tc.convert().Notes {
			if !known[n.Ingress] || n.Field == "" || n.Message == "" || strings.Contains(n.Message, "\n") {
				t.Errorf("%s: unusable Note %q", tc.name, n)
			}
		}
	}
}

func TestBackendProtocolAlreadySet(t *testing.T) {
	docs := `---
apiVersion: v1
kind: Service
metadata: {name: grpc, namespace: ns}
spec:
  ports:
  - {name: grpc, port: 9000, appProtocol: kubernetes.io/h2c}
` + ingressYAML("ns", "grpc", "grpc.example.com", map[string]string{nginxPrefix + "backend-protocol": "GRPC"}, pathYAML("/", "Prefix", "grpc", 9000))
	if notes := parse(t, docs).convert().Notes; len(notes) != 0 {
		t.Errorf("the Service port already has appProtocol kubernetes.io/h2c, yet:\n%s", notesText(notes))
	}
}

func TestParentRefs(t *testing.T) {
	docs := ingressYAML("ns", "web", "web.example.com", map[string]string{nginxPrefix + "force-ssl-redirect": "true"}, pathYAML("/", "Prefix", "web", 80)) +
		ingressYAML("ns", "plain", "plain.example.com", nil, pathYAML("/", "Prefix", "plain", 80))
	tc := parse(t, docs)
	tc.opts.SectionName = "web-https"
	got := map[string]string{}
	for _, r := range tc.convert().Routes {
		p := r.Spec.ParentRefs[0]
		desc := fmt.Sprintf("%s/%s", *p.Namespace, p.Name)
		if p.SectionName != nil {
			desc += " section " + string(*p.SectionName)
		}
		if p.Port != nil {
			desc += fmt.Sprintf(" port %d", *p.Port)
		}
		got[r.Name] = desc
	}
	want := map[string]string{
		"web":                "gateway-system/shared section web-https port 443",
		"web-https-redirect": "gateway-system/shared port 80",
		"plain":              "gateway-system/shared section web-https",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parentRefs %v, want %v", got, want)
	}
}

func TestWriteYAML(t *testing.T) {
	tc := parse(t, ingressYAML("ns", "web", "web.example.com", map[string]string{nginxPrefix + "server-snippet": "x"}, pathYAML("/", "Prefix", "web", 80)))
	r := tc.convert()
	var out bytes.Buffer
	if err := WriteYAML(&out, r); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	body, notes, ok := strings.Cut(text, "# not converted:\n")
	if !ok || strings.Count(notes, "\n") != len(r.Notes) || !strings.HasPrefix(notes, "# - ns/web: metadata.annotations[") {
		t.Fatalf("no trailing notes block in:\n%s", text)
	}
	docs := strings.Split(strings.TrimPrefix(body, "---\n"), "---\n")
	if len(docs) != len(r.Routes) {
		t.Fatalf("%d documents for %d routes", len(docs), len(r.Routes))
	}
	for i, doc := range docs {
		var back gwv1.HTTPRoute
		if err := yaml.UnmarshalStrict([]byte(doc), &back); err != nil {
			t.Fatal(err)
		}
		want := r.Routes[i].DeepCopy()
		if back.APIVersion != "gateway.networking.k8s.io/v1" || back.Kind != "HTTPRoute" || !reflect.DeepEqual(back.Spec, want.Spec) || back.Name != want.Name {
			t.Errorf("document %d does not read back as route %s:\n%s", i, want.Name, doc)
		}
		if strings.Contains(doc, "status") || strings.Contains(doc, "creationTimestamp") {
			t.Errorf("document %d carries empty status or timestamp:\n%s", i, doc)
		}
	}
	out.Reset()
	if err := WriteYAML(&out, Result{}); err != nil || out.Len() != 0 {
		t.Errorf("empty result wrote %q, %v", out.String(), err)
	}
}

func TestIngressClass(t *testing.T) {
	docs := ingressYAML("ns", "field", "a.example.com", nil, pathYAML("/", "Prefix", "a", 80)) +
		ingressYAML("ns", "annotation", "b.example.com", map[string]string{classAnnotation: "internal"}, pathYAML("/", "Prefix", "b", 80)) +
		ingressYAML("ns", "other", "c.example.com", map[string]string{classAnnotation: "public"}, pathYAML("/", "Prefix", "c", 80))
	docs = strings.Replace(docs, "name: field\n  namespace: ns\nspec:\n", "name: field\n  namespace: ns\nspec:\n  ingressClassName: internal\n", 1)
	tc := parse(t, docs)
	tc.opts.IngressClass = "internal"
	r := tc.convert()
	if got, want := routeNames(r), []string{"ns/annotation", "ns/field"}; !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	if len(r.Notes) != 0 {
		t.Errorf("an Ingress of another class is not a Note:\n%s", notesText(r.Notes))
	}
	tc.opts.IngressClass = ""
	if got := routeNames(tc.convert()); len(got) != 3 {
		t.Errorf("without a class filter every Ingress is converted, got %v", got)
	}
}

// TestIngressPathTypes checks the path mapping table directly.
func TestIngressPathTypes(t *testing.T) {
	tests := []struct {
		path, pathType string
		annotations    map[string]string
		wantType       gwv1.PathMatchType
		wantValue      string
		wantRewrite    string // "full:<path>" or "prefix:<path>"
	}{
		{"/a", "Exact", nil, gwv1.PathMatchExact, "/a", ""},
		{"/a/", "Prefix", nil, gwv1.PathMatchPathPrefix, "/a/", ""},
		{"", "Prefix", nil, gwv1.PathMatchPathPrefix, "/", ""},
		{"/a", "ImplementationSpecific", nil, gwv1.PathMatchPathPrefix, "/a", ""},
		{"/a", "Prefix", map[string]string{"rewrite-target": "/"}, gwv1.PathMatchPathPrefix, "/a", "full:/"},
		{"/a", "Prefix", map[string]string{"rewrite-target": "/a"}, gwv1.PathMatchPathPrefix, "/a", ""},
		{"/a(/|$)(.*)", "ImplementationSpecific", map[string]string{"rewrite-target": "/$2"}, gwv1.PathMatchPathPrefix, "/a", "prefix:/"},
		{"/a(/|$)(.*)", "Prefix", map[string]string{"rewrite-target": "/$2"}, gwv1.PathMatchPathPrefix, "/a", "prefix:/"},
		{"/a(/|$)(.*)", "ImplementationSpecific", map[string]string{"rewrite-target": "/b/$2"}, gwv1.PathMatchPathPrefix, "/a", "prefix:/b"},
		{"/a/(.*)", "ImplementationSpecific", map[string]string{"rewrite-target": "/$1"}, gwv1.PathMatchPathPrefix, "/a", "prefix:/"},
		{"/(.*)", "ImplementationSpecific", map[string]string{"rewrite-target": "/$1"}, gwv1.PathMatchPathPrefix, "/", "prefix:/"},
		{`^/a\.json$`, "ImplementationSpecific", map[string]string{"use-regex": "true"}, gwv1.PathMatchExact, "/a.json", ""},
		{"/a.*", "ImplementationSpecific", map[string]string{"use-regex": "true"}, gwv1.PathMatchPathPrefix, "/a", ""},
		{"/a/[0-9]+", "ImplementationSpecific", map[string]string{"use-regex": "true", "rewrite-target": "/"}, gwv1.PathMatchRegularExpression, "^(?i)/a/[0-9]+.*", "full:/"},
	}
	for _, tt := range tests {
		ann := map[string]string{}
		for k, v := range tt.annotations {
			ann[nginxPrefix+k] = v
		}
		name := fmt.Sprintf("%s %s %v", tt.pathType, tt.path, tt.annotations)
		r := parse(t, ingressYAML("ns", "p", "p.example.com", ann, pathYAML(tt.path, tt.pathType, "svc", 80))).convert()
		if len(r.Routes) != 1 || len(r.Routes[0].Spec.Rules) != 1 {
			t.Errorf("%s: want one route with one rule, got %v; notes:\n%s", name, routeNames(r), notesText(r.Notes))
			continue
		}
		rule := r.Routes[0].Spec.Rules[0]
		typ, value := pathOf(rule.Matches[0])
		rewrite := ""
		for _, f := range rule.Filters {
			if f.URLRewrite != nil && f.URLRewrite.Path.ReplaceFullPath != nil {
				rewrite = "full:" + *f.URLRewrite.Path.ReplaceFullPath
			}
			if f.URLRewrite != nil && f.URLRewrite.Path.ReplacePrefixMatch != nil {
				rewrite = "prefix:" + *f.URLRewrite.Path.ReplacePrefixMatch
			}
		}
		if typ != tt.wantType || value != tt.wantValue || rewrite != tt.wantRewrite {
			t.Errorf("%s: got %s %q rewrite %q, want %s %q rewrite %q", name, typ, value, rewrite, tt.wantType, tt.wantValue, tt.wantRewrite)
		}
	}
}
