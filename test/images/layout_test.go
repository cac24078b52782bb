package images_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// What this test reads of an OCI image layout, written from the OCI image
// spec with the standard library only: the test does not trust the
// library that wrote the images to read them back.

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     []descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Config    descriptor   `json:"config"`
	Layers    []descriptor `json:"layers"`
}

type config struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Created      string `json:"created"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// ociLayout is an image layout directory.
type ociLayout string

// blob reads a blob and checks that it is what its descriptor says.
func (l ociLayout) blob(d descriptor) ([]byte, error) {
	algo, hexDigest, ok := strings.Cut(d.Digest, ":")
	if !ok || algo != "sha256" {
		return nil, fmt.Errorf("digest %q is not sha256", d.Digest)
	}
	data, err := os.ReadFile(filepath.Join(string(l), "blobs", "sha256", hexDigest))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexDigest || int64(len(data)) != d.Size {
		return nil, fmt.Errorf("blob %s: content does not match its digest or size %d", d.Digest, d.Size)
	}
	return data, nil
}

func (l ociLayout) json(d descriptor, v any) error {
	data, err := l.blob(d)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func (l ociLayout) top() (index, error) {
	var idx index
	data, err := os.ReadFile(filepath.Join(string(l), "index.json"))
	if err != nil {
		return idx, err
	}
	return idx, json.Unmarshal(data, &idx)
}

// file is a regular file or directory of a layer.
type file struct {
	header *tar.Header
	data   []byte
}

// layer unpacks a gzip-compressed tar layer and returns its entries in
// order and the digest of the uncompressed tar (its diff_id).
func (l ociLayout) layer(d descriptor) ([]file, string, error) {
	data, err := l.blob(d)
	if err != nil {
		return nil, "", err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, "", err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, "", err
	}
	var out []file
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", err
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			return nil, "", err
		}
		out = append(out, file{header: h, data: content})
	}
	sum := sha256.Sum256(raw)
	return out, "sha256:" + hex.EncodeToString(sum[:]), nil
}
