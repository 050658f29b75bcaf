package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Welcome queues: one per recipient user, read and acknowledged by each
// of its devices.

func (s *sqlStore) AddWelcome(ctx context.Context, w Welcome, recipients []string) ([]int64, error) {
	ids := make([]int64, 0, len(recipients))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ids = ids[:0]
		a, err := s.access(ctx, tx, w.GroupID, w.Sender)
		if err != nil {
			return err
		}
		if a.Removed {
			return fmt.Errorf("%w: removed from the group", ErrForbidden)
		}
		for _, r := range recipients {
			a, err := s.access(ctx, tx, w.GroupID, r)
			if errors.Is(err, ErrForbidden) || (err == nil && a.Removed) {
				return fmt.Errorf("%w: %s", ErrNotMember, r)
			}
			if err != nil {
				return err
			}
		}
		// A member the committer named may be no user at all: its Welcome
		// would wait forever.
		for _, r := range recipients {
			var one int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM users WHERE user_id = ?`), r).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: %s", ErrUnknownUser, r)
			} else if err != nil {
				return s.dbErr("add welcome", err)
			}
		}
		for _, r := range recipients {
			var id int64
			if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO welcomes (recipient, sender, sender_device, group_id, welcome, ratchet_tree, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), r, w.Sender, w.SenderDevice, w.GroupID, w.Welcome, w.RatchetTree, nanos(w.CreatedAt)).Scan(&id); err != nil {
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

const unacked = ` AND NOT EXISTS (SELECT 1 FROM welcome_acks a WHERE a.welcome_id = w.id AND a.device_id = ?)`

func (s *sqlStore) Welcomes(ctx context.Context, userID, deviceID string, limit, maxBytes int) ([]Welcome, error) {
	end, err := s.pageEnd(ctx, s.q(`SELECT w.id, LENGTH(w.welcome) + COALESCE(LENGTH(w.ratchet_tree), 0) FROM welcomes w
		WHERE w.recipient = ?`+unacked+` ORDER BY w.id LIMIT ?`), maxBytes, userID, deviceID, limit)
	if err != nil || end == 0 {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT w.id, w.sender, w.sender_device, w.group_id, w.welcome, w.ratchet_tree, w.created_at FROM welcomes w
		WHERE w.recipient = ? AND w.id <= ?`+unacked+` ORDER BY w.id LIMIT ?`), userID, end, deviceID, limit)
	if err != nil {
		return nil, s.dbErr("welcomes", err)
	}
	defer rows.Close()
	var out []Welcome
	total := 0
	for rows.Next() {
		w := Welcome{Recipient: userID}
		var at int64
		if err := rows.Scan(&w.ID, &w.Sender, &w.SenderDevice, &w.GroupID, &w.Welcome, &w.RatchetTree, &at); err != nil {
			return nil, s.dbErr("welcomes", err)
		}
		// Ids of concurrent inserts may become visible out of order (on
		// PostgreSQL): keep the byte cap whatever appeared since.
		if total += len(w.Welcome) + len(w.RatchetTree); len(out) > 0 && total > maxBytes {
			break
		}
		w.CreatedAt = time.Unix(0, at)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("welcomes", err)
	}
	return out, nil
}

func (s *sqlStore) AckWelcome(ctx context.Context, userID, deviceID string, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM welcomes WHERE id = ? AND recipient = ?`+s.d.forUpdate), id, userID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: welcome %d", ErrNotFound, id)
		}
		if err != nil {
			return s.dbErr("ack welcome", err)
		}
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO welcome_acks (welcome_id, device_id) VALUES (?, ?) ON CONFLICT (welcome_id, device_id) DO NOTHING`), id, deviceID)
		if err != nil {
			return s.dbErr("ack welcome", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.dbErr("ack welcome", err)
		} else if n == 0 {
			return fmt.Errorf("%w: welcome %d (acknowledged already)", ErrNotFound, id)
		}
		var left int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM devices d WHERE d.user_id = ? AND d.revocation IS NULL AND d.certificate IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM welcome_acks a WHERE a.welcome_id = ? AND a.device_id = d.device_id)`), userID, id).Scan(&left); err != nil {
			return s.dbErr("ack welcome", err)
		}
		if left > 0 {
			return nil
		}
		for _, q := range []string{`DELETE FROM welcome_acks WHERE welcome_id = ?`, `DELETE FROM welcomes WHERE id = ?`} {
			if _, err := tx.ExecContext(ctx, s.q(q), id); err != nil {
				return s.dbErr("delete welcome", err)
			}
		}
		return nil
	})
}
