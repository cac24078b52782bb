package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// versionPackage receives the version and the commit at link time.
const versionPackage = "github.com/gatehouse-dev/gatehouse/internal/version"

// compile builds the commands of the snapshot for one platform into out:
// static (no cgo: the images have no C library), without the build
// machine's paths (-trimpath) and with the version stamped in. Every
// setting that changes the output is set here rather than taken from the
// environment, so that another machine builds the same bytes.
func compile(ctx context.Context, s snapshot, p platform, out string, log io.Writer, cmds ...string) error {
	ldflags := fmt.Sprintf("-s -w -X %[1]s.version=%[2]s -X %[1]s.revision=%[3]s", versionPackage, s.version, s.commit)
	args := []string{"build", "-trimpath", "-buildvcs=false", "-mod=readonly", "-ldflags", ldflags, "-o", out + string(filepath.Separator)}
	for _, c := range cmds {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch, "GOAMD64=v1", "GOARM64=v8.0",
		"GOWORK=off", "GOFLAGS=", "GOEXPERIMENT=")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %v for %s: %w", cmds, p, err)
	}
	return nil
}
