package tsmls_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// Interoperability of SpacePanda's channel layer (channel.Manager over the
// provider and engine) with ts-mls 1.6.4, a plain RFC 9420 client that
// knows nothing of channels: invites, joins, chat both ways, commits,
// self-updates and removals each side makes and the other processes. After
// every commit all members agree on the epoch, epoch_authenticator,
// MLS-Exporter output and member list (eiGroup.agree), and our members'
// histories are checked at the end.
//
// Channels that ts-mls joins are made without roles (channel.Options
// NoRoles): a channel with roles requires the roles extension of every
// member, which ts-mls cannot list, and refuses it at invite time
// (channel/roles_tsmls_test.go).

var chSuites = []suite.ID{1, 2, 3}

// TestChannelWelcomeToTSMLS: ts-mls joins our channel from our invite's
// Welcome and ratchet tree; our chat messages reach it as application data
// in our ChatMessage encoding; its plain application data lands in our
// history as raw text under its authenticated identity.
func TestChannelWelcomeToTSMLS(t *testing.T) {
	for _, id := range eiSuites(chSuites) {
		t.Run(id.String(), func(t *testing.T) {
			t.Parallel()
			alice := chNewGo(t, "alice", id, true)
			bob := eiStartTS(t, "bob", id)
			alice.CreateGroup(nil)
			if _, err := alice.m.Roles(context.Background(), alice.ch); !errors.Is(err, channel.ErrNoRoles) {
				t.Fatalf("a NoRoles channel's roles: %v", err)
			}
			gr := &eiGroup{t: t, members: []eiMember{alice}}
			gr.agree()

			gr.step("alice invites bob")
			gr.commit(alice, alice.Add(bob.KeyPackage()), false, []eiMember{bob})
			if string(bob.gid) != string(alice.gid) {
				t.Fatalf("ts-mls joined group %x, channel group %x", bob.gid, alice.gid)
			}
			chChat(gr)
			gr.step("bob updates")
			gr.commit(bob, bob.Update(), false, nil)
			chEvent(t, alice, channel.EventEpochChanged, nil, nil)
			gr.step("alice updates")
			gr.commit(alice, alice.Update(), false, nil)
			chChat(gr)
			// A reply-to and a non-ASCII body survive the trip.
			ctx := context.Background()
			first, _, err := alice.m.SendMessage(ctx, alice.ch, "first", "")
			if err != nil {
				t.Fatal(err)
			}
			_, ct, err := alice.m.SendMessage(ctx, alice.ch, "réponse ✓", first)
			if err != nil {
				t.Fatal(err)
			}
			alice.want = append(alice.want, chHist{Sender: alice.Name(), Body: "first"}, chHist{Sender: alice.Name(), Body: "réponse ✓"})
			got, err := bob.p.Process(bob.gid, ct)
			if err != nil {
				t.Fatal(err)
			}
			cm, err := channel.UnmarshalChat(got.Data)
			if err != nil || string(cm.Body) != "réponse ✓" || cm.ReplyTo != first {
				t.Fatalf("ts-mls got %+v, %v", cm, err)
			}
			alice.checkHistory()
		})
	}
}

// TestTSMLSWelcomeToChannel: we join a ts-mls group from its bare Welcome
// (JoinWelcome, tree out of band and in the GroupInfo); the channel is
// named by the group id in hex; messages both ways; the ts-mls creator
// updates and we self-update.
func TestTSMLSWelcomeToChannel(t *testing.T) {
	for _, id := range eiSuites(chSuites) {
		for _, inWelcome := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/treeInWelcome=%v", id, inWelcome), func(t *testing.T) {
				t.Parallel()
				alice := eiStartTS(t, "alice", id)
				bob := chNewGo(t, "bob", id, true)
				alice.SetHandshake(false, inWelcome)
				gid := eiGID("ts-channel %d %v", id, inWelcome)
				alice.CreateGroup(gid)
				gr := &eiGroup{t: t, members: []eiMember{alice}}
				gr.agree()

				gr.step("alice adds bob")
				gr.commit(alice, alice.Add(bob.KeyPackage()), inWelcome, []eiMember{bob})
				d, err := bob.m.Channel(context.Background(), bob.ch)
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("%x", gid); d.ID != want || d.Name != want || string(d.GroupID) != string(gid) {
					t.Fatalf("channel %+v, want id and name %s", d, want)
				}
				if _, err := bob.m.Roles(context.Background(), bob.ch); !errors.Is(err, channel.ErrNoRoles) {
					t.Fatalf("roles of a ts-mls group: %v", err)
				}
				chChat(gr)
				gr.step("alice updates")
				gr.commit(alice, alice.Update(), false, nil)
				gr.step("bob updates")
				gr.commit(bob, bob.Update(), false, nil)
				chChat(gr)
				bob.checkHistory()
			})
		}
	}
}

// TestChannelMixedThree: our channel with a ts-mls member and another of
// ours (on a provider without the roles capability); the ts-mls member
// processes our second invite's commit, everyone self-updates, ts-mls
// removes one of ours, who can no longer read, then we remove ts-mls.
func TestChannelMixedThree(t *testing.T) {
	for _, id := range eiSuites(chSuites) {
		t.Run(id.String(), func(t *testing.T) {
			t.Parallel()
			alice := chNewGo(t, "alice", id, true)
			bob := eiStartTS(t, "bob", id)
			carol := chNewGo(t, "carol", id, false)
			alice.CreateGroup(nil)
			gr := &eiGroup{t: t, members: []eiMember{alice}}

			gr.step("alice invites bob")
			gr.commit(alice, alice.Add(bob.KeyPackage()), false, []eiMember{bob})
			gr.step("alice invites carol")
			gr.commit(alice, alice.Add(carol.KeyPackage()), false, []eiMember{carol})
			chChat(gr)
			gr.step("bob updates")
			gr.commit(bob, bob.Update(), false, nil)
			chEvent(t, alice, channel.EventEpochChanged, nil, nil)
			chEvent(t, carol, channel.EventEpochChanged, nil, nil)
			gr.step("carol updates")
			gr.commit(carol, carol.Update(), false, nil)
			gr.step("alice updates")
			gr.commit(alice, alice.Update(), false, nil)
			chChat(gr)

			gr.step("bob removes carol")
			gr.commit(bob, bob.Remove(carol.Name()), false, nil, carol)
			chEvent(t, alice, channel.EventMemberRemoved, nil, []string{carol.Name()})
			chEvent(t, carol, channel.EventRemoved, nil, []string{carol.Name()})
			chLocked(gr, carol)
			chChat(gr)
			gr.step("alice removes bob")
			gr.commit(alice, alice.Remove(bob.Name()), false, nil, bob)
			chLocked(gr, bob, carol)
			alice.checkHistory()
			carol.checkHistory() // kept after removal, nothing after it
		})
	}
}

// TestChannelTwoTSMLS: a ts-mls group we join, where we invite a second
// ts-mls member with CreateInvite (the creator processes our commit);
// updates all round; we remove the ts-mls creator, then the other ts-mls
// member removes us.
func TestChannelTwoTSMLS(t *testing.T) {
	for _, id := range eiSuites(chSuites) {
		t.Run(id.String(), func(t *testing.T) {
			t.Parallel()
			alice := eiStartTS(t, "alice", id)
			bob := chNewGo(t, "bob", id, true)
			carol := eiStartTS(t, "carol", id)
			alice.CreateGroup(eiGID("two ts-mls %d", id))
			gr := &eiGroup{t: t, members: []eiMember{alice}}

			gr.step("alice adds bob")
			gr.commit(alice, alice.Add(bob.KeyPackage()), false, []eiMember{bob})
			gr.step("bob invites carol")
			gr.commit(bob, bob.Add(carol.KeyPackage()), false, []eiMember{carol})
			chChat(gr)
			gr.step("carol updates")
			gr.commit(carol, carol.Update(), false, nil)
			gr.step("bob updates")
			gr.commit(bob, bob.Update(), false, nil)
			gr.step("alice updates")
			gr.commit(alice, alice.Update(), false, nil)
			chEvent(t, bob, channel.EventEpochChanged, nil, nil)
			chChat(gr)

			gr.step("bob removes alice")
			gr.commit(bob, bob.Remove(alice.Name()), false, nil, alice)
			chLocked(gr, alice)
			chChat(gr)
			gr.step("carol removes bob")
			gr.commit(carol, carol.Remove(bob.Name()), false, nil, bob)
			chEvent(t, bob, channel.EventRemoved, nil, []string{bob.Name()})
			chLocked(gr, bob, alice)
			bob.checkHistory()
		})
	}
}
