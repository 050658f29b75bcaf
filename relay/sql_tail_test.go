package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// feedTail records a committed batch of n entries of size bytes each,
// seqs first+1..first+n, for group g at epoch epoch (commit: the batch
// moved the group to the next epoch).
func feedTail(c *tailCache, g string, epoch, first int64, n, size int, commit bool, now time.Time) {
	var live []appendReq
	var res []appendRes
	for i := range n {
		live = append(live, appendReq{m: Message{GroupID: []byte(g), Kind: "application", Sender: "alice", Data: make([]byte, size), ReceivedAt: now}})
		res = append(res, appendRes{seq: first + int64(i) + 1})
	}
	gt := &groupTx{id: []byte(g), epoch: epoch, lockedEpoch: epoch, first: first, last: first + int64(n)}
	if commit {
		gt.epoch++
	}
	c.appended(live, res, []*groupTx{gt}, now)
}

func seqsOf(ms []Message) []int64 {
	var out []int64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

func seqRange(lo, hi int64) []int64 {
	var out []int64
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}

// TestTailPage: the cache answers a page only when it starts inside the
// group's run of entries and inside the reader's window at the run's
// epoch, cut as the store cuts it; anything else is left to the store.
func TestTailPage(t *testing.T) {
	t0 := time.Now()
	open := Access{FromSeq: 1}
	cases := []struct {
		name     string
		feed     func(c *tailCache)
		after    int64
		hi       int64
		limit    int
		maxBytes int
		window   Access
		epoch    int64 // the epoch the window is known at
		now      time.Duration
		want     []int64 // nil: not answered
	}{
		{name: "from the run's start", after: 10, want: seqRange(11, 20)},
		{name: "inside the run", after: 15, want: seqRange(16, 20)},
		{name: "before the run", after: 9},
		{name: "at the run's end", after: 20},
		{name: "limit", after: 10, limit: 3, want: seqRange(11, 13)},
		{name: "bytes", after: 10, maxBytes: 25, want: seqRange(11, 12)},
		{name: "first entry alone when larger", after: 10, maxBytes: 5, want: []int64{11}},
		{name: "not past hi", after: 10, hi: 14, want: seqRange(11, 14)},
		{name: "hi before the page", after: 10, hi: 10},
		{name: "window starts later", after: 10, window: Access{FromSeq: 13}},
		{name: "window started", after: 12, window: Access{FromSeq: 13}, want: seqRange(13, 20)},
		{name: "window ends inside", after: 10, window: Access{FromSeq: 1, Removed: true, ToSeq: 15}, want: seqRange(11, 15)},
		{name: "window ended", after: 15, window: Access{FromSeq: 1, Removed: true, ToSeq: 15}},
		{name: "window of another epoch", after: 10, epoch: 4},
		{name: "expired", after: 10, now: tailMaxAge + time.Second},
		{name: "gap starts again", feed: func(c *tailCache) { feedTail(c, "g", 3, 21, 4, 10, false, t0) }, after: 20},
		{name: "after a gap", feed: func(c *tailCache) { feedTail(c, "g", 3, 21, 4, 10, false, t0) }, after: 21, want: seqRange(22, 25)},
		{name: "run goes on", feed: func(c *tailCache) { feedTail(c, "g", 3, 20, 5, 10, false, t0) }, after: 15, want: seqRange(16, 25)},
		{name: "a commit empties it", feed: func(c *tailCache) { feedTail(c, "g", 3, 20, 1, 10, true, t0) }, after: 10},
		{name: "a new epoch starts again", feed: func(c *tailCache) { feedTail(c, "g", 4, 20, 5, 10, false, t0) }, after: 20, epoch: 4, want: seqRange(21, 25)},
		{name: "old epoch gone", feed: func(c *tailCache) { feedTail(c, "g", 4, 20, 5, 10, false, t0) }, after: 15, epoch: 4},
		{name: "bounded", feed: func(c *tailCache) { feedTail(c, "g", 3, 20, 2*tailEntries, 10, false, t0) }, after: 20 + tailEntries, want: seqRange(21+tailEntries, 20+2*tailEntries)},
		{name: "bounded, older gone", feed: func(c *tailCache) { feedTail(c, "g", 3, 20, 2*tailEntries, 10, false, t0) }, after: 20 + tailEntries - 1},
		{name: "older entries of a run still going on", feed: func(c *tailCache) { feedTail(c, "g", 3, 20, 5, 10, false, t0.Add(8*time.Second)) },
			after: 10, now: tailMaxAge + 2*time.Second},
		{name: "its newer entries", feed: func(c *tailCache) { feedTail(c, "g", 3, 20, 5, 10, false, t0.Add(8*time.Second)) },
			after: 20, now: tailMaxAge + 2*time.Second, want: seqRange(21, 25)},
		{name: "old entries leave the run", feed: func(c *tailCache) { feedTail(c, "g", 3, 20, 5, 10, false, t0.Add(tailMaxAge+time.Second)) },
			after: 19, now: tailMaxAge + time.Second},
		{name: "another group", feed: func(c *tailCache) { feedTail(c, "h", 3, 0, 5, 10, false, t0) }, after: 15, want: seqRange(16, 20)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c tailCache
			feedTail(&c, "g", 3, 10, 10, 10, false, t0)
			if tc.feed != nil {
				tc.feed(&c)
			}
			hi, limit, maxBytes, window, epoch := tc.hi, tc.limit, tc.maxBytes, tc.window, tc.epoch
			if hi == 0 {
				hi = 1 << 62
			}
			if limit == 0 {
				limit = 100
			}
			if maxBytes == 0 {
				maxBytes = 1 << 20
			}
			if window == (Access{}) {
				window = open
			}
			if epoch == 0 {
				epoch = 3
			}
			got, ok := c.page([]byte("g"), tc.after, hi, limit, maxBytes, t0.Add(tc.now), func(e int64) (Access, bool) { return window, e == epoch })
			if !ok {
				got = nil
			}
			if tc.want == nil && ok {
				t.Fatalf("answered %v, want the store read", seqsOf(got))
			}
			if tc.want != nil && !slices.Equal(seqsOf(got), tc.want) {
				t.Fatalf("answered %v (%v), want %v", seqsOf(got), ok, tc.want)
			}
		})
	}
}

// TestTailFailedEntries: a batch whose entries of a group are not the
// whole run the group's row says it wrote (one refused, or the batch
// retried entry by entry) is not cached.
func TestTailFailedEntries(t *testing.T) {
	var c tailCache
	now := time.Now()
	live := []appendReq{{m: Message{GroupID: []byte("g")}}, {m: Message{GroupID: []byte("g")}}}
	res := []appendRes{{seq: 1}, {seq: 2}}
	c.appended(live, res, []*groupTx{{id: []byte("g"), first: 0, last: 3}}, now)
	if _, ok := c.page([]byte("g"), 0, 10, 10, 100, now, func(int64) (Access, bool) { return Access{FromSeq: 1}, true }); ok {
		t.Fatal("a run with a missing entry was cached")
	}
}

// TestTailReadsMatchStore: pages the cache answers are the store's, for
// members, a member removed and one added late, and across two relay
// instances on one PostgreSQL database (the commits through the other:
// this one's cache does not see them). A removed member is never answered
// an entry after its removal.
func TestTailReadsMatchStore(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	run := func(t *testing.T, st, other Store) {
		s := sqlOf(t, st)
		gid := []byte("tail")
		if err := st.CreateGroup(ctx, gid, "alice", 0, now); err != nil {
			t.Fatal(err)
		}
		posts := func(epoch uint64, users ...string) {
			t.Helper()
			var wg sync.WaitGroup
			errs := make(chan error, 8*len(users))
			for _, u := range users {
				for i := range 8 {
					wg.Go(func() {
						_, _, err := st.Append(ctx, Message{GroupID: gid, Kind: "application", Epoch: epoch, Sender: u, Data: fmt.Appendf(nil, "%s %d", u, i), ReceivedAt: now})
						errs <- err
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		commit := func(epoch uint64, added, removed []string) {
			t.Helper()
			if _, _, err := other.Append(ctx, Message{GroupID: gid, Kind: "commit", Epoch: epoch, Sender: "alice", Data: []byte("c"), ReceivedAt: now,
				Added: added, Removed: removed}); err != nil {
				t.Fatalf("commit of epoch %d: %v", epoch, err)
			}
		}
		users := []string{"alice", "bob", "carol", "mallory"}
		// check compares every page of every user with the store's, and
		// returns what each user read through the whole log.
		check := func() map[string][]int64 {
			t.Helper()
			read := map[string][]int64{}
			last, err := st.Group(ctx, gid)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range users {
				for after := int64(0); after <= last.LastSeq+1; after++ {
					for _, lim := range []struct{ n, bytes int }{{1, 1}, {3, 1 << 20}, {100, 20}, {100, 1 << 20}} {
						got, gerr := st.Messages(ctx, gid, u, after, lim.n, lim.bytes)
						want, _, werr := s.storeMessages(ctx, gid, u, after, 1<<62, lim.n, lim.bytes)
						if !errors.Is(gerr, werr) && (gerr == nil || werr == nil || gerr.Error() != werr.Error()) {
							t.Fatalf("%s after %d: error %v, store %v", u, after, gerr, werr)
						}
						// A page may be shorter than the store's (it ends at
						// the cached run's end), never different.
						if len(got) == 0 && len(want) > 0 || len(got) > len(want) {
							t.Fatalf("%s after %d limit %v: %v, store %v", u, after, lim, seqsOf(got), seqsOf(want))
						}
						for i := range got {
							g, w := got[i], want[i]
							if g.Seq != w.Seq || g.Kind != w.Kind || g.Epoch != w.Epoch || g.Sender != w.Sender || string(g.Data) != string(w.Data) || !g.ReceivedAt.Equal(w.ReceivedAt) {
								t.Fatalf("%s after %d: entry %+v, store %+v", u, after, g, w)
							}
						}
					}
				}
				for after := int64(0); ; {
					ms, err := st.Messages(ctx, gid, u, after, 100, 1<<20)
					if err != nil || len(ms) == 0 {
						break
					}
					read[u] = append(read[u], seqsOf(ms)...)
					after = ms[len(ms)-1].Seq
				}
			}
			return read
		}
		commit(0, []string{"bob"}, nil) // seq 1, epoch 1
		posts(1, "alice", "bob")        // seqs 2..17
		hits := s.tail.hits.Load()
		check()
		if s.tail.hits.Load() == hits {
			t.Fatal("no page was answered from the cache")
		}
		commit(1, []string{"carol"}, []string{"bob"}) // seq 18, epoch 2
		posts(2, "alice", "carol")                    // 19..34, cached at epoch 2
		hits = s.tail.hits.Load()
		read := check()
		if s.tail.hits.Load() == hits {
			t.Fatal("no page was answered from the cache after the commit")
		}
		if want := seqRange(1, 18); !slices.Equal(read["bob"], want) {
			t.Fatalf("bob, removed at 18, read %v", read["bob"])
		}
		if want := seqRange(18, 34); !slices.Equal(read["carol"], want) {
			t.Fatalf("carol, added at 18, read %v", read["carol"])
		}
		if len(read["mallory"]) != 0 || len(read["alice"]) != 34 {
			t.Fatalf("mallory read %v, alice %d entries", read["mallory"], len(read["alice"]))
		}
	}
	forEachInstancePair(t, run)
}

// TestTailBounded: however many groups post however large entries, the
// cache holds at most tailBytes of data and tailGroups groups: also when
// the runs of many groups, each started small, all grow.
func TestTailBounded(t *testing.T) {
	var c tailCache
	now := time.Now()
	check := func(g int) {
		t.Helper()
		if c.bytes > tailBytes || len(c.m) > tailGroups {
			t.Fatalf("group %d: %d bytes in %d groups", g, c.bytes, len(c.m))
		}
	}
	for g := range 2 * tailGroups {
		feedTail(&c, fmt.Sprint("g", g), 1, 0, 1, 1, false, now)
		check(g)
	}
	for g := tailGroups; g < 2*tailGroups; g++ {
		feedTail(&c, fmt.Sprint("g", g), 1, 1, 4, 64<<10, false, now)
		check(g)
	}
	held := 0
	for _, r := range c.m {
		held += r.bytes
	}
	if held != c.bytes {
		t.Fatalf("runs hold %d bytes, counted %d", held, c.bytes)
	}
}
