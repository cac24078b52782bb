// Package images_test builds the hub's and the proxy's OCI images the way
// `make images` does (build/images) and checks what a cluster and a
// security review will find in them.
package images_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

var names = []string{"gatehouse", "gatehouse-proxy"}

// TestImages builds the images of the checked-out commit twice and
// inspects both platforms of both images: entrypoint, a non-root user,
// platform in the config and the index, nothing but the static binary, a
// user database and CA certificates in the layers (no shell), OCI labels,
// and a binary that runs and names its version. The two builds must be the
// same bytes.
func TestImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hub and the proxy for two platforms, twice")
	}
	root, err := env.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	commit := git(t, root, "rev-parse", "HEAD")
	sec, err := strconv.ParseInt(git(t, root, "show", "-s", "--format=%ct", commit), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Unix(sec, 0).UTC()

	first, firstOut := buildImages(t, root, commit)
	second, secondOut := buildImages(t, root, commit)
	if firstOut != secondOut {
		t.Errorf("two builds of commit %s differ:\n%s\n%s", commit, firstOut, secondOut)
	}
	for _, name := range names {
		if a, b := fileSum(t, filepath.Join(first, name+".tar")), fileSum(t, filepath.Join(second, name+".tar")); a != b {
			t.Errorf("%s.tar differs between two builds of one commit", name)
		}
		t.Run(name, func(t *testing.T) {
			digest := inspect(t, ociLayout(filepath.Join(first, name)), name, commit, created)
			if !strings.Contains(firstOut, digest) {
				t.Errorf("the builder did not print the digest %s of %s:\n%s", digest, name, firstOut)
			}
		})
	}
}

// buildImages runs build/images as `make images` does, into a new
// directory; it returns the directory and what the builder printed.
func buildImages(t *testing.T, root, commit string) (string, string) {
	t.Helper()
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "go", "run", "./images", "-repo", root, "-commit", commit, "-out", out)
	cmd.Dir = filepath.Join(root, "build")
	// The commit's time, not a SOURCE_DATE_EPOCH of the caller's.
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") }), "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build/images: %v\n%s", err, stderr.String())
	}
	return out, stdout.String()
}

// inspect checks one image's layout and returns the digest of its index.
func inspect(t *testing.T, l ociLayout, name, commit string, created time.Time) string {
	top, err := l.top()
	if err != nil || len(top.Manifests) != 1 || top.Manifests[0].MediaType != mediaIndex {
		t.Fatalf("index.json: %+v (%v); want one image index", top, err)
	}
	var idx index
	if err := l.json(top.Manifests[0], &idx); err != nil {
		t.Fatal(err)
	}
	version := idx.Annotations["org.opencontainers.image.version"]
	wantLabels := map[string]string{
		"org.opencontainers.image.title":    name,
		"org.opencontainers.image.source":   "https://github.com/gatehouse-dev/gatehouse",
		"org.opencontainers.image.revision": commit,
		"org.opencontainers.image.created":  created.Format(time.RFC3339),
	}
	checkLabels(t, "index annotations", idx.Annotations, wantLabels)
	if version == "" || top.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != version {
		t.Errorf("version annotation %q, layout tag %q: want the version, twice", version, top.Manifests[0].Annotations["org.opencontainers.image.ref.name"])
	}
	var platforms []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			t.Fatalf("index entry %s has no platform", m.Digest)
		}
		p := m.Platform.OS + "/" + m.Platform.Architecture
		platforms = append(platforms, p)
		t.Run(strings.ReplaceAll(p, "/", "-"), func(t *testing.T) {
			cfg, files := platformImage(t, l, m, created)
			if cfg.OS != m.Platform.OS || cfg.Architecture != m.Platform.Architecture {
				t.Errorf("config says %s/%s, the index %s", cfg.OS, cfg.Architecture, p)
			}
			checkLabels(t, "config labels", cfg.Config.Labels, wantLabels)
			if cfg.Config.Labels["org.opencontainers.image.version"] != version {
				t.Errorf("config version label %q, index %q", cfg.Config.Labels["org.opencontainers.image.version"], version)
			}
			checkUser(t, cfg.Config.User, files)
			entry := "/usr/local/bin/" + name
			if !slices.Equal(cfg.Config.Entrypoint, []string{entry}) || len(cfg.Config.Cmd) != 0 {
				t.Errorf("entrypoint %q cmd %q, want [%s]", cfg.Config.Entrypoint, cfg.Config.Cmd, entry)
			}
			checkContents(t, files, entry)
			checkBinary(t, files[entry[1:]], name, m.Platform.Architecture, version, commit)
		})
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", platforms)
	}
	return top.Manifests[0].Digest
}

// platformImage reads one platform's manifest, config and layers, checking
// that the layers are reproducible: sorted entries, fixed owners, every
// time the commit's.
func platformImage(t *testing.T, l ociLayout, d descriptor, created time.Time) (config, map[string]file) {
	var man manifest
	if err := l.json(d, &man); err != nil {
		t.Fatal(err)
	}
	var cfg config
	if err := l.json(man.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if man.MediaType != mediaManifest || man.Config.MediaType != mediaConfig || d.MediaType != mediaManifest {
		t.Errorf("media types: manifest %q (index says %q), config %q", man.MediaType, d.MediaType, man.Config.MediaType)
	}
	if cfg.Created != created.Format(time.RFC3339) {
		t.Errorf("config created %q, want the commit's time %s", cfg.Created, created.Format(time.RFC3339))
	}
	if len(man.Layers) != len(cfg.RootFS.DiffIDs) {
		t.Fatalf("%d layers, %d diff_ids", len(man.Layers), len(cfg.RootFS.DiffIDs))
	}
	files := map[string]file{}
	for i, ld := range man.Layers {
		entries, diffID, err := l.layer(ld)
		if err != nil {
			t.Fatalf("layer %s: %v", ld.Digest, err)
		}
		if ld.MediaType != mediaLayer || diffID != cfg.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: media type %q, uncompressed digest %s, config's diff_id %s", i, ld.MediaType, diffID, cfg.RootFS.DiffIDs[i])
		}
		var prev string
		for _, f := range entries {
			h := f.header
			if h.Name <= prev {
				t.Errorf("layer %d: %q comes after %q: entries are not sorted", i, h.Name, prev)
			}
			prev = h.Name
			if !h.ModTime.Equal(created) || (h.Uid != 0 && h.Uid != 65532) || h.Uid != h.Gid || h.Uname != "" || h.Gname != "" {
				t.Errorf("layer %d: %s has time %v, owner %d:%d (%q:%q); want %v and numeric root or nonroot", i, h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname, created)
			}
			files[strings.TrimSuffix(h.Name, "/")] = f
		}
	}
	return cfg, files
}

func checkLabels(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got[k], v)
		}
	}
}

// checkUser: the image runs as a numeric non-root user that /etc/passwd
// knows, so that runAsNonRoot admits it without a runAsUser.
func checkUser(t *testing.T, user string, files map[string]file) {
	t.Helper()
	uid, gid, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 || gid == "" || gid == "0" {
		t.Errorf("user %q: want numeric, non-root uid and gid", user)
	}
	passwd := string(files["etc/passwd"].data)
	if !strings.Contains(passwd, ":x:"+uid+":"+gid+":") {
		t.Errorf("/etc/passwd has no account %s:\n%s", user, passwd)
	}
}

// checkContents: nothing but the binary, the user database and the CA
// certificates; no shell or anything else to run.
func checkContents(t *testing.T, files map[string]file, entry string) {
	t.Helper()
	var regular []string
	for p, f := range files {
		if base := path.Base(p); slices.Contains([]string{"sh", "bash", "ash", "dash", "busybox"}, base) {
			t.Errorf("the image holds %s", p)
		}
		if !f.header.FileInfo().IsDir() {
			regular = append(regular, p)
		}
	}
	slices.Sort(regular)
	want := []string{"etc/group", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", entry[1:]}
	if !slices.Equal(regular, want) {
		t.Errorf("files %v, want only %v", regular, want)
	}
	pool, n := x509.NewCertPool(), 0
	for rest := files["etc/ssl/certs/ca-certificates.crt"].data; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatalf("CA certificate %d: %v", n, err)
		}
		pool.AddCert(c)
	}
	if n < 50 {
		t.Errorf("the CA bundle holds %d certificates; want the public roots", n)
	}
}

// checkBinary: an ELF executable for the platform, static (no program
// interpreter, no shared libraries: the image has no C library), and on
// this machine's platform it runs and names its version and commit.
func checkBinary(t *testing.T, f file, name, arch, version, commit string) {
	t.Helper()
	if f.header == nil || f.header.Mode&0o111 == 0 {
		t.Fatalf("no executable %s", name)
	}
	e, err := elf.NewFile(bytes.NewReader(f.data))
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", name, err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if e.Machine != want {
		t.Errorf("ELF machine %v, want %v", e.Machine, want)
	}
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (it has a program interpreter)", name)
		}
	}
	if libs, err := e.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v (%v)", name, libs, err)
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != arch {
		return
	}
	bin := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(bin, f.data, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if wantOut := name + " " + version + " (revision " + commit + ", "; err != nil || !strings.HasPrefix(string(out), wantOut) {
		t.Errorf("%s --version: %v, %q; want it to begin %q", name, err, out, wantOut)
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}
