package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/sqlite"
	"github.com/spacepanda/spacepanda/store/storetest"
)

// openAt opens (or reopens) the store in dir.
func openAt(tb testing.TB, dir string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "store.db"), sqlite.Options{KeyFile: filepath.Join(dir, "store.key")})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func pskID(i int) []byte { return fmt.Appendf(nil, "psk-%04d", i) }

func putPSK(i int) func(store.Tx) error {
	return func(t store.Tx) error { return t.PutExternalPSK(ctx, pskID(i), []byte("secret")) }
}

// hasPSK reports whether psk i is committed (read outside a transaction).
func hasPSK(tb testing.TB, s store.Reader, i int) bool {
	tb.Helper()
	_, err := s.ExternalPSK(ctx, pskID(i))
	if errors.Is(err, store.ErrPSKNotFound) {
		return false
	}
	if err != nil {
		tb.Fatal(err)
	}
	return true
}

// holdWriter starts an Update whose fn blocks until release is called, so
// that the Updates started meanwhile queue behind it and run as one batch.
func holdWriter(tb testing.TB, s *sqlite.Store) (release func()) {
	tb.Helper()
	in, out := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.Update(ctx, func(store.Tx) error {
			close(in)
			<-out
			return nil
		})
	}()
	<-in
	return func() {
		close(out)
		if err := <-errc; err != nil {
			tb.Error("holding update:", err)
		}
	}
}

// queue starts fns in order, each an Update of its own goroutine, and
// waits until each has queued, so that the batch runs them in that order;
// the results come back on the returned channels, by index.
type outcome struct {
	err      error
	panicked any
	returned bool // false: the goroutine exited (runtime.Goexit)
}

func queue(tb testing.TB, s *sqlite.Store, ctxs []context.Context, fns []func(store.Tx) error) []chan outcome {
	tb.Helper()
	outs := make([]chan outcome, len(fns))
	base := sqlite.Queued(s)
	for i, fn := range fns {
		outs[i] = make(chan outcome, 1)
		c := ctx
		if ctxs != nil && ctxs[i] != nil {
			c = ctxs[i]
		}
		go func() {
			var o outcome
			defer func() {
				o.panicked = recover()
				outs[i] <- o
			}()
			o.err = s.Update(c, fn)
			o.returned = true
		}()
		waitFor(tb, func() bool { return sqlite.Queued(s) == base+i+1 })
	}
	return outs
}

func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			tb.Fatal("timed out")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestGroupCommitConcurrent: concurrent Updates share transactions, and
// every one that returned nil is on disk after Close and reopen.
func TestGroupCommitConcurrent(t *testing.T) {
	for _, n := range []int{16, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			s := openAt(t, dir)
			const per = 8
			var wg sync.WaitGroup
			errs := make([]error, n*per)
			for g := range n {
				wg.Go(func() {
					for k := range per {
						i := g*per + k
						errs[i] = s.Update(ctx, putPSK(i))
					}
				})
			}
			wg.Wait()
			commits, calls, largest := sqlite.CommitStats(s)
			t.Logf("%d updates: %d commits, %d calls, largest batch %d", n*per, commits, calls, largest)
			if calls != int64(n*per) {
				t.Errorf("calls committed = %d, want %d", calls, n*per)
			}
			if commits >= calls || largest < 2 {
				t.Errorf("no batching: %d commits for %d calls, largest %d", commits, calls, largest)
			}
			if largest > 32 {
				t.Errorf("largest batch %d > maxBatch", largest)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openAt(t, dir)
			defer s.Close()
			for i, err := range errs {
				if err != nil {
					t.Errorf("update %d: %v", i, err)
				}
				if !hasPSK(t, s, i) {
					t.Errorf("psk %d missing after reopen", i)
				}
			}
		})
	}
}

var errMine = errors.New("mine")

// TestGroupCommitPartial: in one batch, the calls that fail (an error, a
// panic, a context cancelled before or during their turn) leave nothing,
// get their own outcome, and the others commit.
func TestGroupCommitPartial(t *testing.T) {
	type call struct {
		fn      func(ctx context.Context, cancel func()) func(store.Tx) error
		ctx     bool // the call gets a context of its own (cancel cancels it)
		cancel  bool // cancelled while queued
		wantErr error
		panic   any
	}
	write := func(i int) func(context.Context, func()) func(store.Tx) error {
		return func(context.Context, func()) func(store.Tx) error { return putPSK(i) }
	}
	failAfterWrite := func(i int) func(context.Context, func()) func(store.Tx) error {
		return func(context.Context, func()) func(store.Tx) error {
			return func(t store.Tx) error {
				if err := putPSK(i)(t); err != nil {
					return err
				}
				return fmt.Errorf("fn: %w", errMine)
			}
		}
	}
	panicAfterWrite := func(i int) func(context.Context, func()) func(store.Tx) error {
		return func(context.Context, func()) func(store.Tx) error {
			return func(t store.Tx) error {
				if err := putPSK(i)(t); err != nil {
					return err
				}
				panic("boom")
			}
		}
	}
	// cancelMidFn writes, has its context cancelled, and returns nil:
	// Update must fail it and keep none of its writes.
	cancelMidFn := func(i int) func(context.Context, func()) func(store.Tx) error {
		return func(c context.Context, cancel func()) func(store.Tx) error {
			return func(t store.Tx) error {
				if err := t.PutExternalPSK(c, pskID(i), []byte("x")); err != nil {
					return err
				}
				cancel()
				if err := t.PutExternalPSK(c, pskID(i+1000), []byte("x")); !errors.Is(err, context.Canceled) {
					return fmt.Errorf("write after cancel: %v", err)
				}
				return nil
			}
		}
	}
	tests := []struct {
		name  string
		calls []call
	}{
		{"error first", []call{{fn: failAfterWrite(0), wantErr: errMine}, {fn: write(1)}, {fn: write(2)}}},
		{"error middle", []call{{fn: write(0)}, {fn: failAfterWrite(1), wantErr: errMine}, {fn: write(2)}}},
		{"error last", []call{{fn: write(0)}, {fn: write(1)}, {fn: failAfterWrite(2), wantErr: errMine}}},
		{"all fail", []call{{fn: failAfterWrite(0), wantErr: errMine}, {fn: failAfterWrite(1), wantErr: errMine}}},
		{"panic leader", []call{{fn: panicAfterWrite(0), panic: "boom"}, {fn: write(1)}, {fn: write(2)}}},
		{"panic follower", []call{{fn: write(0)}, {fn: panicAfterWrite(1), panic: "boom"}, {fn: write(2)}}},
		{"cancelled while queued", []call{{fn: write(0)}, {fn: write(1), ctx: true, cancel: true, wantErr: context.Canceled}, {fn: write(2)}}},
		{"cancelled leader", []call{{fn: write(0), ctx: true, cancel: true, wantErr: context.Canceled}, {fn: write(1)}}},
		{"cancelled mid fn", []call{{fn: write(0)}, {fn: cancelMidFn(1), ctx: true, wantErr: context.Canceled}, {fn: write(2)}}},
		{"mixed", []call{
			{fn: panicAfterWrite(0), panic: "boom"},
			{fn: failAfterWrite(1), wantErr: errMine},
			{fn: write(2)},
			{fn: cancelMidFn(3), ctx: true, wantErr: context.Canceled},
			{fn: write(4), ctx: true, cancel: true, wantErr: context.Canceled},
			{fn: write(5)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openAt(t, dir)
			defer func() { s.Close() }()
			c0, _, _ := sqlite.CommitStats(s)
			release := holdWriter(t, s)
			ctxs := make([]context.Context, len(tt.calls))
			cancels := make([]func(), len(tt.calls))
			fns := make([]func(store.Tx) error, len(tt.calls))
			for i, c := range tt.calls {
				ctxs[i], cancels[i] = ctx, func() {}
				if c.ctx {
					ctxs[i], cancels[i] = context.WithCancel(ctx)
				}
				fns[i] = c.fn(ctxs[i], cancels[i])
			}
			outs := queue(t, s, ctxs, fns)
			for i, c := range tt.calls {
				if c.cancel {
					cancels[i]()
				}
			}
			release()
			for i, c := range tt.calls {
				o := <-outs[i]
				if o.panicked != c.panic {
					t.Errorf("call %d: panic %v, want %v", i, o.panicked, c.panic)
				}
				if c.wantErr == nil && o.err != nil {
					t.Errorf("call %d: %v", i, o.err)
				}
				if c.wantErr != nil && !errors.Is(o.err, c.wantErr) {
					t.Errorf("call %d: error %v, want %v", i, o.err, c.wantErr)
				}
				ok := c.wantErr == nil && c.panic == nil
				if got := hasPSK(t, s, i); got != ok {
					t.Errorf("call %d: written = %v, want %v", i, got, ok)
				}
				if hasPSK(t, s, i+1000) {
					t.Errorf("call %d: write after cancel committed", i)
				}
			}
			// One transaction for the holder, at most one for the batch.
			if c1, _, _ := sqlite.CommitStats(s); c1-c0 > 2 {
				t.Errorf("%d commits, want at most 2 (not batched)", c1-c0)
			}
			// The store goes on working, and what committed is durable.
			if err := s.Update(ctx, putPSK(99)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openAt(t, dir)
			for i, c := range tt.calls {
				if got, ok := hasPSK(t, s, i), c.wantErr == nil && c.panic == nil; got != ok {
					t.Errorf("after reopen: call %d written = %v, want %v", i, got, ok)
				}
			}
			if !hasPSK(t, s, 99) {
				t.Error("after reopen: update after the batch missing")
			}
		})
	}
}

// TestGroupCommitTxRolledBack: a statement error that makes SQLite roll
// back the whole transaction (here a TEMP trigger's RAISE(ROLLBACK) on
// the writer connection; SQLITE_FULL and SQLITE_IOERR may do the same)
// takes the writes of the calls before it with it: every call of the
// batch must fail and none of its writes be committed, even a call that
// ignores the error and writes on (its statements must not run in
// autocommit mode), and the store must work afterwards.
func TestGroupCommitTxRolledBack(t *testing.T) {
	big := bytes.Repeat([]byte{1}, 20000)
	breakTx := func(i int, ignore bool) func(store.Tx) error {
		return func(t store.Tx) error {
			err := t.PutExternalPSK(ctx, pskID(i), big)
			if err == nil {
				return errors.New("trigger did not fire")
			}
			if !ignore {
				return err
			}
			t.PutExternalPSK(ctx, pskID(i+1000), []byte("after"))
			return nil
		}
	}
	tests := []struct {
		name string
		fns  []func(store.Tx) error
	}{
		{"alone", []func(store.Tx) error{breakTx(0, false)}},
		{"alone, ignored", []func(store.Tx) error{breakTx(0, true)}},
		{"first", []func(store.Tx) error{breakTx(0, false), putPSK(1), putPSK(2)}},
		{"middle", []func(store.Tx) error{putPSK(0), breakTx(1, false), putPSK(2)}},
		{"last", []func(store.Tx) error{putPSK(0), putPSK(1), breakTx(2, false)}},
		{"middle, ignored", []func(store.Tx) error{putPSK(0), breakTx(1, true), putPSK(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openAt(t, dir)
			defer func() { s.Close() }()
			if err := sqlite.ExecWriter(s, `CREATE TEMP TRIGGER big_psk BEFORE INSERT ON main.external_psks
				WHEN length(NEW.secret) > 10000 BEGIN SELECT RAISE(ROLLBACK, 'too big'); END`); err != nil {
				t.Fatal(err)
			}
			release := holdWriter(t, s)
			outs := queue(t, s, nil, tt.fns)
			release()
			for i := range tt.fns {
				o := <-outs[i]
				if o.err == nil || o.panicked != nil {
					t.Errorf("call %d: err %v, panic %v; want an error", i, o.err, o.panicked)
				}
				if hasPSK(t, s, i) || hasPSK(t, s, i+1000) {
					t.Errorf("call %d: committed", i)
				}
			}
			if err := s.Update(ctx, putPSK(99)); err != nil {
				t.Fatal("after:", err)
			}
			s.Close()
			s = openAt(t, dir)
			for i := range tt.fns {
				if hasPSK(t, s, i) || hasPSK(t, s, i+1000) {
					t.Errorf("after reopen: call %d committed", i)
				}
			}
			if !hasPSK(t, s, 99) {
				t.Error("after reopen: update after the batch missing")
			}
		})
	}
}

// TestGroupCommitFull: an insert that needs a page beyond max_page_count
// fails with SQLITE_FULL. SQLite may undo just that statement or the
// whole transaction; either way the call fails, and no call of the batch
// may be both reported committed and missing, or reported failed and
// present.
func TestGroupCommitFull(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	defer func() { s.Close() }()
	// Fill the free space, then cap the file at its size.
	if err := s.Update(ctx, putPSK(500)); err != nil {
		t.Fatal(err)
	}
	pages, err := sqlite.WriterInt(s, `PRAGMA page_count`)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlite.ExecWriter(s, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{1}, 64<<10)
	release := holdWriter(t, s)
	fns := []func(store.Tx) error{
		putPSK(0),
		func(t store.Tx) error { return t.PutExternalPSK(ctx, pskID(1), big) },
		putPSK(2),
	}
	outs := queue(t, s, nil, fns)
	release()
	var errs []error
	for i := range fns {
		o := <-outs[i]
		errs = append(errs, o.err)
		t.Logf("call %d: %v", i, o.err)
		if got := hasPSK(t, s, i); got != (o.err == nil) {
			t.Errorf("call %d: err %v but written = %v", i, o.err, got)
		}
	}
	// SQLite (modernc.org/sqlite v1.62) answers this SQLITE_FULL by
	// rolling back the whole transaction, so no call of the batch may
	// succeed. Were it to undo only the statement, calls 0 and 2
	// committing would be right too, and this would need relaxing.
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d succeeded in a batch whose transaction SQLite rolled back", i)
		}
	}
	if err := sqlite.ExecWriter(s, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, putPSK(99)); err != nil {
		t.Fatal("after:", err)
	}
	s.Close()
	s = openAt(t, dir)
	for i := range fns {
		if got := hasPSK(t, s, i); got != (errs[i] == nil) {
			t.Errorf("after reopen: call %d: err %v but written = %v", i, errs[i], got)
		}
	}
}

// TestGroupCommitVisibility: a call sees what the calls before it in its
// batch wrote (and not what a failed one wrote), and a read outside
// transactions sees none of it before the batch commits.
func TestGroupCommitVisibility(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	defer s.Close()
	release := holdWriter(t, s)
	sawOutside := make(chan bool, 1)
	fns := []func(store.Tx) error{
		putPSK(0),
		func(t store.Tx) error {
			if err := putPSK(1)(t); err != nil {
				return err
			}
			return errMine
		},
		func(tx store.Tx) error {
			if _, err := tx.ExternalPSK(ctx, pskID(0)); err != nil {
				return fmt.Errorf("earlier member's write not visible: %w", err)
			}
			if _, err := tx.ExternalPSK(ctx, pskID(1)); !errors.Is(err, store.ErrPSKNotFound) {
				return fmt.Errorf("failed member's write: %v", err)
			}
			// psk 0 is written but not committed: the read pool must not see it.
			_, err := s.ExternalPSK(ctx, pskID(0))
			sawOutside <- err == nil
			return putPSK(2)(tx)
		},
	}
	outs := queue(t, s, nil, fns)
	release()
	for i, want := range []error{nil, errMine, nil} {
		if o := <-outs[i]; !errors.Is(o.err, want) || o.panicked != nil {
			t.Errorf("call %d: %v %v, want %v", i, o.err, o.panicked, want)
		}
	}
	if <-sawOutside {
		t.Error("a read outside transactions saw an uncommitted write")
	}
	for i, want := range []bool{true, false, true} {
		if hasPSK(t, s, i) != want {
			t.Errorf("psk %d written = %v, want %v", i, !want, want)
		}
	}
}

// TestGroupCommitCancelWhileQueued: a caller whose context ends while it
// waits behind a long transaction returns then, not when the batch runs.
func TestGroupCommitCancelWhileQueued(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	release := holdWriter(t, s)
	c, cancel := context.WithCancel(ctx)
	outs := queue(t, s, []context.Context{nil, c, nil}, []func(store.Tx) error{putPSK(0), putPSK(1), putPSK(2)})
	cancel()
	select {
	case o := <-outs[1]:
		if !errors.Is(o.err, context.Canceled) {
			t.Errorf("cancelled call: %v", o.err)
		}
	case <-time.After(5 * time.Second):
		t.Error("cancelled call still waiting for the writer")
	}
	release()
	for _, i := range []int{0, 2} {
		if o := <-outs[i]; o.err != nil || o.panicked != nil {
			t.Errorf("call %d: %v %v", i, o.err, o.panicked)
		}
	}
	for i, want := range []bool{true, false, true} {
		if hasPSK(t, s, i) != want {
			t.Errorf("psk %d written = %v, want %v", i, !want, want)
		}
	}
}

// BenchmarkUpdateParallel is durable Updates from many goroutines, each
// writing one small row: commits/s is Updates returned per second, each
// durable (synchronous=FULL) when it returns. It uses only the public API
// so that it builds against the code before group commit too.
func BenchmarkUpdateParallel(b *testing.B) {
	s := openAt(b, b.TempDir())
	defer s.Close()
	var mu sync.Mutex
	next := 0
	b.SetParallelism(8) // 8×GOMAXPROCS writers
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			i := next
			next++
			mu.Unlock()
			if err := s.Update(ctx, func(t store.Tx) error {
				return t.PutExternalPSK(ctx, fmt.Appendf(nil, "bench-%d", i), []byte("secret"))
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}

// TestGroupCommitGoexit: a fn that calls runtime.Goexit (t.FailNow in a
// test) ends the goroutine running the batch, its leader's: the calls of
// that batch must fail, nothing of it be committed, and later Updates
// must not wait forever for a leader that is gone.
func TestGroupCommitGoexit(t *testing.T) {
	goexit := func(t store.Tx) error {
		putPSK(7)(t)
		runtime.Goexit()
		return nil
	}
	tests := []struct {
		name string
		fns  []func(store.Tx) error
		exit int // the call whose goroutine runs the batch
	}{
		{"alone", []func(store.Tx) error{goexit}, 0},
		{"leader", []func(store.Tx) error{goexit, putPSK(1)}, 0},
		{"follower", []func(store.Tx) error{putPSK(0), goexit, putPSK(2)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openAt(t, t.TempDir())
			defer s.Close()
			release := holdWriter(t, s)
			outs := queue(t, s, nil, tt.fns)
			release()
			for i := range tt.fns {
				o := <-outs[i]
				if i == tt.exit {
					if o.returned {
						t.Errorf("call %d: returned %v, want runtime.Goexit", i, o.err)
					}
					continue
				}
				if o.err == nil {
					t.Errorf("call %d: no error", i)
				}
			}
			for i := range tt.fns {
				if hasPSK(t, s, i) || hasPSK(t, s, 7) {
					t.Errorf("call %d: committed", i)
				}
			}
			done := make(chan error, 1)
			go func() { done <- s.Update(ctx, putPSK(99)) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal("after:", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Update after the batch waits forever")
			}
		})
	}
}

// TestGroupCommitDeadlines: many callers with deadlines that end at any
// point (queued, handed the lead, in fn, before the commit): none hangs,
// and each write is on disk exactly when its Update returned nil.
func TestGroupCommitDeadlines(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	const goroutines, per = 32, 40
	errs := make([]error, goroutines*per)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for k := range per {
				i := g*per + k
				c, cancel := context.WithTimeout(ctx, time.Duration(i%8)*time.Millisecond)
				errs[i] = s.Update(c, func(t store.Tx) error {
					if err := t.PutExternalPSK(c, pskID(i), []byte("x")); err != nil {
						return err
					}
					if i%5 == 0 {
						time.Sleep(100 * time.Microsecond) // let deadlines pass mid-fn
					}
					return nil
				})
				cancel()
			}
		})
	}
	wg.Wait()
	s.Close()
	s = openAt(t, dir)
	defer s.Close()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("update %d: %v", i, err)
			}
		}
		if got := hasPSK(t, s, i); got != (err == nil) {
			t.Errorf("update %d: err %v but written = %v", i, err, got)
		}
	}
	t.Logf("%d of %d updates failed with their deadline", failed, len(errs))
}

// TestGroupCommitCommitFails: a COMMIT that fails (here on a deferred
// foreign key, which a TEMP trigger on the writer violates when psk 1 is
// written) fails every call of the batch, and none of it is on disk.
func TestGroupCommitCommitFails(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			s := openAt(t, dir)
			defer func() { s.Close() }()
			for _, q := range []string{
				`CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)`,
				`CREATE TEMP TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`,
				`CREATE TEMP TRIGGER orphan AFTER INSERT ON main.external_psks
					WHEN NEW.psk_id = CAST('psk-0001' AS BLOB) BEGIN INSERT INTO child VALUES (1); END`,
			} {
				if err := sqlite.ExecWriter(s, q); err != nil {
					t.Fatal(err)
				}
			}
			release := holdWriter(t, s)
			fns := []func(store.Tx) error{putPSK(1), putPSK(0), putPSK(2)}[:n]
			outs := queue(t, s, nil, fns)
			release()
			for i := range fns {
				o := <-outs[i]
				t.Logf("call %d: %v", i, o.err)
				if o.err == nil {
					t.Errorf("call %d: no error", i)
				}
			}
			if err := s.Update(ctx, putPSK(99)); err != nil {
				t.Fatal("after:", err)
			}
			s.Close()
			s = openAt(t, dir)
			for i := range fns {
				if hasPSK(t, s, i) {
					t.Errorf("psk %d committed", i)
				}
			}
			if !hasPSK(t, s, 99) {
				t.Error("update after the batch missing")
			}
		})
	}
}

// TestGroupCommitConstraint: a constraint error undoes only its statement
// (SQLite does not roll back the transaction, and the rollback hook must
// not take it for a rollback): a call that ignores it commits, one that
// returns it fails alone.
func TestGroupCommitConstraint(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutIdentity(ctx, storetest.NewIdentity("alice")) }); err != nil {
		t.Fatal(err)
	}
	kp := storetest.NewKeyPackage("kp", time.Now().Add(time.Hour), false)
	release := holdWriter(t, s)
	fns := []func(store.Tx) error{
		putPSK(0),
		func(tx store.Tx) error {
			if err := tx.PutIdentity(ctx, storetest.NewIdentity("bob")); !errors.Is(err, store.ErrExists) {
				return fmt.Errorf("second identity: %v, want ErrExists", err)
			}
			return putPSK(1)(tx) // ignoring the error
		},
		func(tx store.Tx) error {
			if err := putPSK(2)(tx); err != nil {
				return err
			}
			return tx.PutKeyPackages(ctx, kp, kp)
		},
		putPSK(3),
	}
	outs := queue(t, s, nil, fns)
	release()
	for i, want := range []error{nil, nil, store.ErrExists, nil} {
		o := <-outs[i]
		if !errors.Is(o.err, want) || (want == nil && o.err != nil) {
			t.Errorf("call %d: %v, want %v", i, o.err, want)
		}
		if got := hasPSK(t, s, i); got != (want == nil) {
			t.Errorf("call %d: written = %v, want %v", i, got, want == nil)
		}
	}
	if _, err := s.KeyPackage(ctx, kp.Ref); !errors.Is(err, store.ErrKeyPackageNotFound) {
		t.Errorf("key package of the failed call: %v", err)
	}
}

// cancelAfter is a context that is cancelled by the n-th call of its Err:
// the caller gives up in the middle of what it asked for.
type cancelAfter struct {
	context.Context
	cancel context.CancelFunc
	n      atomic.Int32
}

func newCancelAfter(n int) *cancelAfter {
	c := &cancelAfter{}
	c.Context, c.cancel = context.WithCancel(context.Background())
	c.n.Store(int32(n))
	return c
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		c.cancel()
	}
	return c.Context.Err()
}

// A caller giving up in the middle of PutKeyPackages, at any point of it,
// gets its context's error and stores none of its key packages — or, done
// before, all of them — and the transaction it shares goes on: what was
// written before it and after it in the same Update is committed. An
// INSERT interrupted by the cancellation would have had SQLite roll the
// whole transaction back, the writes of the calls batched with it too.
func TestPutKeyPackagesCancelled(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	cancelled, done := 0, 0
	for n := 0; n < 12; n++ {
		var kps []store.KeyPackage
		for i := range 5 {
			kps = append(kps, storetest.NewKeyPackage(fmt.Sprint("kp-", n, "-", i), time.Now().Add(time.Hour), false))
		}
		cctx := newCancelAfter(n)
		var putErr error
		err := s.Update(ctx, func(tx store.Tx) error {
			if err := putPSK(2 * n)(tx); err != nil {
				return err
			}
			putErr = tx.PutKeyPackages(cctx, kps...)
			return putPSK(2*n + 1)(tx)
		})
		if err != nil {
			t.Fatalf("cancel at check %d: the Update failed: %v", n, err)
		}
		if !hasPSK(t, s, 2*n) || !hasPSK(t, s, 2*n+1) {
			t.Fatalf("cancel at check %d: the writes around PutKeyPackages are lost", n)
		}
		stored := 0
		for _, kp := range kps {
			if _, err := s.KeyPackage(ctx, kp.Ref); err == nil {
				stored++
			}
		}
		switch {
		case errors.Is(putErr, context.Canceled) && stored == 0:
			cancelled++
		case putErr == nil && stored == len(kps):
			done++
		default:
			t.Fatalf("cancel at check %d: PutKeyPackages returned %v with %d of %d stored", n, putErr, stored, len(kps))
		}
	}
	if cancelled < 5 || done == 0 {
		t.Fatalf("%d rounds cancelled, %d done: the cancellation did not land inside the call", cancelled, done)
	}
}
