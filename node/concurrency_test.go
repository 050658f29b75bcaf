package node_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/node"
)

// TestConcurrentRequests drives one node with many requests at once (run
// it with -race): parallel sends on one channel and across channels, with
// reads in between; then parallel, shuffled inbox deliveries of all of them
// to the other node; then parallel replays of one ciphertext, of which
// exactly one is accepted.
func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	alice, bob, first := inProcPair(t)
	chans := []*channelOf{first}
	for range 2 {
		chans = append(chans, pair(t, alice.c, bob.c))
	}

	const workers, perWorker = 6, 6
	type sent struct {
		ch *channelOf
		r  *node.SendResponse
	}
	var (
		mu   sync.Mutex
		all  []sent
		wg   sync.WaitGroup
		errs = make(chan error, 1000)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				// Half the workers share channel 0; the others spread.
				ch := chans[0]
				if w%2 == 1 {
					ch = chans[(w+i)%len(chans)]
				}
				r, err := alice.c.Send(ctx, ch.id, fmt.Sprintf("w%d m%d", w, i), "")
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				all = append(all, sent{ch, r})
				mu.Unlock()
				// Reads race with the writes.
				if _, err := alice.c.Messages(ctx, ch.id); err != nil {
					errs <- err
				}
				if _, err := alice.c.Channel(ctx, ch.id); err != nil {
					errs <- err
				}
			}
		}()
	}
	// Key packages and an identity read on the side.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 3 {
			if _, err := alice.c.KeyPackages(ctx, 2); err != nil {
				errs <- err
			}
			if _, err := alice.c.Identity(ctx); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(all) != workers*perWorker {
		t.Fatalf("%d sends", len(all))
	}
	seen := map[string]bool{}
	perChan := map[string]int{}
	for _, s := range all {
		if seen[s.r.MessageID] {
			t.Fatalf("message id %s twice", s.r.MessageID)
		}
		seen[s.r.MessageID] = true
		perChan[s.ch.id]++
	}

	// Bob receives everything at once, shuffled, while he also sends.
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	work := make(chan sent)
	errs = make(chan error, 1000)
	var bobSent []*node.SendResponse
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				r, err := bob.c.Inbox(ctx, s.ch.id, s.r.Ciphertext)
				if err != nil {
					errs <- fmt.Errorf("inbox: %w", err)
					continue
				}
				if r.Message == nil || r.Message.MessageID != s.r.MessageID || named(r.Message.Sender.UserID) != "alice" {
					errs <- fmt.Errorf("inbox answer %+v for %s", r.Message, s.r.MessageID)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 6 {
			r, err := bob.c.Send(ctx, chans[i%len(chans)].id, "from bob", "")
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			bobSent = append(bobSent, r)
			mu.Unlock()
		}
	}()
	for _, s := range all {
		work <- s
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, ch := range chans {
		want := perChan[ch.id]
		for i := range bobSent {
			if chans[i%len(chans)] == ch {
				want++
			}
		}
		if got := len(historyIDs(t, bob.c, ch.id)); got != want {
			t.Fatalf("bob's history of %s has %d messages, want %d", ch.id, got, want)
		}
	}

	// The same ciphertext delivered 8 times at once: one is accepted, the
	// others are refused as replays, and it is in the history once.
	r := must(alice.c.Send(ctx, first.id, "once", ""))
	var ok, replay int
	var rmu sync.Mutex
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := bob.c.Inbox(ctx, first.id, r.Ciphertext)
			var ne *node.Error
			rmu.Lock()
			defer rmu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ne) && ne.Status == http.StatusConflict:
				replay++
			default:
				t.Errorf("replay: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || replay != 7 {
		t.Fatalf("8 concurrent deliveries: %d accepted, %d replays", ok, replay)
	}
	n := 0
	for _, id := range historyIDs(t, bob.c, first.id) {
		if id == r.MessageID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("message in bob's history %d times", n)
	}
	// Still works both ways.
	first.deliver(t, "alice", "done", "bob")
	first.deliver(t, "bob", "done too", "alice")
}
