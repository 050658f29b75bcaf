// Package sqlite is the embedded store.Store: one SQLite file in the
// identity's data directory, through the pure-Go driver modernc.org/sqlite.
//
//	s, err := sqlite.Open(ctx, filepath.Join(dir, "store.db"), sqlite.Options{
//		KeyFile: filepath.Join(dir, "store.key"), // created 0600 with a new database
//	})
//
// Durability: WAL journal with synchronous=FULL, so a transaction is on disk
// when Update returns (and before anything derived from it leaves the
// process). An Update is one SQLite transaction, or one savepoint of a
// transaction shared with the Updates queued with it (group commit,
// groupcommit.go), which commit or fail together at its end.
//
// Secrets at rest: every private value (signature private key, key package
// private keys, group state and blobs, PSKs, epoch secrets, message bodies)
// is sealed with AES-256-GCM under a 32-byte data key, with a fresh random
// nonce per write and additional data naming the table, column and primary
// key, so a sealed value moved to another row fails to open (ErrCorrupt).
// The data key is either derived from a passphrase with Argon2id (salt and
// parameters in the meta table) or read from a key file of mode 0600. A
// check value in the meta table turns a wrong key into store.ErrWrongKey at
// Open.
//
// Connections: one writer connection (database/sql pool of size 1, every
// transaction BEGIN IMMEDIATE) and a small pool of read-only connections.
// SQLite allows one writer at a time anyway; holding exactly one writer
// connection turns contention into a Go mutex wait instead of SQLITE_BUSY
// retries, and lets reads run in parallel on WAL snapshots without ever
// seeing a transaction in progress.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	sqlite "modernc.org/sqlite" // also registers the "sqlite" driver

	"github.com/spacepanda/spacepanda/internal/sqlitefile"
	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/internal/seal"
)

// Options says where the data key comes from: exactly one of Passphrase and
// KeyFile.
type Options struct {
	// Passphrase derives the data key with Argon2id.
	Passphrase []byte
	// KeyFile is the path of a file holding the 32-byte data key, mode
	// 0600. When Open creates a new database and the file does not exist,
	// Open creates it.
	KeyFile string
	// Argon2 sets the Argon2id cost when Open creates a passphrase
	// database (the zero value means DefaultArgon2()); an existing database
	// uses the parameters stored in it.
	Argon2 Argon2Params
	// Readers is the size of the read-only connection pool (0 means 4).
	Readers int
}

// Argon2Params are Argon2id costs (RFC 9106).
type Argon2Params struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DefaultArgon2 returns the cost of a new passphrase database: 2 passes
// over 64 MiB with 2 lanes.
func DefaultArgon2() Argon2Params { return Argon2Params{Time: 2, MemoryKiB: 64 * 1024, Threads: 2} }

// Store is the SQLite store.Store. It is safe for concurrent use.
type Store struct {
	reader
	w, r      *sql.DB
	stmts     *stmtCache        // the read pool's prepared statements
	ws        *writerStmts      // the writer's
	chans     chanCache         // channel rows read outside transactions
	seqs      map[string]uint64 // channels' last history seqs, committed (seqcache.go)
	commit    committer         // Update calls waiting for the writer (groupcommit.go)
	txGone    atomic.Bool       // set by the writer's rollback hook (groupcommit.go)
	box       *seal.Box
	lock      *os.File // flock on path+".lock"; nil where unsupported
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

const busyTimeoutMS = 10000

func dsn(path string, write bool) string {
	q := "_pragma=busy_timeout(" + strconv.Itoa(busyTimeoutMS) + ")&_pragma=foreign_keys(1)"
	if write {
		q += "&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	} else {
		q += "&_pragma=query_only(1)"
	}
	return path + "?" + q
}

// Open opens the database at path, creating it (and a missing key file) if
// it does not exist, and applies any pending schema migrations. Only one
// Store at a time may have a database open (path+".lock" holds an exclusive
// flock): a second Open fails with store.ErrLocked. It fails with
// store.ErrWrongKey if the key does not open an existing database,
// store.ErrInsecureKeyFile if the key file is group- or world-accessible, and
// store.ErrSchemaTooNew if the file was written by a newer program.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if (len(opts.Passphrase) == 0) == (opts.KeyFile == "") {
		return nil, fmt.Errorf("%w: exactly one of Passphrase and KeyFile", store.ErrInvalid)
	}
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("%w: database path %q", store.ErrInvalid, path)
	}
	if err := sqlitefile.Prepare(path); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	lock, err := sqlitefile.Lock(path + ".lock")
	if errors.Is(err, sqlitefile.ErrLocked) {
		return nil, fmt.Errorf("%w: %w", store.ErrLocked, err)
	} else if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{lock: lock}
	wc, err := sqlite.NewConnector(dsn(path, true))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	w := sql.OpenDB(writerConnector{Connector: wc, onRollback: func() { s.txGone.Store(true) }})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s.w, s.ws = w, newWriterStmts(w)
	err = s.init(ctx, path, opts)
	if err == nil {
		err = sqlitefile.Secure(path) // WAL and shared memory exist now
	}
	if err != nil {
		w.Close()
		if s.r != nil {
			s.r.Close()
		}
		lock.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, path string, opts Options) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("store: open %s: journal_mode is %q, want wal", path, mode)
	}
	var sync int
	if err := s.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		return fmt.Errorf("store: open %s: synchronous is not FULL (%d, %v)", path, sync, err)
	}
	if err := migrate(ctx, s.w); err != nil {
		return err
	}
	box, err := setupKey(ctx, s.w, opts)
	if err != nil {
		return err
	}
	s.box = box
	if err := sealLegacy(ctx, s.w, box); err != nil {
		return err
	}
	if err := sealRecords(ctx, s.w, box); err != nil {
		return err
	}
	s.r, err = sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	n := opts.Readers
	if n <= 0 {
		n = 4
	}
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	s.stmts = newStmtCache(s.r)
	s.reader = reader{q: s.stmts, box: box, check: s.check}
	return nil
}

// Meta keys.
const (
	metaKDF       = "kdf" // "argon2id" or "keyfile"
	metaSalt      = "argon2id.salt"
	metaTime      = "argon2id.time"
	metaMemory    = "argon2id.memory_kib"
	metaThreads   = "argon2id.threads"
	metaKeyCheck  = "key_check"
	kdfArgon2id   = "argon2id"
	kdfKeyFile    = "keyfile"
	keyCheckValue = "spacepanda store key check v1"
)

// setupKey derives the data key and checks it against the meta table, or,
// for a new database, records how it was made and a check value.
func setupKey(ctx context.Context, db *sql.DB, opts Options) (box *seal.Box, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	meta := map[string][]byte{}
	rows, err := tx.QueryContext(ctx, `SELECT key, value FROM meta`)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: open: %w", err)
		}
		meta[k] = v
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	checkAD := seal.Bind("meta", "value", []byte(metaKeyCheck))

	if kdf, ok := meta[metaKDF]; ok { // existing database
		key, err := existingKey(string(kdf), meta, opts)
		if err != nil {
			return nil, err
		}
		box, err := seal.New(key)
		if err != nil {
			return nil, err
		}
		pt, err := box.Open(checkAD, meta[metaKeyCheck])
		if err != nil || string(pt) != keyCheckValue {
			return nil, fmt.Errorf("%w: key check failed", store.ErrWrongKey)
		}
		return box, tx.Commit()
	}

	// New database: the meta table is empty.
	put := func(k string, v []byte) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, k, v)
		return err
	}
	var key []byte
	if opts.KeyFile != "" {
		key, err = seal.ReadKeyFile(opts.KeyFile)
		if errors.Is(err, fs.ErrNotExist) {
			key, err = seal.CreateKeyFile(opts.KeyFile)
		}
		if err != nil {
			return nil, keyFileErr(err)
		}
		err = put(metaKDF, []byte(kdfKeyFile))
	} else {
		p := opts.Argon2
		if p == (Argon2Params{}) {
			p = DefaultArgon2()
		}
		if err := p.check(); err != nil {
			return nil, err
		}
		salt := seal.RandomBytes(16)
		key = seal.DeriveKey(opts.Passphrase, salt, seal.Argon2Params(p))
		err = errors.Join(
			put(metaKDF, []byte(kdfArgon2id)),
			put(metaSalt, salt),
			put(metaTime, []byte(strconv.FormatUint(uint64(p.Time), 10))),
			put(metaMemory, []byte(strconv.FormatUint(uint64(p.MemoryKiB), 10))),
			put(metaThreads, []byte(strconv.FormatUint(uint64(p.Threads), 10))),
		)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	box, err = seal.New(key)
	if err != nil {
		return nil, err
	}
	if err := put(metaKeyCheck, box.Seal(checkAD, []byte(keyCheckValue))); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	return box, nil
}

func existingKey(kdf string, meta map[string][]byte, opts Options) ([]byte, error) {
	switch kdf {
	case kdfKeyFile:
		if opts.KeyFile == "" {
			return nil, fmt.Errorf("%w: database is sealed with a key file, not a passphrase", store.ErrWrongKey)
		}
		key, err := seal.ReadKeyFile(opts.KeyFile)
		if err != nil {
			return nil, keyFileErr(err)
		}
		return key, nil
	case kdfArgon2id:
		if len(opts.Passphrase) == 0 {
			return nil, fmt.Errorf("%w: database is sealed with a passphrase, not a key file", store.ErrWrongKey)
		}
		var p Argon2Params
		t, err1 := strconv.ParseUint(string(meta[metaTime]), 10, 32)
		m, err2 := strconv.ParseUint(string(meta[metaMemory]), 10, 32)
		th, err3 := strconv.ParseUint(string(meta[metaThreads]), 10, 8)
		p = Argon2Params{Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(th)}
		if err := errors.Join(err1, err2, err3, p.check()); err != nil || len(meta[metaSalt]) < 16 {
			return nil, fmt.Errorf("%w: bad argon2id parameters in meta table", store.ErrCorrupt)
		}
		return seal.DeriveKey(opts.Passphrase, meta[metaSalt], seal.Argon2Params(p)), nil
	}
	return nil, fmt.Errorf("%w: unknown kdf %q in meta table", store.ErrCorrupt, kdf)
}

func (p Argon2Params) check() error {
	// Bounds keep a tampered meta table from exhausting memory at Open.
	if p.Time < 1 || p.Time > 100 || p.Threads < 1 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > 4<<20 {
		return fmt.Errorf("%w: argon2id parameters out of range", store.ErrInvalid)
	}
	return nil
}

func keyFileErr(err error) error {
	switch {
	case errors.Is(err, seal.ErrKeyFileMode):
		return fmt.Errorf("%w: %v", store.ErrInsecureKeyFile, err)
	case errors.Is(err, seal.ErrKeyFileSize):
		return fmt.Errorf("%w: %v", store.ErrWrongKey, err)
	}
	return fmt.Errorf("store: key file: %w", err)
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// Close implements store.Store. It checkpoints the WAL into the main file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stmts.close()
		s.ws.close()
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
		if s.lock != nil {
			s.lock.Close() // releases the flock, after the database is closed
		}
	})
	return s.closeErr
}
