package node_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/spacepanda/spacepanda/node"
)

// Bob publishes a key package, his node is SIGKILLed and started again on
// the same data directory; alice's invite made with that key package is
// joinable, and the key package is consumed for good: the count drops and a
// second Welcome to it cannot be joined, also after another SIGKILL.
func TestRestartBetweenKeyPackageAndJoin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := startProc(t, "alice"), startProc(t, "bob")
	bobID := uidOf(t, b.c)
	kps := must(b.c.KeyPackages(ctx, 2))
	if n := must(b.c.KeyPackageCount(ctx)); n != 2 {
		t.Fatalf("bob has %d key packages", n)
	}
	b.restartHard()
	if n := must(b.c.KeyPackageCount(ctx)); n != 2 {
		t.Fatalf("bob has %d key packages after SIGKILL and start, want 2", n)
	}
	if id := must(b.c.Identity(ctx)); id.Name != "bob" || id.UserID != bobID {
		t.Fatalf("bob's identity after restart %+v", id)
	}

	ch := must(a.c.CreateChannel(ctx, "general", false))
	inv := must(a.c.Invite(ctx, ch.ChannelID, kps[0]))
	j := must(b.c.Join(ctx, node.JoinRequest{Welcome: inv.Welcome, RatchetTree: inv.RatchetTree}))
	if j.ChannelID != ch.ChannelID || j.Epoch != 1 || j.MemberCount != 2 {
		t.Fatalf("bob joined %+v", j)
	}
	if n := must(b.c.KeyPackageCount(ctx)); n != 1 {
		t.Fatalf("bob has %d key packages after the join, want 1", n)
	}
	chn := &channelOf{id: ch.ChannelID, nodes: map[string]*node.Client{"alice": a.c, "bob": b.c}}
	chn.deliver(t, "alice", "welcome bob", "bob")
	chn.deliver(t, "bob", "thanks", "alice")

	// Alice invites the same key package to a second channel: her side
	// cannot know it is spent, but bob's node must refuse the Welcome.
	ch2 := must(a.c.CreateChannel(ctx, "second", false))
	inv2 := must(a.c.Invite(ctx, ch2.ChannelID, kps[0]))
	_, err := b.c.Join(ctx, node.JoinRequest{Welcome: inv2.Welcome, RatchetTree: inv2.RatchetTree})
	wantErr(t, err, http.StatusBadRequest, "no_matching_key_package")
	b.restartHard()
	_, err = b.c.Join(ctx, node.JoinRequest{Invite: inv2.Invite})
	wantErr(t, err, http.StatusBadRequest, "no_matching_key_package")
	if n := must(b.c.KeyPackageCount(ctx)); n != 1 {
		t.Fatalf("bob has %d key packages after the restart, want 1", n)
	}
	// The first channel survived the restart, and the other key package
	// still works.
	chn.deliver(t, "alice", "still there?", "bob")
	// (In ch2 alice already added bob's leaf, so another of his key
	// packages is refused there.)
	_, err = a.c.Invite(ctx, ch2.ChannelID, kps[1])
	wantErr(t, err, http.StatusConflict, "already_member")
	ch3 := must(a.c.CreateChannel(ctx, "third", false))
	inv3 := must(a.c.Invite(ctx, ch3.ChannelID, kps[1]))
	must(b.c.Join(ctx, node.JoinRequest{Invite: inv3.Invite}))
	if n := must(b.c.KeyPackageCount(ctx)); n != 0 {
		t.Fatalf("bob has %d key packages, want 0", n)
	}
}

// A node SIGKILLed between two messages loses nothing: its history is
// intact, its next message is decrypted by the others (who would refuse a
// reused generation as a replay), an old ciphertext replayed to it is
// refused, and it decrypts what the others send next.
func TestRestartBetweenMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, c := startProc(t, "alice"), startProc(t, "bob"), startProc(t, "carol")
	chn := pair(t, a.c, b.c)
	kp := must(c.c.KeyPackages(ctx, 1))[0]
	inv := must(a.c.Invite(ctx, chn.id, kp))
	must(b.c.Inbox(ctx, chn.id, inv.Commit))
	must(c.c.Join(ctx, node.JoinRequest{Invite: inv.Invite}))
	chn.nodes["carol"] = c.c

	var ids []string
	m1 := chn.deliver(t, "alice", "one", "bob", "carol")
	m2 := chn.deliver(t, "bob", "two", "alice", "carol")
	ids = append(ids, m1.MessageID, m2.MessageID)

	// The sender dies between two messages.
	a.restartHard()
	if got := historyIDs(t, a.c, chn.id); !slices.Equal(got, ids) {
		t.Fatalf("alice's history after SIGKILL %v, want %v", got, ids)
	}
	// Bob and carol accept the next message: had alice reused a
	// generation, they would refuse it as a replay (their keys for it are
	// consumed).
	m3 := chn.deliver(t, "alice", "three", "bob", "carol")
	ids = append(ids, m3.MessageID)

	// A receiver dies between two messages.
	b.restartHard()
	if got := historyIDs(t, b.c, chn.id); !slices.Equal(got, ids) {
		t.Fatalf("bob's history after SIGKILL %v, want %v", got, ids)
	}
	for _, old := range []*node.SendResponse{m1, m3} {
		_, err := b.c.Inbox(ctx, chn.id, old.Ciphertext)
		wantErr(t, err, http.StatusConflict, "replayed_message")
	}
	// Bob's own message echoed back to him is refused too.
	_, err := b.c.Inbox(ctx, chn.id, m2.Ciphertext)
	if err == nil {
		t.Fatal("bob accepted his own message")
	}
	m4 := chn.deliver(t, "alice", "four", "bob", "carol")
	m5 := chn.deliver(t, "bob", "five", "alice", "carol")
	ids = append(ids, m4.MessageID, m5.MessageID)

	// Twice in a row, and after a commit.
	c.restartHard()
	up := must(c.c.Update(ctx, chn.id))
	c.restartHard()
	for _, cl := range []*node.Client{a.c, b.c} {
		if r := must(cl.Inbox(ctx, chn.id, up.Commit)); r.Epoch != up.Epoch {
			t.Fatalf("update processed as %+v", r)
		}
	}
	m6 := chn.deliver(t, "carol", "six", "alice", "bob")
	ids = append(ids, m6.MessageID)
	_, err = a.c.Inbox(ctx, chn.id, m6.Ciphertext)
	wantErr(t, err, http.StatusConflict, "replayed_message")
	for name, cl := range chn.nodes {
		if got := historyIDs(t, cl, chn.id); !slices.Equal(got, ids) {
			t.Fatalf("%s's history %v, want %v", name, got, ids)
		}
	}
}
