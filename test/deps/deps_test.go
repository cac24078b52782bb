// Package deps checks that the pinned dependency set works together: each
// library the architecture builds on is exercised once, in the same binary, at
// the versions go.mod pins. A version bump that breaks one of them fails here
// before it fails somewhere harder to read.
package deps

import (
	"context"
	"runtime/debug"
	"strings"
	"testing"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/open-policy-agent/opa/v1/rego"
	"google.golang.org/protobuf/types/known/structpb"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/kubernetes/scheme"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestKubernetesModulesShareOneVersion(t *testing.T) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info in the test binary")
	}
	versions := map[string]string{}
	for _, d := range info.Deps {
		switch d.Path {
		case "k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go", "k8s.io/apiextensions-apiserver", "k8s.io/apiserver":
			v := d.Version
			if d.Replace != nil {
				v = d.Replace.Version
			}
			versions[d.Path] = v
		}
	}
	if len(versions) != 5 {
		t.Fatalf("found %d of the 5 k8s.io modules in the build: %v", len(versions), versions)
	}
	for path, v := range versions {
		if v != versions["k8s.io/api"] {
			t.Errorf("%s is at %s but k8s.io/api is at %s", path, v, versions["k8s.io/api"])
		}
	}
}

func TestSchemesRegisterTogether(t *testing.T) {
	s := runtime.NewScheme()
	for name, add := range map[string]func(*runtime.Scheme) error{
		"client-go":       scheme.AddToScheme,
		"apiextensions":   apiextensionsv1.AddToScheme,
		"gateway-api v1":  gwv1.Install,
		"cert-manager v1": cmv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			t.Fatalf("registering %s: %v", name, err)
		}
	}
	for _, kind := range []string{"Gateway", "HTTPRoute", "GRPCRoute", "ListenerSet"} {
		if !s.Recognizes(gwv1.SchemeGroupVersion.WithKind(kind)) {
			t.Errorf("gateway-api v1 does not register %s", kind)
		}
	}
	if !s.Recognizes(cmv1.SchemeGroupVersion.WithKind("Certificate")) {
		t.Error("cert-manager v1 does not register Certificate")
	}
}

func TestRegoV1Evaluates(t *testing.T) {
	ctx := context.Background()
	q, err := rego.New(
		rego.Query("data.gatehouse.violation"),
		rego.Module("p.rego", `package gatehouse
violation contains {"msg": msg} if {
	some h in input.hostnames
	endswith(h, ".internal")
	msg := sprintf("hostname %q is internal", [h])
}`),
	).PrepareForEval(ctx)
	if err != nil {
		t.Fatalf("preparing a Rego v1 module: %v", err)
	}
	rs, err := q.Eval(ctx, rego.EvalInput(map[string]any{"hostnames": []any{"a.example.com", "b.internal"}}))
	if err != nil {
		t.Fatalf("evaluating: %v", err)
	}
	set, _ := rs[0].Expressions[0].Value.([]any)
	if len(set) != 1 || !strings.Contains(set[0].(map[string]any)["msg"].(string), "b.internal") {
		t.Fatalf("got violations %v, want one naming b.internal", rs[0].Expressions[0].Value)
	}
}

func TestLinearCacheServesACustomType(t *testing.T) {
	const typeURL = "type.googleapis.com/gatehouse.test.Custom"
	c := cachev3.NewLinearCache(typeURL)
	v, _ := structpb.NewStruct(map[string]any{"gateway": "default/shared"})
	if err := c.UpdateResource("member-1/default/shared", v); err != nil {
		t.Fatalf("updating a custom-typed resource: %v", err)
	}
	if got := c.NumResources(); got != 1 {
		t.Fatalf("cache holds %d resources, want 1", got)
	}
}

func TestAPIServerHelpersParseServiceAccounts(t *testing.T) {
	ns, name, err := serviceaccount.SplitUsername("system:serviceaccount:gatehouse-system:proxy")
	if err != nil || ns != "gatehouse-system" || name != "proxy" {
		t.Fatalf("SplitUsername = %q, %q, %v", ns, name, err)
	}
}
