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

// TestMigrateFromNames: a database of the name-bound relay (schema 1)
// migrates to devices: the trust-on-first-use bindings and what hung off
// them (tokens, key packages, cursors) are gone, so a name is nobody's;
// logs, readers and queued Welcomes stay, without their plaintext invite.
func TestMigrateFromNames(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(t *testing.T) (raw *sqlStore, reopen func() Store)
	}{
		{"sqlite", func(t *testing.T) (*sqlStore, func() Store) {
			dir := t.TempDir()
			db, err := sql.Open("sqlite", filepath.Join(dir, "relay.db")+"?_pragma=foreign_keys(1)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return &sqlStore{w: db, r: db, d: sqliteDialect()}, func() Store {
				db.Close()
				st, err := OpenSQLite(context.Background(), dir)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		}},
		{"postgres", func(t *testing.T) (*sqlStore, func() Store) {
			url := freshPG(t)
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return &sqlStore{w: db, r: db, d: postgresDialect()}, func() Store { return openPostgresAt(t, url) }
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			old, reopen := b.open(t)
			if err := old.migrateTo(ctx, 1); err != nil {
				t.Fatal(err)
			}
			g := []byte("g")
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`INSERT INTO identities (user_id, signature_key, cipher_suite, created_at) VALUES ('dave', ?, 1, 0)`, []any{[]byte("squatter-key")}},
				{`INSERT INTO tokens (token_hash, user_id, expires_at) VALUES (?, 'dave', 9000000000000000000)`, []any{[]byte("tok")}},
				{`INSERT INTO key_packages (user_id, ref, data, created_at) VALUES ('dave', ?, ?, 0)`, []any{[]byte("ref"), []byte("kp")}},
				{`INSERT INTO groups (group_id, epoch, last_seq, creator, created_at) VALUES (?, 1, 2, 'dave', 0)`, []any{g}},
				{`INSERT INTO messages (group_id, seq, kind, epoch, sender, data, received_at) VALUES (?, 1, 'commit', 0, 'dave', ?, 0)`, []any{g, []byte("c")}},
				{`INSERT INTO messages (group_id, seq, kind, epoch, sender, data, received_at) VALUES (?, 2, 'application', 1, 'erin', ?, 0)`, []any{g, []byte("m")}},
				{`INSERT INTO commits (group_id, epoch, seq) VALUES (?, 0, 1)`, []any{g}},
				{`INSERT INTO readers (group_id, user_id, from_seq, to_seq) VALUES (?, 'dave', 1, NULL)`, []any{g}},
				{`INSERT INTO readers (group_id, user_id, from_seq, to_seq) VALUES (?, 'erin', 1, NULL)`, []any{g}},
				{`INSERT INTO cursors (group_id, user_id, after) VALUES (?, 'erin', 2)`, []any{g}},
				{`INSERT INTO welcomes (recipient, sender, group_id, welcome, invite, created_at) VALUES ('erin', 'dave', ?, ?, ?, 0)`, []any{g, []byte("w"), []byte("channel name")}},
			} {
				if _, err := old.w.Exec(old.q(q.sql), q.args...); err != nil {
					t.Fatalf("%s: %v", q.sql, err)
				}
			}
			st := reopen()
			if _, err := st.Session(ctx, []byte("tok"), time.Now()); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a name-bound token survived: %v", err)
			}
			if _, err := st.ClaimKeyPackages(ctx, "dave"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a key package without a certificate survived: %v", err)
			}
			if g, err := st.Group(ctx, []byte("g")); err != nil || g.Epoch != 1 || g.LastSeq != 2 || len(g.Members) != 2 {
				t.Fatalf("group: %+v %v", g, err)
			}
			ms, err := st.Messages(ctx, []byte("g"), "erin", 0, 10, 1<<20)
			if err != nil || len(ms) != 2 || string(ms[1].Data) != "m" || ms[1].SenderDevice != "" {
				t.Fatalf("log: %+v %v", ms, err)
			}
			ws, err := st.Welcomes(ctx, "erin", "any", 10, 1<<20)
			if err != nil || len(ws) != 1 || string(ws[0].Welcome) != "w" {
				t.Fatalf("welcomes: %+v %v", ws, err)
			}
			// The invite's plaintext is gone with its column.
			if _, err := rawDB(st).Exec(`SELECT invite FROM welcomes`); err == nil {
				t.Fatal("welcomes still have an invite column")
			}
			if _, _, err := st.Append(ctx, Message{GroupID: []byte("g"), Kind: "commit", Epoch: 1, Sender: "erin", Data: []byte("c2"), ReceivedAt: time.Now()}); err != nil {
				t.Fatalf("the migrated log takes the next commit: %v", err)
			}
		})
	}
}

func rawDB(st Store) *sql.DB {
	switch s := st.(type) {
	case *sqlStore:
		return s.w
	case *PostgresStore:
		return s.w
	}
	panic("not a SQL store")
}
