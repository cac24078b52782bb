package main

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The user the images run as, as distroless images name it: an unprivileged
// id that no host account is likely to share.
const (
	nonrootID   = 65532
	nonrootHome = "home/nonroot"
)

// entry is a file or directory of an image layer.
type entry struct {
	path     string // relative, slash-separated
	dir      bool
	mode     int64 // permission bits, with sticky/setuid where wanted
	uid, gid int
	data     []byte
}

// rootFS is everything the images hold besides the binary: no shell, no
// package manager, no libraries (the binaries are static). The CA
// certificates are there because the hub dials member API servers whose
// kubeconfig may trust a public CA, and the proxy verifies backends
// against the system roots (BackendTLSPolicy wellKnownCACertificates:
// System).
func rootFS() []entry {
	return []entry{
		{path: "etc", dir: true, mode: 0o755},
		{path: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{path: "etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{path: "etc/ssl", dir: true, mode: 0o755},
		{path: "etc/ssl/certs", dir: true, mode: 0o755},
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caCertificates()},
		{path: "home", dir: true, mode: 0o755},
		{path: nonrootHome, dir: true, mode: 0o700, uid: nonrootID, gid: nonrootID},
		{path: "tmp", dir: true, mode: 0o1777},
	}
}

// caCertificates is the Mozilla root store as Go's x509roots module pins
// it (go.sum fixes the version, so every machine writes the same bundle).
// Roots the store trusts only with a constraint (distrusted after a date)
// are left out: a PEM bundle cannot carry the constraint.
func caCertificates() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return b.Bytes()
}

// writeRootFS writes the root filesystem files into dir, for a build that
// copies them into an image itself (build/Dockerfile). Owners are set where
// the caller may set them.
func writeRootFS(dir string) error {
	var errs []error
	for _, e := range rootFS() {
		path := filepath.Join(dir, filepath.FromSlash(e.path))
		mode := os.FileMode(e.mode & 0o777)
		if e.mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		var err error
		if e.dir {
			if err = os.MkdirAll(path, 0o755); err == nil {
				err = os.Chmod(path, mode)
			}
		} else {
			err = os.WriteFile(path, e.data, mode)
		}
		if err == nil && (e.uid != 0 || e.gid != 0) && os.Geteuid() == 0 {
			err = os.Lchown(path, e.uid, e.gid)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
