// Package version says which build of Gatehouse a binary is: the version
// and commit the Makefile stamps in, or, for a plain `go build`, "devel"
// and the commit Go records in the binary.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at link time by the Makefile's build and images targets:
//
//	-ldflags "-X github.com/gatehouse-dev/gatehouse/internal/version.version=v0.2.0
//	          -X github.com/gatehouse-dev/gatehouse/internal/version.revision=<commit>"
//
// A plain `go build` leaves them empty.
var (
	version  string
	revision string
)

// Devel is the version of a binary nobody stamped one into.
const Devel = "devel"

// Info identifies a build.
type Info struct {
	// Version is what `git describe` said when the binary was built, or
	// Devel.
	Version string
	// Revision is the commit the binary was built from; empty when unknown
	// (a plain build outside a git checkout).
	Revision string
	// Modified: a plain build from a work tree with uncommitted changes.
	// A stamped build says so in Version ("-dirty").
	Modified  bool
	GoVersion string
	Platform  string
}

// Get returns this binary's build.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(version, revision, bi)
}

// get prefers what the Makefile stamped and falls back on what the Go
// toolchain recorded (vcs.revision, vcs.modified), which a plain
// `go build` in a checkout always has.
func get(stampedVersion, stampedRevision string, bi *debug.BuildInfo) Info {
	i := Info{Version: stampedVersion, Revision: stampedRevision, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil && bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	if i.Version != "" {
		return i
	}
	i.Version = Devel
	if bi == nil {
		return i
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if i.Revision == "" {
				i.Revision = s.Value
			}
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// Short is the version in one word, as a proxy reports it to the hub:
// the stamped version, or "devel-" and the commit's first 12 digits (and
// "-dirty") for a plain build, so that two plain builds still differ.
func (i Info) Short() string {
	if i.Version != Devel || i.Revision == "" {
		return i.Version
	}
	s := i.Version + "-" + i.Revision[:min(len(i.Revision), 12)]
	if i.Modified {
		s += "-dirty"
	}
	return s
}

// Line is what --version prints: "gatehouse v0.2.0 (revision 1a2b…,
// go1.27.2, linux/amd64)".
func (i Info) Line(program string) string {
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	}
	if i.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("%s %s (revision %s, %s, %s)", program, i.Version, rev, i.GoVersion, i.Platform)
}
