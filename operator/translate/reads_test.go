package translate_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// TestReadsListEveryKey: every key translate reads from a ConfigMap's or a
// Secret's data is in ConfigMapKeys or SecretKeys, since the hub's member
// caches keep no other key. A read this test cannot name (not a literal)
// fails it too.
func TestReadsListEveryKey(t *testing.T) {
	known := map[string]string{"corev1.TLSCertKey": "tls.crt", "corev1.TLSPrivateKeyKey": "tls.key", "corev1.ServiceAccountTokenKey": "token"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	reads := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			ix, ok := n.(*ast.IndexExpr)
			if !ok {
				return true
			}
			sel, ok := ix.X.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Data" && sel.Sel.Name != "BinaryData") {
				return true
			}
			reads++
			var k string
			switch e := ix.Index.(type) {
			case *ast.BasicLit:
				k, _ = strconv.Unquote(e.Value)
			case *ast.SelectorExpr:
				if x, ok := e.X.(*ast.Ident); ok {
					k = known[x.Name+"."+e.Sel.Name]
				}
			}
			switch {
			case k == "":
				t.Errorf("%s: a read of .%s whose key this test cannot tell: write the key as a literal", fset.Position(ix.Pos()), sel.Sel.Name)
			case !slices.Contains(translate.ConfigMapKeys, k) && !slices.Contains(translate.SecretKeys, k):
				t.Errorf("%s: translate reads key %q, which is in neither ConfigMapKeys nor SecretKeys: add it, or the hub's caches drop it", fset.Position(ix.Pos()), k)
			}
			return true
		})
	}
	if reads == 0 {
		t.Fatal("found no read of .Data: the test no longer looks where translate reads")
	}
}
