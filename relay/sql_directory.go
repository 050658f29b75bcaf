package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The directory: challenges, devices and their sessions, revocations and
// key packages. A user's row is the lock that orders its logins and
// revocations, so that a token is never stored for a device whose
// revocation committed first (and a revocation drops every token stored
// before it).

func (s *sqlStore) PutChallenge(ctx context.Context, c Challenge) error {
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO challenges (challenge, certificate, expires_at) VALUES (?, ?, ?)`),
		c.Challenge, c.Certificate, nanos(c.Expires))
	if err != nil {
		return s.dbErr("put challenge", err)
	}
	return nil
}

func (s *sqlStore) TakeChallenge(ctx context.Context, challenge []byte, now time.Time) (Challenge, error) {
	c := Challenge{Challenge: challenge}
	var exp int64
	err := s.w.QueryRowContext(ctx, s.q(`DELETE FROM challenges WHERE challenge = ? RETURNING certificate, expires_at`), challenge).
		Scan(&c.Certificate, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Challenge{}, ErrNotFound
	}
	if err != nil {
		return Challenge{}, s.dbErr("take challenge", err)
	}
	c.Expires = time.Unix(0, exp)
	if !now.Before(c.Expires) {
		return Challenge{}, ErrNotFound
	}
	return c, nil
}

func (s *sqlStore) Revoked(ctx context.Context, userID, deviceID string) (bool, error) {
	var revoked bool
	err := s.r.QueryRowContext(ctx, s.q(`SELECT revocation IS NOT NULL FROM devices WHERE user_id = ? AND device_id = ?`), userID, deviceID).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.dbErr("revoked", err)
	}
	return revoked, nil
}

// lockUser creates the user's row if needed and locks it for the
// transaction.
func (s *sqlStore) lockUser(ctx context.Context, tx *sql.Tx, userID string, identityKey []byte, now time.Time) error {
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO users (user_id, identity_key, created_at) VALUES (?, ?, ?) ON CONFLICT (user_id) DO NOTHING`),
		userID, identityKey, nanos(now)); err != nil {
		return s.dbErr("user", err)
	}
	var key []byte
	if err := tx.QueryRowContext(ctx, s.q(`SELECT identity_key FROM users WHERE user_id = ?`+s.d.forUpdate), userID).Scan(&key); err != nil {
		return s.dbErr("user", err)
	}
	if string(key) != string(identityKey) {
		// The user id is the identity key's hash: two keys for one id
		// mean a caller that did not verify.
		return fmt.Errorf("relay: %s: user %s stored with another identity key", s.d.name, userID)
	}
	return nil
}

// deviceState reads a device's row inside tx: whether it exists, is
// revoked, and its certificate's not_before.
func (s *sqlStore) deviceState(ctx context.Context, tx *sql.Tx, userID, deviceID string) (exists, revoked bool, notBefore int64, err error) {
	var nb sql.NullInt64
	err = tx.QueryRowContext(ctx, s.q(`SELECT revocation IS NOT NULL, not_before FROM devices WHERE user_id = ? AND device_id = ?`+s.d.forUpdate),
		userID, deviceID).Scan(&revoked, &nb)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, 0, nil
	}
	if err != nil {
		return false, false, 0, s.dbErr("device", err)
	}
	return true, revoked, nb.Int64, nil
}

func (s *sqlStore) Login(ctx context.Context, d Device, tokenHash []byte, sess Session, maxDevices int, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockUser(ctx, tx, d.UserID, d.IdentityKey, now); err != nil {
			return err
		}
		exists, revoked, notBefore, err := s.deviceState(ctx, tx, d.UserID, d.DeviceID)
		switch {
		case err != nil:
			return err
		case revoked:
			return fmt.Errorf("%w: device %s", ErrRevoked, d.DeviceID)
		case !exists:
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM devices WHERE user_id = ? AND revocation IS NULL`), d.UserID).Scan(&n); err != nil {
				return s.dbErr("count devices", err)
			}
			if n >= maxDevices {
				return fmt.Errorf("%w: the user has %d devices", ErrLimit, n)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO devices (user_id, device_id, certificate, signature_key, not_before, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
				d.UserID, d.DeviceID, d.Certificate, d.SignatureKey, int64(d.NotBefore), nanos(now)); err != nil {
				return s.dbErr("add device", err)
			}
		case int64(d.NotBefore) >= notBefore:
			// The newest certificate is the one the directory lists (a
			// device re-certified after a key rotation).
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET certificate = ?, signature_key = ?, not_before = ? WHERE user_id = ? AND device_id = ?`),
				d.Certificate, d.SignatureKey, int64(d.NotBefore), d.UserID, d.DeviceID); err != nil {
				return s.dbErr("update device", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO tokens (token_hash, user_id, device_id, signature_key, expires_at) VALUES (?, ?, ?, ?, ?)`),
			tokenHash, sess.UserID, sess.DeviceID, sess.SignatureKey, nanos(sess.Expires)); err != nil {
			return s.dbErr("put token", err)
		}
		return nil
	})
}

const sessionQuery = `SELECT user_id, device_id, signature_key, expires_at FROM tokens WHERE token_hash = ?`

func (s *sqlStore) Session(ctx context.Context, tokenHash []byte, now time.Time) (Session, error) {
	var sess Session
	var exp int64
	err := s.rq().QueryRowContext(ctx, s.q(sessionQuery), tokenHash).
		Scan(&sess.UserID, &sess.DeviceID, &sess.SignatureKey, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, s.dbErr("token", err)
	}
	if now.UnixNano() >= exp {
		return Session{}, ErrNotFound
	}
	sess.Expires = time.Unix(0, exp)
	return sess, nil
}

func (s *sqlStore) Devices(ctx context.Context, userID string) ([]Device, [][]byte, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT d.device_id, d.certificate, d.signature_key, d.not_before, u.identity_key
		FROM devices d JOIN users u ON u.user_id = d.user_id
		WHERE d.user_id = ? AND d.revocation IS NULL AND d.certificate IS NOT NULL ORDER BY d.device_id`), userID)
	if err != nil {
		return nil, nil, s.dbErr("devices", err)
	}
	defer rows.Close()
	devs := []Device{}
	for rows.Next() {
		d := Device{UserID: userID}
		var nb int64
		if err := rows.Scan(&d.DeviceID, &d.Certificate, &d.SignatureKey, &nb, &d.IdentityKey); err != nil {
			return nil, nil, s.dbErr("devices", err)
		}
		d.NotBefore = uint64(nb)
		devs = append(devs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, s.dbErr("devices", err)
	}
	rrows, err := s.r.QueryContext(ctx, s.q(`SELECT revocation FROM devices WHERE user_id = ? AND revocation IS NOT NULL ORDER BY device_id`), userID)
	if err != nil {
		return nil, nil, s.dbErr("revocations", err)
	}
	defer rrows.Close()
	revs := [][]byte{}
	for rrows.Next() {
		var r []byte
		if err := rrows.Scan(&r); err != nil {
			return nil, nil, s.dbErr("revocations", err)
		}
		revs = append(revs, r)
	}
	if err := rrows.Err(); err != nil {
		return nil, nil, s.dbErr("revocations", err)
	}
	return devs, revs, nil
}

func (s *sqlStore) Revoke(ctx context.Context, r Revocation, maxRevocations int, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockUser(ctx, tx, r.UserID, r.IdentityKey, now); err != nil {
			return err
		}
		exists, revoked, _, err := s.deviceState(ctx, tx, r.UserID, r.DeviceID)
		if err != nil || revoked {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM devices WHERE user_id = ? AND revocation IS NOT NULL`), r.UserID).Scan(&n); err != nil {
			return s.dbErr("count revocations", err)
		}
		if n >= maxRevocations {
			return fmt.Errorf("%w: the user has %d revocations", ErrLimit, n)
		}
		q := `UPDATE devices SET revocation = ?, revoked_at = ? WHERE user_id = ? AND device_id = ?`
		args := []any{r.Data, nanos(now), r.UserID, r.DeviceID}
		if !exists {
			q = `INSERT INTO devices (revocation, revoked_at, user_id, device_id, created_at) VALUES (?, ?, ?, ?, ?)`
			args = append(args, nanos(now))
		}
		if _, err := tx.ExecContext(ctx, s.q(q), args...); err != nil {
			return s.dbErr("revoke", err)
		}
		for _, q := range []string{
			`DELETE FROM tokens WHERE user_id = ? AND device_id = ?`,
			`DELETE FROM key_packages WHERE user_id = ? AND device_id = ?`,
			`DELETE FROM last_resort WHERE user_id = ? AND device_id = ?`,
			`DELETE FROM link_messages WHERE mailbox IN (SELECT mailbox FROM link_mailboxes WHERE user_id = ? AND device_id = ?)`,
			`DELETE FROM link_mailboxes WHERE user_id = ? AND device_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.q(q), r.UserID, r.DeviceID); err != nil {
				return s.dbErr("revoke", err)
			}
		}
		if s.d.notify != nil {
			return s.d.notify(ctx, tx, Event{Revoked: &DeviceRef{UserID: r.UserID, DeviceID: r.DeviceID}})
		}
		return nil
	})
}

func (s *sqlStore) AddKeyPackages(ctx context.Context, userID, deviceID string, kps []KeyPackage, lastResort *KeyPackage, max int, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// The device row lock orders concurrent publishes (the quota) and
		// a revocation (which deletes what was published before it).
		exists, revoked, _, err := s.deviceState(ctx, tx, userID, deviceID)
		switch {
		case err != nil:
			return err
		case !exists:
			return fmt.Errorf("%w: device %s", ErrNotFound, deviceID)
		case revoked:
			return fmt.Errorf("%w: device %s", ErrRevoked, deviceID)
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM key_packages WHERE user_id = ? AND device_id = ?`), userID, deviceID).Scan(&n); err != nil {
			return s.dbErr("count key packages", err)
		}
		if n+len(kps) > max {
			return fmt.Errorf("%w: %d key packages stored, %d more would pass %d", ErrLimit, n, len(kps), max)
		}
		for _, kp := range kps {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO key_packages (user_id, device_id, ref, data, created_at) VALUES (?, ?, ?, ?, ?)`),
				userID, deviceID, kp.Ref, kp.Data, nanos(now)); err != nil {
				if s.d.isUnique(err) {
					return fmt.Errorf("%w: key package already published", ErrExists)
				}
				return s.dbErr("add key package", err)
			}
		}
		if lastResort != nil {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO last_resort (user_id, device_id, ref, data, created_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (user_id, device_id) DO UPDATE SET ref = excluded.ref, data = excluded.data, created_at = excluded.created_at`),
				userID, deviceID, lastResort.Ref, lastResort.Data, nanos(now)); err != nil {
				return s.dbErr("set last resort", err)
			}
		}
		return nil
	})
}

func (s *sqlStore) CountKeyPackages(ctx context.Context, userID, deviceID string) (int, bool, error) {
	var n, lr int
	err := s.r.QueryRowContext(ctx, s.q(`SELECT (SELECT COUNT(*) FROM key_packages WHERE user_id = ? AND device_id = ?),
		(SELECT COUNT(*) FROM last_resort WHERE user_id = ? AND device_id = ?)`),
		userID, deviceID, userID, deviceID).Scan(&n, &lr)
	if err != nil {
		return 0, false, s.dbErr("count key packages", err)
	}
	return n, lr > 0, nil
}

func (s *sqlStore) ClaimKeyPackages(ctx context.Context, userID string) ([]ClaimedKeyPackage, error) {
	var out []ClaimedKeyPackage
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, s.q(`SELECT device_id FROM devices WHERE user_id = ? AND revocation IS NULL AND certificate IS NOT NULL ORDER BY device_id`), userID)
		if err != nil {
			return s.dbErr("claim key packages", err)
		}
		var devs []string
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return s.dbErr("claim key packages", err)
			}
			devs = append(devs, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.dbErr("claim key packages", err)
		}
		for _, d := range devs {
			kp, ok, err := s.claimOne(ctx, tx, userID, d)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, kp)
			}
		}
		if len(out) == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claimOne takes the device's oldest one-time key package, else returns
// its last-resort one.
func (s *sqlStore) claimOne(ctx context.Context, tx *sql.Tx, userID, deviceID string) (ClaimedKeyPackage, bool, error) {
	kp := ClaimedKeyPackage{DeviceID: deviceID}
	// SKIP LOCKED: two concurrent claims on PostgreSQL take two different
	// rows instead of the second finding the first's row gone and falling
	// back to the last resort. (A claim that finds every remaining row
	// locked by in-flight claims gets the last resort: those claims will
	// not roll back short of a crash.)
	var id int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM key_packages WHERE user_id = ? AND device_id = ? ORDER BY id LIMIT 1`+s.d.skipLocked),
		userID, deviceID).Scan(&id)
	if err == nil {
		if err := tx.QueryRowContext(ctx, s.q(`DELETE FROM key_packages WHERE id = ? RETURNING data`), id).Scan(&kp.Data); err != nil {
			return kp, false, s.dbErr("claim key package", err)
		}
		return kp, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return kp, false, s.dbErr("claim key package", err)
	}
	err = tx.QueryRowContext(ctx, s.q(`SELECT data FROM last_resort WHERE user_id = ? AND device_id = ?`), userID, deviceID).Scan(&kp.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return kp, false, nil
	}
	if err != nil {
		return kp, false, s.dbErr("claim last resort", err)
	}
	kp.LastResort = true
	return kp, true, nil
}
