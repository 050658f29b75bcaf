package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
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
}

func (s *sqlStore) q(query string) string { return s.d.rebind(query) }

func (s *sqlStore) migrate(ctx context.Context) error {
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
	for v := version; v < len(migrations); v++ {
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

// tx runs fn in a write transaction.
func (s *sqlStore) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
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

func (s *sqlStore) PutChallenge(ctx context.Context, c Challenge) error {
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO challenges (challenge, user_id, signature_key, cipher_suite, expires_at) VALUES (?, ?, ?, ?, ?)`),
		c.Challenge, c.UserID, c.SignatureKey, int64(c.Suite), nanos(c.Expires))
	if err != nil {
		return s.dbErr("put challenge", err)
	}
	return nil
}

func (s *sqlStore) TakeChallenge(ctx context.Context, challenge []byte, now time.Time) (Challenge, error) {
	c := Challenge{Challenge: challenge}
	var suite, exp int64
	err := s.w.QueryRowContext(ctx, s.q(`DELETE FROM challenges WHERE challenge = ? RETURNING user_id, signature_key, cipher_suite, expires_at`), challenge).
		Scan(&c.UserID, &c.SignatureKey, &suite, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Challenge{}, ErrNotFound
	}
	if err != nil {
		return Challenge{}, s.dbErr("take challenge", err)
	}
	c.Suite, c.Expires = uint16(suite), time.Unix(0, exp)
	if !now.Before(c.Expires) {
		return Challenge{}, ErrNotFound
	}
	return c, nil
}

func (s *sqlStore) IdentityKey(ctx context.Context, userID string) ([]byte, error) {
	var key []byte
	err := s.r.QueryRowContext(ctx, s.q(`SELECT signature_key FROM identities WHERE user_id = ?`), userID).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, s.dbErr("identity", err)
	}
	return key, nil
}

func (s *sqlStore) BindIdentity(ctx context.Context, userID string, key []byte, suite uint16, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO identities (user_id, signature_key, cipher_suite, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING`),
			userID, key, int64(suite), nanos(now)); err != nil {
			return s.dbErr("bind identity", err)
		}
		var got []byte
		if err := tx.QueryRowContext(ctx, s.q(`SELECT signature_key FROM identities WHERE user_id = ?`), userID).Scan(&got); err != nil {
			return s.dbErr("bind identity", err)
		}
		if string(got) != string(key) {
			return ErrKeyMismatch
		}
		return nil
	})
}

func (s *sqlStore) PutToken(ctx context.Context, tokenHash []byte, userID string, expires time.Time) error {
	if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)`), tokenHash, userID, nanos(expires)); err != nil {
		return s.dbErr("put token", err)
	}
	return nil
}

func (s *sqlStore) TokenUser(ctx context.Context, tokenHash []byte, now time.Time) (string, time.Time, error) {
	var user string
	var exp int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT user_id, expires_at FROM tokens WHERE token_hash = ?`), tokenHash).Scan(&user, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, s.dbErr("token", err)
	}
	if now.UnixNano() >= exp {
		return "", time.Time{}, ErrNotFound
	}
	return user, time.Unix(0, exp), nil
}

func (s *sqlStore) AddKeyPackages(ctx context.Context, userID string, kps []KeyPackage, lastResort *KeyPackage, max int, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Lock the user's identity row (bound at login) so that two
		// concurrent publishes on PostgreSQL cannot both pass the quota.
		var one int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM identities WHERE user_id = ?`+s.d.forUpdate), userID).Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s.dbErr("add key packages", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM key_packages WHERE user_id = ?`), userID).Scan(&n); err != nil {
			return s.dbErr("count key packages", err)
		}
		if n+len(kps) > max {
			return fmt.Errorf("%w: %d key packages stored, %d more would pass %d", ErrLimit, n, len(kps), max)
		}
		for _, kp := range kps {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO key_packages (user_id, ref, data, created_at) VALUES (?, ?, ?, ?)`),
				userID, kp.Ref, kp.Data, nanos(now)); err != nil {
				if s.d.isUnique(err) {
					return fmt.Errorf("%w: key package already published", ErrExists)
				}
				return s.dbErr("add key package", err)
			}
		}
		if lastResort != nil {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO last_resort (user_id, ref, data, created_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (user_id) DO UPDATE SET ref = excluded.ref, data = excluded.data, created_at = excluded.created_at`),
				userID, lastResort.Ref, lastResort.Data, nanos(now)); err != nil {
				return s.dbErr("set last resort", err)
			}
		}
		return nil
	})
}

func (s *sqlStore) CountKeyPackages(ctx context.Context, userID string) (int, bool, error) {
	var n, lr int
	err := s.r.QueryRowContext(ctx, s.q(`SELECT (SELECT COUNT(*) FROM key_packages WHERE user_id = ?), (SELECT COUNT(*) FROM last_resort WHERE user_id = ?)`),
		userID, userID).Scan(&n, &lr)
	if err != nil {
		return 0, false, s.dbErr("count key packages", err)
	}
	return n, lr > 0, nil
}

func (s *sqlStore) ClaimKeyPackage(ctx context.Context, userID string) (data []byte, lastResort bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		// SKIP LOCKED: two concurrent claims on PostgreSQL take two
		// different rows instead of the second finding the first's row
		// gone and falling back to the last resort. (A claim that finds
		// every remaining row locked by in-flight claims gets the last
		// resort: those claims will not roll back short of a crash.)
		var id int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM key_packages WHERE user_id = ? ORDER BY id LIMIT 1`+s.d.skipLocked), userID).Scan(&id)
		if err == nil {
			err = tx.QueryRowContext(ctx, s.q(`DELETE FROM key_packages WHERE id = ? RETURNING data`), id).Scan(&data)
			if err != nil {
				return s.dbErr("claim key package", err)
			}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return s.dbErr("claim key package", err)
		}
		err = tx.QueryRowContext(ctx, s.q(`SELECT data FROM last_resort WHERE user_id = ?`), userID).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return s.dbErr("claim last resort", err)
		}
		lastResort = true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return data, lastResort, nil
}

func (s *sqlStore) CreateGroup(ctx context.Context, groupID []byte, creator string, epoch uint64, now time.Time) error {
	if epoch > math.MaxInt64 {
		return fmt.Errorf("%w: epoch", ErrStale)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO groups (group_id, epoch, last_seq, creator, created_at) VALUES (?, ?, 0, ?, ?) ON CONFLICT (group_id) DO NOTHING`),
			groupID, int64(epoch), creator, nanos(now))
		if err != nil {
			return s.dbErr("create group", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.dbErr("create group", err)
		} else if n == 0 {
			return fmt.Errorf("%w: group", ErrExists)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO readers (group_id, user_id, from_seq, to_seq) VALUES (?, ?, 1, NULL)`), groupID, creator); err != nil {
			return s.dbErr("create group", err)
		}
		return nil
	})
}

func (s *sqlStore) Group(ctx context.Context, groupID []byte) (GroupState, error) {
	g := GroupState{GroupID: groupID}
	var epoch int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT epoch, last_seq FROM groups WHERE group_id = ?`), groupID).Scan(&epoch, &g.LastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return GroupState{}, ErrNotFound
	}
	if err != nil {
		return GroupState{}, s.dbErr("group", err)
	}
	g.Epoch = uint64(epoch)
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT user_id FROM readers WHERE group_id = ? AND to_seq IS NULL ORDER BY user_id`), groupID)
	if err != nil {
		return GroupState{}, s.dbErr("group members", err)
	}
	defer rows.Close()
	g.Members = []string{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return GroupState{}, s.dbErr("group members", err)
		}
		g.Members = append(g.Members, u)
	}
	if err := rows.Err(); err != nil {
		return GroupState{}, s.dbErr("group members", err)
	}
	return g, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *sqlStore) access(ctx context.Context, q querier, groupID []byte, userID string) (Access, error) {
	var a Access
	var to sql.NullInt64
	err := q.QueryRowContext(ctx, s.q(`SELECT from_seq, to_seq FROM readers WHERE group_id = ? AND user_id = ?`), groupID, userID).Scan(&a.FromSeq, &to)
	if errors.Is(err, sql.ErrNoRows) {
		var one int
		err := q.QueryRowContext(ctx, s.q(`SELECT 1 FROM groups WHERE group_id = ?`), groupID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return Access{}, fmt.Errorf("%w: group", ErrNotFound)
		}
		if err != nil {
			return Access{}, s.dbErr("access", err)
		}
		return Access{}, fmt.Errorf("%w: not a member of the group", ErrForbidden)
	}
	if err != nil {
		return Access{}, s.dbErr("access", err)
	}
	if to.Valid {
		a.Removed, a.ToSeq = true, to.Int64
	}
	return a, nil
}

func (s *sqlStore) Access(ctx context.Context, groupID []byte, userID string) (Access, error) {
	return s.access(ctx, s.r, groupID, userID)
}

func (s *sqlStore) Append(ctx context.Context, m Message) (seq int64, current uint64, err error) {
	if m.Epoch > math.MaxInt64 {
		return 0, 0, fmt.Errorf("%w: epoch out of range", ErrCommitConflict)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var epoch, last int64
		// The group row lock serialises every append to this group, across
		// processes (RFC 9750 §5.2 strongly consistent delivery).
		err := tx.QueryRowContext(ctx, s.q(`SELECT epoch, last_seq FROM groups WHERE group_id = ?`+s.d.forUpdate), m.GroupID).Scan(&epoch, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: group", ErrNotFound)
		}
		if err != nil {
			return s.dbErr("append", err)
		}
		current = uint64(epoch)
		a, err := s.access(ctx, tx, m.GroupID, m.Sender)
		if err != nil {
			return err
		}
		if a.Removed {
			return fmt.Errorf("%w: removed from the group", ErrForbidden)
		}
		if m.Kind == "commit" && m.Epoch != current {
			return fmt.Errorf("%w: commit for epoch %d, the group is at epoch %d", ErrCommitConflict, m.Epoch, current)
		}
		seq = last + 1
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO messages (group_id, seq, kind, epoch, sender, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			m.GroupID, seq, m.Kind, int64(m.Epoch), m.Sender, m.Data, nanos(m.ReceivedAt)); err != nil {
			return s.dbErr("append", err)
		}
		if m.Kind == "commit" {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO commits (group_id, epoch, seq) VALUES (?, ?, ?)`), m.GroupID, int64(m.Epoch), seq); err != nil {
				if s.d.isUnique(err) {
					return fmt.Errorf("%w: epoch %d already has a commit", ErrCommitConflict, m.Epoch)
				}
				return s.dbErr("append commit", err)
			}
			epoch++
			for _, u := range m.Added {
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO readers (group_id, user_id, from_seq, to_seq) VALUES (?, ?, ?, NULL)
					ON CONFLICT (group_id, user_id) DO UPDATE SET from_seq = excluded.from_seq, to_seq = NULL WHERE readers.to_seq IS NOT NULL`),
					m.GroupID, u, seq); err != nil {
					return s.dbErr("add reader", err)
				}
			}
			for _, u := range m.Removed {
				if _, err := tx.ExecContext(ctx, s.q(`UPDATE readers SET to_seq = ? WHERE group_id = ? AND user_id = ? AND to_seq IS NULL`),
					seq, m.GroupID, u); err != nil {
					return s.dbErr("remove reader", err)
				}
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE groups SET epoch = ?, last_seq = ? WHERE group_id = ?`), epoch, seq, m.GroupID); err != nil {
			return s.dbErr("append", err)
		}
		if s.d.notify != nil {
			return s.d.notify(ctx, tx, Event{GroupID: m.GroupID, Seq: seq})
		}
		return nil
	})
	if err != nil {
		return 0, current, err
	}
	if m.Kind == "commit" {
		current++
	}
	return seq, current, nil
}

func (s *sqlStore) Messages(ctx context.Context, groupID []byte, userID string, after int64, limit int) ([]Message, error) {
	a, err := s.access(ctx, s.r, groupID, userID)
	if err != nil {
		return nil, err
	}
	lo := max(after, a.FromSeq-1)
	hi := int64(math.MaxInt64)
	if a.Removed {
		hi = a.ToSeq
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT seq, kind, epoch, sender, data, received_at FROM messages
		WHERE group_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`), groupID, lo, hi, limit)
	if err != nil {
		return nil, s.dbErr("messages", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m := Message{GroupID: groupID}
		var epoch, at int64
		if err := rows.Scan(&m.Seq, &m.Kind, &epoch, &m.Sender, &m.Data, &at); err != nil {
			return nil, s.dbErr("messages", err)
		}
		m.Epoch, m.ReceivedAt = uint64(epoch), time.Unix(0, at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("messages", err)
	}
	return out, nil
}

func (s *sqlStore) Cursor(ctx context.Context, groupID []byte, userID string) (int64, error) {
	var after int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT after FROM cursors WHERE group_id = ? AND user_id = ?`), groupID, userID).Scan(&after)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, s.dbErr("cursor", err)
	}
	return after, nil
}

func (s *sqlStore) SetCursor(ctx context.Context, groupID []byte, userID string, after int64) error {
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO cursors (group_id, user_id, after) VALUES (?, ?, ?)
		ON CONFLICT (group_id, user_id) DO UPDATE SET after = excluded.after`), groupID, userID, after)
	if err != nil {
		return s.dbErr("set cursor", err)
	}
	return nil
}

func (s *sqlStore) PutGroupInfo(ctx context.Context, groupID []byte, gi []byte, epoch uint64) error {
	if epoch > math.MaxInt64 {
		return fmt.Errorf("%w: epoch out of range", ErrStale)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var cur int64
		var have sql.NullInt64
		err := tx.QueryRowContext(ctx, s.q(`SELECT epoch, group_info_epoch FROM groups WHERE group_id = ?`+s.d.forUpdate), groupID).Scan(&cur, &have)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: group", ErrNotFound)
		}
		if err != nil {
			return s.dbErr("put group info", err)
		}
		if int64(epoch) > cur {
			return fmt.Errorf("%w: GroupInfo for epoch %d, the group is at epoch %d", ErrStale, epoch, cur)
		}
		if have.Valid && int64(epoch) < have.Int64 {
			return fmt.Errorf("%w: GroupInfo for epoch %d, epoch %d is stored", ErrStale, epoch, have.Int64)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE groups SET group_info = ?, group_info_epoch = ? WHERE group_id = ?`), gi, int64(epoch), groupID); err != nil {
			return s.dbErr("put group info", err)
		}
		return nil
	})
}

func (s *sqlStore) GroupInfo(ctx context.Context, groupID []byte) ([]byte, uint64, error) {
	var gi []byte
	var epoch sql.NullInt64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT group_info, group_info_epoch FROM groups WHERE group_id = ?`), groupID).Scan(&gi, &epoch)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !epoch.Valid) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, s.dbErr("group info", err)
	}
	return gi, uint64(epoch.Int64), nil
}

func (s *sqlStore) AddWelcome(ctx context.Context, w Welcome, recipients []string) ([]int64, error) {
	ids := make([]int64, 0, len(recipients))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ids = ids[:0]
		for _, r := range recipients {
			var id int64
			if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO welcomes (recipient, sender, group_id, welcome, ratchet_tree, invite, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), r, w.Sender, w.GroupID, w.Welcome, w.RatchetTree, w.Invite, nanos(w.CreatedAt)).Scan(&id); err != nil {
				return s.dbErr("add welcome", err)
			}
			ids = append(ids, id)
			if s.d.notify != nil {
				if err := s.d.notify(ctx, tx, Event{Recipient: r, WelcomeID: id}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func (s *sqlStore) Welcomes(ctx context.Context, userID string, limit int) ([]Welcome, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, sender, group_id, welcome, ratchet_tree, invite, created_at FROM welcomes
		WHERE recipient = ? ORDER BY id LIMIT ?`), userID, limit)
	if err != nil {
		return nil, s.dbErr("welcomes", err)
	}
	defer rows.Close()
	var out []Welcome
	for rows.Next() {
		w := Welcome{Recipient: userID}
		var at int64
		if err := rows.Scan(&w.ID, &w.Sender, &w.GroupID, &w.Welcome, &w.RatchetTree, &w.Invite, &at); err != nil {
			return nil, s.dbErr("welcomes", err)
		}
		w.CreatedAt = time.Unix(0, at)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("welcomes", err)
	}
	return out, nil
}

func (s *sqlStore) DeleteWelcome(ctx context.Context, userID string, id int64) error {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM welcomes WHERE id = ? AND recipient = ?`), id, userID)
	if err != nil {
		return s.dbErr("delete welcome", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.dbErr("delete welcome", err)
	} else if n == 0 {
		return fmt.Errorf("%w: welcome %d", ErrNotFound, id)
	}
	return nil
}

func (s *sqlStore) Prune(ctx context.Context, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM challenges WHERE expires_at <= ?`), nanos(now)); err != nil {
			return s.dbErr("prune", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM tokens WHERE expires_at <= ?`), nanos(now)); err != nil {
			return s.dbErr("prune", err)
		}
		return nil
	})
}

func (s *sqlStore) Close() error {
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
