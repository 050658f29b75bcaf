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
	return s.appendWith(ctx, m, nil)
}

// appendWith is Append; hook, when set, runs in the transaction once the
// entry is written (verify_store.go: the group's public state).
func (s *sqlStore) appendWith(ctx context.Context, m Message, hook func(tx *sql.Tx, seq int64) error) (seq int64, current uint64, err error) {
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
		switch {
		case m.Kind == "commit" && m.Epoch != current:
			return fmt.Errorf("%w: commit for epoch %d, the group is at epoch %d", ErrCommitConflict, m.Epoch, current)
		case m.Kind != "commit" && m.Epoch > current:
			return fmt.Errorf("%w: %s for epoch %d, the group is at epoch %d", ErrFutureEpoch, m.Kind, m.Epoch, current)
		}
		seq = last + 1
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO messages (group_id, seq, kind, epoch, sender, sender_device, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			m.GroupID, seq, m.Kind, int64(m.Epoch), m.Sender, m.SenderDevice, m.Data, nanos(m.ReceivedAt)); err != nil {
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
			if len(m.Added) > 0 {
				var n int
				if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM readers WHERE group_id = ? AND to_seq IS NULL`), m.GroupID).Scan(&n); err != nil {
					return s.dbErr("count readers", err)
				}
				if n > api.MaxGroupMembers {
					return fmt.Errorf("%w: the group would have %d members (at most %d)", ErrLimit, n, api.MaxGroupMembers)
				}
			}
		}
		if hook != nil {
			if err := hook(tx, seq); err != nil {
				return err
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

func (s *sqlStore) Messages(ctx context.Context, groupID []byte, userID string, after int64, limit, maxBytes int) ([]Message, error) {
	a, err := s.access(ctx, s.r, groupID, userID)
	if err != nil {
		return nil, err
	}
	lo := max(after, a.FromSeq-1)
	hi := int64(math.MaxInt64)
	if a.Removed {
		hi = a.ToSeq
	}
	// First the sizes, to find where the page ends without reading the
	// data of entries that will not fit; then the page. Entries never
	// change once written, so the two reads agree.
	hi, err = s.pageEnd(ctx, s.q(`SELECT seq, LENGTH(data) FROM messages WHERE group_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`),
		maxBytes, groupID, lo, hi, limit)
	if err != nil || hi <= lo {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT seq, kind, epoch, sender, sender_device, data, received_at FROM messages
		WHERE group_id = ? AND seq > ? AND seq <= ? ORDER BY seq`), groupID, lo, hi)
	if err != nil {
		return nil, s.dbErr("messages", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m := Message{GroupID: groupID}
		var epoch, at int64
		if err := rows.Scan(&m.Seq, &m.Kind, &epoch, &m.Sender, &m.SenderDevice, &m.Data, &at); err != nil {
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
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, s.dbErr("page", err)
	}
	defer rows.Close()
	var end, total int64
	for n := 0; rows.Next(); n++ {
		var key, size int64
		if err := rows.Scan(&key, &size); err != nil {
			return 0, s.dbErr("page", err)
		}
		if n > 0 && total+size > int64(maxBytes) {
			break
		}
		end, total = key, total+size
	}
	if err := rows.Err(); err != nil {
		return 0, s.dbErr("page", err)
	}
	return end, nil
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
