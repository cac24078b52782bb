package translate_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Translate is pure: nothing it links may talk to a cluster, evaluate a
// policy, ask cert-manager or serve a proxy, and none of our own code it
// links reaches the network.
func TestImportsNoClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \",\"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"k8s.io/client-go/", "sigs.k8s.io/controller-runtime", "sigs.k8s.io/multicluster-runtime",
		"k8s.io/apiserver/", "google.golang.org/grpc", "net/rpc", "net/smtp", "golang.org/x/net/websocket",
		// OPA can be given http.send; cert-manager's module brings its clients.
		"github.com/open-policy-agent/", "github.com/cert-manager/",
		// Ours: the hub, its certificate issuer and policy engine, the push
		// server and the proxy.
		"github.com/gatehouse-dev/gatehouse/operator/hub", "github.com/gatehouse-dev/gatehouse/operator/certificates",
		"github.com/gatehouse-dev/gatehouse/policy", "github.com/gatehouse-dev/gatehouse/dataplane/xds",
		"github.com/gatehouse-dev/gatehouse/dataplane/proxy",
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list returned too few packages to be a real answer: %v", lines)
	}
	ours := 0
	for _, line := range lines {
		dep, rest, _ := strings.Cut(line, "\t")
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f) && (strings.HasSuffix(f, "/") || dep[len(f)] == '/') {
				t.Errorf("translate depends on %s", dep)
			}
		}
		if strings.HasPrefix(dep, "github.com/gatehouse-dev/gatehouse/") {
			ours++
			dir, files, _ := strings.Cut(rest, "\t")
			for _, name := range strings.Split(files, ",") {
				for _, use := range networkUses(t, filepath.Join(dir, name)) {
					t.Errorf("%s (linked by translate) reaches the network: %s", dep, use)
				}
			}
		}
	}
	if ours == 0 {
		t.Fatal("go list listed none of our own packages: the test reads its output wrong")
	}
}

// networkAPI matches the names in net, net/http and crypto/tls that open
// connections, listen or resolve names; their constants and parsers (IP
// addresses, status codes, methods, X509KeyPair) reach nothing.
var networkAPI = regexp.MustCompile(`^(Dial|Listen|Lookup|Serve|File(Conn|Listener|PacketConn)$|(Default)?(Client|Transport|Resolver)$|Server$|NewListener$|(Get|Head|Post|PostForm)$)`)

// networkUses lists the uses of networkAPI in a Go file.
func networkUses(t *testing.T, path string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if p != "net" && p != "net/http" && p != "crypto/tls" {
			continue
		}
		name := p[strings.LastIndex(p, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = true
	}
	var uses []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && names[x.Name] && networkAPI.MatchString(sel.Sel.Name) {
			uses = append(uses, fset.Position(sel.Pos()).String()+": "+x.Name+"."+sel.Sel.Name)
		}
		return true
	})
	return uses
}
