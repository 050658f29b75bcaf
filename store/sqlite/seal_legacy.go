package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/spacepanda/spacepanda/store/internal/seal"
)

// sealLegacy seals the channel names and message metadata of rows written
// before migration 4 (they need the data key, which SQL migrations do not
// have), in one transaction at open. Rows sealed already are skipped.
func sealLegacy(ctx context.Context, db *sql.DB, box *seal.Box) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: seal legacy rows: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	type chRow struct{ id, name string }
	var chans []chRow
	if err := collect(ctx, tx, `SELECT channel_id, name FROM channels WHERE name_sealed IS NULL`, func(r *sql.Rows) error {
		var c chRow
		err := r.Scan(&c.id, &c.name)
		chans = append(chans, c)
		return err
	}); err != nil {
		return err
	}
	for _, c := range chans {
		if _, err := tx.ExecContext(ctx, `UPDATE channels SET name = '', name_sealed = ? WHERE channel_id = ?`, box.Seal(adName(c.id), []byte(c.name)), c.id); err != nil {
			return fmt.Errorf("store: seal legacy rows: %w", err)
		}
	}
	type msgRow struct {
		ch  string
		seq uint64
		mm  messageMeta
	}
	var msgs []msgRow
	if err := collect(ctx, tx, `SELECT channel_id, seq, message_id, sender, sent_at, reply_to, received_at FROM messages WHERE meta IS NULL`, func(r *sql.Rows) error {
		var m msgRow
		err := r.Scan(&m.ch, &m.seq, &m.mm.ID, &m.mm.Sender, &m.mm.SentAt, &m.mm.ReplyTo, &m.mm.RecvAt)
		msgs = append(msgs, m)
		return err
	}); err != nil {
		return err
	}
	for _, m := range msgs {
		meta, err := json.Marshal(m.mm)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET message_id = ?, sender = '', sent_at = 0, reply_to = '', received_at = 0, meta = ?
			WHERE channel_id = ? AND seq = ?`, messageIDTag(box, m.ch, m.mm.ID), box.Seal(adMeta(m.ch, m.seq), meta), m.ch, int64(m.seq)); err != nil {
			return fmt.Errorf("store: seal legacy rows: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: seal legacy rows: %w", err)
	}
	return nil
}

func collect(ctx context.Context, tx *sql.Tx, q string, fn func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("store: seal legacy rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("store: seal legacy rows: %w", err)
		}
	}
	return rows.Err()
}
