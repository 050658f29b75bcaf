package sqlite_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/sqlite"
)

// grepFiles fails t if store.db or its WAL holds any of secrets.
func grepFiles(t *testing.T, path string, secrets ...string) {
	t.Helper()
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q", filepath.Base(f), s)
			}
		}
	}
}

func recordsOf(t *testing.T, s *sqlite.Store, kind string) string {
	t.Helper()
	rs, err := s.Records(ctx, kind)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.ID+"="+string(r.Value))
	}
	return fmt.Sprint(out)
}

// TestRecordIDsSealedAtRest: record ids (message, user and channel ids of
// the sync engine) and values, and a channel's extra (its state: who
// removed us), are nowhere in store.db or its WAL, read
// back in the order first stored, replace and delete by id, in a
// transaction too; a value moved to another row does not open.
func TestRecordIDsSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{KeyFile: filepath.Join(dir, "k")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []string{"secret-record-id-1", "secret-record-id-2", "secret-record-id-3"} {
		if err := s.PutRecord(ctx, "contact", id, []byte("value-of-"+id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutRecord(ctx, "contact", "secret-record-id-1", []byte("replaced")); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		rt := tx.(store.RecordsTx)
		if err := rt.DeleteRecord(ctx, "contact", "secret-record-id-2"); err != nil {
			return err
		}
		if err := tx.PutChannel(ctx, store.Channel{ID: "c1", GroupID: []byte("g"), Extra: []byte(`{"removed_by":"secret-remover-id"}`)}); err != nil {
			return err
		}
		return rt.PutRecord(ctx, "outbox", "secret-record-id-4", []byte("in-a-tx"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Channel(ctx, "c1"); err != nil || string(c.Extra) != `{"removed_by":"secret-remover-id"}` {
		t.Fatalf("channel extra %q %v", c.Extra, err)
	}
	want := "[secret-record-id-1=replaced secret-record-id-3=value-of-secret-record-id-3]"
	if got := recordsOf(t, s, "contact"); got != want {
		t.Fatalf("records %s, want %s", got, want)
	}
	if got := recordsOf(t, s, "outbox"); got != "[secret-record-id-4=in-a-tx]" {
		t.Fatalf("records %s", got)
	}
	grepFiles(t, path, "secret-record-id", "value-of-", "replaced", "in-a-tx", "secret-remover-id")
	raw := rawDB(t, path)
	if _, err := raw.Exec(`UPDATE client_records SET value = (SELECT value FROM client_records WHERE kind = 'outbox') WHERE kind = 'contact'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Records(ctx, "contact"); err == nil {
		t.Fatal("a value moved to other rows opened")
	}
}

// TestMigrateV4Records: a version 4 file, its record ids and a channel's
// state (who removed us) in the clear, and one deleted record's id left in
// a free page, opens: the records and the state read back the same, in
// order, and none of them is left in the file or its WAL.
func TestMigrateV4Records(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	opts := sqlite.Options{KeyFile: filepath.Join(dir, "k")}
	s, err := sqlite.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	for _, q := range []string{
		`DELETE FROM schema_migrations WHERE version = 5`,
		`ALTER TABLE client_records DROP COLUMN id_sealed`,
		`ALTER TABLE channels DROP COLUMN extra_sealed`,
		`INSERT INTO channels (channel_id, group_id, name, public, created_at, extra) VALUES ('c1', x'01', '', 0, 1, CAST('{"state":"removed","removed_by":"sp1legacyremover000000001"}' AS BLOB))`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	recs := []struct{ kind, id, value string }{
		{"contact", "sp1legacyuserid0000000001", `{"user_id":"sp1legacyuserid0000000001"}`},
		{"outbox", "legacy-message-entry-1", "entry one"},
		{"outbox", "legacy-deleted-entry-2", "entry two"},
		{"outbox", "legacy-message-entry-3", "entry three"},
	}
	for _, r := range recs {
		if _, err := raw.Exec(`INSERT INTO client_records (kind, id, value) VALUES (?, ?, ?)`, r.kind, r.id,
			sqlite.SealRecordV4(s, r.kind, r.id, []byte(r.value))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Exec(`DELETE FROM client_records WHERE id = 'legacy-deleted-entry-2'`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	s.Close()
	b, _ := os.ReadFile(path)
	w, _ := os.ReadFile(path + "-wal")
	if !bytes.Contains(append(b, w...), []byte("legacy-message-entry-1")) {
		t.Fatal("the version 4 file does not hold its ids: the test proves nothing")
	}

	s, err = sqlite.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := recordsOf(t, s, "outbox"); got != "[legacy-message-entry-1=entry one legacy-message-entry-3=entry three]" {
		t.Fatalf("migrated outbox %s", got)
	}
	if got := recordsOf(t, s, "contact"); got != `[sp1legacyuserid0000000001={"user_id":"sp1legacyuserid0000000001"}]` {
		t.Fatalf("migrated contacts %s", got)
	}
	if c, err := s.Channel(ctx, "c1"); err != nil || string(c.Extra) != `{"state":"removed","removed_by":"sp1legacyremover000000001"}` {
		t.Fatalf("migrated channel extra %q %v", c.Extra, err)
	}
	if err := s.DeleteRecord(ctx, "outbox", "legacy-message-entry-1"); err != nil {
		t.Fatal(err)
	}
	if got := recordsOf(t, s, "outbox"); got != "[legacy-message-entry-3=entry three]" {
		t.Fatalf("after delete %s", got)
	}
	var v int
	rawDB(t, path).QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if v != 5 {
		t.Fatalf("schema version %d", v)
	}
	grepFiles(t, path, "sp1legacyuserid", "legacy-message-entry", "legacy-deleted-entry", "entry one", "entry two", "sp1legacyremover")
}
