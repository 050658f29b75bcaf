package channel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
)

// TestCommitPoster: a commit goes to the poster before it is merged; a
// refused post leaves the group in its epoch, and after processing the
// winning commit the loser retries in the next epoch.
func TestCommitPoster(t *testing.T) {
	ctx := context.Background()
	alice0, bob0, carol, ch := threeParty(t)
	ep := must[uint64](t)(alice0.Epoch(ctx, ch))

	var got *channel.OutgoingCommit
	errTaken := errors.New("epoch taken")
	refusing := false
	post := func(_ context.Context, c *channel.OutgoingCommit) error {
		if refusing {
			return errTaken
		}
		got = c
		return nil
	}
	posting := func(p *peer) *peer {
		return &peer{Manager: channel.NewManager(channel.NewMLSGroupProvider(p.p), p.st, channel.Options{CommitPoster: post}), p: p.p, st: p.st}
	}
	alice, bob := posting(alice0), posting(bob0)

	// Bob's update loses the race: nothing merged.
	if _, err := func() ([]byte, error) {
		refusing = true
		defer func() { refusing = false }()
		return bob.SelfUpdate(ctx, ch)
	}(); !errors.Is(err, errTaken) {
		t.Fatalf("refused post: %v", err)
	}
	if e := must[uint64](t)(bob.Epoch(ctx, ch)); e != ep {
		t.Fatalf("bob in epoch %d after a refused post, want %d", e, ep)
	}
	// Alice's removal of carol wins.
	commit, err := alice.RemoveMember(ctx, ch, uid("carol"))
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Epoch != ep || string(got.Commit) != string(commit) || len(got.GroupInfo) == 0 ||
		fmt.Sprint(identities(got.Removed)) != "[carol]" || len(got.Added) != 0 || got.ChannelID != ch {
		t.Fatalf("posted %+v", got)
	}
	if e := must[uint64](t)(alice.Epoch(ctx, ch)); e != ep+1 {
		t.Fatalf("alice in epoch %d after an accepted post, want %d", e, ep+1)
	}
	receiveKind(t, bob, commit, channel.EventMemberRemoved)
	receiveKind(t, carol, commit, channel.EventRemoved)
	// Bob retries in the new epoch.
	got = nil
	up, err := bob.SelfUpdate(ctx, ch)
	if err != nil || got == nil || got.Epoch != ep+1 {
		t.Fatalf("retry: %v %+v", err, got)
	}
	receiveKind(t, alice, up, channel.EventEpochChanged)
	// Invites carry the Welcome and the tree.
	dave := newPeer(t, "dave", nil)
	kp := must[[]byte](t)(dave.GenerateKeyPackage(ctx))
	got = nil
	tok, _, err := alice.CreateInvite(ctx, ch, kp)
	if err != nil || got == nil || string(got.Welcome) != string(tok.Welcome) || len(got.RatchetTree) == 0 ||
		fmt.Sprint(identities(got.Added)) != "[dave]" {
		t.Fatalf("invite post: %v %+v", err, got)
	}
}
