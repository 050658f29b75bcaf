package relay

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Quotas: counters and leases in the database, so that every relay
// process on one PostgreSQL database enforces the same limits.

func (s *sqlStore) Take(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Time, error) {
	start := now.Truncate(window)
	var n int
	err := s.txNoSync(ctx, func(tx *sql.Tx) error {
		// One statement: the increment and the read are atomic in the
		// database (the row is locked by the upsert on PostgreSQL).
		return tx.QueryRowContext(ctx, s.q(`INSERT INTO quotas (quota_key, window_start, n) VALUES (?, ?, 1)
			ON CONFLICT (quota_key) DO UPDATE SET
				n = CASE WHEN quotas.window_start = excluded.window_start THEN quotas.n + 1 ELSE 1 END,
				window_start = excluded.window_start
			RETURNING n`), key, nanos(start)).Scan(&n)
	})
	if err != nil {
		return false, time.Time{}, s.dbErr("quota", err)
	}
	// A counter lost in a crash forgives a few uses; no fsync is waited for.
	return n <= limit, start.Add(window), nil
}

func (s *sqlStore) KnownUser(ctx context.Context, userID string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, s.q(`SELECT 1 FROM users WHERE user_id = ?`), userID).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, s.dbErr("user", err)
	}
	return true, nil
}

func (s *sqlStore) WelcomeQueue(ctx context.Context, userID string) (count, bytes int64, err error) {
	err = s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*), COALESCE(SUM(LENGTH(welcome) + COALESCE(LENGTH(ratchet_tree), 0)), 0)
		FROM welcomes WHERE recipient = ?`), userID).Scan(&count, &bytes)
	if err != nil {
		return 0, 0, s.dbErr("welcome queue", err)
	}
	return count, bytes, nil
}

func (s *sqlStore) OpenStream(ctx context.Context, tokenHash []byte, id string, max int, until, now time.Time) error {
	return s.txNoSync(ctx, func(tx *sql.Tx) error {
		// The token's row lock serialises concurrent opens of one token
		// across processes (PostgreSQL; SQLite has one writer).
		var one int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM tokens WHERE token_hash = ?`+s.d.forUpdate), tokenHash).Scan(&one); err == sql.ErrNoRows {
			return fmt.Errorf("%w: token", ErrNotFound)
		} else if err != nil {
			return s.dbErr("open stream", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM streams WHERE token_hash = ? AND lease_until > ?`), tokenHash, nanos(now)).Scan(&n); err != nil {
			return s.dbErr("open stream", err)
		}
		if n >= max {
			return fmt.Errorf("%w: %d event streams open for this token", ErrQuota, n)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO streams (token_hash, stream_id, lease_until) VALUES (?, ?, ?)`), tokenHash, id, nanos(until)); err != nil {
			return s.dbErr("open stream", err)
		}
		return nil
	})
}

func (s *sqlStore) RenewStream(ctx context.Context, tokenHash []byte, id string, until time.Time) error {
	return s.txNoSync(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE streams SET lease_until = ? WHERE token_hash = ? AND stream_id = ?`), nanos(until), tokenHash, id); err != nil {
			return s.dbErr("renew stream", err)
		}
		return nil
	})
}

func (s *sqlStore) CloseStream(ctx context.Context, tokenHash []byte, id string) error {
	return s.txNoSync(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM streams WHERE token_hash = ? AND stream_id = ?`), tokenHash, id); err != nil {
			return s.dbErr("close stream", err)
		}
		return nil
	})
}

// Retain applies the log retention policy p at now (see RetentionPolicy)
// and returns how many entries it deleted.
func (s *sqlStore) Retain(ctx context.Context, p RetentionPolicy, now time.Time) (int64, error) {
	var total int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		total = 0
		gone := map[string]*logSize{} // by group: what the deletions took
		if p.MaxAge > 0 {
			if err := s.deleteEntries(ctx, tx, gone, `DELETE FROM messages WHERE received_at < ?`, nanos(now.Add(-p.MaxAge))); err != nil {
				return err
			}
		}
		if p.MaxEntries > 0 {
			// Beyond the newest MaxEntries of a group, an entry goes once
			// every device cursor saved in the group is past it.
			if err := s.deleteEntries(ctx, tx, gone, `DELETE FROM messages WHERE seq <= (SELECT g.last_seq FROM groups g WHERE g.group_id = messages.group_id) - ?
				AND seq <= COALESCE((SELECT MIN(c.after) FROM cursors c WHERE c.group_id = messages.group_id), 0)`, p.MaxEntries); err != nil {
				return err
			}
		}
		for gid, z := range gone {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE groups SET log_entries = log_entries - ?, log_bytes = log_bytes - ? WHERE group_id = ?`),
				z.entries, z.bytes, []byte(gid)); err != nil {
				return s.dbErr("retain", err)
			}
			total += z.entries
		}
		return nil
	})
	s.tail.reset() // entries it holds may be gone
	return total, err
}

// logSize is a count of log entries and their data bytes.
type logSize struct{ entries, bytes int64 }

// deleteEntries runs a DELETE of log entries and adds what it took, by
// group, to gone (the groups' counters are lowered by it).
func (s *sqlStore) deleteEntries(ctx context.Context, tx *sql.Tx, gone map[string]*logSize, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, s.q(query+` RETURNING group_id, LENGTH(data)`), args...)
	if err != nil {
		return s.dbErr("retain", err)
	}
	defer rows.Close()
	for rows.Next() {
		var gid []byte
		var n int64
		if err := rows.Scan(&gid, &n); err != nil {
			return s.dbErr("retain", err)
		}
		z := gone[string(gid)]
		if z == nil {
			z = &logSize{}
			gone[string(gid)] = z
		}
		z.entries, z.bytes = z.entries+1, z.bytes+n
	}
	if err := rows.Err(); err != nil {
		return s.dbErr("retain", err)
	}
	return nil
}
