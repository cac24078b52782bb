package images_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// build/Dockerfile cannot run here (no container runtime), so this checks
// that it still builds what TestImages finds in build/images' images: the
// same static build flags and version stamping, the root filesystem
// build/images writes, the same user and entrypoints, no base image.
func TestDockerfileMatchesTheBuilder(t *testing.T) {
	root, err := env.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "build", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	want := []string{
		"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", `-ldflags "-s -w`,
		"github.com/gatehouse-dev/gatehouse/internal/version.version=${VERSION}",
		"github.com/gatehouse-dev/gatehouse/internal/version.revision=${REVISION}",
		"go run ./images -rootfs /rootfs", "FROM scratch AS base", "COPY --from=build /rootfs/ /",
		"USER 65532:65532", "org.opencontainers.image.source=", "org.opencontainers.image.revision=",
	}
	for _, name := range names {
		want = append(want, "FROM base AS "+name, "./cmd/"+name,
			"COPY --from=build /out/"+name+" /usr/local/bin/"+name,
			`ENTRYPOINT ["/usr/local/bin/`+name+`"]`,
			`org.opencontainers.image.title="`+name+`"`)
	}
	for _, w := range want {
		if !strings.Contains(df, w) {
			t.Errorf("build/Dockerfile lacks %q, which build/images' images have", w)
		}
	}
}
