package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Scenario tests of the group state machine: several members, real crypto,
// every message through its wire encoding.

// TestGroupLifecycle: create, add 1/2/5 in one commit, join (tree in the
// Welcome and out of band), talk, self-update in turn, proposals by
// reference (update + remove) committed by a third member, forward secrecy
// for the removed member.
func TestGroupLifecycle(t *testing.T) {
	for _, id := range gtSuites {
		for _, n := range []int{1, 2, 5} {
			for _, oob := range []bool{false, true} {
				t.Run(fmt.Sprintf("suite=%d/add=%d/oob=%v", id, n, oob), func(t *testing.T) {
					testLifecycle(t, id, n, oob)
				})
			}
		}
	}
}

// TestGroupLifecycleAllSuites runs the short lifecycle under every suite.
func TestGroupLifecycleAllSuites(t *testing.T) {
	for _, id := range gtAllSuites() {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) { testLifecycle(t, id, 2, false) })
	}
}

func testLifecycle(t *testing.T, id suite.ID, n int, oob bool) {
	gg := gtCreate(t, id, Config{RatchetTreeInWelcome: !oob}, 1)
	gg.oob = oob
	res := gg.add(0, gg.newMembers(n)...)
	if len(res.Added) != n {
		t.Fatalf("Added %v", res.Added)
	}
	if res.Commit.WireFormat != WireFormatPrivateMessage {
		t.Fatalf("commit wire format %v", res.Commit.WireFormat)
	}
	gg.check()
	if gg.ms[0].g.Epoch() != 1 || len(gg.ms) != n+1 {
		t.Fatalf("epoch %d, %d members", gg.ms[0].g.Epoch(), len(gg.ms))
	}
	gg.appAll("hello")
	gg.appAll("again") // second generation of every ratchet

	// Every member self-updates (empty commit) in turn.
	for i := range gg.ms {
		before := gg.ms[i].g.Context().TreeHash
		auth := gg.ms[0].g.EpochAuthenticator()
		res := gg.commit(i, CommitOptions{})
		if res.Welcome != nil || res.Commit.PrivateMessage == nil {
			t.Fatal("empty commit: unexpected Welcome or wire format")
		}
		gg.check()
		if bytes.Equal(before, gg.ms[i].g.Context().TreeHash) || bytes.Equal(auth, gg.ms[0].g.EpochAuthenticator()) {
			t.Fatalf("self-update of %d did not change tree hash / authenticator", i)
		}
		gg.app(i, "after update")
	}

	// Grow to at least four members, committed by a member other than the
	// creator (joiners get path secrets of a non-zero committer).
	if len(gg.ms) < 4 {
		gg.add(len(gg.ms)-1, gg.newMembers(4-len(gg.ms))...)
		gg.check()
		gg.appAll("grown")
	}

	// Proposals by reference: A updates, B proposes removing C, D commits.
	A, B, C, D := gg.ms[1], gg.ms[2], gg.ms[3], gg.ms[0]
	oldAKey := gg.ms[0].g.RatchetTree()[A.g.OwnLeafIndex().Node()].Leaf.EncryptionKey
	msg, next, err := A.g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	A.g = next
	gg.deliver(gg.index(A), msg)
	msg, next, err = B.g.Propose(&Proposal{ProposalType: ProposalTypeRemove, Remove: &Remove{Removed: C.g.OwnLeafIndex()}})
	if err != nil {
		t.Fatal(err)
	}
	B.g = next
	gg.deliver(gg.index(B), msg)
	for _, m := range gg.ms {
		if m.g.PendingProposals() != 2 {
			t.Fatalf("%s has %d pending proposals", m.name, m.g.PendingProposals())
		}
	}
	cBefore := C.g
	res = gg.commit(gg.index(D), CommitOptions{})
	if got := len(res.State.tree.Nodes()); got == 0 {
		t.Fatal("empty tree")
	}
	commit := res.Commit
	_ = commit
	if !gtContains(gg.ms, A) || gtContains(gg.ms, C) {
		t.Fatal("membership after the remove")
	}
	if !C.g.Removed() {
		t.Fatal("C is not marked removed")
	}
	gg.check()
	newAKey := gg.ms[0].g.RatchetTree()[A.g.OwnLeafIndex().Node()].Leaf.EncryptionKey
	if bytes.Equal(oldAKey, newAKey) {
		t.Fatal("A's update was not applied")
	}
	for _, m := range gg.ms {
		if m.g.PendingProposals() != 0 {
			t.Fatalf("%s still has pending proposals", m.name)
		}
	}

	// The rest keep talking; C reads nothing, whatever state it keeps.
	gg.appAll("without C")
	am, err := A.g.Encrypt([]byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = C.g.Process(am)
	gtExpectErr(t, err, ErrNotMember)
	_, err = cBefore.Process(am)
	gtExpectErr(t, err, ErrWrongEpoch)
	if _, err := C.g.Encrypt([]byte("x"), nil); err == nil {
		t.Fatal("removed member encrypts")
	}
	gg.deliverApp(gg.index(A), am)
	gg.commit(gg.index(B), CommitOptions{})
	gg.check()
	gg.appAll("final")
}

func gtContains(ms []*gtMember, m *gtMember) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// deliverApp hands an application message of member i to the others.
func (gg *gtGroup) deliverApp(i int, msg *MLSMessage) {
	gg.t.Helper()
	for j, m := range gg.ms {
		if j == i {
			continue
		}
		if _, err := m.g.Process(msg); err != nil {
			gg.t.Fatalf("%s: %v", m.name, err)
		}
	}
}

var _ = tree.LeafIndex(0)
