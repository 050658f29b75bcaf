package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit. Concurrent appends are collected by a batcher goroutine
// and written in one transaction, so that they share one commit and one
// fsync (SQLite: walsync.go; PostgreSQL: its commit flush). A request is
// answered only after the transaction holding it is durable: the
// durability of an answered post is that of a single-post transaction.
//
// Ordering is unchanged: inside the batch transaction each group's row is
// locked (SELECT ... FOR UPDATE on PostgreSQL) before its first entry and
// held to the commit, so the one-commit-per-epoch decision is still taken
// in the database and holds across relay processes (on PostgreSQL a batch
// of application messages and proposals locks all its groups in one
// statement, in the same order, and writes them in one: pg_append.go).
// Entries are applied in group id order (stable: a group's entries keep
// their arrival order), so every batch of every process takes its row
// locks in the same order and two batches cannot deadlock. A refused entry (commit conflict, future
// epoch, not a member) is refused before it writes anything, or inside a
// savepoint rolled back on refusal; it fails only itself. A database
// failure inside a batch makes the batcher retry each entry of the batch
// alone, so one entry's failure never fails the others.

// When a batch closes. The entries already queued behind the first are
// always taken, without waiting: under load they piled up while the lane
// wrote the previous batch, and that alone makes batches. The batch then
// stays open for more, until it holds batchMax entries or batchWindow has
// passed, only when there is evidence of concurrency: the queue held more
// than the first entry, other entries of the lane are still unanswered
// (SQLite: a previous batch waits for its fsync), or the previous batch of
// the lane held more than one. A lone request is written at once: at low
// load a window is pure latency, and more than the window itself, since
// the timer of an idle process fires late (with the netpoller, often by a
// millisecond). The cost is one window for the first request after a
// burst (its previous batch held several). Under load the window still
// gathers the posters that are about to send: without it a saturated CPU
// can let posts arrive one by one between transactions, batches of one
// keep the window shut and the CPU goes to per-transaction work (with the
// previous batch as the only evidence, 64 closed-loop posters were slower
// than with the fixed window in 6 of 7 same-window runs, often by a tenth;
// the unanswered entries keep the window open for them).
const (
	batchMax    = 256
	batchWindow = 300 * time.Microsecond
)

type appendReq struct {
	ctx  context.Context
	m    Message
	hook func(tx *sql.Tx, seq int64) error // appendWith's; never batched
	done chan appendRes                    // buffered (1)
}

type appendRes struct {
	seq int64
	cur uint64
	err error
}

// batcher runs the appends of one sqlStore through n lanes; a group
// always goes to the same lane, which keeps its entries in arrival order.
type batcher struct {
	s     *sqlStore
	lanes []*lane
	quit  chan struct{}
	wg    sync.WaitGroup
	// mu: submitters hold it shared while they queue, close exclusively,
	// so nothing is queued after the lanes stop.
	mu     sync.RWMutex
	closed bool
	max    int
	win    time.Duration
	// batches counts the batches written (tests: that batches form).
	batches atomic.Int64
}

func newBatcher(s *sqlStore, lanes int) *batcher {
	b := &batcher{s: s, quit: make(chan struct{}), max: batchMax, win: batchWindow}
	for range lanes {
		l := &lane{ch: make(chan appendReq, batchMax)}
		b.lanes = append(b.lanes, l)
		b.wg.Go(func() { b.run(l) })
	}
	return b
}

// lane is one of a batcher's queues, with its goroutine.
type lane struct {
	ch chan appendReq
	// inflight counts the entries submitted to the lane and not yet
	// answered: evidence of concurrency for its batches (see batchWindow).
	inflight atomic.Int64
}

func (b *batcher) lane(gid []byte) *lane {
	h := fnv.New32a()
	h.Write(gid)
	return b.lanes[int(h.Sum32()%uint32(len(b.lanes)))]
}

// errClosed answers appends submitted after Close.
var errClosed = errors.New("relay: store closed")

func (b *batcher) submit(ctx context.Context, m Message) (int64, uint64, error) {
	l := b.lane(m.GroupID)
	req := appendReq{ctx: ctx, m: m, done: make(chan appendRes, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return 0, 0, errClosed
	}
	l.inflight.Add(1)
	defer l.inflight.Add(-1)
	select {
	case l.ch <- req:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return 0, 0, ctx.Err()
	}
	// Once queued the entry is written or refused whatever the caller's
	// context does; the answer is waited for so that a success is never
	// reported as a failure.
	r := <-req.done
	return r.seq, r.cur, r.err
}

// submitAll is submit for entries of one group, queued in order (an
// entry whose Kind is empty is skipped: its result stays zero).
func (b *batcher) submitAll(ctx context.Context, ms []Message) []appendRes {
	out := make([]appendRes, len(ms))
	if len(ms) == 0 {
		return out
	}
	l := b.lane(ms[0].GroupID)
	reqs := make([]*appendReq, len(ms))
	var stop error // once one is not queued, neither are those after it (order)
	b.mu.RLock()
	for i, m := range ms {
		switch {
		case m.Kind == "":
			continue
		case stop != nil:
		case b.closed:
			stop = errClosed
		case ctx.Err() != nil:
			stop = ctx.Err()
		}
		if stop != nil {
			out[i].err = stop
			continue
		}
		r := &appendReq{ctx: ctx, m: m, done: make(chan appendRes, 1)}
		l.inflight.Add(1)
		select {
		case l.ch <- *r:
			reqs[i] = r
		case <-ctx.Done():
			l.inflight.Add(-1)
			stop = ctx.Err()
			out[i].err = stop
		}
	}
	b.mu.RUnlock()
	// Every queued entry is answered (see submit).
	for i, r := range reqs {
		if r != nil {
			out[i] = <-r.done
			l.inflight.Add(-1)
		}
	}
	return out
}

func (b *batcher) close() {
	b.mu.Lock()
	was := b.closed
	b.closed = true
	b.mu.Unlock()
	if was {
		return
	}
	close(b.quit)
	b.wg.Wait()
}

// run collects batches from ch until quit, answering every queued request
// (after quit: with errClosed).
func (b *batcher) run(l *lane) {
	ch := l.ch
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	window := func() <-chan time.Time {
		timer.Reset(b.win)
		return timer.C
	}
	batch := make([]appendReq, 0, b.max)
	prev := 0 // entries in the previous batch
	for {
		batch = batch[:0]
		select {
		case r := <-ch:
			batch = append(batch, r)
		case <-b.quit:
			for {
				select {
				case r := <-ch:
					r.done <- appendRes{err: errClosed}
				default:
					return
				}
			}
		}
		batch = b.collect(ch, batch, prev, func() int { return int(l.inflight.Load()) }, window)
		timer.Stop() // since Go 1.23 no stale tick is received after Stop
		prev = len(batch)
		b.batches.Add(1)
		b.s.appendBatch(batch)
	}
}

// collect completes batch, which holds the first entry: it takes what is
// queued on ch without blocking, then, if stayOpen says so, waits for
// more until the batch is full, the channel returned by window fires, or
// quit. inflight returns the entries of the lane submitted and not yet
// answered. window is called at most once, only when the batch stays open
// (parameters so that tests see the decision without a clock).
func (b *batcher) collect(ch <-chan appendReq, batch []appendReq, prev int, inflight func() int, window func() <-chan time.Time) []appendReq {
drain:
	for len(batch) < b.max {
		select {
		case r := <-ch:
			batch = append(batch, r)
		default:
			break drain
		}
	}
	if !stayOpen(len(batch), prev, inflight()-len(batch), b.max) {
		return batch
	}
	w := window()
	for len(batch) < b.max {
		select {
		case r := <-ch:
			batch = append(batch, r)
		case <-w:
			return batch
		case <-b.quit:
			return batch
		}
	}
	return batch
}

// stayOpen reports whether a batch holding n entries once the queue is
// drained, after a previous batch of prev entries, with others entries of
// the lane unanswered besides its own, waits for more: only when it is not
// full and there is evidence of concurrency (see batchWindow).
func stayOpen(n, prev, others, limit int) bool {
	return n < limit && (n > 1 || prev > 1 || others > 0)
}

// appendBatch writes batch in one transaction and answers each entry
// once it is durable; on a database failure it writes each entry alone.
func (s *sqlStore) appendBatch(batch []appendReq) {
	live := make([]appendReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- appendRes{err: err} // the caller left before its turn
			continue
		}
		live = append(live, r)
	}
	slices.SortStableFunc(live, func(a, b appendReq) int { return bytesCompare(a.m.GroupID, b.m.GroupID) })
	res, groups, err := s.appendTx(context.Background(), live)
	if err != nil && len(live) > 1 {
		res = make([]appendRes, len(live))
		groups = nil
		for i, r := range live {
			one, g, err := s.appendTx(context.Background(), []appendReq{r})
			if err != nil {
				res[i] = appendRes{err: err}
				continue
			}
			res[i] = one[0]
			groups = append(groups, g...)
		}
		err = nil
	}
	answer := func(ferr error) {
		s.settle(groups)
		if err == nil && ferr == nil {
			s.tail.appended(live, res, groups, time.Now())
		}
		for i, r := range live {
			switch {
			case err != nil:
				r.done <- appendRes{err: err}
			case ferr != nil && res[i].err == nil:
				r.done <- appendRes{err: fmt.Errorf("relay: %s: fsync: %w", s.d.name, ferr)}
			default:
				r.done <- res[i]
			}
		}
	}
	if s.flush == nil || err != nil {
		answer(nil)
		return
	}
	s.flush.after(answer)
}

func bytesCompare(a, b []byte) int {
	return slices.Compare(a, b)
}
