package client_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/client"
)

// TestQueuedMessagesSurviveRestart: messages sent while the relay is down
// are queued with their history rows (one transaction each), listed as
// queued, survive a restart of the engine (loaded before the relay is
// reached), and reach the receiver once, in the order sent.
func TestQueuedMessagesSurviveRestart(t *testing.T) {
	f := newFakeRelay()
	dir := filepath.Join(t.TempDir(), "alice")
	c0, err := client.Open(ctx, client.Config{DataDir: dir, DisplayName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	uid := c0.Manager().Identity()
	c0.Close()
	openAlice := func() *member {
		c, err := client.Open(ctx, client.Config{DataDir: dir, DisplayName: "alice", Relay: f.conn(uid),
			Wait: 2 * time.Second, Retry: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return &member{Client: c, uid: uid}
	}
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
