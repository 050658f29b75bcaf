package sqlitefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestPrepareTightens: a new directory and database are 0700 and 0600; an
// existing 0755 directory and 0644 database, WAL and shared-memory files
// are tightened; a sticky shared directory is left alone.
func TestPrepareTightens(t *testing.T) {
	root := t.TempDir()
	fresh := filepath.Join(root, "new", "x.db")
	if err := Prepare(fresh); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Dir(fresh)); m != DirMode {
		t.Errorf("new directory %v", m)
	}
	if m := mode(t, fresh); m != FileMode {
		t.Errorf("new database %v", m)
	}
	old := filepath.Join(root, "old")
	os.Mkdir(old, 0o755)
	os.Chmod(old, 0o755)
	db := filepath.Join(old, "x.db")
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		os.WriteFile(p, nil, 0o644)
		os.Chmod(p, 0o644)
	}
	if err := Prepare(db); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, old); m != DirMode {
		t.Errorf("existing directory left %v", m)
	}
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		if m := mode(t, p); m != FileMode {
			t.Errorf("%s left %v", filepath.Base(p), m)
		}
	}
	shared := filepath.Join(root, "shared")
	os.Mkdir(shared, 0o777|os.ModeSticky)
	os.Chmod(shared, 0o777|os.ModeSticky)
	if err := Prepare(filepath.Join(shared, "x.db")); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, shared); m != 0o777 {
		t.Errorf("a sticky shared directory was changed to %v", m)
	}
}

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	f, err := Lock(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Lock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
}
