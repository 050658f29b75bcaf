package sqlite

import (
	"context"
	"fmt"
	"sync"
	"time"

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
// without running.

// maxBatch bounds the calls of one transaction, which bounds how long the
// first of them waits for the commit.
const maxBatch = 32

type update struct {
	ctx  context.Context
	fn   func(store.Tx) error
	lead chan struct{} // closed: this call leads the next batch
	done chan result   // buffered (1)
}

type result struct {
	err      error
	panicked any // fn's panic, raised again on the caller's goroutine
}

type committer struct {
	mu      sync.Mutex
	queue   []*update
	leading bool // a batch is being run; the next leader is queue[0]
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
		}
	}
	c.mu.Lock()
	n := min(len(c.queue), maxBatch)
	batch := append([]*update(nil), c.queue[:n]...)
	c.queue = c.queue[n:]
	c.mu.Unlock()
	s.runBatch(batch)
	c.mu.Lock()
	if len(c.queue) > 0 {
		close(c.queue[0].lead) // still leading: the next batch is theirs
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	return (<-u.done).raise()
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
	answer := func(u *update, r result) { u.done <- r }
	defer func() {
		for _, t := range ts {
			if t.wroteChannels {
				s.chans.endWrite() // committed or not: the next read asks the database
			}
		}
		s.ws.prepareNew(context.Background()) // the connection is free again
	}()
	sqlTx, err := s.w.BeginTx(context.Background(), nil)
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
	var broken error // the transaction is gone (SQLite rolled it back)
	for _, u := range batch {
		if broken != nil {
			answer(u, result{err: broken})
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
		t := &tx{tx: sqlTx, q: txStmts{tx: sqlTx, w: s.ws}, chans: &s.chans, now: time.Now}
		t.reader = reader{q: t.q, box: s.box, check: t.checkCtx}
		ts = append(ts, t)
		r := runOne(u, t)
		t.done.Store(true)
		if r.err == nil && r.panicked == nil {
			r.err = u.ctx.Err()
		}
		failed := r.err != nil || r.panicked != nil
		switch {
		case !savepoints && failed:
			sqlTx.Rollback()
			answer(u, r)
			return
		case !savepoints:
			ready = append(ready, u)
		case failed:
			if _, err := sqlTx.Exec(`ROLLBACK TO u`); err != nil {
				broken = fmt.Errorf("store: rollback to savepoint: %w", err)
			} else if _, err := sqlTx.Exec(`RELEASE u`); err != nil {
				broken = fmt.Errorf("store: rollback to savepoint: %w", err)
			}
			answer(u, r)
		default:
			if _, err := sqlTx.Exec(`RELEASE u`); err != nil {
				broken = fmt.Errorf("store: release savepoint: %w", err)
				answer(u, result{err: broken})
				continue
			}
			ready = append(ready, u)
		}
	}
	if broken != nil {
		// A statement failed in a way that ended the transaction: what
		// the calls before wrote is gone with it.
		sqlTx.Rollback()
		for _, u := range ready {
			answer(u, result{err: broken})
		}
		return
	}
	if len(ready) == 0 {
		sqlTx.Rollback()
		return
	}
	if err := sqlTx.Commit(); err != nil {
		err = fmt.Errorf("store: commit: %w", err)
		for _, u := range ready {
			answer(u, result{err: err})
		}
		return
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
