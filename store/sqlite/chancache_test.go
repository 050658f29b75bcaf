package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/store"
)

// The channel cache never answers with a row older than the last
// committed write, and a rolled-back write leaves the row as it was.
func TestChannelCacheFollowsWrites(t *testing.T) {
	ctx := context.Background()
	s := openKeyFile(t)
	put := func(name string, fail bool) error {
		return s.Update(ctx, func(tx store.Tx) error {
			if err := tx.PutChannel(ctx, store.Channel{ID: "c1", GroupID: []byte("g1"), Name: name}); err != nil {
				return err
			}
			if fail {
				return errors.New("rolled back")
			}
			return nil
		})
	}
	name := func() string {
		t.Helper()
		c, err := s.Channel(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		return c.Name
	}
	if err := put("first", false); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "first" {
		t.Fatalf("name %q, want first", got)
	}
	c, _ := s.Channel(ctx, "c1")
	c.GroupID[0] = 'X' // a caller's change to what it got is not the cache's
	if c2, _ := s.Channel(ctx, "c1"); string(c2.GroupID) != "g1" {
		t.Fatalf("group id %q after a caller changed its copy", c2.GroupID)
	}
	if err := put("second", false); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "second" {
		t.Fatalf("name %q after a committed rename, want second", got)
	}
	if err := put("third", true); err == nil {
		t.Fatal("the failing update succeeded")
	}
	if got := name(); got != "second" {
		t.Fatalf("name %q after a rolled-back rename, want second", got)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.DeleteChannel(ctx, "c1") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Channel(ctx, "c1"); !errors.Is(err, store.ErrChannelNotFound) {
		t.Fatalf("after delete: %v, want ErrChannelNotFound", err)
	}
}

// Readers racing a writer see every committed name in order, never an
// older one after a newer one (run with -race).
func TestChannelCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openKeyFile(t)
	const n = 60
	put := func(i int) error {
		return s.Update(ctx, func(tx store.Tx) error {
			return tx.PutChannel(ctx, store.Channel{ID: "c1", GroupID: []byte("g1"), Name: fmt.Sprintf("%03d", i)})
		})
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			last := ""
			for {
				select {
				case <-done:
					return
				default:
				}
				c, err := s.Channel(ctx, "c1")
				if err != nil {
					t.Error(err)
					return
				}
				if c.Name < last {
					t.Errorf("read %s after %s", c.Name, last)
					return
				}
				last = c.Name
			}
		})
	}
	for i := 1; i <= n; i++ {
		if err := put(i); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Channel(ctx, "c1"); err != nil || c.Name != fmt.Sprintf("%03d", i) {
			t.Fatalf("after write %d: %q %v", i, c.Name, err)
		}
	}
	close(done)
	wg.Wait()
}
