package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// stmtCache is the read pool with each query prepared once (per
// connection, by database/sql) instead of at every call: SQLite parses a
// statement when it is prepared, which was about a fifth of a node's CPU
// under load. Up to maxCachedStmts queries are kept; others run unprepared.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

const maxCachedStmts = 128

var _ querier = (*stmtCache)(nil)

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

// stmt is query's prepared statement (nil: run it unprepared).
func (c *stmtCache) stmt(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	st, full := c.m[query], len(c.m) >= maxCachedStmts
	c.mu.Unlock()
	if st != nil || full {
		return st
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared call reports it
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[query]; old != nil {
		st.Close()
		return old
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.db.ExecContext(ctx, query, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

// close closes the prepared statements (before the pool).
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	closeStmts(c.m)
}

// closeStmts closes and forgets the prepared statements of m.
func closeStmts(m map[string]*sql.Stmt) {
	for q, st := range m {
		st.Close()
		delete(m, q)
	}
}

// writerStmts are the writer connection's prepared statements. The writer
// pool has one connection, which a transaction holds while it runs: a query
// first run inside a transaction runs unprepared and is prepared after the
// transaction (prepareNew); later transactions run it through
// Tx.StmtContext, which reuses a statement prepared on the transaction's
// connection instead of parsing the SQL again.
type writerStmts struct {
	db    *sql.DB
	mu    sync.Mutex
	m     map[string]*sql.Stmt
	fresh map[string]bool // run unprepared, to prepare after the transaction
}

func newWriterStmts(db *sql.DB) *writerStmts {
	return &writerStmts{db: db, m: map[string]*sql.Stmt{}, fresh: map[string]bool{}}
}

// get is query's prepared statement, or nil after noting it for
// prepareNew.
func (w *writerStmts) get(query string) *sql.Stmt {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.m[query]
	if st == nil && len(w.m)+len(w.fresh) < maxCachedStmts {
		w.fresh[query] = true
	}
	return st
}

// prepareNew prepares the queries get noted; it is called outside any
// transaction (it needs the writer connection).
func (w *writerStmts) prepareNew(ctx context.Context) {
	w.mu.Lock()
	qs := make([]string, 0, len(w.fresh))
	for q := range w.fresh {
		qs = append(qs, q)
	}
	clear(w.fresh)
	w.mu.Unlock()
	for _, q := range qs {
		st, err := w.db.PrepareContext(ctx, q)
		if err != nil {
			continue // it runs unprepared, and reports its error there
		}
		w.mu.Lock()
		if w.m[q] == nil {
			w.m[q], st = st, nil
		}
		w.mu.Unlock()
		if st != nil {
			st.Close()
		}
	}
}

func (w *writerStmts) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	closeStmts(w.m)
}

// ExecContext runs query on the writer outside a transaction.
func (w *writerStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := w.get(query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	res, err := w.db.ExecContext(ctx, query, args...)
	w.prepareNew(ctx)
	return res, err
}

// txStmts is a writer transaction that runs its queries through the
// writer's prepared statements.
type txStmts struct {
	tx *sql.Tx
	w  *writerStmts
	// gone is set when SQLite has rolled the transaction back on its own
	// (groupcommit.go): a statement run after that would run, and
	// commit, outside any transaction.
	gone *atomic.Bool
}

var _ querier = txStmts{}

// check is the test each statement passes before it runs.
func (t txStmts) check(ctx context.Context) error {
	if t.gone != nil && t.gone.Load() {
		return errTxGone
	}
	return ctx.Err()
}

func (t txStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx) // the transaction is shared (groupcommit.go)
	if st := t.w.get(query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t txStmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	if st := t.w.get(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t txStmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	// A read after the transaction is gone is harmless (it reads what is
	// committed, and runBatch fails the call): not checked here, where an
	// error could only be reported as a cancelled context.
	if ctx.Err() == nil { // else the row reports it, without running
		ctx = context.WithoutCancel(ctx)
	}
	if st := t.w.get(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
