package xds_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// The cache holds private keys: a cache directory that existed before,
// world-readable as a fresh emptyDir is, is made 0700 when the proxy first
// writes to it, and the cache file 0600.
func TestTheCacheDirectoryIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	hub := startHub(t)
	a := &applied{}
	c := &xds.Client{Address: hub.addr, CAFile: hub.caFile, NodeID: tableName, Tables: []string{tableName}, CacheDir: dir, Apply: a.apply}
	go c.Run(t.Context())
	h := hub.set(t, &rt.RouteTable{Name: tableName, Gateway: "infra/shared"})
	waitFor(t, 5*time.Second, "the table to be acknowledged", func() bool { return hub.srv.Status(tableName).Acked[tableName] == h })
	var files []os.DirEntry
	waitFor(t, 5*time.Second, "the cache to be written", func() bool {
		files, _ = os.ReadDir(dir)
		return len(files) > 0
	})
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Errorf("cache directory mode %o, want 700", perm)
	}
	for _, f := range files {
		info, err := f.Info()
		if err == nil && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %o: others may read it", f.Name(), info.Mode().Perm())
		}
	}
}
