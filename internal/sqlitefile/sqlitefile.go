// Package sqlitefile holds what the relay's and the node store's SQLite
// backends share about their files: the exclusive lock that keeps a
// second process out, and the file modes (data directory 0700, database,
// WAL and shared-memory files 0600) enforced on every open, so that an
// older install's 0755 directory or 0644 database is tightened rather than
// trusted.
package sqlitefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrLocked: another process holds the database's lock.
var ErrLocked = errors.New("sqlitefile: database in use by another process")

// Modes the files are given.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// Suffixes of the files SQLite keeps beside a WAL database, and of the
// lock file.
var sidecars = []string{"-wal", "-shm", "-journal", ".lock"}

// Prepare readies path (a database file) for opening: its directory is
// created 0700 or, if it exists, set to 0700 (a shared directory with the
// sticky bit, such as /tmp, is left alone); the database file is created
// empty with mode 0600 if missing, so that SQLite, which gives the WAL and
// shared-memory files the database file's mode, creates them 0600 too; an
// existing database and its side files are set to 0600.
func Prepare(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("sqlitefile: data directory: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("sqlitefile: data directory: %w", err)
	}
	if st.Mode()&os.ModeSticky == 0 && st.Mode().Perm() != DirMode {
		if err := os.Chmod(dir, DirMode); err != nil {
			return fmt.Errorf("sqlitefile: data directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("sqlitefile: %w", err)
	}
	f.Close()
	return Secure(path)
}

// Secure sets the database file and its existing side files to 0600.
func Secure(path string) error {
	for _, p := range append([]string{path}, suffixed(path)...) {
		if err := os.Chmod(p, FileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlitefile: %w", err)
		}
	}
	return nil
}

func suffixed(path string) []string {
	out := make([]string, len(sidecars))
	for i, s := range sidecars {
		out[i] = path + s
	}
	return out
}
