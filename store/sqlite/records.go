package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/internal/seal"
)

var (
	_ store.Records   = (*Store)(nil)
	_ store.RecordsTx = (*tx)(nil)
)

func adRecord(kind, id string) []byte { return []byte("client_records\x00" + kind + "\x00" + id) }

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// PutRecord stores (or replaces) the record kind/id, sealed.
func (s *Store) PutRecord(ctx context.Context, kind, id string, value []byte) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return putRecord(ctx, s.w, s.box, kind, id, value)
}

// DeleteRecord deletes the record kind/id (absent: nil).
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return deleteRecord(ctx, s.w, kind, id)
}

// PutRecord is Store.PutRecord in the transaction.
func (t *tx) PutRecord(ctx context.Context, kind, id string, value []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	return putRecord(ctx, t.tx, t.box, kind, id, value)
}

// DeleteRecord is Store.DeleteRecord in the transaction.
func (t *tx) DeleteRecord(ctx context.Context, kind, id string) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	return deleteRecord(ctx, t.tx, kind, id)
}

func putRecord(ctx context.Context, db execer, box *seal.Box, kind, id string, value []byte) error {
	if kind == "" || id == "" {
		return fmt.Errorf("%w: record without kind or id", store.ErrInvalid)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO client_records (kind, id, value) VALUES (?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value`, kind, id, box.Seal(adRecord(kind, id), value))
	if err != nil {
		return fmt.Errorf("store: put record: %w", err)
	}
	return nil
}

func deleteRecord(ctx context.Context, db execer, kind, id string) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM client_records WHERE kind = ? AND id = ?`, kind, id); err != nil {
		return fmt.Errorf("store: delete record: %w", err)
	}
	return nil
}

// Records lists the records of kind in the order first stored.
func (s *Store) Records(ctx context.Context, kind string) ([]store.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, id, value FROM client_records WHERE kind = ? ORDER BY seq`, kind)
	if err != nil {
		return nil, fmt.Errorf("store: records: %w", err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		rec := store.Record{Kind: kind}
		var sealed []byte
		if err := rows.Scan(&rec.Seq, &rec.ID, &sealed); err != nil {
			return nil, fmt.Errorf("store: records: %w", err)
		}
		if rec.Value, err = s.box.Open(adRecord(kind, rec.ID), sealed); err != nil {
			return nil, errors.Join(store.ErrCorrupt, err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}
