package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// spec is one image: which command it runs and how it describes itself.
type spec struct {
	name        string // image and command name
	description string
}

var specs = []spec{
	{name: "gatehouse", description: "The Gatehouse hub: decides Gateway API route attachments across member clusters and pushes route tables to the proxies"},
	{name: "gatehouse-proxy", description: "The Gatehouse proxy: serves the route tables the hub pushes for its Gateways"},
}

// binDir is where an image keeps its command.
const binDir = "usr/local/bin"

// labels are the OCI annotations of an image, as config labels of each
// platform's image and annotations of the index.
func labels(sp spec, s snapshot, source string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       sp.name,
		"org.opencontainers.image.description": sp.description,
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.version":     s.version,
		"org.opencontainers.image.revision":    s.commit,
		"org.opencontainers.image.created":     s.time.Format(time.RFC3339),
	}
}

// platformImage assembles one platform's image: the shared root
// filesystem layer, then the binary's.
func platformImage(sp spec, s snapshot, p platform, base v1.Layer, binary, source string) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	bin, err := layer([]entry{
		{path: "usr", dir: true, mode: 0o755},
		{path: "usr/local", dir: true, mode: 0o755},
		{path: binDir, dir: true, mode: 0o755},
		{path: binDir + "/" + sp.name, mode: 0o755, data: data},
	}, s.time)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: s.time}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "root filesystem: /etc/passwd, /etc/group, CA certificates, nonroot home, /tmp", Comment: "build/images"}},
		mutate.Addendum{Layer: bin, History: v1.History{Created: created, CreatedBy: "/" + binDir + "/" + sp.name + " (CGO_ENABLED=0, -trimpath)", Comment: "build/images"}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS, cfg.Created = p.arch, p.os, created
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonrootID, nonrootID),
		Entrypoint: []string{"/" + binDir + "/" + sp.name},
		Env:        []string{"PATH=/" + binDir, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		WorkingDir: "/" + nonrootHome,
		Labels:     labels(sp, s, source),
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.ConfigMediaType(img, types.OCIConfigJSON), nil
}

// index puts the platforms' images of one image into an OCI image index.
func index(sp spec, s snapshot, plats []platform, images []v1.Image, source string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, img := range images {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: plats[i].os, Architecture: plats[i].arch}}})
	}
	annotated, ok := mutate.Annotations(idx, labels(sp, s, source)).(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("annotating the index of %s", sp.name)
	}
	return annotated, nil
}

// binaryPath is where compile leaves a platform's command.
func binaryPath(dir string, p platform, name string) string {
	return filepath.Join(dir, p.os+"-"+p.arch, name)
}
