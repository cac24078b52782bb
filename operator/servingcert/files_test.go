package servingcert_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/operator/servingcert"
)

const filesPoll = 2 * time.Millisecond

// writeFiles writes files into dir; a nil content removes the file.
func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		path := filepath.Join(dir, name)
		if data == nil {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// keyPairFiles returns tls.crt and tls.key for host, signed by ca, and
// ca.crt.
func keyPairFiles(t *testing.T, ca testCA, host string) map[string][]byte {
	cert, key := ca.issue(t, host)
	return map[string][]byte{"tls.crt": cert, "tls.key": key, "ca.crt": ca.certPEM()}
}

func TestNewFiles(t *testing.T) {
	ca := newTestCA(t)
	good := keyPairFiles(t, ca, "127.0.0.1")
	with := func(changes map[string][]byte) map[string][]byte {
		files := map[string][]byte{}
		for k, v := range good {
			files[k] = v
		}
		for k, v := range changes {
			files[k] = v
		}
		return files
	}
	otherCert, _ := ca.issue(t, "127.0.0.1")

	cases := []struct {
		name       string
		files      map[string][]byte
		wantErr    bool
		wantBundle []byte
	}{
		{name: "key pair and CA", files: good, wantBundle: ca.certPEM()},
		{name: "no ca.crt", files: with(map[string][]byte{"ca.crt": nil})},
		{name: "empty ca.crt", files: with(map[string][]byte{"ca.crt": {}})},
		{name: "no tls.crt", files: with(map[string][]byte{"tls.crt": nil}), wantErr: true},
		{name: "no tls.key", files: with(map[string][]byte{"tls.key": nil}), wantErr: true},
		{name: "key of another certificate", files: with(map[string][]byte{"tls.crt": otherCert}), wantErr: true},
		{name: "tls.crt not PEM", files: with(map[string][]byte{"tls.crt": []byte("garbage")}), wantErr: true},
		{name: "ca.crt not PEM", files: with(map[string][]byte{"ca.crt": []byte("garbage")}), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			f, err := servingcert.NewFiles(dir, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewFiles: %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got := f.CABundle(); !bytes.Equal(got, tc.wantBundle) {
				t.Errorf("CABundle:\n%s\nwant:\n%s", got, tc.wantBundle)
			}
			if err := verify(leaf(t, f), pool(t, ca.certPEM()), "127.0.0.1", time.Now()); err != nil {
				t.Errorf("serving certificate: %v", err)
			}
		})
	}
}

func TestFilesReload(t *testing.T) {
	ca, nextCA := newTestCA(t), newTestCA(t)
	cases := []struct {
		name string
		// update changes the files in dir after they were loaded.
		update      func(t *testing.T, dir string)
		wantChanged bool
		// wantCA is the CA that signed the certificate served afterwards,
		// also the bundle.
		wantCA testCA
	}{{
		name: "renewed certificate",
		update: func(t *testing.T, dir string) {
			cert, key := ca.issue(t, "127.0.0.1")
			writeFiles(t, dir, map[string][]byte{"tls.crt": cert, "tls.key": key})
		},
		wantChanged: true, wantCA: ca,
	}, {
		name: "new CA",
		update: func(t *testing.T, dir string) {
			writeFiles(t, dir, keyPairFiles(t, nextCA, "127.0.0.1"))
		},
		wantChanged: true, wantCA: nextCA,
	}, {
		name: "unchanged files",
		update: func(t *testing.T, dir string) {
			for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
				now := time.Now()
				if err := os.Chtimes(filepath.Join(dir, name), now, now); err != nil {
					t.Fatal(err)
				}
			}
		},
		wantCA: ca,
	}, {
		name: "certificate without its key keeps the last good pair",
		update: func(t *testing.T, dir string) {
			cert, _ := ca.issue(t, "127.0.0.1")
			writeFiles(t, dir, map[string][]byte{"tls.crt": cert})
		},
		wantCA: ca,
	}, {
		name: "removed key keeps the last good pair",
		update: func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string][]byte{"tls.key": nil})
		},
		wantCA: ca,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, keyPairFiles(t, ca, "127.0.0.1"))
			f, err := servingcert.NewFiles(dir, nil, servingcert.FilesOptions{Poll: filesPoll})
			if err != nil {
				t.Fatal(err)
			}
			before := leaf(t, f)
			runFiles(t, f)

			tc.update(t, dir)
			if tc.wantChanged {
				// The files are written one by one, so a poll may catch
				// and serve a consistent part of the update first.
				changed(t, f)
				eventually(t, "the updated files are served", func() bool {
					return bytes.Equal(f.CABundle(), tc.wantCA.certPEM())
				})
			} else {
				select {
				case <-f.Changed():
					t.Fatal("Changed fired")
				case <-time.After(50 * filesPoll):
				}
			}
			after := leaf(t, f)
			if gotNew := !after.Equal(before); gotNew != tc.wantChanged {
				t.Errorf("new serving certificate: %v, want %v", gotNew, tc.wantChanged)
			}
			if err := verify(after, pool(t, tc.wantCA.certPEM()), "127.0.0.1", time.Now()); err != nil {
				t.Errorf("serving certificate: %v", err)
			}
			if got := f.CABundle(); !bytes.Equal(got, tc.wantCA.certPEM()) {
				t.Errorf("CABundle is not the expected CA")
			}
		})
	}
}

// TestFilesRecoversFromBadUpdate checks that a bad set of files does not
// stop the poller: a good set after it is served.
func TestFilesRecoversFromBadUpdate(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	writeFiles(t, dir, keyPairFiles(t, ca, "127.0.0.1"))
	f, err := servingcert.NewFiles(dir, nil, servingcert.FilesOptions{Poll: filesPoll})
	if err != nil {
		t.Fatal(err)
	}
	before := leaf(t, f)
	runFiles(t, f)

	writeFiles(t, dir, map[string][]byte{"tls.crt": []byte("garbage")})
	time.Sleep(20 * filesPoll)
	if !leaf(t, f).Equal(before) {
		t.Fatal("a bad tls.crt replaced the serving certificate")
	}
	good := keyPairFiles(t, ca, "127.0.0.1")
	writeFiles(t, dir, good)
	changed(t, f)
	if leaf(t, f).Equal(before) {
		t.Error("the good files after the bad ones were not loaded")
	}
}

// TestFilesKubeletAtomicUpdate mimics how the kubelet updates a mounted
// Secret: the files are symlinks through ..data, which is swapped to a new
// directory in one rename.
func TestFilesKubeletAtomicUpdate(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	version := func(name string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFiles(t, filepath.Join(dir, name), keyPairFiles(t, ca, "127.0.0.1"))
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1")
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := servingcert.NewFiles(dir, nil, servingcert.FilesOptions{Poll: filesPoll})
	if err != nil {
		t.Fatal(err)
	}
	before := leaf(t, f)
	runFiles(t, f)

	version("..v2")
	changed(t, f)
	if leaf(t, f).Equal(before) {
		t.Error("the swapped-in certificate was not loaded")
	}
}

func runFiles(t *testing.T, f *servingcert.Files) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f.Start(t.Context()) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
}
