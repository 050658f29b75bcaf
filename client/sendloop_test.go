package client_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/mls"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// TestQueuedMessagesSurviveRestart: messages sent while the relay is down
// are queued with their history rows (one transaction each), listed as
// queued, survive a restart of the engine (loaded before the relay is
// reached), and reach the receiver once, in the order sent.
func TestQueuedMessagesSurviveRestart(t *testing.T) {
	f := newFakeRelay()
	dir := filepath.Join(t.TempDir(), "alice")
	openAlice := func() *member { return openDir(t, f, dir, "alice") }
	alice, bob := openAlice(), open(t, f, "bob", client.Limits{})
	d, err := alice.CreateChannel(ctx, "general", false, true)
	if err != nil {
		t.Fatal(err)
	}
	invite(t, alice, bob, d.ID)
	if r, err := alice.Send(ctx, d.ID, "m0", ""); err != nil || r.Status != "sent" {
		t.Fatalf("send: %+v %v", r, err)
	}
	f.setDown(true)
	var want []string
	for i := 1; i <= 5; i++ {
		r, err := alice.Send(ctx, d.ID, fmt.Sprintf("m%d", i), "")
		if err != nil || r.Status != "queued" {
			t.Fatalf("send %d while down: %+v %v", i, r, err)
		}
		want = append(want, fmt.Sprintf("m%d", i))
	}
	if n, q := alice.OutboxDepth(ctx), alice.Queued(ctx, d.ID); n != 5 || len(q) != 5 {
		t.Fatalf("outbox depth %d, queued %v", n, q)
	}
	alice.Close()
	alice = openAlice()
	defer alice.Close()
	if n, q := alice.OutboxDepth(ctx), alice.Queued(ctx, d.ID); n != 5 || len(q) != 5 {
		t.Fatalf("after a restart: outbox depth %d, queued %v", n, q)
	}
	f.setDown(false)
	want = append([]string{"m0"}, want...)
	eventually(t, "bob gets every message in order", func() bool {
		return fmt.Sprint(texts(t, bob, d.ID)) == fmt.Sprint(want)
	})
	eventually(t, "alice's outbox drains", func() bool { return alice.OutboxDepth(ctx) == 0 })
	if got := texts(t, bob, d.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bob's history %v", got)
	}
}

// batchConn is the fake relay with the batch endpoint: PostMessages posts
// each message as PostMessage would and records the batch sizes.
type batchConn struct {
	client.Relay
	mu    sync.Mutex
	sizes []int
}

func (b *batchConn) PostMessages(ctx context.Context, gid []byte, msgs [][]byte) ([]relayclient.PostResult, error) {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(msgs))
	b.mu.Unlock()
	out := make([]relayclient.PostResult, len(msgs))
	for i, m := range msgs {
		pm, err := mls.UnmarshalMessage(m)
		if err != nil {
			return nil, err
		}
		seq, err := b.PostMessage(ctx, gid, relayclient.KindApplication, pm.PrivateMessage.Epoch, m)
		if errors.Is(err, client.ErrRelayUnreachable) {
			return nil, err
		}
		out[i] = relayclient.PostResult{Seq: seq, Err: err}
	}
	return out, nil
}

// TestQueuedMessagesPostedInBatches: messages queued while the relay was
// down go in one batch request when it returns, in order.
func TestQueuedMessagesPostedInBatches(t *testing.T) {
	f := newFakeRelay()
	dir := filepath.Join(t.TempDir(), "alice")
	c0, err := client.Open(ctx, client.Config{DataDir: dir, DisplayName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	uid := c0.Manager().Identity()
	c0.Close()
	bc := &batchConn{Relay: f.conn(uid)}
	c, err := client.Open(ctx, client.Config{DataDir: dir, DisplayName: "alice", Relay: bc, Wait: 2 * time.Second, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	alice, bob := &member{Client: c, uid: uid}, open(t, f, "bob", client.Limits{})
	d, err := alice.CreateChannel(ctx, "general", false, true)
	if err != nil {
		t.Fatal(err)
	}
	invite(t, alice, bob, d.ID)
	f.setDown(true)
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("m%d", i))
		if r, err := alice.Send(ctx, d.ID, want[i], ""); err != nil || r.Status != "queued" {
			t.Fatalf("send %d while down: %+v %v", i, r, err)
		}
	}
	f.setDown(false)
	eventually(t, "bob gets every message in order", func() bool {
		return fmt.Sprint(texts(t, bob, d.ID)) == fmt.Sprint(want)
	})
	eventually(t, "alice's outbox drains", func() bool { return alice.OutboxDepth(ctx) == 0 })
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if n := slices.Max(append([]int{0}, bc.sizes...)); n < 2 {
		t.Fatalf("batch sizes %v: the queue went one message at a time", bc.sizes)
	}
}
