package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/internal/seal"
)

var (
	_ store.Records   = (*Store)(nil)
	_ store.RecordsTx = (*tx)(nil)
)

// Records at rest (migration 5): the id column holds recordTag(kind, id),
// and value the sealed uvarint(len(id)) ‖ id ‖ value, bound to the kind
// and the tag, so neither the id nor the value is in the clear and a
// sealed value moved to another row fails to open.

// recordTag is the stored form of a record id: a keyed tag, hex.
func recordTag(box *seal.Box, kind, id string) string {
	return hex.EncodeToString(box.Tag(seal.Bind("client_records", "id", []byte(kind)), []byte(id)))
}

func adRecordV5(kind, tag string) seal.AD {
	return seal.Bind("client_records", "value", []byte(kind), []byte(tag))
}

// adRecord is the additional data of a value sealed before migration 5.
func adRecord(kind, id string) []byte { return []byte("client_records\x00" + kind + "\x00" + id) }

func sealRecord(box *seal.Box, kind, id string, value []byte) (tag string, sealed []byte) {
	tag = recordTag(box, kind, id)
	body := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(id)+len(value)), uint64(len(id)))
	body = append(append(body, id...), value...)
	return tag, box.Seal(adRecordV5(kind, tag), body)
}

func openRecord(box *seal.Box, kind, tag string, sealed []byte) (id string, value []byte, err error) {
	body, err := box.Open(adRecordV5(kind, tag), sealed)
	if err != nil {
		return "", nil, errors.Join(store.ErrCorrupt, err)
	}
	n, k := binary.Uvarint(body)
	if k <= 0 || n > uint64(len(body)-k) {
		return "", nil, fmt.Errorf("%w: record framing", store.ErrCorrupt)
	}
	id, value = string(body[k:k+int(n)]), body[k+int(n):]
	if recordTag(box, kind, id) != tag {
		return "", nil, fmt.Errorf("%w: record id does not match its tag", store.ErrCorrupt)
	}
	return id, value, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// PutRecord stores (or replaces) the record kind/id, sealed.
func (s *Store) PutRecord(ctx context.Context, kind, id string, value []byte) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return putRecord(ctx, s.ws, s.box, kind, id, value)
}

// DeleteRecord deletes the record kind/id (absent: nil).
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return deleteRecord(ctx, s.ws, s.box, kind, id)
}

// PutRecord is Store.PutRecord in the transaction.
func (t *tx) PutRecord(ctx context.Context, kind, id string, value []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	return putRecord(ctx, t.q, t.box, kind, id, value)
}

// DeleteRecord is Store.DeleteRecord in the transaction.
func (t *tx) DeleteRecord(ctx context.Context, kind, id string) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	return deleteRecord(ctx, t.q, t.box, kind, id)
}

func putRecord(ctx context.Context, db execer, box *seal.Box, kind, id string, value []byte) error {
	if kind == "" || id == "" {
		return fmt.Errorf("%w: record without kind or id", store.ErrInvalid)
	}
	tag, sealed := sealRecord(box, kind, id, value)
	_, err := db.ExecContext(ctx, `INSERT INTO client_records (kind, id, value, id_sealed) VALUES (?, ?, ?, 1)
		ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value`, kind, tag, sealed)
	if err != nil {
		return fmt.Errorf("store: put record: %w", err)
	}
	return nil
}

func deleteRecord(ctx context.Context, db execer, box *seal.Box, kind, id string) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM client_records WHERE kind = ? AND id = ?`, kind, recordTag(box, kind, id)); err != nil {
		return fmt.Errorf("store: delete record: %w", err)
	}
	return nil
}

// Records lists the records of kind in the order first stored.
func (s *Store) Records(ctx context.Context, kind string) ([]store.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.stmts.QueryContext(ctx, `SELECT seq, id, value FROM client_records WHERE kind = ? AND id_sealed = 1 ORDER BY seq`, kind)
	if err != nil {
		return nil, fmt.Errorf("store: records: %w", err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		rec := store.Record{Kind: kind}
		var tag string
		var sealed []byte
		if err := rows.Scan(&rec.Seq, &tag, &sealed); err != nil {
			return nil, fmt.Errorf("store: records: %w", err)
		}
		if rec.ID, rec.Value, err = openRecord(s.box, kind, tag, sealed); err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// sealRecords seals the record ids and channel extras written before
// migration 5, at open, in one transaction; then, if there were any, the
// file is rebuilt (VACUUM, with secure_delete) so that no page keeps the
// old values, and the WAL is truncated.
func sealRecords(ctx context.Context, db *sql.DB, box *seal.Box) (err error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM client_records WHERE id_sealed = 0) +
		(SELECT COUNT(*) FROM channels WHERE extra IS NOT NULL)`).Scan(&n); err != nil {
		return fmt.Errorf("store: seal records: %w", err)
	}
	if n == 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return fmt.Errorf("store: seal records: %w", err)
	}
	defer db.ExecContext(context.Background(), `PRAGMA secure_delete = OFF`)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: seal records: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	type row struct {
		seq      int64
		kind, id string
		value    []byte
	}
	var rs []row
	if err := collect(ctx, tx, `SELECT seq, kind, id, value FROM client_records WHERE id_sealed = 0`, func(r *sql.Rows) error {
		var x row
		err := r.Scan(&x.seq, &x.kind, &x.id, &x.value)
		rs = append(rs, x)
		return err
	}); err != nil {
		return err
	}
	for _, r := range rs {
		v, err := box.Open(adRecord(r.kind, r.id), r.value)
		if err != nil {
			return fmt.Errorf("%w: record %d does not open: %w", store.ErrCorrupt, r.seq, err)
		}
		tag, sealed := sealRecord(box, r.kind, r.id, v)
		if _, err := tx.ExecContext(ctx, `UPDATE client_records SET id = ?, value = ?, id_sealed = 1 WHERE seq = ?`, tag, sealed, r.seq); err != nil {
			return fmt.Errorf("store: seal records: %w", err)
		}
	}
	type chRow struct {
		id    string
		extra []byte
	}
	var chans []chRow
	if err := collect(ctx, tx, `SELECT channel_id, extra FROM channels WHERE extra IS NOT NULL`, func(r *sql.Rows) error {
		var c chRow
		err := r.Scan(&c.id, &c.extra)
		chans = append(chans, c)
		return err
	}); err != nil {
		return err
	}
	for _, c := range chans {
		if _, err := tx.ExecContext(ctx, `UPDATE channels SET extra = NULL, extra_sealed = ? WHERE channel_id = ?`, box.Seal(adExtra(c.id), c.extra), c.id); err != nil {
			return fmt.Errorf("store: seal records: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: seal records: %w", err)
	}
	for _, q := range []string{`VACUUM`, `PRAGMA wal_checkpoint(TRUNCATE)`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store: seal records: %s: %w", q, err)
		}
	}
	return nil
}
