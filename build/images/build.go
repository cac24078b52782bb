package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

type options struct {
	repo, commit, out, version, source string
	platforms                          []platform
	log                                io.Writer
}

// built is one image as written: its index digest and each platform's.
type built struct {
	name, version, commit string
	digest                v1.Hash
	platforms             map[string]v1.Hash
}

func (b built) String() string {
	var parts []string
	for p, d := range b.platforms {
		parts = append(parts, p+"="+d.String())
	}
	return fmt.Sprintf("%-16s %s  version %s  %s", b.name, b.digest, b.version, strings.Join(sortedStrings(parts), " "))
}

// build exports the commit, compiles the commands for every platform and
// writes each image's layout and archive under o.out.
func build(ctx context.Context, o options) ([]built, error) {
	work, err := os.MkdirTemp("", "gatehouse-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	s, err := export(ctx, o.repo, o.commit, o.version, src)
	if err != nil {
		return nil, err
	}
	if s.dirty {
		fmt.Fprintf(o.log, "images: the work tree has uncommitted changes; the images are built from commit %s without them\n", s.commit)
	}
	names := make([]string, len(specs))
	for i, sp := range specs {
		names[i] = sp.name
	}
	bins := filepath.Join(work, "bin")
	for _, p := range o.platforms {
		fmt.Fprintf(o.log, "images: building %s for %s at %s (%s)\n", strings.Join(names, ", "), p, s.version, s.commit)
		if err := compile(ctx, s, p, filepath.Join(bins, p.os+"-"+p.arch), o.log, names...); err != nil {
			return nil, err
		}
	}
	base, err := layer(rootFS(), s.time)
	if err != nil {
		return nil, err
	}
	var out []built
	for _, sp := range specs {
		var images []v1.Image
		b := built{name: sp.name, version: s.version, commit: s.commit, platforms: map[string]v1.Hash{}}
		for _, p := range o.platforms {
			img, err := platformImage(sp, s, p, base, binaryPath(bins, p, sp.name), o.source)
			if err != nil {
				return nil, fmt.Errorf("%s for %s: %w", sp.name, p, err)
			}
			if b.platforms[p.String()], err = img.Digest(); err != nil {
				return nil, err
			}
			images = append(images, img)
		}
		idx, err := index(sp, s, o.platforms, images, o.source)
		if err != nil {
			return nil, err
		}
		if b.digest, err = idx.Digest(); err != nil {
			return nil, err
		}
		if err := write(idx, filepath.Join(o.out, sp.name), s); err != nil {
			return nil, fmt.Errorf("writing %s: %w", sp.name, err)
		}
		out = append(out, b)
	}
	return out, nil
}
