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
	alice, bob, carol, ch := threeParty(t)
	ep := must[uint64](t)(alice.Epoch(ctx, ch))

	var got *channel.OutgoingCommit
	accept := func(_ context.Context, c *channel.OutgoingCommit) error { got = c; return nil }
	errTaken := errors.New("epoch taken")
	refuse := func(context.Context, *channel.OutgoingCommit) error { return errTaken }

	// Bob's update loses the race: nothing merged.
	if _, err := bob.SelfUpdate(channel.WithCommitPoster(ctx, refuse), ch); !errors.Is(err, errTaken) {
		t.Fatalf("refused post: %v", err)
	}
	if e := must[uint64](t)(bob.Epoch(ctx, ch)); e != ep {
		t.Fatalf("bob in epoch %d after a refused post, want %d", e, ep)
	}
	// Alice's removal of carol wins.
	commit, err := alice.RemoveMember(channel.WithCommitPoster(ctx, accept), ch, uid("carol"))
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
	up, err := bob.SelfUpdate(channel.WithCommitPoster(ctx, accept), ch)
	if err != nil || got == nil || got.Epoch != ep+1 {
		t.Fatalf("retry: %v %+v", err, got)
	}
	receiveKind(t, alice, up, channel.EventEpochChanged)
	// Invites carry the Welcome and the tree.
	dave := newPeer(t, "dave", nil)
	kp := must[[]byte](t)(dave.GenerateKeyPackage(ctx))
	got = nil
	tok, _, err := alice.CreateInvite(channel.WithCommitPoster(ctx, accept), ch, kp)
	if err != nil || got == nil || string(got.Welcome) != string(tok.Welcome) || len(got.RatchetTree) == 0 ||
		fmt.Sprint(identities(got.Added)) != "[dave]" {
		t.Fatalf("invite post: %v %+v", err, got)
	}
}
