package channel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store/memory"
)

// newPlainPeer is an identity on a bare provider (no roles capability)
// whose channels have no roles (Options.NoRoles), as for plain RFC 9420
// peers.
func newPlainPeer(t testing.TB, name string) *peer {
	t.Helper()
	st := memory.New()
	p, err := provider.New(context.Background(), st, provider.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	register(p)
	return &peer{Manager: channel.NewManager(channel.NewMLSGroupProvider(p), st, channel.Options{NoRoles: true}), p: p, st: st}
}

// A NoRoles channel has no roles and admits clients without the roles
// capability; a member removed by a commit is told only of its own removal.
func TestNoRolesChannel(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := newPlainPeer(t, "alice"), newPlainPeer(t, "bob"), newPeer(t, "carol", nil)
	d := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "plain", false))
	if _, err := alice.Roles(ctx, d.ID); !errors.Is(err, channel.ErrNoRoles) {
		t.Fatalf("roles of a NoRoles channel: %v", err)
	}
	invite(t, alice, bob, d.ID)
	receiveKind(t, bob, invite(t, alice, carol, d.ID), channel.EventMemberJoined)
	deliver(t, alice, send(t, carol, d.ID, "hi"), "carol", "hi")
	deliver(t, bob, send(t, carol, d.ID, "hi bob"), "carol", "hi bob")
	commit := must[[]byte](t)(bob.RemoveMember(ctx, d.ID, uid("carol")))
	ev := receiveKind(t, alice, commit, channel.EventMemberRemoved)
	if got := fmt.Sprint(identities(ev.Removed)); got != "[carol]" {
		t.Fatalf("alice: removed %s", got)
	}
	ev = receiveKind(t, carol, commit, channel.EventRemoved)
	if got := fmt.Sprint(identities(ev.Removed)); got != "[carol]" {
		t.Fatalf("carol: removed %s, want only herself", got)
	}
	deliver(t, bob, send(t, alice, d.ID, "just us"), "alice", "just us")
}
