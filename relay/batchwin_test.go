package relay

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
)

// TestStayOpen: a batch waits for more entries only when it is not full
// and there is evidence of concurrency.
func TestStayOpen(t *testing.T) {
	cases := []struct {
		name            string
		n, prev, others int
		limit           int
		wantStaying     bool
	}{
		{"first ever, alone", 1, 0, 0, 8, false},
		{"alone after a lone one", 1, 1, 0, 8, false},
		{"alone after a batch", 1, 2, 0, 8, true},
		{"alone, a batch awaits its flush", 1, 1, 1, 8, true},
		{"queue held more", 2, 1, 0, 8, true},
		{"queue held more, first ever", 3, 0, 0, 8, true},
		{"full", 8, 8, 0, 8, false},
		{"full after a lone one", 8, 1, 5, 8, false},
		{"limit of one", 1, 5, 5, 1, false},
	}
	for _, c := range cases {
		if got := stayOpen(c.n, c.prev, c.others, c.limit); got != c.wantStaying {
			t.Errorf("%s: stayOpen(%d, %d, %d, %d) = %v", c.name, c.n, c.prev, c.others, c.limit, got)
		}
	}
}

// TestCollect drives the batcher's collection without a clock: the
// window is a function the test answers, and a call of it is the
// decision to wait. A lone request is never held for the window; a
// queue is taken whole; entries that come during the window join.
func TestCollect(t *testing.T) {
	req := func(i int) appendReq { return appendReq{m: Message{Seq: int64(i)}} }
	fired := make(chan time.Time)
	close(fired) // the window is over as soon as it is asked for
	cases := []struct {
		name     string
		queued   int // behind the first entry, before collect
		prev     int
		others   int // entries of the lane unanswered besides the batch
		duringW  int // sent into the queue when the window is asked for
		max      int
		wantWait bool
		wantLen  int
	}{
		{"lone, first batch", 0, 0, 0, 0, 8, false, 1},
		{"lone after a lone batch", 0, 1, 0, 0, 8, false, 1},
		{"lone after a batch of several", 0, 4, 0, 0, 8, true, 1},
		{"lone while others are unanswered", 0, 1, 3, 0, 8, true, 1},
		{"queue taken whole", 3, 1, 0, 0, 8, true, 4},
		{"queue fills the batch", 7, 1, 0, 0, 8, false, 8},
		{"more than a batch queued", 9, 0, 0, 0, 8, false, 8},
		{"entries during the window join", 2, 0, 0, 5, 8, true, 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &batcher{quit: make(chan struct{}), max: c.max}
			ch := make(chan appendReq, c.queued+c.duringW)
			for i := range c.queued {
				ch <- req(i + 1)
			}
			waited := 0
			window := func() <-chan time.Time {
				waited++
				for i := range c.duringW {
					ch <- req(c.queued + 1 + i)
				}
				if c.duringW > 0 {
					// Never fires: the batch closes by filling up, so
					// the outcome does not depend on select's choice.
					return nil
				}
				return fired
			}
			// In flight: the first entry, the queue and the others.
			inflight := func() int { return 1 + c.queued + c.others }
			batch := b.collect(ch, []appendReq{req(0)}, c.prev, inflight, window)
			if (waited > 0) != c.wantWait || waited > 1 {
				t.Errorf("window asked for %d times, want wait %v", waited, c.wantWait)
			}
			if len(batch) != c.wantLen {
				t.Fatalf("batch of %d, want %d", len(batch), c.wantLen)
			}
			for i, r := range batch {
				if r.m.Seq != int64(i) {
					t.Fatalf("entry %d is request %d: arrival order lost", i, r.m.Seq)
				}
			}
		})
	}
}

// TestCollectQuit: a batch waiting for the window closes at quit.
func TestCollectQuit(t *testing.T) {
	b := &batcher{quit: make(chan struct{}), max: 8}
	close(b.quit)
	batch := b.collect(make(chan appendReq), []appendReq{{}}, 2, func() int { return 1 }, func() <-chan time.Time { return nil })
	if len(batch) != 1 {
		t.Fatalf("batch of %d", len(batch))
	}
}

// TestBatchesForm: many concurrent appends share transactions (fewer
// batches than entries), and each group's log keeps the order in which
// its poster queued its entries, through the real lanes of each backend.
func TestBatchesForm(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		s := sqlOf(t, st)
		now := time.Now()
		const groups, posters, rounds = 4, 32, 4
		const perGroup = 24 // entries queued at once by a group's AppendAll
		// "g" groups get one AppendAll each, whose order is checked; "o"
		// groups get the posters of one entry at a time.
		for g := range groups {
			for _, name := range []string{"g", "o"} {
				if err := st.CreateGroup(ctx, []byte(fmt.Sprint(name, g)), "alice", 0, now); err != nil {
					t.Fatal(err)
				}
			}
		}
		msg := func(gid []byte) Message {
			return Message{GroupID: gid, Kind: "application", Sender: "alice", SenderDevice: "d",
				Data: privMsg(t, gid, 0, mls.ContentTypeApplication), ReceivedAt: now}
		}
		before := s.batch.batches.Load()
		var wg sync.WaitGroup
		errs := make(chan error, posters*rounds+groups*perGroup)
		for p := range posters {
			gid := []byte(fmt.Sprint("o", p%groups))
			wg.Go(func() {
				for range rounds {
					if _, _, err := st.Append(ctx, msg(gid)); err != nil {
						errs <- err
					}
				}
			})
		}
		// One AppendAll per checked group, concurrently with the posters.
		sent := make([][]Message, groups)
		for g := range groups {
			gid := []byte(fmt.Sprint("g", g))
			for range perGroup {
				sent[g] = append(sent[g], msg(gid))
			}
			wg.Go(func() {
				for _, r := range st.AppendAll(ctx, sent[g]) {
					if r.Err != nil {
						errs <- r.Err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		entries := int64(posters*rounds + groups*perGroup)
		if n := s.batch.batches.Load() - before; n >= entries {
			t.Errorf("%d batches for %d entries: no batch formed", n, entries)
		} else {
			t.Logf("%d batches for %d entries", n, entries)
		}
		for g := range groups {
			gid := []byte(fmt.Sprint("g", g))
			ms, err := st.Messages(ctx, gid, "alice", 0, 1000, 1<<24)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != perGroup {
				t.Fatalf("%s: %d entries, want %d", gid, len(ms), perGroup)
			}
			for i, m := range ms {
				if m.Seq != int64(i+1) || !bytes.Equal(m.Data, sent[g][i].Data) {
					t.Fatalf("%s: entry %d (seq %d) is not the one queued %d", gid, i, m.Seq, i)
				}
			}
		}
	})
}
