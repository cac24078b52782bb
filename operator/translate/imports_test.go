package translate_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Translate is pure: nothing it links may talk to a cluster.
func TestImportsNoClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"k8s.io/client-go/", "sigs.k8s.io/controller-runtime", "sigs.k8s.io/multicluster-runtime",
		"k8s.io/apiserver/", "google.golang.org/grpc",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned too few packages to be a real answer: %v", deps)
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("translate depends on %s", dep)
			}
		}
	}
}
