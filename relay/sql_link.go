package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Link mailboxes: short-lived, small, for the three messages of a device
// link (identity.LinkOffer, identity.LinkJoin). A mailbox row is the lock
// its posts take; its messages go with it.

func (s *sqlStore) OpenMailbox(ctx context.Context, m Mailbox, max int, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// The user's row orders its opens (the quota); it exists, since
		// only a logged-in device opens a mailbox.
		var one int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM users WHERE user_id = ?`+s.d.forUpdate), m.UserID).Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s.dbErr("open mailbox", err)
		}
		var user, dev string
		var exp int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id, device_id, expires_at FROM link_mailboxes WHERE mailbox = ?`+s.d.forUpdate), m.Name).Scan(&user, &dev, &exp)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return s.dbErr("open mailbox", err)
		case now.UnixNano() < exp && user == m.UserID && dev == m.DeviceID:
			return nil
		case now.UnixNano() < exp:
			return fmt.Errorf("%w: mailbox %s is in use", ErrExists, m.Name)
		default:
			if err := s.dropMailbox(ctx, tx, m.Name); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM link_mailboxes WHERE user_id = ? AND expires_at > ?`), m.UserID, nanos(now)).Scan(&n); err != nil {
			return s.dbErr("open mailbox", err)
		}
		if n >= max {
			return fmt.Errorf("%w: %d link mailboxes open", ErrLimit, n)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO link_mailboxes (mailbox, user_id, device_id, expires_at, last_seq) VALUES (?, ?, ?, ?, 0)`),
			m.Name, m.UserID, m.DeviceID, nanos(m.Expires)); err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("%w: mailbox %s is in use", ErrExists, m.Name)
			}
			return s.dbErr("open mailbox", err)
		}
		return nil
	})
}

func (s *sqlStore) dropMailbox(ctx context.Context, tx *sql.Tx, name string) error {
	for _, q := range []string{`DELETE FROM link_messages WHERE mailbox = ?`, `DELETE FROM link_mailboxes WHERE mailbox = ?`} {
		if _, err := tx.ExecContext(ctx, s.q(q), name); err != nil {
			return s.dbErr("drop mailbox", err)
		}
	}
	return nil
}

func (s *sqlStore) Mailbox(ctx context.Context, name string, now time.Time) (Mailbox, error) {
	return s.mailbox(ctx, s.r, name, now, "")
}

// mailbox reads an unexpired mailbox through q, locking it with lock.
func (s *sqlStore) mailbox(ctx context.Context, q querier, name string, now time.Time, lock string) (Mailbox, error) {
	m := Mailbox{Name: name}
	var exp int64
	err := q.QueryRowContext(ctx, s.q(`SELECT user_id, device_id, expires_at FROM link_mailboxes WHERE mailbox = ?`+lock), name).Scan(&m.UserID, &m.DeviceID, &exp)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && now.UnixNano() >= exp) {
		return Mailbox{}, fmt.Errorf("%w: no open mailbox %s", ErrNotFound, name)
	}
	if err != nil {
		return Mailbox{}, s.dbErr("mailbox", err)
	}
	m.Expires = time.Unix(0, exp)
	return m, nil
}

func (s *sqlStore) CloseMailbox(ctx context.Context, name, userID, deviceID string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var user, dev string
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id, device_id FROM link_mailboxes WHERE mailbox = ?`+s.d.forUpdate), name).Scan(&user, &dev)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (user != userID || dev != deviceID)) {
			return fmt.Errorf("%w: no mailbox %s of this device", ErrNotFound, name)
		}
		if err != nil {
			return s.dbErr("close mailbox", err)
		}
		return s.dropMailbox(ctx, tx, name)
	})
}

func (s *sqlStore) PostLink(ctx context.Context, name, side string, data []byte, owner *DeviceRef, max int, now time.Time) (int64, error) {
	var seq int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		m, err := s.mailbox(ctx, tx, name, now, s.d.forUpdate)
		if err != nil {
			return err
		}
		if owner != nil && (owner.UserID != m.UserID || owner.DeviceID != m.DeviceID) {
			return fmt.Errorf("%w: mailbox %s belongs to another device", ErrForbidden, name)
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM link_messages WHERE mailbox = ? AND side = ?`), name, side).Scan(&n); err != nil {
			return s.dbErr("post link", err)
		}
		if n >= max {
			return fmt.Errorf("%w: %d %s messages in mailbox %s", ErrLimit, n, side, name)
		}
		if err := tx.QueryRowContext(ctx, s.q(`UPDATE link_mailboxes SET last_seq = last_seq + 1 WHERE mailbox = ? RETURNING last_seq`), name).Scan(&seq); err != nil {
			return s.dbErr("post link", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO link_messages (mailbox, seq, side, data) VALUES (?, ?, ?, ?)`), name, seq, side, data); err != nil {
			return s.dbErr("post link", err)
		}
		if s.d.notify != nil {
			return s.d.notify(ctx, tx, Event{Mailbox: name, Seq: seq})
		}
		return nil
	})
	return seq, err
}

func (s *sqlStore) LinkMessages(ctx context.Context, name, side string, after int64, now time.Time) ([]LinkMessage, error) {
	if _, err := s.Mailbox(ctx, name, now); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT seq, data FROM link_messages WHERE mailbox = ? AND side = ? AND seq > ? ORDER BY seq`), name, side, after)
	if err != nil {
		return nil, s.dbErr("link messages", err)
	}
	defer rows.Close()
	var out []LinkMessage
	for rows.Next() {
		m := LinkMessage{Side: side}
		if err := rows.Scan(&m.Seq, &m.Data); err != nil {
			return nil, s.dbErr("link messages", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("link messages", err)
	}
	return out, nil
}
