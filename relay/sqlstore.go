package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// sqlStore is the Store over database/sql, shared by the SQLite and the
// PostgreSQL backend; a dialect holds what differs.
//
// Ordering: every Append runs in one transaction that first locks the
// group's row (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer
// at a time, BEGIN IMMEDIATE), reads the relay's epoch and last sequence
// number from it, decides, inserts, and writes them back. The decision is
// therefore taken inside the database, never in process memory, and holds
// across any number of relay processes on one PostgreSQL. A second line of
// defence: accepted commits are also rows of the commits table whose
// primary key is (group_id, epoch), so the database itself refuses a second
// commit for an epoch even if the lock were missing. Sequence numbers are
// taken from the locked row, so they are gapless and become visible in
// order (a reader that saw seq n never later finds a new n-1).
type sqlStore struct {
	w, r *sql.DB // the writer and readers (the same pool on PostgreSQL)
	d    dialect
	// close releases backend resources beyond the pools (the SQLite lock).
	close func() error
	// batch groups concurrent appends into shared transactions (nil:
	// each Append is its own transaction).
	batch *batcher
	// flush makes commits durable (SQLite, synchronous=NORMAL); nil when
	// the commit itself is (PostgreSQL).
	flush *walFlusher
	// unsynced holds the log ends that are committed but not yet durable.
	unsynced unsynced
	// members caches senders' windows by group epoch (sql_members.go).
	members memberCache
	// tail holds the newest entries this process appended, for the long
	// polls they wake (sql_tail.go).
	tail tailCache
	// wst and rst are the hot statements prepared on w and r (SQLite;
	// nil on PostgreSQL): sql_stmts.go.
	wst, rst stmtCache
}

// durable returns once every commit made so far is durable.
func (s *sqlStore) durable() error {
	if s.flush == nil {
		return nil
	}
	if err := s.flush.sync(); err != nil {
		return fmt.Errorf("relay: %s: fsync: %w", s.d.name, err)
	}
	return nil
}

type dialect struct {
	name string
	// rebind turns ? placeholders into the backend's.
	rebind func(string) string
	// forUpdate is appended to a SELECT that locks the rows it reads.
	forUpdate string
	// skipLocked is appended to a SELECT that locks rows, skipping rows
	// another transaction holds (one-time key package claims).
	skipLocked string
	isUnique   func(error) bool
	// bulk: appends of application messages and proposals take
	// appendBulk (PostgreSQL: arrays and unnest).
	bulk bool
	// notify publishes an event to other processes inside tx (delivered at
	// commit); nil for a single-process backend.
	notify func(ctx context.Context, tx *sql.Tx, ev Event) error
	// lock serialises migrations between processes (nil: not needed).
	lockMigrations func(ctx context.Context, tx *sql.Tx) error
	types          map[string]string // schema template words
}

func questionToDollar(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// migrations[i] takes the schema from version i to i+1. Append only. The
// words BLOB, INT and ID are replaced per dialect (BYTEA, BIGINT, identity
// column on PostgreSQL). Times are nanoseconds since the Unix epoch.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE identities (
	user_id       TEXT PRIMARY KEY,
	signature_key {BLOB} NOT NULL,
	cipher_suite  {INT} NOT NULL,
	created_at    {INT} NOT NULL
);
CREATE TABLE challenges (
	challenge     {BLOB} PRIMARY KEY,
	user_id       TEXT NOT NULL,
	signature_key {BLOB} NOT NULL,
	cipher_suite  {INT} NOT NULL,
	expires_at    {INT} NOT NULL
);
CREATE TABLE tokens (
	token_hash {BLOB} PRIMARY KEY,
	user_id    TEXT NOT NULL,
	expires_at {INT} NOT NULL
);
CREATE TABLE key_packages (
	id         {ID},
	user_id    TEXT NOT NULL,
	ref        {BLOB} NOT NULL UNIQUE,
	data       {BLOB} NOT NULL,
	created_at {INT} NOT NULL
);
CREATE INDEX key_packages_user ON key_packages (user_id, id);
CREATE TABLE last_resort (
	user_id    TEXT PRIMARY KEY,
	ref        {BLOB} NOT NULL,
	data       {BLOB} NOT NULL,
	created_at {INT} NOT NULL
);
CREATE TABLE groups (
	group_id         {BLOB} PRIMARY KEY,
	epoch            {INT} NOT NULL CHECK (epoch >= 0),
	last_seq         {INT} NOT NULL CHECK (last_seq >= 0),
	creator          TEXT NOT NULL,
	created_at       {INT} NOT NULL,
	group_info       {BLOB},
	group_info_epoch {INT}
);
CREATE TABLE messages (
	group_id    {BLOB} NOT NULL REFERENCES groups (group_id),
	seq         {INT} NOT NULL,
	kind        TEXT NOT NULL,
	epoch       {INT} NOT NULL,
	sender      TEXT NOT NULL,
	data        {BLOB} NOT NULL,
	received_at {INT} NOT NULL,
	PRIMARY KEY (group_id, seq)
);
-- One accepted commit per (group, epoch), enforced by the database.
CREATE TABLE commits (
	group_id {BLOB} NOT NULL REFERENCES groups (group_id),
	epoch    {INT} NOT NULL,
	seq      {INT} NOT NULL,
	PRIMARY KEY (group_id, epoch)
);
CREATE TABLE readers (
	group_id {BLOB} NOT NULL REFERENCES groups (group_id),
	user_id  TEXT NOT NULL,
	from_seq {INT} NOT NULL,
	to_seq   {INT},
	PRIMARY KEY (group_id, user_id)
);
CREATE INDEX readers_user ON readers (user_id);
CREATE TABLE cursors (
	group_id {BLOB} NOT NULL REFERENCES groups (group_id),
	user_id  TEXT NOT NULL,
	after    {INT} NOT NULL,
	PRIMARY KEY (group_id, user_id)
);
CREATE TABLE welcomes (
	id           {ID},
	recipient    TEXT NOT NULL,
	sender       TEXT NOT NULL,
	group_id     {BLOB} NOT NULL,
	welcome      {BLOB} NOT NULL,
	ratchet_tree {BLOB},
	invite       {BLOB},
	created_at   {INT} NOT NULL
);
CREATE INDEX welcomes_recipient ON welcomes (recipient, id);
`,
	// 2: the relay authenticates devices, not names. A login proves a
	// device certificate whose identity key hashes to the user id, so the
	// trust-on-first-use bindings of names to keys go, with everything
	// that hung off them: their challenges, tokens, key packages (whose
	// leaves carry no certificate) and cursors (now per device). Logs,
	// readers and queued Welcomes stay. The plaintext invite descriptor
	// of queued Welcomes is dropped: the relay must not learn channel
	// names. New: users and their devices (the directory, with
	// revocations), per-device Welcome acknowledgements, link mailboxes.
	`
DROP TABLE identities;
DROP TABLE challenges;
DROP TABLE tokens;
DROP TABLE key_packages;
DROP TABLE last_resort;
DROP TABLE cursors;
CREATE TABLE users (
	user_id      TEXT PRIMARY KEY,
	identity_key {BLOB} NOT NULL,
	created_at   {INT} NOT NULL
);
-- A device row exists once the device logged in (certificate set) or was
-- revoked (revocation set). A revoked device never comes back.
CREATE TABLE devices (
	user_id       TEXT NOT NULL REFERENCES users (user_id),
	device_id     TEXT NOT NULL,
	certificate   {BLOB},
	signature_key {BLOB},
	not_before    {INT},
	created_at    {INT} NOT NULL,
	revocation    {BLOB},
	revoked_at    {INT},
	PRIMARY KEY (user_id, device_id)
);
CREATE TABLE challenges (
	challenge   {BLOB} PRIMARY KEY,
	certificate {BLOB} NOT NULL,
	expires_at  {INT} NOT NULL
);
CREATE TABLE tokens (
	token_hash    {BLOB} PRIMARY KEY,
	user_id       TEXT NOT NULL,
	device_id     TEXT NOT NULL,
	signature_key {BLOB} NOT NULL,
	expires_at    {INT} NOT NULL
);
CREATE INDEX tokens_device ON tokens (user_id, device_id);
CREATE TABLE key_packages (
	id         {ID},
	user_id    TEXT NOT NULL,
	device_id  TEXT NOT NULL,
	ref        {BLOB} NOT NULL UNIQUE,
	data       {BLOB} NOT NULL,
	created_at {INT} NOT NULL
);
CREATE INDEX key_packages_device ON key_packages (user_id, device_id, id);
CREATE TABLE last_resort (
	user_id    TEXT NOT NULL,
	device_id  TEXT NOT NULL,
	ref        {BLOB} NOT NULL,
	data       {BLOB} NOT NULL,
	created_at {INT} NOT NULL,
	PRIMARY KEY (user_id, device_id)
);
CREATE TABLE cursors (
	group_id  {BLOB} NOT NULL REFERENCES groups (group_id),
	user_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	after     {INT} NOT NULL,
	PRIMARY KEY (group_id, user_id, device_id)
);
ALTER TABLE messages ADD COLUMN sender_device TEXT NOT NULL DEFAULT '';
ALTER TABLE welcomes ADD COLUMN sender_device TEXT NOT NULL DEFAULT '';
ALTER TABLE welcomes DROP COLUMN invite;
CREATE TABLE welcome_acks (
	welcome_id {INT} NOT NULL,
	device_id  TEXT NOT NULL,
	PRIMARY KEY (welcome_id, device_id)
);
CREATE TABLE link_mailboxes (
	mailbox    TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL,
	device_id  TEXT NOT NULL,
	expires_at {INT} NOT NULL,
	last_seq   {INT} NOT NULL
);
CREATE INDEX link_mailboxes_user ON link_mailboxes (user_id);
CREATE TABLE link_messages (
	mailbox TEXT NOT NULL,
	seq     {INT} NOT NULL,
	side    TEXT NOT NULL,
	data    {BLOB} NOT NULL,
	PRIMARY KEY (mailbox, seq)
);
`,
	// 3: quotas shared by every relay process on the database.
	// Fixed-window counters by key (key package claims per claimer, per
	// target and per pair; new identities per source address), and leases
	// of open event streams per token (renewed while the stream lives, so
	// a crashed process's streams lapse).
	`
CREATE TABLE quotas (
	quota_key    TEXT PRIMARY KEY,
	window_start {INT} NOT NULL,
	n            {INT} NOT NULL
);
CREATE TABLE streams (
	token_hash  {BLOB} NOT NULL,
	stream_id   TEXT NOT NULL,
	lease_until {INT} NOT NULL,
	PRIMARY KEY (token_hash, stream_id)
);
CREATE INDEX messages_received ON messages (received_at);
`,
	// 4: the relay verifies the handshakes it orders (verify.go): each
	// group's public state (mls.PublicGroup: tree, GroupContext, interim
	// transcript hash, cached proposals), a version that every verified
	// handshake bumps, and the tree hash and confirmed transcript hash of
	// every epoch, for joiners to compare with. Groups registered before
	// have no public state: their commits are refused.
	`
ALTER TABLE groups ADD COLUMN public_state {BLOB};
ALTER TABLE groups ADD COLUMN state_version {INT} NOT NULL DEFAULT 0;
CREATE TABLE group_epochs (
	group_id                  {BLOB} NOT NULL REFERENCES groups (group_id),
	epoch                     {INT} NOT NULL,
	tree_hash                 {BLOB} NOT NULL,
	confirmed_transcript_hash {BLOB} NOT NULL,
	PRIMARY KEY (group_id, epoch)
);
`,
	// 5: each group counts its log's entries and data bytes, kept by
	// appends and retention in their transactions, so that /metrics sums
	// one row per group instead of reading the whole log.
	`
ALTER TABLE groups ADD COLUMN log_entries {INT} NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN log_bytes {INT} NOT NULL DEFAULT 0;
UPDATE groups SET
	log_entries = (SELECT COUNT(*) FROM messages m WHERE m.group_id = groups.group_id),
	log_bytes = (SELECT COALESCE(SUM(LENGTH(m.data)), 0) FROM messages m WHERE m.group_id = groups.group_id);
`,
}

func (s *sqlStore) q(query string) string { return s.d.rebind(query) }

func (s *sqlStore) migrate(ctx context.Context) error { return s.migrateTo(ctx, len(migrations)) }

// migrateTo applies the migrations up to version target.
func (s *sqlStore) migrateTo(ctx context.Context, target int) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("relay: migrate: %w", err)
	}
	defer tx.Rollback()
	if s.d.lockMigrations != nil {
		if err := s.d.lockMigrations(ctx, tx); err != nil {
			return fmt.Errorf("relay: migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS relay_schema (version `+s.d.types["INT"]+` NOT NULL)`); err != nil {
		return fmt.Errorf("relay: migrate: %w", err)
	}
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM relay_schema`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO relay_schema (version) VALUES (0)`); err != nil {
			return fmt.Errorf("relay: migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("relay: migrate: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("%w: version %d, this program knows %d", ErrSchemaTooNew, version, len(migrations))
	}
	for v := version; v < target; v++ {
		m := migrations[v]
		for k, t := range s.d.types {
			m = strings.ReplaceAll(m, "{"+k+"}", t)
		}
		for _, stmt := range strings.Split(m, ";") {
			if strings.TrimSpace(stripComments(stmt)) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("relay: migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE relay_schema SET version = ?`), v+1); err != nil {
			return fmt.Errorf("relay: migrate: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("relay: migrate: %w", err)
	}
	return nil
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func nanos(t time.Time) int64 { return t.UnixNano() }

// tx runs fn in a write transaction and returns once it is durable.
func (s *sqlStore) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := s.txNoSync(ctx, fn); err != nil {
		return err
	}
	return s.durable()
}

// txNoSync runs fn in a write transaction and commits it; with a flusher
// (SQLite) the commit is durable only after the next flush.
func (s *sqlStore) txNoSync(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("relay: %s: begin: %w", s.d.name, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("relay: %s: commit: %w", s.d.name, err)
	}
	return nil
}

func (s *sqlStore) dbErr(op string, err error) error {
	return fmt.Errorf("relay: %s: %s: %w", s.d.name, op, err)
}

func (s *sqlStore) Prune(ctx context.Context, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM challenges WHERE expires_at <= ?`,
			`DELETE FROM tokens WHERE expires_at <= ?`,
			`DELETE FROM link_messages WHERE mailbox IN (SELECT mailbox FROM link_mailboxes WHERE expires_at <= ?)`,
			`DELETE FROM link_mailboxes WHERE expires_at <= ?`,
			`DELETE FROM streams WHERE lease_until <= ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.q(q), nanos(now)); err != nil {
				return s.dbErr("prune", err)
			}
		}
		return nil
	})
}

func (s *sqlStore) Close() error {
	if s.batch != nil {
		s.batch.close()
	}
	s.wst.close()
	s.rst.close()
	var errs []error
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if s.close != nil {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}
