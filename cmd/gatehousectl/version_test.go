package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/version"
)

func TestVersionFlag(t *testing.T) {
	for _, argv0 := range []string{"gatehousectl", "/usr/local/bin/kubectl-gatehouse"} {
		var out, errOut bytes.Buffer
		code := run(t.Context(), []string{argv0, "--version"}, &out, &errOut)
		want := version.Get().Line(progName(argv0)) + "\n"
		if code != exitOK || out.String() != want || errOut.Len() != 0 {
			t.Errorf("%s --version: exit %d, output %q, errors %q; want 0 and %q", argv0, code, out.String(), errOut.String(), want)
		}
	}
	var out bytes.Buffer
	run(t.Context(), []string{"gatehousectl", "-h"}, &out, &out)
	if !strings.Contains(out.String(), "-version") {
		t.Errorf("the usage does not list --version:\n%s", out.String())
	}
}
