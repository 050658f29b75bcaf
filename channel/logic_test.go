package channel_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/channel/channeltest"
	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/memory"
)

// Channel logic with the insecure fake provider (no crypto involved).

type fpeer struct {
	*channel.Manager
	f *channeltest.FakeGroupProvider
}

func newFake(name string) fpeer {
	f := channeltest.New(name)
	registerAs(name, name)
	return fpeer{channel.NewManager(f, memory.New(), channel.Options{}), f}
}

func fakeInvite(t *testing.T, inviter, joiner fpeer, ch string) []byte {
	t.Helper()
	ctx := context.Background()
	kp := must[[]byte](t)(joiner.GenerateKeyPackage(ctx))
	tok, commit, err := inviter.CreateInvite(ctx, ch, kp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := joiner.JoinChannel(ctx, tok); err != nil {
		t.Fatal(err)
	}
	return commit
}

func TestLeaveFlow(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := newFake("alice"), newFake("bob"), newFake("carol")
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	fakeInvite(t, alice, bob, ch)
	c := fakeInvite(t, alice, carol, ch)
	if _, err := bob.Receive(ctx, c); err != nil {
		t.Fatal(err)
	}
	prop := must[[]byte](t)(bob.Leave(ctx, ch))
	if _, err := bob.Channel(ctx, ch); !errors.Is(err, channel.ErrChannelNotFound) {
		t.Fatalf("bob still has the channel: %v", err)
	}
	for _, p := range []fpeer{alice, carol} {
		ev, err := p.Receive(ctx, prop)
		if err != nil || ev.Kind != channel.EventProposal || len(ev.ProposedRemovals) != 1 || ev.ProposedRemovals[0].Identity != "bob" {
			t.Fatalf("%s: %+v %v", p.Identity(), ev, err)
		}
	}
	commit := must[[]byte](t)(alice.SelfUpdate(ctx, ch))
	ev, err := carol.Receive(ctx, commit)
	if err != nil || ev.Kind != channel.EventMemberRemoved || ev.Removed[0].Identity != "bob" {
		t.Fatalf("carol: %+v %v", ev, err)
	}
	if got := fmt.Sprint(identities(must[[]channel.Member](t)(carol.Leaves(ctx, ch)))); got != "[alice carol]" {
		t.Fatalf("members %s", got)
	}
	// The leaver gets nothing more.
	_, ct, _ := alice.SendMessage(ctx, ch, "bye bob", "")
	if _, err := bob.Receive(ctx, ct); !errors.Is(err, channel.ErrChannelNotFound) {
		t.Fatalf("bob after leaving: %v", err)
	}
}

func TestReceiveErrors(t *testing.T) {
	ctx := context.Background()
	alice, bob := newFake("alice"), newFake("bob")
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	other := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "other", false)).ID
	fakeInvite(t, alice, bob, ch)
	_, ct, err := alice.SendMessage(ctx, ch, "x", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ReceiveFor(ctx, other, ct); !errors.Is(err, channel.ErrWrongChannel) {
		t.Fatalf("wrong channel: %v", err)
	}
	if _, _, err := alice.SendMessage(ctx, "nope", "x", ""); !errors.Is(err, channel.ErrChannelNotFound) {
		t.Fatalf("unknown channel: %v", err)
	}
	if _, _, err := alice.SendMessage(ctx, ch, strings.Repeat("a", channel.MaxBody+1), ""); !errors.Is(err, channel.ErrBodyTooLarge) {
		t.Fatalf("big body: %v", err)
	}
	if ev, err := bob.ReceiveFor(ctx, ch, ct); err != nil || ev.Raw {
		t.Fatalf("receive: %v", err)
	}
	if _, err := bob.Receive(ctx, ct); !errors.Is(err, channeltest.ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
}

func TestInviteTokenMismatchRefused(t *testing.T) {
	ctx := context.Background()
	alice, bob := newFake("alice"), newFake("bob")
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	other := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "other", false))
	tok, _, err := alice.CreateInvite(ctx, ch, must[[]byte](t)(bob.GenerateKeyPackage(ctx)))
	if err != nil {
		t.Fatal(err)
	}
	tok.Channel = *other
	if _, err := bob.JoinChannel(ctx, tok); !errors.Is(err, channel.ErrInvalidInvite) {
		t.Fatalf("mismatched token: %v", err)
	}
	if cs := must[[]*channel.Descriptor](t)(bob.Channels(ctx)); len(cs) != 0 {
		t.Fatalf("bob has %d channels", len(cs))
	}
}

// Application data that is not our encoding, or is ours but malformed or
// of an unknown version, is kept as raw text (never dropped).
func TestRawApplicationData(t *testing.T) {
	ctx := context.Background()
	alice, bob := newFake("alice"), newFake("bob")
	d := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false))
	fakeInvite(t, alice, bob, d.ID)
	for _, data := range []string{"plain text", "SPcm\x02future", "SPcm\x01\x00"} {
		ct := must[[]byte](t)(alice.f.Encrypt(ctx, d.GroupID, []byte(data)))
		ev, err := bob.Receive(ctx, ct)
		if err != nil || !ev.Raw || string(ev.Message.Body) != data || ev.Message.Sender != "alice" {
			t.Fatalf("%q: %+v %v", data, ev, err)
		}
	}
	if h := must[[]store.Message](t)(bob.History(ctx, d.ID, 0, 10)); len(h) != 3 {
		t.Fatalf("history %d", len(h))
	}
}
