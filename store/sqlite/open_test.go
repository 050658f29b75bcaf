package sqlite_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/sqlite"
)

func rnd(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// rawDB opens the file with the driver alone, as someone holding a copy of
// it would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestReopenKeyFile(t *testing.T) {
	dir := t.TempDir()
	db, key := filepath.Join(dir, "store.db"), filepath.Join(dir, "store.key")
	s, err := sqlite.Open(ctx, db, sqlite.Options{KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	psk := rnd(32)
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutExternalPSK(ctx, []byte("p"), psk) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = sqlite.Open(ctx, db, sqlite.Options{KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ExternalPSK(ctx, []byte("p"))
	if err != nil || !bytes.Equal(got, psk) {
		t.Fatalf("after reopen: %v", err)
	}
	s.Close()

	cases := []struct {
		name string
		opts sqlite.Options
		want error
	}{
		{"passphrase for a key-file database", sqlite.Options{Passphrase: []byte("x"), Argon2: fastArgon2}, store.ErrWrongKey},
		{"another key file", sqlite.Options{KeyFile: filepath.Join(t.TempDir(), "new.key")}, fs.ErrNotExist},
		{"no key", sqlite.Options{}, store.ErrInvalid},
		{"both keys", sqlite.Options{KeyFile: key, Passphrase: []byte("x")}, store.ErrInvalid},
	}
	for _, c := range cases {
		_, err := sqlite.Open(ctx, db, c.opts)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// A different key of the right shape.
	other := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(other, rnd(32), 0o600)
	if _, err := sqlite.Open(ctx, db, sqlite.Options{KeyFile: other}); !errors.Is(err, store.ErrWrongKey) {
		t.Errorf("other key file: %v", err)
	}
	// A key file readable by others is refused, even the right one.
	os.Chmod(key, 0o644)
	if _, err := sqlite.Open(ctx, db, sqlite.Options{KeyFile: key}); !errors.Is(err, store.ErrInsecureKeyFile) {
		t.Errorf("mode 0644: %v", err)
	}
}

func TestPassphrase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "store.db")
	open := func(pass string) (*sqlite.Store, error) {
		return sqlite.Open(ctx, db, sqlite.Options{Passphrase: []byte(pass), Argon2: fastArgon2})
	}
	s, err := open("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := open("wrong horse"); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := sqlite.Open(ctx, db, sqlite.Options{KeyFile: filepath.Join(t.TempDir(), "k")}); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("key file for a passphrase database: %v", err)
	}
	s, err = open("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The parameters and salt are in the meta table.
	var n int
	rawDB(t, db).QueryRow(`SELECT COUNT(*) FROM meta WHERE key LIKE 'argon2id.%'`).Scan(&n)
	if n != 4 {
		t.Fatalf("argon2id meta rows = %d, want 4", n)
	}
	// Out-of-range parameters for a new database are refused.
	_, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"), sqlite.Options{Passphrase: []byte("p"), Argon2: sqlite.Argon2Params{Time: 0, MemoryKiB: 64, Threads: 1}})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("time=0: %v", err)
	}
}

func TestSchema(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "store.db")
	opts := sqlite.Options{KeyFile: filepath.Join(dir, "k")}
	for i := 0; i < 2; i++ { // the second open applies nothing
		s, err := sqlite.Open(ctx, db, opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	raw := rawDB(t, db)
	var versions, max int
	raw.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&versions, &max)
	if versions != sqlite.SchemaVersion || max != sqlite.SchemaVersion {
		t.Fatalf("schema_migrations: %d rows, max %d; want %d", versions, max, sqlite.SchemaVersion)
	}
	var mode string
	raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal_mode = %s", mode)
	}
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, sqlite.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err := sqlite.Open(ctx, db, opts)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("newer schema: err = %v", err)
	}
}

// TestNoPlaintextAtRest stores a known secret of every kind and checks that
// none of them appears in the database file or its WAL, open or closed, or in
// any column a copy of the file yields to the bare driver.
func TestNoPlaintextAtRest(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "store.db")
	s, err := sqlite.Open(ctx, dbPath, sqlite.Options{Passphrase: []byte("pw"), Argon2: fastArgon2})
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{}
	sec := func(name string, n int) []byte { secrets[name] = rnd(n); return secrets[name] }
	public := rnd(48)
	gid := []byte("group-id")
	err = s.Update(ctx, func(tx store.Tx) error {
		return errorsJoin(
			tx.PutIdentity(ctx, store.Identity{SignaturePrivateKey: sec("signature", 32), SignaturePublicKey: public, CipherSuite: 1,
				DeviceID: rnd(16), UserID: "u", Credential: []byte("c"), Certificate: []byte("cert"), PrivateIdentity: sec("private identity", 66)}),
			tx.PutKeyPackages(ctx, store.KeyPackage{Ref: []byte("ref"), KeyPackage: []byte("kp"), InitPrivateKey: sec("init", 32),
				LeafPrivateKey: sec("leaf", 32), NotAfter: time.Now().Add(time.Hour)}),
			tx.PutGroup(ctx, store.Group{ID: gid, Epoch: 3, State: sec("state", 200)}),
			tx.PutGroupBlob(ctx, gid, []byte("ratchet/0"), sec("ratchet", 32)),
			tx.PutEpochSecret(ctx, gid, 2, sec("epoch", 32)),
			tx.PutExternalPSK(ctx, []byte("ext"), sec("external psk", 32)),
			tx.PutResumptionPSK(ctx, gid, 2, sec("resumption psk", 32)),
			tx.PutChannel(ctx, store.Channel{ID: "c", GroupID: gid}),
			func() error {
				_, err := tx.AppendMessage(ctx, store.Message{ChannelID: "c", ID: "m", Body: sec("body", 40)})
				return err
			}(),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	grep := func(when string) {
		t.Helper()
		var all []byte
		files, _ := filepath.Glob(dbPath + "*")
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		if !bytes.Contains(all, public) {
			t.Fatalf("%s: public key not found in %v: the grep is broken", when, files)
		}
		for name, v := range secrets {
			if bytes.Contains(all, v) || bytes.Contains(all, v[:16]) {
				t.Errorf("%s: %s found in plaintext in the database files", when, name)
			}
		}
	}
	grep("open")
	// A copy taken while open: the bare driver sees only sealed values.
	raw := rawDB(t, dbPath)
	tables, err := raw.Query(`SELECT name FROM sqlite_schema WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	cells := 0
	for _, table := range names {
		rows, err := raw.Query(`SELECT * FROM "` + strings.ReplaceAll(table, `"`, `""`) + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			for i, v := range vals {
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				}
				cells++
				for name, sv := range secrets {
					if bytes.Contains(b, sv) {
						t.Errorf("%s found in %s.%s", name, table, cols[i])
					}
				}
			}
		}
		rows.Close()
	}
	if cells < 30 {
		t.Fatalf("scanned only %d cells", cells)
	}
	raw.Close()
	s.Close()
	grep("closed")
}

func errorsJoin(errs ...error) error { return errors.Join(errs...) }

// TestMovedSealedValue: a sealed value copied into another row or column
// does not open (the additional data binds it to its place).
func TestMovedSealedValue(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "store.db")
	s, err := sqlite.Open(ctx, dbPath, sqlite.Options{KeyFile: filepath.Join(dir, "k")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exp := time.Now().Add(time.Hour)
	err = s.Update(ctx, func(tx store.Tx) error {
		return errorsJoin(
			tx.PutKeyPackages(ctx,
				store.KeyPackage{Ref: []byte("a"), KeyPackage: []byte("kp"), InitPrivateKey: rnd(32), LeafPrivateKey: rnd(32), NotAfter: exp},
				store.KeyPackage{Ref: []byte("b"), KeyPackage: []byte("kp"), InitPrivateKey: rnd(32), LeafPrivateKey: rnd(32), NotAfter: exp}),
			tx.PutGroup(ctx, store.Group{ID: []byte("g"), Epoch: 5, State: rnd(32)}),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, dbPath)
	tamper := []struct {
		name  string
		sql   string
		check func() error
	}{
		{"init key into leaf column", `UPDATE key_packages SET leaf_private_key = init_private_key WHERE ref = x'61'`,
			func() error { _, err := s.KeyPackage(ctx, []byte("a")); return err }},
		{"init key from another row", `UPDATE key_packages SET init_private_key = (SELECT init_private_key FROM key_packages WHERE ref = x'61') WHERE ref = x'62'`,
			func() error { _, err := s.KeyPackage(ctx, []byte("b")); return err }},
		{"state with another epoch", `UPDATE groups SET epoch = 4`,
			func() error { _, err := s.Group(ctx, []byte("g")); return err }},
	}
	for _, c := range tamper {
		if _, err := raw.Exec(c.sql); err != nil {
			t.Fatal(err)
		}
		if err := c.check(); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", c.name, err)
		}
	}
}

// TestOneStorePerDatabase: a second Store on the same identity's database is
// refused while the first is open (two writers of one group's ratchets
// would reuse keys and nonces).
func TestOneStorePerDatabase(t *testing.T) {
	dir := t.TempDir()
	db, opts := filepath.Join(dir, "store.db"), sqlite.Options{KeyFile: filepath.Join(dir, "k")}
	s, err := sqlite.Open(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(ctx, db, opts); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, db, opts)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

// downgradeToV1 turns a database back into schema version 1, as a program
// from before device identities left it.
func downgradeToV1(t *testing.T, path string) {
	t.Helper()
	raw := rawDB(t, path)
	for _, q := range []string{
		`ALTER TABLE identity DROP COLUMN device_id`,
		`ALTER TABLE identity DROP COLUMN certificate`,
		`ALTER TABLE identity DROP COLUMN private_identity`,
		`ALTER TABLE identity DROP COLUMN display_name`,
		`DROP TABLE revocations`,
		`ALTER TABLE channels DROP COLUMN name_sealed`,
		`ALTER TABLE messages DROP COLUMN meta`,
		`ALTER TABLE channels DROP COLUMN extra_sealed`,
		`DROP TABLE client_records`,
		`DELETE FROM schema_migrations WHERE version > 1`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
}

// TestMigrateV1Identity: a version 1 database opens, is migrated, and its
// identity reads back with its keys and old name as the user id, without a
// device id — which tells the provider it predates device identities.
func TestMigrateV1Identity(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "store.db")
	opts := sqlite.Options{KeyFile: filepath.Join(dir, "k")}
	s, err := sqlite.Open(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	id := store.Identity{SignaturePrivateKey: []byte("private"), SignaturePublicKey: []byte("public"), CipherSuite: 1,
		DeviceID: rnd(16), UserID: "alice", Credential: []byte("cred"), Certificate: []byte("cert")}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutIdentity(ctx, id) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	downgradeToV1(t, db)

	s, err = sqlite.Open(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.SignaturePrivateKey) != "private" || got.UserID != "alice" || len(got.DeviceID) != 0 ||
		len(got.Certificate) != 0 || got.PrivateIdentity != nil || got.DisplayName != "" {
		t.Fatalf("migrated identity %+v", got)
	}
	var v int
	rawDB(t, db).QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if v != sqlite.SchemaVersion {
		t.Fatalf("schema version %d after migrating, want %d", v, sqlite.SchemaVersion)
	}
	if rs, err := s.Revocations(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("revocations after migrating: %v, %v", rs, err)
	}
}
