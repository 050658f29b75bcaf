package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestRemovedMemberRefusedAtOnce: the append path caches senders'
// windows by group epoch (memberCache); a member removed by a commit is
// refused by the very next append, single and batched, and accepted again
// once a commit adds it back, also when the commits come through another
// relay instance on the same PostgreSQL database while this one's cache
// is warm.
func TestRemovedMemberRefusedAtOnce(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	run := func(t *testing.T, st, other Store) {
		gid := []byte("members-cache")
		if err := st.CreateGroup(ctx, gid, "alice", 0, now); err != nil {
			t.Fatal(err)
		}
		app := func(user string, epoch uint64) error {
			_, _, err := st.Append(ctx, Message{GroupID: gid, Kind: "application", Epoch: epoch, Sender: user, Data: []byte(user), ReceivedAt: now})
			return err
		}
		// Warm the cache with concurrent posts (batched together).
		warm := func(user string, epoch uint64) {
			t.Helper()
			var wg sync.WaitGroup
			errs := make(chan error, 32)
			for range 32 {
				wg.Go(func() { errs <- app(user, epoch) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("%s at epoch %d: %v", user, epoch, err)
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
		if err := app("bob", 0); !errors.Is(err, ErrForbidden) {
			t.Fatalf("bob before he is added: %v", err)
		}
		commit(0, []string{"bob"}, nil)
		warm("bob", 1)
		commit(1, nil, []string{"bob"})
		if err := app("bob", 2); !errors.Is(err, ErrForbidden) {
			t.Fatalf("bob's first post after his removal: %v", err)
		}
		rs := st.AppendAll(ctx, []Message{{GroupID: gid, Kind: "application", Epoch: 2, Sender: "bob", Data: []byte("b"), ReceivedAt: now},
			{GroupID: gid, Kind: "application", Epoch: 2, Sender: "alice", Data: []byte("a"), ReceivedAt: now}})
		if !errors.Is(rs[0].Err, ErrForbidden) || rs[1].Err != nil {
			t.Fatalf("batch after bob's removal: %v, %v", rs[0].Err, rs[1].Err)
		}
		// A post of an older epoch (still readable) is refused as well:
		// the window is the sender's, whatever the message's epoch.
		if err := app("bob", 1); !errors.Is(err, ErrForbidden) {
			t.Fatalf("bob's post of epoch 1 after his removal: %v", err)
		}
		commit(2, []string{"bob"}, nil)
		warm("bob", 3)
		warm("alice", 3)
		commit(3, nil, []string{"bob"})
		for i := range 3 {
			if err := app("bob", 4); !errors.Is(err, ErrForbidden) {
				t.Fatalf("post %d after the second removal: %v", i, err)
			}
		}
		if err := app("alice", 4); err != nil {
			t.Fatal(err)
		}
	}
	forEachInstancePair(t, run)
}

// TestMemberCacheBounded: the cache starts again empty past its bound and
// never goes back to an older epoch's window.
func TestMemberCacheBounded(t *testing.T) {
	var c memberCache
	for i := range memberCacheMax + 10 {
		c.put([]byte("g"), fmt.Sprint("u", i), 1, Access{FromSeq: 1})
	}
	if len(c.m) > memberCacheMax {
		t.Fatalf("%d entries", len(c.m))
	}
	c.put([]byte("g"), "x", 5, Access{FromSeq: 7})
	c.put([]byte("g"), "x", 4, Access{FromSeq: 1})
	if a, ok := c.get([]byte("g"), "x", 5); !ok || a.FromSeq != 7 {
		t.Fatal(a, ok)
	}
	if _, ok := c.get([]byte("g"), "x", 4); ok {
		t.Fatal("an older epoch's window replaced a newer one")
	}
}
