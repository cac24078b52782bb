package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// snapshot is one commit of the repository, exported where it can be built.
type snapshot struct {
	dir     string
	commit  string
	version string
	// time stands for every timestamp in the images: the commit's, or
	// SOURCE_DATE_EPOCH when set.
	time time.Time
	// dirty: the work tree has changes the images do not carry.
	dirty bool
}

// export writes the files of rev into dir with `git archive` and reads
// what the images say about it.
func export(ctx context.Context, repo, rev, version, dir string) (snapshot, error) {
	commit, err := git(ctx, repo, "rev-parse", "--verify", rev+"^{commit}")
	if err != nil {
		return snapshot{}, fmt.Errorf("-commit %s: %w (build from a git checkout of Gatehouse)", rev, err)
	}
	s := snapshot{dir: dir, commit: commit, version: version}
	if s.version == "" {
		// A fixed abbreviation: the default grows with the number of
		// objects, and two clones would stamp different versions.
		if s.version, err = git(ctx, repo, "describe", "--tags", "--always", "--abbrev=12", commit); err != nil {
			return snapshot{}, err
		}
	}
	if s.time, err = sourceTime(ctx, repo, commit); err != nil {
		return snapshot{}, err
	}
	status, err := git(ctx, repo, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return snapshot{}, err
	}
	s.dirty = status != ""

	cmd := exec.CommandContext(ctx, "git", "-C", repo, "archive", "--format=tar", commit)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	r, err := cmd.StdoutPipe()
	if err != nil {
		return snapshot{}, err
	}
	if err := cmd.Start(); err != nil {
		return snapshot{}, err
	}
	xerr := extract(r, dir)
	_, _ = io.Copy(io.Discard, r)
	if err := errors.Join(cmd.Wait(), xerr); err != nil {
		return snapshot{}, fmt.Errorf("git archive %s: %w %s", commit, err, strings.TrimSpace(stderr.String()))
	}
	return s, nil
}

// sourceTime is SOURCE_DATE_EPOCH (the reproducible-builds convention) or
// the commit's time.
func sourceTime(ctx context.Context, repo, commit string) (time.Time, error) {
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		var err error
		if epoch, err = git(ctx, repo, "show", "-s", "--format=%ct", commit); err != nil {
			return time.Time{}, err
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970: %w", epoch, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func git(ctx context.Context, repo string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// extract writes the regular files, directories and symlinks of a tar
// stream under dir.
func extract(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(strings.TrimSuffix(h.Name, "/"))
		if h.Typeflag == tar.TypeXGlobalHeader || name == "" {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q leaves the directory", h.Name)
		}
		path := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, path)
		case tar.TypeReg:
			err = writeFile(path, tr, os.FileMode(h.Mode).Perm())
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}
