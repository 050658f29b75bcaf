package relay

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRelayFileModes: an existing relay data directory at 0755 with a
// 0644 relay.db is tightened on open (0700, 0600), and the WAL and
// shared-memory files written by traffic are 0600.
func TestRelayFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "relay")
	st, err := OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	os.Chmod(dir, 0o755)
	for _, f := range []string{"relay.db", "relay.db-wal", "relay.db-shm"} {
		os.Chmod(filepath.Join(dir, f), 0o644)
	}
	st, err = OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateGroup(context.Background(), []byte("g"), "alice", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("data directory %v", m)
	}
	for _, f := range []string{"relay.db", "relay.db-wal", "relay.db-shm", "relay.db.lock"} {
		if m := mode(t, filepath.Join(dir, f)); m != 0o600 {
			t.Errorf("%s is %v", f, m)
		}
	}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}
