package channel_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store/memory"
)

// newRoguePeer is a client that advertises the roles extension (so it can
// join) but whose engine enforces nothing: its MLS commits and messages
// skip every local check, as a modified client's would.
func newRoguePeer(t testing.TB, name string) *peer {
	t.Helper()
	st := memory.New()
	caps := channel.RolesCapabilities()
	p, err := provider.New(context.Background(), st, provider.Options{Name: name, Capabilities: &caps})
	if err != nil {
		t.Fatal(err)
	}
	register(p)
	return &peer{Manager: channel.NewManager(channel.NewMLSGroupProvider(p), st, channel.Options{}), p: p, st: st}
}

func inviteAs(t testing.TB, inviter, joiner *peer, ch string, role channel.Role) []byte {
	t.Helper()
	ctx := context.Background()
	kp := must[[]byte](t)(joiner.GenerateKeyPackage(ctx))
	tok, commit, err := inviter.CreateInviteAs(ctx, ch, kp, role)
	if err != nil {
		t.Fatalf("%s invites %s as %s: %v", inviter.Identity(), joiner.Identity(), role, err)
	}
	if _, err := joiner.JoinChannel(ctx, tok); err != nil {
		t.Fatal(err)
	}
	return commit
}

func gid(t testing.TB, ch string) []byte {
	b, err := hex.DecodeString(ch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rolesOf(t testing.TB, p *peer, ch string) string {
	t.Helper()
	rs, err := p.Roles(context.Background(), ch)
	if err != nil {
		t.Fatalf("%s roles: %v", p.Identity(), err)
	}
	byName := map[string]channel.Role{}
	for id, r := range rs {
		byName[named(id)] = r
	}
	return fmt.Sprint(byName) // fmt sorts map keys
}

// sameRoles checks that every peer sees want.
func sameRoles(t testing.TB, ch, want string, ps ...*peer) {
	t.Helper()
	for _, p := range ps {
		if got := rolesOf(t, p, ch); got != want {
			t.Fatalf("%s sees roles %s, want %s", p.Identity(), got, want)
		}
	}
}

func epochOf(t testing.TB, p *peer, ch string) uint64 {
	t.Helper()
	return must[uint64](t)(p.Epoch(context.Background(), ch))
}

// refusedByAll delivers msg to every peer and checks each refuses it by
// policy with want, leaving its epoch and roles unchanged.
func refusedByAll(t testing.TB, ch string, msg []byte, want error, ps ...*peer) {
	t.Helper()
	for _, p := range ps {
		e, r := epochOf(t, p, ch), rolesOf(t, p, ch)
		ms := fmt.Sprint(identities(must[[]channel.Member](t)(p.Leaves(context.Background(), ch))))
		_, err := p.Receive(context.Background(), msg)
		if !errors.Is(err, mls.ErrPolicy) || !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want mls.ErrPolicy and %v", p.Identity(), err, want)
		}
		if epochOf(t, p, ch) != e || rolesOf(t, p, ch) != r ||
			fmt.Sprint(identities(must[[]channel.Member](t)(p.Leaves(context.Background(), ch)))) != ms {
			t.Fatalf("%s: state changed by a refused message", p.Identity())
		}
	}
}

func TestRolesCreatorAdminInviteRoles(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, dave := newPeer(t, "alice", nil), newPeer(t, "bob", nil), newPeer(t, "carol", nil), newPeer(t, "dave", nil)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "roles", false)).ID
	if r := must[channel.Role](t)(alice.Role(ctx, ch, uid("alice"))); r != channel.RoleAdmin {
		t.Fatalf("creator is %s", r)
	}
	invite(t, alice, bob, ch)
	receiveKind(t, bob, inviteAs(t, alice, carol, ch, channel.RoleReadOnly), channel.EventMemberJoined)
	// A member may invite members, not admins; a read-only member not at all.
	kp := must[[]byte](t)(dave.GenerateKeyPackage(ctx))
	if _, _, err := bob.CreateInviteAs(ctx, ch, kp, channel.RoleAdmin); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("member invites an admin: %v", err)
	}
	if _, _, err := carol.CreateInvite(ctx, ch, kp); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("read-only invites: %v", err)
	}
	commit := inviteAs(t, bob, dave, ch, channel.RoleMember)
	receiveKind(t, alice, commit, channel.EventMemberJoined)
	receiveKind(t, carol, commit, channel.EventMemberJoined)
	sameRoles(t, ch, "map[alice:admin bob:member carol:read-only dave:member]", alice, bob, carol, dave)
	ms := must[[]channel.Member](t)(dave.Leaves(ctx, ch))
	for _, m := range ms {
		if want := map[string]channel.Role{"alice": "admin", "bob": "member", "carol": "read-only", "dave": "member"}[named(m.Identity)]; m.Role != want {
			t.Fatalf("Members: %s is %q, want %q", m.Identity, m.Role, want)
		}
	}
	// A non-admin cannot remove or change roles (local checks).
	if _, err := bob.RemoveMember(ctx, ch, uid("dave")); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("member removes: %v", err)
	}
	if _, err := bob.Promote(ctx, ch, uid("bob")); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("member promotes itself: %v", err)
	}
}

// A member's removal commit, made with the engine directly (a client that
// skips the checks), is refused by every other member; the group goes on.
func TestRolesRogueRemovalRefused(t *testing.T) {
	ctx := context.Background()
	alice, carol, dave := newPeer(t, "alice", nil), newPeer(t, "carol", nil), newPeer(t, "dave", nil)
	bob := newRoguePeer(t, "bob")
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "rogue", false)).ID
	invite(t, alice, bob, ch)
	receiveKind(t, bob, invite(t, alice, carol, ch), channel.EventMemberJoined)
	c := invite(t, alice, dave, ch)
	receiveKind(t, bob, c, channel.EventMemberJoined)
	receiveKind(t, carol, c, channel.EventMemberJoined)

	var carolLeaf tree.LeafIndex
	for _, m := range must[[]channel.Member](t)(bob.Leaves(ctx, ch)) {
		if m.Identity == uid("carol") {
			carolLeaf = tree.LeafIndex(m.LeafIndex)
		}
	}
	res, err := bob.p.CommitNow(ctx, gid(t, ch), mls.CommitOptions{Remove: []tree.LeafIndex{carolLeaf}})
	if err != nil {
		t.Fatal(err)
	}
	commit := must[[]byte](t)(wire.Marshal(res.Commit))
	refusedByAll(t, ch, commit, channel.ErrPermission, alice, carol, dave)

	// The honest members are intact: a message from alice reaches all.
	ct := send(t, alice, ch, "still here")
	deliver(t, carol, ct, "alice", "still here")
	deliver(t, dave, ct, "alice", "still here")
}

// A member's self-promotion, made with the engine directly, is refused.
func TestRolesRogueRoleChangeRefused(t *testing.T) {
	ctx := context.Background()
	alice, carol := newPeer(t, "alice", nil), newPeer(t, "carol", nil)
	bob := newRoguePeer(t, "bob")
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "rogue", false)).ID
	invite(t, alice, bob, ch)
	receiveKind(t, bob, invite(t, alice, carol, ch), channel.EventMemberJoined)
	// bob's adapter skips the Manager's check when called directly.
	rp := channel.NewMLSGroupProvider(bob.p).(channel.RoleProvider)
	commit, err := rp.CommitRoles(ctx, gid(t, ch), channel.Roles{uid("alice"): channel.RoleAdmin, uid("bob"): channel.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	refusedByAll(t, ch, commit, channel.ErrPermission, alice, carol)
}

func TestRolesPromoteThenRemove(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, ch := threeParty(t)
	c := must[[]byte](t)(alice.Promote(ctx, ch, uid("bob")))
	receiveKind(t, bob, c, channel.EventEpochChanged)
	receiveKind(t, carol, c, channel.EventEpochChanged)
	sameRoles(t, ch, "map[alice:admin bob:admin carol:member]", alice, bob, carol)
	c = must[[]byte](t)(bob.RemoveMember(ctx, ch, uid("carol")))
	ev := receiveKind(t, alice, c, channel.EventMemberRemoved)
	if fmt.Sprint(identities(ev.Removed)) != "[carol]" {
		t.Fatalf("removed %v", identities(ev.Removed))
	}
	receiveKind(t, carol, c, channel.EventRemoved)
	sameRoles(t, ch, "map[alice:admin bob:admin]", alice, bob)
	// An admin may remove another admin while one stays.
	c = must[[]byte](t)(bob.RemoveMember(ctx, ch, uid("alice")))
	receiveKind(t, alice, c, channel.EventRemoved)
	if r := rolesOf(t, bob, ch); r != "map[bob:admin]" {
		t.Fatalf("roles %s", r)
	}
}

func TestRolesLastAdmin(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, ch := threeParty(t)
	if _, err := alice.Demote(ctx, ch, uid("alice")); !errors.Is(err, channel.ErrLastAdmin) {
		t.Fatalf("demoting the last admin: %v", err)
	}
	if _, err := alice.SetRole(ctx, ch, uid("alice"), channel.RoleReadOnly); !errors.Is(err, channel.ErrLastAdmin) {
		t.Fatalf("demoting the last admin: %v", err)
	}
	if _, err := alice.Leave(ctx, ch); !errors.Is(err, channel.ErrLastAdmin) {
		t.Fatalf("last admin leaving: %v", err)
	}
	// The engine refuses it too (the Manager's check skipped).
	rp := channel.NewMLSGroupProvider(alice.p).(channel.RoleProvider)
	if _, err := rp.CommitRoles(ctx, gid(t, ch), channel.Roles{}); !errors.Is(err, mls.ErrPolicy) || !errors.Is(err, channel.ErrLastAdmin) {
		t.Fatalf("engine: %v", err)
	}
	// A rogue last admin's demotion is refused by the others.
	rogue := newRoguePeer(t, "root")
	ch2 := must[*channel.Descriptor](t)(rogue.CreateChannel(ctx, "r", false)).ID
	invite(t, rogue, bob, ch2)
	receiveKind(t, bob, invite(t, rogue, carol, ch2), channel.EventMemberJoined)
	// A rogue last admin's leave proposal is refused on arrival.
	var me tree.LeafIndex
	if err := rogue.p.View(ctx, gid(t, ch2), func(g *mls.Group) error { me = g.OwnLeafIndex(); return nil }); err != nil {
		t.Fatal(err)
	}
	leave, err := rogue.p.Propose(ctx, gid(t, ch2), &mls.Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &mls.Remove{Removed: me}})
	if err != nil {
		t.Fatal(err)
	}
	refusedByAll(t, ch2, must[[]byte](t)(wire.Marshal(leave)), channel.ErrLastAdmin, bob, carol)
	demote := must[[]byte](t)(channel.NewMLSGroupProvider(rogue.p).(channel.RoleProvider).CommitRoles(ctx, gid(t, ch2), channel.Roles{}))
	refusedByAll(t, ch2, demote, channel.ErrLastAdmin, bob, carol)
	// After handing the role on, the admin may leave.
	c := must[[]byte](t)(alice.Promote(ctx, ch, uid("carol")))
	receiveKind(t, bob, c, channel.EventEpochChanged)
	receiveKind(t, carol, c, channel.EventEpochChanged)
	prop := must[[]byte](t)(alice.Leave(ctx, ch))
	receiveKind(t, bob, prop, channel.EventProposal)
	receiveKind(t, carol, prop, channel.EventProposal)
	// bob (a member) commits alice's leave; her admin entry goes with her.
	c = must[[]byte](t)(bob.SelfUpdate(ctx, ch))
	receiveKind(t, carol, c, channel.EventMemberRemoved)
	sameRoles(t, ch, "map[bob:member carol:admin]", bob, carol)
}

// A read-only member's messages are refused by every member.
func TestRolesReadOnlyRefused(t *testing.T) {
	ctx := context.Background()
	alice, bob, erin := newPeer(t, "alice", nil), newPeer(t, "bob", nil), newPeer(t, "erin", nil)
	carol := newRoguePeer(t, "carol")
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "ro", false)).ID
	invite(t, alice, bob, ch)
	receiveKind(t, bob, inviteAs(t, alice, erin, ch, channel.RoleReadOnly), channel.EventMemberJoined)
	c := inviteAs(t, alice, carol, ch, channel.RoleReadOnly)
	receiveKind(t, bob, c, channel.EventMemberJoined)
	receiveKind(t, erin, c, channel.EventMemberJoined)
	// The sender side refuses: the Manager, and an honest engine.
	if _, _, err := erin.SendMessage(ctx, ch, "hi", ""); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("read-only sends: %v", err)
	}
	if _, err := erin.p.Encrypt(ctx, gid(t, ch), []byte("x"), nil); !errors.Is(err, mls.ErrPolicy) {
		t.Fatalf("honest engine encrypts for a read-only member: %v", err)
	}
	// carol's rogue client encrypts anyway: refused by all.
	m, err := carol.p.Encrypt(ctx, gid(t, ch), []byte("let me speak"), nil)
	if err != nil {
		t.Fatal(err)
	}
	refusedByAll(t, ch, must[[]byte](t)(wire.Marshal(m)), channel.ErrPermission, alice, bob, erin)
	// Promoted to member, carol may speak.
	c = must[[]byte](t)(alice.Promote(ctx, ch, uid("carol")))
	for _, p := range []*peer{bob, carol, erin} {
		receiveKind(t, p, c, channel.EventEpochChanged)
	}
	ct := send(t, carol, ch, "thanks")
	deliver(t, alice, ct, "carol", "thanks")
	deliver(t, bob, ct, "carol", "thanks")
	deliver(t, erin, ct, "carol", "thanks")
}

// Roles survive restarts (SQLite) and are identical on every member after
// a chain of commits.
func TestRolesChainAndRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func(name string) *peer {
		p, err := provider.Open(ctx, filepath.Join(dir, name), provider.OpenOptions{Options: channel.ProviderOptions(provider.Options{Name: name})})
		if err != nil {
			t.Fatal(err)
		}
		register(p)
		return &peer{Manager: channel.NewManager(channel.NewMLSGroupProvider(p), p.Store(), channel.Options{}), p: p, st: p.Store()}
	}
	names := []string{"alice", "bob", "carol", "dave", "erin"}
	ps := map[string]*peer{}
	for _, n := range names {
		ps[n] = open(n)
	}
	a, b, c, d, e := ps["alice"], ps["bob"], ps["carol"], ps["dave"], ps["erin"]
	ch := must[*channel.Descriptor](t)(a.CreateChannel(ctx, "chain", false)).ID
	all := func() []*peer {
		var out []*peer
		for _, n := range names {
			if ps[n] == nil {
				continue
			}
			if _, err := ps[n].Channel(ctx, ch); err == nil {
				out = append(out, ps[n])
			}
		}
		return out
	}
	// fanout delivers a commit made by from to every other current member.
	fanout := func(from *peer, c []byte, except ...string) {
		t.Helper()
		for _, p := range all() {
			if p == from || slices_contains(except, p.Identity()) {
				continue
			}
			if _, err := p.Receive(ctx, c); err != nil {
				t.Fatalf("%s receives from %s: %v", p.Identity(), from.Identity(), err)
			}
		}
	}
	inviteAsNoFan := func(inviter, joiner *peer, role channel.Role, others ...*peer) {
		t.Helper()
		commit := inviteAs(t, inviter, joiner, ch, role)
		for _, o := range others {
			if _, err := o.Receive(ctx, commit); err != nil {
				t.Fatal(err)
			}
		}
	}
	inviteAsNoFan(a, b, channel.RoleMember)
	inviteAsNoFan(a, c, channel.RoleReadOnly, b)
	inviteAsNoFan(b, d, channel.RoleMember, a, c)
	fanout(a, must[[]byte](t)(a.Promote(ctx, ch, uid("bob"))))
	inviteAsNoFan(b, e, channel.RoleAdmin, a, c, d)
	fanout(e, must[[]byte](t)(e.Demote(ctx, ch, uid("dave"))))
	fanout(b, must[[]byte](t)(b.Promote(ctx, ch, uid("carol"))))
	fanout(a, must[[]byte](t)(a.SelfUpdate(ctx, ch)))
	rm := must[[]byte](t)(e.RemoveMember(ctx, ch, uid("alice")))
	fanout(e, rm)
	if err := a.p.Close(); err != nil {
		t.Fatal(err)
	}
	ps["alice"] = nil
	want := "map[bob:admin carol:member dave:read-only erin:admin]"
	sameRoles(t, ch, want, all()...)
	// Restart every member.
	for _, n := range names {
		if ps[n] == nil {
			continue
		}
		if err := ps[n].p.Close(); err != nil {
			t.Fatal(err)
		}
		ps[n] = open(n)
	}
	b, c, d, e = ps["bob"], ps["carol"], ps["dave"], ps["erin"]
	sameRoles(t, ch, want, all()...)
	var auths [][]byte
	for _, p := range all() {
		if err := p.p.View(ctx, gid(t, ch), func(g *mls.Group) error {
			auths = append(auths, g.EpochAuthenticator())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range auths[1:] {
		if !bytes.Equal(x, auths[0]) {
			t.Fatal("members disagree on the epoch")
		}
	}
	// Still enforced after the restart.
	if _, _, err := d.SendMessage(ctx, ch, "x", ""); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("read-only after restart: %v", err)
	}
	ct := send(t, c, ch, "after restart")
	deliver(t, b, ct, "carol", "after restart")
	deliver(t, d, ct, "carol", "after restart")
	deliver(t, e, ct, "carol", "after restart")
	for _, p := range all() {
		p.p.Close()
	}
}

func slices_contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// A client whose key package lacks the roles extension (a plain RFC 9420
// client) is refused at invite time, and the channel is unchanged.
func TestRolesPlainClientRefusedAtInvite(t *testing.T) {
	ctx := context.Background()
	alice, bob, _, ch := threeParty(t)
	st := memory.New()
	plain := must[*provider.Provider](t)(provider.New(ctx, st, provider.Options{Name: "plain"}))
	kp := must[[][]byte](t)(plain.GenerateKeyPackages(ctx, 1))[0]
	e := epochOf(t, alice, ch)
	_, _, err := alice.CreateInvite(ctx, ch, kp)
	if !errors.Is(err, channel.ErrRolesUnsupported) {
		t.Fatalf("invite of a plain client: %v", err)
	}
	t.Log(err)
	if epochOf(t, alice, ch) != e {
		t.Fatal("epoch moved")
	}
	// The engine refuses it as well (required_capabilities, RFC 9420 §11.1).
	k, err := mls.UnmarshalMessage(kp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.p.CommitNow(ctx, gid(t, ch), mls.CommitOptions{Add: []*mls.KeyPackage{k.KeyPackage}}); !errors.Is(err, mls.ErrUnsupportedCapability) {
		t.Fatalf("engine add of a plain client: %v", err)
	}
	deliver(t, bob, send(t, alice, ch, "fine"), "alice", "fine")
}

func TestRolesEncoding(t *testing.T) {
	rs := channel.Roles{"alice": channel.RoleAdmin, "zed": channel.RoleReadOnly, "bob": channel.RoleMember}
	b := must[[]byte](t)(channel.MarshalRoles(rs))
	got := must[channel.Roles](t)(channel.UnmarshalRoles(b))
	if fmt.Sprint(got) != "map[alice:admin zed:read-only]" {
		t.Fatalf("round trip %v", got)
	}
	want := []byte{1, 12, 5, 'a', 'l', 'i', 'c', 'e', 1, 3, 'z', 'e', 'd', 3}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding %x, want %x", b, want)
	}
	bad := map[string][]byte{
		"version":    {2, 0},
		"trailing":   append(bytes.Clone(want), 0),
		"member":     {1, 3, 1, 'a', 2},
		"code":       {1, 3, 1, 'a', 9},
		"order":      {1, 6, 1, 'b', 1, 1, 'a', 1},
		"duplicate":  {1, 6, 1, 'a', 1, 1, 'a', 3},
		"empty id":   {1, 2, 0, 1},
		"short":      {1, 5, 1, 'a'},
		"bad utf8":   {1, 3, 1, 0xff, 1},
		"no version": {},
	}
	for name, in := range bad {
		if _, err := channel.UnmarshalRoles(in); !errors.Is(err, channel.ErrInvalidEncoding) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := channel.MarshalRoles(channel.Roles{"a": "boss"}); !errors.Is(err, channel.ErrInvalidRole) {
		t.Errorf("unknown role: %v", err)
	}
}

func FuzzRoles(f *testing.F) {
	f.Add([]byte{1, 12, 5, 'a', 'l', 'i', 'c', 'e', 1, 3, 'z', 'e', 'd', 3})
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := channel.UnmarshalRoles(data)
		if err != nil {
			return
		}
		b, err := channel.MarshalRoles(rs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("not canonical: %x -> %x", data, b)
		}
		rs2, err := channel.UnmarshalRoles(b)
		if err != nil || !rs2.Equal(rs) {
			t.Fatalf("round trip: %v %v", rs2, err)
		}
	})
}
