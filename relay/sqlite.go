package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spacepanda/spacepanda/internal/sqlitefile"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// OpenSQLite opens (creating if needed) the relay database relay.db in dir:
// the embedded, single-process backend. WAL journal; a request is answered
// only after its transaction is on disk: the writer runs with
// synchronous=NORMAL and an fsync of the WAL shared by concurrent commits
// follows each (walsync.go: as durable as synchronous=FULL, with group
// commit and the next batch prepared during the fsync); one writer connection with BEGIN IMMEDIATE (contention is a Go
// mutex wait, never SQLITE_BUSY), a small pool of read-only connections,
// and an exclusive flock on relay.db.lock so a second relay on the same
// directory fails with ErrLocked (the flock goes with the process, even on
// SIGKILL).
func OpenSQLite(ctx context.Context, dir string) (Store, error) {
	path := filepath.Join(dir, "relay.db")
	if err := sqlitefile.Prepare(path); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	lock, err := sqlitefile.Lock(path + ".lock")
	if errors.Is(err, sqlitefile.ErrLocked) {
		return nil, fmt.Errorf("%w: %w", ErrLocked, err)
	} else if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	const busy = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	w, err := sql.Open("sqlite", path+"?"+busy+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("relay: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &sqlStore{w: w, d: sqliteDialect(), close: lock.Close, flush: &walFlusher{wal: path + "-wal", db: path}}
	fail := func(err error) (Store, error) {
		w.Close()
		if s.r != nil {
			s.r.Close()
		}
		lock.Close()
		return nil, err
	}
	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		return fail(fmt.Errorf("relay: open %s: journal_mode %q: %v", path, mode, err))
	}
	var syncMode int
	if err := w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&syncMode); err != nil || syncMode != 1 {
		return fail(fmt.Errorf("relay: open %s: synchronous is not NORMAL (%d, %v)", path, syncMode, err))
	}
	if err := s.migrate(ctx); err != nil {
		return fail(err)
	}
	if err := s.durable(); err != nil {
		return fail(err)
	}
	// The WAL and shared-memory files exist now (0600 from the database
	// file's mode); tighten any an older relay left wider.
	if err := sqlitefile.Secure(path); err != nil {
		return fail(fmt.Errorf("relay: %w", err))
	}
	r, err := sql.Open("sqlite", path+"?"+busy+"&_pragma=query_only(1)")
	if err != nil {
		return fail(fmt.Errorf("relay: open: %w", err))
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s.r = r
	if err := s.prepareHot(ctx); err != nil {
		return fail(err)
	}
	// One lane: SQLite has one writer connection.
	s.batch = newBatcher(s, 1)
	return s, nil
}

func sqliteDialect() dialect {
	return dialect{
		name:   "sqlite",
		rebind: func(q string) string { return q },
		isUnique: func(err error) bool {
			var se *sqlite.Error
			if !errors.As(err, &se) {
				return false
			}
			c := se.Code()
			return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		},
		types: map[string]string{"BLOB": "BLOB", "INT": "INTEGER", "ID": "INTEGER PRIMARY KEY AUTOINCREMENT"},
	}
}
