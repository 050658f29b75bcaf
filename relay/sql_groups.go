package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spacepanda/spacepanda/relay/api"
)

// Groups: registration, the ordered log, readers, cursors and GroupInfos.

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
	g.LastSeq = s.unsynced.limit(groupID, g.LastSeq)
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

// The statements of the append and read paths (prepared: sql_stmts.go).
const (
	accessQuery        = `SELECT from_seq, to_seq FROM readers WHERE group_id = ? AND user_id = ?`
	groupExistsQuery   = `SELECT 1 FROM groups WHERE group_id = ?`
	insertMessageQuery = `INSERT INTO messages (group_id, seq, kind, epoch, sender, sender_device, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	updateGroupQuery   = `UPDATE groups SET epoch = ?, last_seq = ?, log_entries = log_entries + ?, log_bytes = log_bytes + ? WHERE group_id = ?`
	// pageQuery (SQLite; PostgreSQL reads a page with pgMessagesQuery)
	// reads the sizes of the entries after ?3, up to ?4 and at most ?5 of
	// them, in the window of reader ?2 of group ?1, checking the window in
	// the same statement: the reader's bounds are scalar subqueries, so
	// that the log's index is searched from the later of ?3 and the
	// window's start. Written as a join of readers and messages, SQLite
	// took the window's start (the reader's first entry, often 1) for the
	// search and filtered out every entry up to ?3 one by one: each read
	// of the log's tail cost a scan of the whole log (42-48 µs at 350
	// entries against 10-13 µs; TestPageQuerySearchesFromAfter). No
	// reader row: the lower bound is NULL and the page empty.
	pageQuery = `SELECT seq, LENGTH(data) FROM messages
		WHERE group_id = ?1
		AND seq > MAX(?3, (SELECT from_seq - 1 FROM readers WHERE group_id = ?1 AND user_id = ?2))
		AND seq <= MIN(?4, COALESCE((SELECT to_seq FROM readers WHERE group_id = ?1 AND user_id = ?2), ?4))
		ORDER BY seq LIMIT ?5`
	messagesQuery = `SELECT seq, kind, epoch, sender, sender_device, data, received_at FROM messages
		WHERE group_id = ? AND seq > ? AND seq <= ? ORDER BY seq`
)

func (s *sqlStore) lockGroupQuery() string {
	return `SELECT epoch, last_seq FROM groups WHERE group_id = ?` + s.d.forUpdate
}

func (s *sqlStore) access(ctx context.Context, q querier, groupID []byte, userID string) (Access, error) {
	var a Access
	var to sql.NullInt64
	err := q.QueryRowContext(ctx, s.q(accessQuery), groupID, userID).Scan(&a.FromSeq, &to)
	if errors.Is(err, sql.ErrNoRows) {
		var one int
		err := q.QueryRowContext(ctx, s.q(groupExistsQuery), groupID).Scan(&one)
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
	return s.access(ctx, s.rq(), groupID, userID)
}

func (s *sqlStore) Append(ctx context.Context, m Message) (seq int64, current uint64, err error) {
	return s.appendWith(ctx, m, nil)
}

// appendWith is Append; hook, when set, runs in the transaction once the
// entry is written (verify_store.go: the group's public state), and an
// error from it rolls the whole transaction back. An entry with a hook is
// a verified handshake, rare beside application messages: it takes its
// own transaction rather than the batcher's.
func (s *sqlStore) appendWith(ctx context.Context, m Message, hook func(tx *sql.Tx, seq int64) error) (seq int64, current uint64, err error) {
	if m.Epoch > math.MaxInt64 {
		return 0, 0, fmt.Errorf("%w: epoch out of range", ErrCommitConflict)
	}
	if s.batch != nil && hook == nil {
		return s.batch.submit(ctx, m)
	}
	res, groups, err := s.appendTx(ctx, []appendReq{{ctx: ctx, m: m, hook: hook}})
	if err != nil {
		return 0, 0, err
	}
	err = s.durable()
	s.settle(groups)
	if err != nil {
		return 0, 0, err
	}
	return res[0].seq, res[0].cur, res[0].err
}

// AppendAll implements Store: the entries are queued to the batcher in
// order, one after the other, so that its lane keeps them in order.
func (s *sqlStore) AppendAll(ctx context.Context, ms []Message) []AppendResult {
	out := make([]AppendResult, len(ms))
	if s.batch == nil {
		for i, m := range ms {
			out[i].Seq, out[i].CurrentEpoch, out[i].Err = s.appendWith(ctx, m, nil)
		}
		return out
	}
	for i, m := range ms {
		if m.Epoch > math.MaxInt64 {
			out[i].Err = fmt.Errorf("%w: epoch out of range", ErrCommitConflict)
			ms[i].Kind = "" // not queued
		}
	}
	for i, r := range s.batch.submitAll(ctx, ms) {
		if out[i].Err == nil {
			out[i] = AppendResult{Seq: r.seq, CurrentEpoch: r.cur, Err: r.err}
		}
	}
	return out
}

// groupTx is one group's row inside an append transaction: locked at the
// first entry, written back once at the end.
type groupTx struct {
	id          []byte
	epoch, last int64
	first       int64             // last_seq when locked
	lockedEpoch int64             // epoch when locked
	bytes       int64             // data bytes appended (last-first entries)
	access      map[string]Access // senders' windows, until a commit changes them
}

// appendTx applies entries (sorted by group id) in one transaction and
// returns each entry's result and the groups it wrote. A refused entry has
// its error in its result and changed nothing; a non-nil error means the
// transaction did not commit (nothing of it is written). With a flusher
// the commit is not yet durable: the caller answers after a flush and
// then calls settle(groups).
func (s *sqlStore) appendTx(ctx context.Context, entries []appendReq) ([]appendRes, []*groupTx, error) {
	if s.bulkable(entries) {
		return s.appendBulk(ctx, entries) // pg_append.go
	}
	res := make([]appendRes, len(entries))
	var groups []*groupTx
	err := s.txNoSync(ctx, func(tx *sql.Tx) error {
		groups = groups[:0]
		var g *groupTx
		for i, e := range entries {
			if g == nil || string(g.id) != string(e.m.GroupID) {
				var err error
				if g, err = s.lockGroup(ctx, tx, e.m.GroupID); err != nil && !refusal(err) {
					return err
				} else if err != nil {
					res[i].err = err
					g = nil
					continue
				}
				groups = append(groups, g)
			}
			seq, cur, err := s.appendOne(ctx, tx, g, e.m, e.hook)
			if err != nil && !refusal(err) {
				return err
			}
			res[i] = appendRes{seq: seq, cur: cur, err: err}
		}
		for _, g := range groups {
			if g.last == g.first {
				continue
			}
			if _, err := s.wq(tx).ExecContext(ctx, s.q(updateGroupQuery),
				g.epoch, g.last, g.last-g.first, g.bytes, g.id); err != nil {
				return s.dbErr("append", err)
			}
			if s.d.notify != nil {
				if err := s.d.notify(ctx, tx, Event{GroupID: g.id, Seq: g.last}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if s.flush != nil {
		s.unsynced.add(groups)
	}
	return res, groups, nil
}

// settle makes groups' entries of one appendTx readable once flushed.
func (s *sqlStore) settle(groups []*groupTx) {
	if s.flush != nil {
		s.unsynced.done(groups)
	}
}

// refusal reports whether err is an entry's refusal (decided before it
// wrote, or rolled back to its savepoint) rather than a database failure.
func refusal(err error) bool {
	for _, e := range []error{ErrNotFound, ErrForbidden, ErrCommitConflict, ErrFutureEpoch, ErrStaleEpoch, ErrLimit} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// lockGroup locks the group's row for the rest of tx. The row lock
// serialises every append to this group, across processes (RFC 9750 §5.2
// strongly consistent delivery).
func (s *sqlStore) lockGroup(ctx context.Context, tx *sql.Tx, gid []byte) (*groupTx, error) {
	g := &groupTx{id: gid, access: map[string]Access{}}
	err := s.wq(tx).QueryRowContext(ctx, s.q(s.lockGroupQuery()), gid).Scan(&g.epoch, &g.last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: group", ErrNotFound)
	}
	if err != nil {
		return nil, s.dbErr("append", err)
	}
	g.first, g.lockedEpoch = g.last, g.epoch
	return g, nil
}

// appendOne decides and writes one entry of group g (locked) and returns
// its seq and the group's epoch after it (before it, when refused).
func (s *sqlStore) appendOne(ctx context.Context, tx *sql.Tx, g *groupTx, m Message, hook func(tx *sql.Tx, seq int64) error) (int64, uint64, error) {
	current := uint64(g.epoch)
	a, ok := g.access[m.Sender]
	if !ok && g.epoch == g.lockedEpoch {
		a, ok = s.members.get(m.GroupID, m.Sender, g.epoch)
	}
	if !ok {
		var err error
		if a, err = s.access(ctx, s.wq(tx), m.GroupID, m.Sender); err != nil {
			return 0, current, err
		}
		g.access[m.Sender] = a
		if g.epoch == g.lockedEpoch {
			s.members.put(m.GroupID, m.Sender, g.epoch, a)
		}
	}
	if err := checkEntry(a, m, current); err != nil {
		return 0, current, err
	}
	seq := g.last + 1
	if m.Kind != "commit" {
		if err := s.insertMessage(ctx, tx, m, seq); err != nil {
			return 0, current, err
		}
		if err := runHook(hook, tx, seq); err != nil {
			return 0, current, err
		}
		g.last, g.bytes = seq, g.bytes+int64(len(m.Data))
		return seq, current, nil
	}
	// A commit writes several rows and may still be refused (the group
	// would be too large): it runs in a savepoint.
	if _, err := tx.ExecContext(ctx, `SAVEPOINT append_commit`); err != nil {
		return 0, current, s.dbErr("append", err)
	}
	if err := s.writeCommit(ctx, tx, m, seq); err != nil {
		if !refusal(err) {
			return 0, current, err
		}
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT append_commit`); rerr != nil {
			return 0, current, s.dbErr("append", rerr)
		}
		return 0, current, err
	}
	if err := runHook(hook, tx, seq); err != nil {
		return 0, current, err
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT append_commit`); err != nil {
		return 0, current, s.dbErr("append", err)
	}
	g.last, g.epoch, g.bytes = seq, g.epoch+1, g.bytes+int64(len(m.Data))
	clear(g.access)
	return seq, current + 1, nil
}

// checkEntry decides whether m may be appended to a group at epoch
// current by a sender whose window is a.
func checkEntry(a Access, m Message, current uint64) error {
	if a.Removed {
		return fmt.Errorf("%w: removed from the group", ErrForbidden)
	}
	switch {
	case m.Kind == "commit" && m.Epoch != current:
		return fmt.Errorf("%w: commit for epoch %d, the group is at epoch %d", ErrCommitConflict, m.Epoch, current)
	case m.Kind != "commit" && m.Epoch > current:
		return fmt.Errorf("%w: %s for epoch %d, the group is at epoch %d", ErrFutureEpoch, m.Kind, m.Epoch, current)
	case m.Kind == api.KindApplication && m.Epoch+api.MaxStaleEpochs < current:
		return fmt.Errorf("%w: application message of epoch %d, the group is at epoch %d", ErrStaleEpoch, m.Epoch, current)
	}
	return nil
}

// runHook runs an entry's hook. Its error is never a refusal: the
// transaction must not commit the entry without what the hook writes.
func runHook(hook func(tx *sql.Tx, seq int64) error, tx *sql.Tx, seq int64) error {
	if hook == nil {
		return nil
	}
	if err := hook(tx, seq); err != nil {
		if refusal(err) {
			return fmt.Errorf("append: %v", err) // not a refusal: roll back
		}
		return err
	}
	return nil
}

func (s *sqlStore) insertMessage(ctx context.Context, tx *sql.Tx, m Message, seq int64) error {
	if _, err := s.wq(tx).ExecContext(ctx, s.q(insertMessageQuery),
		m.GroupID, seq, m.Kind, int64(m.Epoch), m.Sender, m.SenderDevice, m.Data, nanos(m.ReceivedAt)); err != nil {
		return s.dbErr("append", err)
	}
	return nil
}

// writeCommit writes an accepted commit: its log entry, its epoch's row
// in commits (the database refuses a second one) and its reader changes.
func (s *sqlStore) writeCommit(ctx context.Context, tx *sql.Tx, m Message, seq int64) error {
	if err := s.insertMessage(ctx, tx, m, seq); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO commits (group_id, epoch, seq) VALUES (?, ?, ?)`), m.GroupID, int64(m.Epoch), seq); err != nil {
		if s.d.isUnique(err) {
			return fmt.Errorf("%w: epoch %d already has a commit", ErrCommitConflict, m.Epoch)
		}
		return s.dbErr("append commit", err)
	}
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
	if len(m.Added) > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM readers WHERE group_id = ? AND to_seq IS NULL`), m.GroupID).Scan(&n); err != nil {
			return s.dbErr("count readers", err)
		}
		if n > api.MaxGroupMembers {
			return fmt.Errorf("%w: the group would have %d members (at most %d)", ErrLimit, n, api.MaxGroupMembers)
		}
	}
	return nil
}

func (s *sqlStore) Messages(ctx context.Context, groupID []byte, userID string, after int64, limit, maxBytes int) ([]Message, error) {
	ms, _, err := s.messagesAccess(ctx, groupID, userID, after, limit, maxBytes)
	return ms, err
}

// messagesAccess is Messages that also returns the reader's window when
// the page is empty (it had to read it, for the error of a non-reader).
func (s *sqlStore) messagesAccess(ctx context.Context, groupID []byte, userID string, after int64, limit, maxBytes int) ([]Message, Access, error) {
	// Entries committed but not yet flushed stay invisible (walsync.go).
	hi := s.unsynced.limit(groupID, math.MaxInt64)
	window := func(epoch int64) (Access, bool) { return s.members.get(groupID, userID, epoch) }
	if ms, ok := s.tail.page(groupID, after, hi, limit, maxBytes, time.Now(), window); ok {
		return ms, Access{}, nil
	}
	return s.storeMessages(ctx, groupID, userID, after, hi, limit, maxBytes)
}

// storeMessages is messagesAccess from the database, for entries up to hi.
func (s *sqlStore) storeMessages(ctx context.Context, groupID []byte, userID string, after, hi int64, limit, maxBytes int) ([]Message, Access, error) {
	if s.d.bulk {
		return s.pgMessages(ctx, groupID, userID, after, hi, limit, maxBytes) // pg_append.go
	}
	// First the sizes (and the reader's window: from its adding commit
	// to its removing one), to find where the page ends without reading
	// the data of entries that will not fit; then the page. Entries never
	// change once written, so the two reads agree.
	lo, hi, err := s.pageRange(ctx, s.q(pageQuery), maxBytes, groupID, userID, after, hi, limit)
	if err != nil {
		return nil, Access{}, err
	}
	if hi == 0 {
		// Nothing readable: no entry yet, or no window (the error).
		a, err := s.access(ctx, s.rq(), groupID, userID)
		return nil, a, err
	}
	rows, err := s.rq().QueryContext(ctx, s.q(messagesQuery), groupID, lo-1, hi)
	if err != nil {
		return nil, Access{}, s.dbErr("messages", err)
	}
	ms, err := s.scanMessages(groupID, rows)
	return ms, Access{}, err
}

// scanMessages reads (and closes) rows of messagesQuery's columns, then
// extra's (each row's into the same destinations: the last row's stay).
func (s *sqlStore) scanMessages(groupID []byte, rows *sql.Rows, extra ...any) ([]Message, error) {
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m := Message{GroupID: groupID}
		var epoch, at int64
		if err := rows.Scan(append([]any{&m.Seq, &m.Kind, &epoch, &m.Sender, &m.SenderDevice, &m.Data, &at}, extra...)...); err != nil {
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

// pageEnd runs query, which yields (key, size) rows in key order, and
// returns the last key of the page: that of the longest prefix of at most
// maxBytes, or of the first row alone when it is larger; 0 when there are
// no rows (keys are positive).
func (s *sqlStore) pageEnd(ctx context.Context, query string, maxBytes int, args ...any) (int64, error) {
	_, end, err := s.pageRange(ctx, query, maxBytes, args...)
	return end, err
}

// pageRange is pageEnd that also returns the page's first key.
func (s *sqlStore) pageRange(ctx context.Context, query string, maxBytes int, args ...any) (first, end int64, err error) {
	rows, err := s.rq().QueryContext(ctx, query, args...)
	if err != nil {
		return 0, 0, s.dbErr("page", err)
	}
	defer rows.Close()
	var total int64
	for n := 0; rows.Next(); n++ {
		var key, size int64
		if err := rows.Scan(&key, &size); err != nil {
			return 0, 0, s.dbErr("page", err)
		}
		if n > 0 && total+size > int64(maxBytes) {
			break
		}
		if n == 0 {
			first = key
		}
		end, total = key, total+size
	}
	if err := rows.Err(); err != nil {
		return 0, 0, s.dbErr("page", err)
	}
	return first, end, nil
}

func (s *sqlStore) Cursor(ctx context.Context, groupID []byte, userID, deviceID string) (int64, error) {
	var after int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT after FROM cursors WHERE group_id = ? AND user_id = ? AND device_id = ?`), groupID, userID, deviceID).Scan(&after)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, s.dbErr("cursor", err)
	}
	return after, nil
}

func (s *sqlStore) SetCursor(ctx context.Context, groupID []byte, userID, deviceID string, after int64) error {
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO cursors (group_id, user_id, device_id, after) VALUES (?, ?, ?, ?)
		ON CONFLICT (group_id, user_id, device_id) DO UPDATE SET after = excluded.after`), groupID, userID, deviceID, after)
	if err != nil {
		return s.dbErr("set cursor", err)
	}
	return s.durable()
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
