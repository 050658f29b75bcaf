package relay

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGroup(ctx, []byte("g"), "alice", 3, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSQLite(ctx, dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open of a live directory: %v", err)
	}
	st.Close()
	// Reopening keeps the data and does not migrate again.
	st, err = OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := st.Group(ctx, []byte("g")); err != nil || g.Epoch != 3 {
		t.Fatal(g, err)
	}
	st.Close()
	// A database from a newer relay is refused.
	db, err := sql.Open("sqlite", filepath.Join(dir, "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE relay_schema SET version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenSQLite(ctx, dir); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("newer schema: %v", err)
	}
}

// Relays starting at once on an empty PostgreSQL database migrate it once
// (the advisory lock serialises them).
func TestOpenPostgresConcurrently(t *testing.T) {
	url := freshPG(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			st, err := OpenPostgres(context.Background(), url)
			if err != nil {
				t.Error(err)
				return
			}
			st.Close()
		})
	}
	wg.Wait()
	st, err := OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var v int
	if err := st.w.QueryRow(`SELECT version FROM relay_schema`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", v, err, len(migrations))
	}
	var rows int
	st.w.QueryRow(`SELECT COUNT(*) FROM relay_schema`).Scan(&rows)
	if rows != 1 {
		t.Fatalf("%d version rows", rows)
	}
}
