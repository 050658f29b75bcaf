package tsmls_test

import (
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// Interoperability of SpacePanda's MLS engine (package mls) with ts-mls
// 1.6.4: both implementations in the same groups, exchanging only wire
// bytes. After every step all members must agree on the epoch, the
// epoch_authenticator (RFC 9420 §8.7), an MLS-Exporter output (§8.5) and the
// member list.
//
// Suites 1–3 run every scenario; the mixed scenario also runs in 4–7.

var eiMainSuites = []suite.ID{1, 2, 3}

func eiAllSuites() []suite.ID { return []suite.ID{1, 2, 3, 4, 5, 6, 7} }

func eiGID(format string, args ...any) []byte { return []byte(fmt.Sprintf(format, args...)) }

// TestEngineWelcomeToTSMLS: ts-mls joins a group our engine created, from
// our Welcome, with the tree in the Welcome and out of band; then messages
// and self-updates both ways.
func TestEngineWelcomeToTSMLS(t *testing.T) {
	for _, id := range eiMainSuites {
		for _, inWelcome := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/treeInWelcome=%v", id, inWelcome), func(t *testing.T) {
				t.Parallel()
				alice := eiNewGo(t, "alice", id)
				bob := eiStartTS(t, "bob", id)
				alice.SetHandshake(false, inWelcome)
				gid := eiGID("go-welcome-ts %d %v", id, inWelcome)
				alice.CreateGroup(gid)
				gr := &eiGroup{t: t, members: []eiMember{alice}}
				gr.agree()

				gr.step("alice adds bob")
				gr.commit(alice, alice.Add(bob.KeyPackage()), inWelcome, []eiMember{bob})
				gr.chat()
				gr.step("bob updates")
				gr.commit(bob, bob.Update(), false, nil)
				gr.step("alice updates")
				gr.commit(alice, alice.Update(), false, nil)
				gr.chat()
			})
		}
	}
}

// TestTSMLSWelcomeToEngine: our engine joins a ts-mls group from its
// Welcome (tree out of band, ts-mls's default, and in the GroupInfo).
func TestTSMLSWelcomeToEngine(t *testing.T) {
	for _, id := range eiMainSuites {
		for _, inWelcome := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/treeInWelcome=%v", id, inWelcome), func(t *testing.T) {
				t.Parallel()
				alice := eiStartTS(t, "alice", id)
				bob := eiNewGo(t, "bob", id)
				alice.SetHandshake(false, inWelcome)
				gid := eiGID("ts-welcome-go %d %v", id, inWelcome)
				alice.CreateGroup(gid)
				gr := &eiGroup{t: t, members: []eiMember{alice}}
				gr.agree()

				gr.step("alice adds bob")
				gr.commit(alice, alice.Add(bob.KeyPackage()), inWelcome, []eiMember{bob})
				gr.chat()
				gr.step("bob updates")
				gr.commit(bob, bob.Update(), false, nil)
				gr.step("alice updates")
				gr.commit(alice, alice.Update(), false, nil)
				gr.chat()
			})
		}
	}
}

// eiMixed is the three-to-four-member life cycle with members of both
// implementations:
//
//	alice (SpacePanda) creates and adds bob (ts-mls)
//	bob adds carol (SpacePanda): an add-only commit without path
//	self-updates by all three (empty commits with a path)
//	bob proposes to add dave (ts-mls); alice commits it by reference
//	alice proposes to remove carol; bob commits it (carol is removed)
//	alice proposes to update her leaf; bob commits it
//	alice removes dave by commit
//	bob adds carol back (a new client); carol updates
//	bob proposes to remove alice; carol commits it
//
// with application messages from everyone in between, and checks that
// removed members cannot read what follows. public selects PublicMessage
// for every handshake message, both ways.
func eiMixed(t *testing.T, id suite.ID, public bool) {
	alice, carol := eiNewGo(t, "alice", id), eiNewGo(t, "carol", id)
	bob, dave := eiStartTS(t, "bob", id), eiStartTS(t, "dave", id)
	all := []eiMember{alice, bob, carol, dave}
	for _, m := range all {
		m.SetHandshake(public, false)
	}
	gid := eiGID("mixed %d public=%v", id, public)
	alice.CreateGroup(gid)
	gr := &eiGroup{t: t, members: []eiMember{alice}, public: public}

	gr.step("alice (go) adds bob (ts)")
	gr.commit(alice, alice.Add(bob.KeyPackage()), false, []eiMember{bob})
	gr.step("bob (ts) adds carol (go)")
	gr.commit(bob, bob.Add(carol.KeyPackage()), false, []eiMember{carol})
	gr.wantCommit(0, 1, false) // ts-mls sends add-only commits without a path
	gr.chat()

	for _, m := range []eiMember{alice, bob, carol} {
		gr.step("%s (%s) updates", m.Name(), m.Impl())
		gr.commit(m, m.Update(), false, nil)
		gr.wantCommit(0, 0, true)
	}
	gr.chat()

	gr.step("bob (ts) proposes adding dave (ts), alice (go) commits")
	gr.propose(bob, bob.ProposeAdd(dave.KeyPackage()))
	gr.commit(alice, alice.CommitPending(), false, []eiMember{dave})
	gr.wantCommit(1, 0, true) // our engine includes a path unless NoPath
	gr.chat()

	gr.step("alice (go) proposes removing carol (go), bob (ts) commits")
	gr.propose(alice, alice.ProposeRemove("carol"))
	gr.commit(bob, bob.CommitPending(), false, nil, carol)
	gr.wantCommit(1, 0, true)
	gr.locked(carol)
	gr.chat()

	gr.step("alice (go) proposes an update, bob (ts) commits")
	gr.propose(alice, alice.ProposeUpdate())
	gr.commit(bob, bob.CommitPending(), false, nil)
	gr.wantCommit(1, 0, true)
	gr.chat()

	gr.step("alice (go) removes dave (ts)")
	gr.commit(alice, alice.Remove("dave"), false, nil, dave)
	gr.locked(dave)
	gr.chat()

	gr.step("bob (ts) adds carol (go) back with a new client")
	carol2 := eiNewGo(t, "carol", id)
	carol2.SetHandshake(public, false)
	gr.commit(bob, bob.Add(carol2.KeyPackage()), false, []eiMember{carol2})
	gr.wantCommit(0, 1, false)
	gr.step("carol (go) updates")
	gr.commit(carol2, carol2.Update(), false, nil)
	gr.chat()

	gr.step("bob (ts) proposes removing alice (go), carol (go) commits")
	gr.propose(bob, bob.ProposeRemove("alice"))
	gr.commit(carol2, carol2.CommitPending(), false, nil, alice)
	gr.wantCommit(1, 0, true) // as alice decoded her removal
	gr.locked(alice)
	gr.chat()
	t.Logf("%v public=%v: %d steps, final epoch %d", id, public, len(gr.log), gr.epoch)
}

// TestEngineMixedGroup runs the mixed life cycle with PrivateMessage and
// PublicMessage handshakes in suites 1–3, and in suites 4–7 with one of
// them each.
func TestEngineMixedGroup(t *testing.T) {
	for _, id := range eiAllSuites() {
		for _, public := range []bool{false, true} {
			if id > 3 && public != (id%2 == 0) {
				continue
			}
			t.Run(fmt.Sprintf("%v/public=%v", id, public), func(t *testing.T) {
				t.Parallel()
				eiMixed(t, id, public)
			})
		}
	}
}

// TestEngineExternalJoin: ts-mls joins our group by external commit from
// our GroupInfo (external_pub, tree in the GroupInfo), and our engine joins
// a ts-mls group from its GroupInfo; the existing members of both
// implementations process the external commits.
func TestEngineExternalJoin(t *testing.T) {
	for _, id := range eiMainSuites {
		t.Run(id.String(), func(t *testing.T) {
			t.Parallel()
			alice, carol := eiNewGo(t, "alice", id), eiNewGo(t, "carol", id)
			bob, dave := eiStartTS(t, "bob", id), eiStartTS(t, "dave", id)
			gid := eiGID("external %d", id)
			alice.CreateGroup(gid)
			gr := &eiGroup{t: t, members: []eiMember{alice}}

			gr.step("dave (ts) joins alice's (go) group by external commit")
			gr.external(dave, dave.ExternalJoin(alice.GroupInfo()))
			gr.wantCommit(0, 1, true) // ExternalInit by value, path required (§12.4.3.2)
			gr.chat()

			gr.step("alice (go) adds bob (ts)")
			gr.commit(alice, alice.Add(bob.KeyPackage()), false, []eiMember{bob})

			gr.step("carol (go) joins by external commit from bob's (ts) GroupInfo")
			gr.external(carol, carol.ExternalJoin(bob.GroupInfo()))
			gr.chat()
			gr.step("bob (ts) updates")
			gr.commit(bob, bob.Update(), false, nil)
			gr.chat()
		})
	}
}
