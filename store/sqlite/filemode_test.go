package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/sqlite"
)

// TestStoreFileModes: an existing data directory at 0755 with a 0644
// store.db is tightened on open (0700, 0600); the WAL and shared-memory
// files are 0600.
func TestStoreFileModes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "node")
	os.Mkdir(dir, 0o755)
	path := filepath.Join(dir, "store.db")
	opts := sqlite.Options{KeyFile: filepath.Join(dir, "store.key")}
	s, err := sqlite.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Chmod(dir, 0o755)
	for _, f := range []string{"store.db", "store.db-wal", "store.db-shm"} {
		os.Chmod(filepath.Join(dir, f), 0o644)
	}
	s, err = sqlite.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(ctx, func(tx store.Tx) error { _, err := tx.PruneKeyPackages(ctx, time.Now()); return err }); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600, path + ".lock": 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s is %v, want %v", filepath.Base(p), st.Mode().Perm(), want)
		}
	}
}
