package main

import (
	"archive/tar"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// refNameAnnotation tags the index in the layout, so that tools that address
// a layout by tag (skopeo oci:DIR:TAG, oras --from-oci-layout DIR:TAG)
// find it.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// write replaces dir with an OCI image layout holding idx, and dir.tar
// with the same layout as one archive (skopeo's oci-archive:, docker load).
func write(idx v1.ImageIndex, dir string, s snapshot) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: s.version})); err != nil {
		return err
	}
	return archive(dir, dir+".tar", s)
}

// archive tars a layout directory the reproducible way: sorted paths,
// fixed times and owners.
func archive(dir, file string, s snapshot) error {
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		paths = append(paths, path)
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(paths)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, path := range paths {
		if err = addFile(tw, dir, path, s); err != nil {
			break
		}
	}
	return errors.Join(err, tw.Close(), f.Close())
}

func addFile(tw *tar.Writer, dir, path string, s snapshot) error {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: s.time, Format: tar.FormatUSTAR, Typeflag: tar.TypeReg}
	if info.IsDir() {
		h.Name, h.Mode, h.Typeflag = h.Name+"/", 0o755, tar.TypeDir
		return tw.WriteHeader(h)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	h.Size = int64(len(data))
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
