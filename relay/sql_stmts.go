package relay

import (
	"context"
	"database/sql"
	"fmt"
)

// Prepared statements of the hot paths (appends, log reads, sessions).
// On SQLite parsing a short statement costs about as much as running it
// (a relay-only load test spent ~15% of its CPU in the SQL parser), so the
// statements the append and read paths run on every request are prepared
// once per pool when the store opens and reused: database/sql prepares a
// Stmt on each connection it runs on and keeps it there, and inside a
// transaction Tx.StmtContext reuses the connection's one. PostgreSQL needs
// none of this: pgx caches prepared statements per connection itself.
//
// They are prepared at open (not on first use) because the SQLite writer
// pool has one connection: preparing on it from inside a transaction
// would wait for that transaction forever.
type stmtCache map[string]*sql.Stmt // by query text (as rebound)

// prepareHot prepares the hot statements on the writer and reader pools.
func (s *sqlStore) prepareHot(ctx context.Context) error {
	prep := func(db *sql.DB, qs []string) (stmtCache, error) {
		c := stmtCache{}
		for _, q := range qs {
			q = s.q(q)
			st, err := db.PrepareContext(ctx, q)
			if err != nil {
				for _, st := range c {
					st.Close()
				}
				return nil, fmt.Errorf("relay: %s: prepare: %w", s.d.name, err)
			}
			c[q] = st
		}
		return c, nil
	}
	w, err := prep(s.w, []string{s.lockGroupQuery(), accessQuery, groupExistsQuery, insertMessageQuery, updateGroupQuery})
	if err != nil {
		return err
	}
	r, err := prep(s.r, []string{accessQuery, groupExistsQuery, pageQuery, messagesQuery, sessionQuery})
	if err != nil {
		w.close()
		return err
	}
	s.wst, s.rst = w, r
	return nil
}

func (c stmtCache) close() {
	for _, st := range c {
		st.Close()
	}
}

// readers runs queries on the reader pool, prepared when they are hot.
type readers struct{ s *sqlStore }

func (s *sqlStore) rq() readers { return readers{s} }

func (p readers) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.s.rst[query]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.s.r.QueryRowContext(ctx, query, args...)
}

func (p readers) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.s.rst[query]; st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.s.r.QueryContext(ctx, query, args...)
}

// writer runs statements in a write transaction, prepared when hot.
type writer struct {
	s  *sqlStore
	tx *sql.Tx
}

func (s *sqlStore) wq(tx *sql.Tx) writer { return writer{s, tx} }

func (p writer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.s.wst[query]; st != nil {
		return p.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return p.tx.QueryRowContext(ctx, query, args...)
}

func (p writer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.s.wst[query]; st != nil {
		return p.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return p.tx.ExecContext(ctx, query, args...)
}
