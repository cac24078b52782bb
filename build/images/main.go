// Command images builds the OCI images of the hub (gatehouse) and the proxy
// (gatehouse-proxy) for linux/amd64 and linux/arm64 without a container
// daemon: static binaries on a minimal root filesystem (no shell, a
// non-root user, CA certificates), one image index per image.
//
// The images are built from a commit (default HEAD), never from
// uncommitted changes, so that the labels naming the revision are true and
// the same commit always gives the same digests: sources come from
// `git archive`, every timestamp is the commit's (or SOURCE_DATE_EPOCH),
// tar entries are sorted with fixed owners.
//
// Output, per image, under -out: NAME/, an OCI image layout holding the
// index (push it with crane, skopeo or oras), and NAME.tar, the same layout
// as one archive. The digests are printed, one image per line.
//
// With -rootfs DIR it only writes the root filesystem files the images
// carry into DIR (build/Dockerfile uses it, to stay the same).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	var (
		repo      = flag.String("repo", ".", "the git checkout to build from")
		commit    = flag.String("commit", "HEAD", "the commit to build")
		out       = flag.String("out", "bin/images", "directory the image layouts and archives are written to")
		ver       = flag.String("version", "", "version stamped into the binaries and labels (default: git describe --tags --always --abbrev=12 of -commit)")
		platforms = flag.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch of the images")
		source    = flag.String("source", "https://github.com/gatehouse-dev/gatehouse", "org.opencontainers.image.source label")
		rootfs    = flag.String("rootfs", "", "only write the root filesystem files of the images into this directory")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *rootfs != "" {
		if err := writeRootFS(*rootfs); err != nil {
			fail(err)
		}
		return
	}
	plats, err := parsePlatforms(*platforms)
	if err != nil {
		fail(err)
	}
	built, err := build(ctx, options{repo: *repo, commit: *commit, out: *out, version: *ver, platforms: plats, source: *source, log: os.Stderr})
	if err != nil {
		fail(err)
	}
	for _, b := range built {
		fmt.Println(b)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "images:", err)
	os.Exit(1)
}

// platform is an os/arch pair Go and OCI spell the same way.
type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "/" + p.arch }

func parsePlatforms(s string) ([]platform, error) {
	var out []platform
	for item := range strings.SplitSeq(s, ",") {
		os, arch, ok := strings.Cut(strings.TrimSpace(item), "/")
		if !ok || os != "linux" || (arch != "amd64" && arch != "arm64") {
			return nil, fmt.Errorf("-platforms: %q: give linux/amd64 and/or linux/arm64", item)
		}
		out = append(out, platform{os, arch})
	}
	return out, nil
}
