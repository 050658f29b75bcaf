package channel_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store"
)

// openSQLPeerAt is a device on the SQLite store in dir (reopened when it
// exists), closed at the end of the test unless closed before.
func openSQLPeerAt(t *testing.T, dir, name string) *peer {
	t.Helper()
	po := channel.ProviderOptions(provider.Options{Name: name})
	p, err := provider.Open(context.Background(), dir, provider.OpenOptions{Options: po})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	register(p)
	return &peer{Manager: channel.NewManager(channel.NewMLSGroupProvider(p), p.Store(), channel.Options{}), p: p, st: p.Store()}
}

// sqlPair is alice and bob on SQLite stores, members of alice's new
// channel named name.
func sqlPair(t *testing.T, name string) (alice, bob *peer, ch string) {
	t.Helper()
	alice = newSQLPeer(t, "alice", channel.Options{}, false)
	bob = newSQLPeer(t, "bob", channel.Options{}, false)
	ch = must[*channel.Descriptor](t)(alice.CreateChannel(context.Background(), name, false)).ID
	invite(t, alice, bob, ch)
	return alice, bob, ch
}

// historyBodies is the bodies of p's history of ch, in order.
func historyBodies(t *testing.T, p *peer, ch string) string {
	t.Helper()
	var bodies []string
	for _, m := range must[[]store.Message](t)(p.History(context.Background(), ch, 0, 100)) {
		bodies = append(bodies, string(m.Body))
	}
	return fmt.Sprint(bodies)
}

// blockedSend starts a send of ch whose transaction waits until the
// returned release is called; it returns once that send holds the
// channel, with a function that waits for its outcome.
func blockedSend(t *testing.T, from *peer, ch, body string) (release func(), wait func() []byte) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	var ct []byte
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, ct, err = from.SendChatWith(context.Background(), ch, body, "", func(store.Tx, *channel.ChatMessage, []byte) error {
			close(entered)
			<-gate
			return nil
		})
	}()
	<-entered
	return func() { close(gate) }, func() []byte {
		<-done
		if err != nil {
			t.Fatalf("blocked send: %v", err)
		}
		return ct
	}
}

// waitQueued waits until n sends wait in ch's queue.
func waitQueued(t *testing.T, m *channel.Manager, ch string, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); channel.QueuedSends(m, ch) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d sends queued, want %d", channel.QueuedSends(m, ch), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Sends that wait for a channel are encrypted and stored together: one
// transaction for the sends queued behind a send under way (32 at most),
// each message readable, in history order, and no ratchet generation used
// twice across a restart, the batch having spent more generations than
// one saved reservation covers.
func TestSendsCombined(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "alice")
	alice := openSQLPeerAt(t, dir, "alice")
	bob := newSQLPeer(t, "bob", channel.Options{}, false)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "combined", false)).ID
	invite(t, alice, bob, ch)

	release, first := blockedSend(t, alice, ch, "first")
	const n = 40 // two batches: 32, then 8
	var mu sync.Mutex
	txs := map[store.Tx][]int{}
	cts := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, ct, err := alice.SendChatWith(ctx, ch, fmt.Sprint("m", i), "", func(tx store.Tx, _ *channel.ChatMessage, _ []byte) error {
				mu.Lock()
				defer mu.Unlock()
				txs[tx] = append(txs[tx], i)
				return nil
			})
			if err != nil {
				t.Errorf("send %d: %v", i, err)
			}
			cts[i] = ct
		})
	}
	waitQueued(t, alice.Manager, ch, n)
	release()
	deliver(t, bob, first(), "alice", "first")
	wg.Wait()
	var sizes []int
	for _, is := range txs {
		sizes = append(sizes, len(is))
	}
	slices.Sort(sizes)
	if fmt.Sprint(sizes) != "[8 32]" {
		t.Fatalf("the %d queued sends ran in transactions of %v, want [8 32]", n, sizes)
	}
	h := must[[]store.Message](t)(alice.History(ctx, ch, 0, 100))
	if len(h) != n+1 || string(h[0].Body) != "first" {
		t.Fatalf("history holds %d messages, want %d", len(h), n+1)
	}
	// Bob reads them in history order (the order they were encrypted in).
	byBody := map[string][]byte{}
	for i, ct := range cts {
		byBody[fmt.Sprint("m", i)] = ct
	}
	for _, m := range h[1:] {
		deliver(t, bob, byBody[string(m.Body)], "alice", string(m.Body))
	}

	// Restarted, alice goes on from past every generation the batches used.
	alice.p.Close()
	alice = openSQLPeerAt(t, dir, "alice")
	deliver(t, bob, send(t, alice, ch, "after restart"), "alice", "after restart")
}

// One send of a batch whose own write fails gets that error; the sends
// batched with it are stored and sent all the same.
func TestSendBatchOneFails(t *testing.T) {
	ctx := context.Background()
	alice, bob, ch := sqlPair(t, "one fails")

	release, first := blockedSend(t, alice, ch, "first")
	errBoom := errors.New("boom")
	type out struct {
		ct  []byte
		err error
	}
	outs := make([]out, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			_, ct, err := alice.SendChatWith(ctx, ch, fmt.Sprint("m", i), "", func(store.Tx, *channel.ChatMessage, []byte) error {
				if i == 1 {
					return errBoom
				}
				return nil
			})
			outs[i] = out{ct, err}
		})
		waitQueued(t, alice.Manager, ch, i+1) // in order m0, m1, m2
	}
	release()
	deliver(t, bob, first(), "alice", "first")
	wg.Wait()
	if !errors.Is(outs[1].err, errBoom) || outs[1].ct != nil {
		t.Fatalf("failing send: %v", outs[1].err)
	}
	for _, i := range []int{0, 2} {
		if outs[i].err != nil {
			t.Fatalf("send %d batched with a failing one: %v", i, outs[i].err)
		}
		deliver(t, bob, outs[i].ct, "alice", fmt.Sprint("m", i))
	}
	if got := historyBodies(t, alice, ch); got != "[first m0 m2]" {
		t.Fatalf("history %s", got)
	}
}

// A send whose caller gives up while it waits for the channel returns at
// once and leaves nothing behind; the sends after it are unaffected.
func TestQueuedSendCancelled(t *testing.T) {
	ctx := context.Background()
	alice, bob, ch := sqlPair(t, "cancelled")

	release, first := blockedSend(t, alice, ch, "first")
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, _, err := alice.SendChatWith(cctx, ch, "given up", "", nil)
		errc <- err
	}()
	waitQueued(t, alice.Manager, ch, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) { // before the channel is free
		t.Fatalf("cancelled queued send: %v", err)
	}
	if q := channel.QueuedSends(alice.Manager, ch); q != 0 {
		t.Fatalf("%d sends still queued", q)
	}
	release()
	deliver(t, bob, first(), "alice", "first")
	deliver(t, bob, send(t, alice, ch, "next"), "alice", "next")
	if got := historyBodies(t, alice, ch); got != "[first next]" {
		t.Fatalf("history %s", got)
	}
}
