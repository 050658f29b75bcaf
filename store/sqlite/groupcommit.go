package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"

	"github.com/spacepanda/spacepanda/store"
)

// Group commit. Update calls that arrive while another's transaction holds
// the writer wait in a queue; when the writer is free, the first of them
// runs every queued call in one SQLite transaction, each inside its own
// savepoint, and commits once: one WAL write of each page they share and
// one fsync for all of them. A call returns only after the commit that
// holds it is durable, so an Update that returned nil is as durable as
// before, and one that fails changed nothing (its savepoint is rolled
// back; the others keep theirs). A call alone in the queue runs exactly as
// a single transaction, without savepoints.
//
// The calls of one batch run one after another on the leader's goroutine,
// each seeing what the ones before it wrote, as if each had committed
// before the next began. If the commit fails, every call of the batch
// fails with its error: none of them is on disk.
//
// Statements run with their caller's context stripped of its
// cancellation (a cancelled caller must not interrupt the shared
// transaction: SQLite rolls a whole transaction back when a write in it is
// interrupted); each statement checks the caller's context first
// (txStmts), and a call whose context is done when its turn comes fails
// without running; one whose context ends while it waits in the queue
// leaves it and returns at once.
//
// SQLite may answer a statement error (SQLITE_FULL, SQLITE_IOERR, an
// interrupt, RAISE(ROLLBACK)) by rolling back the whole transaction, and
// every savepoint with it; the connection is then in autocommit mode, in
// which any further statement would commit on its own. The writer's
// rollback hook (writerConnector) records that it happened: from then on
// no statement of the batch runs, and every call of the batch fails.

// maxBatch bounds the calls of one transaction, which bounds how long the
// first of them waits for the commit.
const maxBatch = 32

type update struct {
	ctx  context.Context
	fn   func(store.Tx) error
	lead chan struct{} // closed: this call leads the next batch
	done chan result   // buffered (1)
}

var (
	// errTxGone: SQLite rolled the transaction back after a statement
	// error; set by the writer's rollback hook (writerConnector).
	errTxGone = errors.New("store: transaction rolled back by SQLite after a statement error")
	// errBatchAbandoned: the leader's goroutine left runBatch without
	// finishing it (a fn called runtime.Goexit).
	errBatchAbandoned = errors.New("store: batch abandoned: a fn batched with this one did not return")
)

type result struct {
	err      error
	panicked any // fn's panic, raised again on the caller's goroutine
}

type committer struct {
	mu      sync.Mutex
	queue   []*update
	leading bool // a batch is being run; the next leader is queue[0]

	// Counted for tests (export_test.go): transactions committed, the
	// calls they held, and the most calls one of them held.
	commits, calls, largest atomic.Int64
}

// Update implements store.Store: fn runs in a BEGIN IMMEDIATE transaction
// on the single writer connection, alone or with other calls queued at
// the same time (group commit, above), committed with a WAL fsync before
// Update returns.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	u := &update{ctx: ctx, fn: fn, lead: make(chan struct{}), done: make(chan result, 1)}
	c := &s.commit
	c.mu.Lock()
	c.queue = append(c.queue, u)
	waiting := c.leading
	c.leading = true
	c.mu.Unlock()
	if waiting {
		select {
		case r := <-u.done:
			return r.raise()
		case <-u.lead:
		case <-ctx.Done():
			// Leave the queue now rather than wait for the batch ahead (as
			// the database/sql pool's wait for the writer did), unless
			// this call was handed the lead or taken into a batch
			// meanwhile: both happen under c.mu.
			c.mu.Lock()
			select {
			case <-u.lead:
				c.mu.Unlock() // lead; the batch fails u without running it
			default:
				i := slices.Index(c.queue, u)
				if i >= 0 {
					c.queue = slices.Delete(c.queue, i, i+1)
				}
				c.mu.Unlock()
				if i >= 0 {
					return ctx.Err()
				}
				return (<-u.done).raise()
			}
		}
	}
	s.lead()
	return (<-u.done).raise()
}

// lead runs the next batch, then hands the lead to the first call queued
// meanwhile, if any. The hand-off is deferred so that a runBatch that
// does not return (a fn calling runtime.Goexit, as t.FailNow does) does
// not leave every later Update waiting for a leader.
func (s *Store) lead() {
	c := &s.commit
	defer func() {
		c.mu.Lock()
		if len(c.queue) > 0 {
			close(c.queue[0].lead) // still leading: the next batch is theirs
		} else {
			c.leading = false
		}
		c.mu.Unlock()
	}()
	c.mu.Lock()
	n := min(len(c.queue), maxBatch)
	batch := append([]*update(nil), c.queue[:n]...)
	c.queue = c.queue[n:]
	c.mu.Unlock()
	s.runBatch(batch)
}

func (r result) raise() error {
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// runBatch runs the calls of batch in one transaction and answers each.
func (s *Store) runBatch(batch []*update) {
	var ready []*update // calls whose writes are in the transaction
	var ts []*tx
	answered := 0
	answer := func(u *update, r result) { u.done <- r; answered++ }
	var sqlTx *sql.Tx
	finished := false // sqlTx committed or rolled back
	defer func() {
		if answered < len(batch) {
			// A fn did not return (runtime.Goexit) or runBatch panicked:
			// nothing of the batch is committed, and every call not yet
			// answered must be, or it waits forever.
			if sqlTx != nil && !finished {
				sqlTx.Rollback()
			}
			for _, u := range batch {
				select {
				case u.done <- result{err: errBatchAbandoned}:
				default: // answered already (its result is buffered)
				}
			}
		}
		for _, t := range ts {
			if t.wroteChannels {
				s.chans.endWrite() // committed or not: the next read asks the database
			}
		}
		s.ws.prepareNew(context.Background()) // the connection is free again
	}()
	sqlTx, err := s.w.BeginTx(context.Background(), nil)
	s.txGone.Store(false) // the hook also fired for earlier rollbacks
	if err != nil {
		if s.closed.Load() {
			err = store.ErrClosed
		} else {
			err = fmt.Errorf("store: begin: %w", err)
		}
		for _, u := range batch {
			answer(u, result{err: err})
		}
		return
	}
	savepoints := len(batch) > 1
	if s.seqs == nil {
		s.seqs = map[string]uint64{}
	}
	seqs := &seqBatch{committed: s.seqs, pending: map[string]uint64{}}
	var broken error // the transaction is gone (SQLite rolled it back)
	for _, u := range batch {
		if broken != nil {
			answer(u, result{err: fmt.Errorf("store: a call batched with this one: %w", broken)})
			continue
		}
		if err := u.ctx.Err(); err != nil {
			answer(u, result{err: err})
			continue
		}
		if savepoints {
			if _, err := sqlTx.Exec(`SAVEPOINT u`); err != nil {
				broken = fmt.Errorf("store: savepoint: %w", err)
				answer(u, result{err: broken})
				continue
			}
		}
		t := &tx{tx: sqlTx, q: txStmts{tx: sqlTx, w: s.ws, gone: &s.txGone}, chans: &s.chans, seqs: seqs, now: time.Now}
		t.reader = reader{q: t.q, box: s.box, check: t.checkCtx}
		ts = append(ts, t)
		r := runOne(u, t)
		t.done.Store(true)
		if s.txGone.Load() {
			// A statement of fn failed in a way that made SQLite roll the
			// whole transaction back (SQLITE_FULL, SQLITE_IOERR, a
			// RAISE(ROLLBACK)...): what the calls before wrote is gone
			// with it, and the savepoint too. Without this check a fn
			// that ignored the error and returned nil would fail only at
			// RELEASE, and one that returned the error would be taken
			// for an ordinary failure if ROLLBACK TO happened to succeed.
			broken = errTxGone
			if r.err == nil && r.panicked == nil {
				r.err = fmt.Errorf("store: %w", errTxGone)
			}
			answer(u, r)
			continue
		}
		if r.err == nil && r.panicked == nil {
			r.err = u.ctx.Err()
		}
		failed := r.err != nil || r.panicked != nil
		switch {
		case !savepoints && failed:
			sqlTx.Rollback()
			finished = true
			answer(u, r)
			return
		case !savepoints:
			seqs.released(t)
			ready = append(ready, u)
		case failed:
			if _, err := sqlTx.Exec(`ROLLBACK TO u`); err != nil {
				broken = fmt.Errorf("store: rollback to savepoint: %w", err)
			} else if _, err := sqlTx.Exec(`RELEASE u`); err != nil {
				broken = fmt.Errorf("store: release savepoint: %w", err)
			}
			answer(u, r)
		default:
			if _, err := sqlTx.Exec(`RELEASE u`); err != nil {
				broken = fmt.Errorf("store: release savepoint: %w", err)
				answer(u, result{err: broken})
				continue
			}
			seqs.released(t)
			ready = append(ready, u)
		}
	}
	if broken != nil {
		// A statement failed in a way that ended the transaction: what
		// the calls before wrote is gone with it.
		sqlTx.Rollback()
		finished = true
		for _, u := range ready {
			answer(u, result{err: fmt.Errorf("store: a call batched with this one: %w", broken)})
		}
		return
	}
	if len(ready) == 0 {
		sqlTx.Rollback()
		finished = true
		return
	}
	err = sqlTx.Commit()
	finished = true
	if err != nil {
		err = fmt.Errorf("store: commit: %w", err)
		for _, u := range ready {
			answer(u, result{err: err})
		}
		return
	}
	s.seqsCommitted(seqs)
	c := &s.commit
	c.commits.Add(1)
	c.calls.Add(int64(len(ready)))
	for n := int64(len(ready)); ; {
		old := c.largest.Load()
		if n <= old || c.largest.CompareAndSwap(old, n) {
			break
		}
	}
	for _, u := range ready {
		answer(u, result{})
	}
}

// runOne runs u's fn on t, turning a panic into a result.
func runOne(u *update, t *tx) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = result{panicked: p}
		}
	}()
	return result{err: u.fn(t)}
}

// writerConnector opens the writer's connections with a rollback hook,
// which SQLite calls for every rollback of the transaction, the automatic
// ones included: how runBatch learns that a statement error ended the
// whole transaction rather than just the statement (SQLite decides which,
// and says so only through sqlite3_get_autocommit or this hook). Every
// new connection gets it, should database/sql replace the writer's.
type writerConnector struct {
	driver.Connector
	onRollback func()
}

func (c writerConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	h, ok := dc.(sqlite.HookRegisterer)
	if !ok {
		dc.Close()
		return nil, errors.New("store: the sqlite driver's connection has no rollback hook")
	}
	h.RegisterRollbackHook(c.onRollback)
	return dc, nil
}
