package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
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
	msg, next, err = B.g.Propose(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: C.g.OwnLeafIndex()}})
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
	// Relabelled with C's epoch, the message still does not open: the new
	// epoch's keys are unknown to C.
	relabelled := gtCloneMsg(t, am)
	relabelled.PrivateMessage.Epoch = cBefore.Epoch()
	_, err = cBefore.Process(relabelled)
	gtExpectErr(t, err, ErrDecryption)
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
func (gg *gtGroup) deliverApp(i int, msg *Message) {
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

// TestGroupAddWithoutPath: an Add-only commit may omit the path; a Remove
// forces one even with NoPath.
func TestGroupAddWithoutPath(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			gg.commit(1, CommitOptions{NoPath: true}, gg.newMembers(2)...)
			if c := gtCommitOf(t, gg); c.Path != nil {
				t.Fatal("NoPath add commit carries a path")
			}
			gg.check()
			gg.appAll("no path")
			gg.commit(2, CommitOptions{NoPath: true, Remove: []tree.LeafIndex{gg.ms[4].g.OwnLeafIndex()}})
			if c := gtCommitOf(t, gg); c.Path == nil {
				t.Fatal("remove commit without a path")
			}
			gg.check()
			gg.appAll("after remove")
		})
	}
}

// gtCommitOf returns the Commit of res as the other members decoded it.
func gtCommitOf(t *testing.T, gg *gtGroup) *Commit {
	t.Helper()
	if gg.lastCommit == nil {
		t.Fatal("no commit processed")
	}
	return gg.lastCommit
}

// TestGroupPSK: an external PSK injected by a commit that also adds a
// member; the joiner needs it too. A member without it rejects the commit.
func TestGroupPSK(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			secret := []byte("external psk secret 0123456789ab")
			psks := func(pid *schedule.PreSharedKeyID) ([]byte, error) {
				if pid.Type == schedule.PSKTypeExternal && string(pid.PSKID) == "psk-1" {
					return secret, nil
				}
				return nil, fmt.Errorf("unknown psk %q", pid.PSKID)
			}
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true, PSKs: psks}, 3)
			noPSK := gg.ms[2]
			noPSK.g.cfg.PSKs = nil // this member does not hold the PSK
			res, err := gg.ms[0].g.Commit(CommitOptions{PSKs: []schedule.PreSharedKeyID{{Type: schedule.PSKTypeExternal, PSKID: []byte("psk-1")}}})
			if err != nil {
				t.Fatal(err)
			}
			snap := gtSnapshot(noPSK.g)
			_, err = noPSK.g.Process(res.Commit)
			gtExpectErr(t, err, ErrMissingPSK)
			if !snap.equal(gtSnapshot(noPSK.g)) {
				t.Fatal("state changed")
			}
			noPSK.g.cfg.PSKs = psks
			j := gg.newMembers(1)
			gg.commit(1, CommitOptions{PSKs: []schedule.PreSharedKeyID{{Type: schedule.PSKTypeExternal, PSKID: []byte("psk-1")}}}, j...)
			gg.check()
			gg.appAll("psk")
			// A joiner without the PSK cannot join.
			j2 := gg.newMembers(1)[0]
			res = gg.commit(0, CommitOptions{Add: []*KeyPackage{j2.kp}, PSKs: []schedule.PreSharedKeyID{{Type: schedule.PSKTypeExternal, PSKID: []byte("psk-1")}}})
			cfg := gg.cfg
			cfg.PSKs = nil
			_, err = JoinFromWelcome(res.Welcome, nil, j2.finder(t), cfg)
			gtExpectErr(t, err, ErrMissingPSK)
			gg.join(res, j2)
			gg.check()
			gg.appAll("all")
		})
	}
}

func gtRequiredCaps(t testing.TB, rc tree.RequiredCapabilities) tree.Extension {
	t.Helper()
	b, err := wire.Marshal(&rc)
	if err != nil {
		t.Fatal(err)
	}
	return tree.Extension{ExtensionType: tree.ExtensionTypeRequiredCapabilities, ExtensionData: b}
}

// TestGroupContextExtensions: required_capabilities installed by a
// GroupContextExtensions commit; then a KeyPackage lacking the capability
// cannot be added, and a requirement a member lacks cannot be installed.
func TestGroupContextExtensions(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			rc := gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{tree.ExtensionTypeLastResort},
				CredentialTypes: []tree.CredentialType{tree.CredentialTypeBasic}})
			gg.commit(1, CommitOptions{Extensions: tree.Extensions{rc}})
			gg.check()
			if ext := gg.ms[2].g.Context().Extensions.Find(tree.ExtensionTypeRequiredCapabilities); ext == nil || !bytes.Equal(ext.ExtensionData, rc.ExtensionData) {
				t.Fatal("required_capabilities not installed")
			}
			// A joiner that supports it can join (and validates the context).
			gg.add(0, gg.newMembers(1)...)
			gg.check()

			// A KeyPackage without last_resort in its capabilities.
			weak := gg.newMembers(1)[0]
			weak.newKeyPackage(t, KeyPackageOptions{Capabilities: &tree.Capabilities{}})
			_, err := gg.ms[0].g.Commit(CommitOptions{Add: []*KeyPackage{weak.kp}})
			gtExpectErr(t, err, ErrInvalidProposal)
			gtExpectErr(t, err, ErrUnsupportedCapability)

			// A requirement nobody supports cannot be committed.
			bad := gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{0x7a7a}})
			_, err = gg.ms[0].g.Commit(CommitOptions{Extensions: tree.Extensions{bad}})
			gtExpectErr(t, err, ErrInvalidProposal)
			gtExpectErr(t, err, ErrUnsupportedCapability)
			// As a proposal it is cached, sent or received (whether members
			// support it is judged in the commit that includes it, §12.1.7),
			// and the default commit leaves it out.
			badP := &Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions,
				GroupContextExtensions: &GroupContextExtensions{Extensions: tree.Extensions{bad}}}
			m, next, err := gg.ms[0].g.Propose(badP)
			if err != nil {
				t.Fatal(err)
			}
			gg.ms[0].g = next
			gg.deliver(0, m)
			// A commit referencing it is refused by every member.
			c := gg.ms[2].g
			forged := gtForgeCommit(t, c, byRef(c.pending[0].ref))
			for _, r := range []int{0, 1} {
				gtReject(t, gg.ms[r].g, forged, ErrUnsupportedCapability)
			}
			gg.commit(1, CommitOptions{})
			gg.check()
			gg.appAll("still fine")
		})
	}
}

// gtExternalSender installs an external_senders extension with one sender
// and returns its signer.
func gtExternalSender(t testing.TB, gg *gtGroup) *suite.Signer {
	t.Helper()
	es := gtSigner(t, gg.s)
	b, err := wire.Marshal(tree.ExternalSenders{{SignatureKey: es.PublicKey(), Credential: tree.NewBasicCredential([]byte("delivery service"))}})
	if err != nil {
		t.Fatal(err)
	}
	gg.commit(0, CommitOptions{Extensions: tree.Extensions{{ExtensionType: tree.ExtensionTypeExternalSenders, ExtensionData: b}}})
	gg.check()
	return es
}

// gtExternalProposal builds a PublicMessage proposal from external sender
// index idx of the group g is in.
func gtExternalProposal(t testing.TB, g *Group, es *suite.Signer, idx uint32, p *Proposal) *Message {
	t.Helper()
	return vtOutsiderProposal(t, g, es, Sender{SenderType: SenderTypeExternal, SenderIndex: idx}, p)
}

// deliverAll hands msg (from outside the group) to every member.
func (gg *gtGroup) deliverAll(msg *Message) []*Processed {
	gg.t.Helper()
	b := gtWire(gg.t, msg)
	var out []*Processed
	for _, m := range gg.ms {
		p, err := m.g.ProcessBytes(b)
		if err != nil {
			gg.t.Fatalf("%s: %v", m.name, err)
		}
		out = append(out, p)
		m.g = p.State
	}
	return out
}

// TestGroupExternalProposals: an external sender (external_senders
// extension) proposes a Remove and an Add; a member commits them by
// reference. Bad external proposals are refused.
func TestGroupExternalProposals(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 4)
			es := gtExternalSender(t, gg)
			victim := gg.ms[3]
			ps := gg.deliverAll(gtExternalProposal(t, gg.ms[0].g, es, 0,
				&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: victim.g.OwnLeafIndex()}}))
			if ps[0].Sender.SenderType != SenderTypeExternal || ps[0].Proposal.ProposalType != tree.ProposalTypeRemove {
				t.Fatalf("processed %+v", ps[0])
			}
			joiner := gg.newMembers(1)[0]
			gg.deliverAll(gtExternalProposal(t, gg.ms[0].g, es, 0,
				&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *joiner.kp}}))
			res := gg.commit(1, CommitOptions{})
			gg.join(res, joiner)
			if !victim.g.Removed() || gtContains(gg.ms, victim) {
				t.Fatal("victim not removed")
			}
			gg.check()
			gg.appAll("after external proposals")

			g := gg.ms[0].g
			rm := &Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: gg.ms[1].g.OwnLeafIndex()}}
			for _, tc := range []struct {
				name string
				msg  *Message
				want error
			}{
				{"unknown sender index", gtExternalProposal(t, g, es, 1, rm), ErrUnknownSender},
				{"wrong key", gtExternalProposal(t, g, gtSigner(t, gg.s), 0, rm), ErrInvalidSignature},
				{"update from external", gtExternalProposal(t, g, es, 0, &Proposal{ProposalType: tree.ProposalTypeUpdate,
					Update: &Update{LeafNode: *g.tree.Leaf(0)}}), ErrInvalidProposal},
			} {
				t.Run(tc.name, func(t *testing.T) {
					gtRejects(t, g, tc.msg, tc.want)
				})
			}
		})
	}
}

// gtRejects asserts g rejects msg with want and is unchanged.
func gtRejects(t testing.TB, g *Group, msg *Message, want error) {
	t.Helper()
	snap := gtSnapshot(g)
	b := gtWire(t, msg)
	_, err := g.ProcessBytes(b)
	gtExpectErr(t, err, want)
	if !snap.equal(gtSnapshot(g)) {
		t.Fatal("state changed by a rejected message")
	}
}

// TestGroupExternalCommit: a non-member joins from GroupInfo (tree in it,
// or out of band); a member who lost its state resyncs (its old leaf is
// removed by the same external commit).
func TestGroupExternalCommit(t *testing.T) {
	for _, id := range gtSuites {
		for _, withTree := range []bool{true, false} {
			t.Run(fmt.Sprintf("suite=%d/tree-in-groupinfo=%v", id, withTree), func(t *testing.T) {
				gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
				gg.appAll("before")
				newcomer := gtNewMember(t, gg.s, "external joiner")
				gi := gtGroupInfo(t, gg.ms[1].g, withTree)
				var rt tree.RatchetTreeNodes
				if !withTree {
					rt = gg.ms[1].g.RatchetTree()
				}
				msg, g, err := JoinByExternalCommit(gg.s, newcomer.signer, gi, rt, LeafOptions{Credential: newcomer.cred}, gg.cfg)
				if err != nil {
					t.Fatal(err)
				}
				if msg.WireFormat != WireFormatPublicMessage || msg.PublicMessage.Content.Sender.SenderType != SenderTypeNewMemberCommit {
					t.Fatalf("external commit: %v from %v", msg.WireFormat, msg.PublicMessage.Content.Sender)
				}
				ps := gg.deliverAll(msg)
				if ps[0].Sender.SenderType != SenderTypeNewMemberCommit {
					t.Fatalf("sender %v", ps[0].Sender)
				}
				newcomer.g = g
				gg.ms = append(gg.ms, newcomer)
				gg.check()
				gg.appAll("with the newcomer")
				gg.commit(3, CommitOptions{})
				gg.check()

				// Resync: member 1 lost its state and rejoins with the same key.
				lost := gg.ms[1]
				oldLeaf := lost.g.OwnLeafIndex()
				gi = gtGroupInfo(t, gg.ms[0].g, true)
				msg, g, err = JoinByExternalCommit(gg.s, lost.signer, gi, nil, LeafOptions{Credential: lost.cred}, gg.cfg)
				if err != nil {
					t.Fatal(err)
				}
				gg.ms = append(gg.ms[:1], gg.ms[2:]...)
				gg.deliverAll(msg)
				lost.g = g
				gg.ms = append(gg.ms, lost)
				if lost.g.OwnLeafIndex() != oldLeaf {
					t.Fatalf("resync took leaf %d, old leaf %d was free", lost.g.OwnLeafIndex(), oldLeaf)
				}
				gg.check()
				gg.appAll("after resync")
				gg.commit(0, CommitOptions{})
				gg.check()
			})
		}
	}
}

// gtGroupInfo returns g's GroupInfo after a trip through the wire.
func gtGroupInfo(t testing.TB, g *Group, withTree bool) *GroupInfo {
	t.Helper()
	gi, err := g.GroupInfo(withTree)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.Marshal(gi)
	if err != nil {
		t.Fatal(err)
	}
	var out GroupInfo
	if err := wire.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// TestGroupHandshakeWireFormat: proposals and commits as PublicMessage or
// PrivateMessage, per Config.HandshakeAsPublic; both work end to end.
func TestGroupHandshakeWireFormat(t *testing.T) {
	for _, id := range gtSuites {
		for _, public := range []bool{false, true} {
			t.Run(fmt.Sprintf("suite=%d/public=%v", id, public), func(t *testing.T) {
				want := WireFormatPrivateMessage
				if public {
					want = WireFormatPublicMessage
				}
				gg := gtCreate(t, id, Config{HandshakeAsPublic: public, RatchetTreeInWelcome: true}, 3)
				res := gg.commit(1, CommitOptions{}, gg.newMembers(1)...)
				if res.Commit.WireFormat != want {
					t.Fatalf("commit as %v", res.Commit.WireFormat)
				}
				msg, next, err := gg.ms[2].g.ProposeUpdate()
				if err != nil {
					t.Fatal(err)
				}
				if msg.WireFormat != want {
					t.Fatalf("proposal as %v", msg.WireFormat)
				}
				gg.ms[2].g = next
				gg.deliver(2, msg)
				res = gg.commit(3, CommitOptions{Remove: []tree.LeafIndex{gg.ms[0].g.OwnLeafIndex()}})
				if res.Commit.WireFormat != want {
					t.Fatalf("commit as %v", res.Commit.WireFormat)
				}
				gg.check()
				gg.appAll("talk")
			})
		}
	}
}

// TestGroupPadding: with Config.PaddingBlock, every PrivateMessage content
// (application or handshake) is padded to a multiple of the block, so the
// ciphertext length is block-aligned plus the AEAD tag.
func TestGroupPadding(t *testing.T) {
	const tagLen = 16 // AES-GCM and ChaCha20-Poly1305
	for _, id := range gtSuites {
		for _, block := range []int{32, 256} {
			t.Run(fmt.Sprintf("suite=%d/block=%d", id, block), func(t *testing.T) {
				gg := gtCreate(t, id, Config{PaddingBlock: block, RatchetTreeInWelcome: true}, 3)
				sizes := map[int]bool{}
				for n := 0; n < 300; n += 7 {
					msg, err := gg.ms[0].g.Encrypt(bytes.Repeat([]byte{'a'}, n), nil)
					if err != nil {
						t.Fatal(err)
					}
					ct := len(msg.PrivateMessage.Ciphertext) - tagLen
					if ct%block != 0 {
						t.Fatalf("%d bytes of data: content of %d bytes, not a multiple of %d", n, ct, block)
					}
					sizes[ct] = true
					p, err := gg.ms[1].g.Process(msg)
					if err != nil || len(p.ApplicationData) != n {
						t.Fatalf("padded message: %v", err)
					}
				}
				if len(sizes) > 300/block+2 {
					t.Fatalf("%d distinct sizes", len(sizes))
				}
				res := gg.commit(2, CommitOptions{})
				if ct := len(res.Commit.PrivateMessage.Ciphertext) - tagLen; ct%block != 0 {
					t.Fatalf("commit content of %d bytes, not a multiple of %d", ct, block)
				}
				gg.check()
				gg.appAll("padded")
			})
		}
	}
}

// TestGroupCommitFiltersPendingProposals: the default commit takes every
// pending proposal by reference; when pending proposals conflict (the same
// client added twice by two members, an Add duplicated by value, removes of
// one leaf by two members, an update of a removed leaf) the committer must
// still produce a valid commit (RFC 9420 §12.2: the commit must be valid;
// §12.4: include all *valid* pending proposals).
func TestGroupCommitFiltersPendingProposals(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 5)
			j := gg.newMembers(1)[0]
			add := &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *j.kp}}
			for _, i := range []int{1, 2} { // two members propose the same Add
				m, next, err := gg.ms[i].g.Propose(add)
				if err != nil {
					t.Fatal(err)
				}
				gg.ms[i].g = next
				gg.deliver(i, m)
			}
			victim := gg.ms[4]
			rm := &Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: victim.g.OwnLeafIndex()}}
			for _, i := range []int{1, 3} { // two members propose the same Remove
				m, next, err := gg.ms[i].g.Propose(rm)
				if err != nil {
					t.Fatal(err)
				}
				gg.ms[i].g = next
				gg.deliver(i, m)
			}
			gg.deliver(4, gtProposeUpdate(t, gg, 4)) // the victim updates
			res := gg.commit(0, CommitOptions{})
			gg.join(res, j)
			if len(res.Added) != 1 || !victim.g.Removed() {
				t.Fatalf("added %v, victim removed %v", res.Added, victim.g.Removed())
			}
			gg.check()
			gg.appAll("filtered")

			// An Add proposed by one member and committed by value by another.
			j2 := gg.newMembers(1)[0]
			m, next, err := gg.ms[1].g.Propose(&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *j2.kp}})
			if err != nil {
				t.Fatal(err)
			}
			gg.ms[1].g = next
			gg.deliver(1, m)
			res = gg.commit(2, CommitOptions{}, j2)
			if len(res.Added) != 1 {
				t.Fatalf("added %v", res.Added)
			}
			gg.check()
			gg.appAll("after by-value duplicate")

			// Two members propose GroupContextExtensions: the last one wins.
			var exts []tree.Extensions
			for _, i := range []int{1, 2} {
				e := tree.Extensions{gtRequiredCaps(t, tree.RequiredCapabilities{CredentialTypes: []tree.CredentialType{tree.CredentialTypeBasic},
					ExtensionTypes: []tree.ExtensionType{tree.ExtensionTypeLastResort}[:i-1]})}
				exts = append(exts, e)
				m, next, err := gg.ms[i].g.Propose(&Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions,
					GroupContextExtensions: &GroupContextExtensions{Extensions: e}})
				if err != nil {
					t.Fatal(err)
				}
				gg.ms[i].g = next
				gg.deliver(i, m)
			}
			gg.commit(0, CommitOptions{})
			gg.check()
			got, _ := wire.Marshal(gg.ms[0].g.Context().Extensions)
			want, _ := wire.Marshal(exts[1])
			if !bytes.Equal(got, want) {
				t.Fatal("the most recent GroupContextExtensions was not the one committed")
			}
			gg.appAll("after two GroupContextExtensions")
		})
	}
}

// TestGroupPendingPSKUnknownToCommitter: a member proposes a PSK the
// committer does not hold; the committer's default commit must still work
// (it cannot commit that proposal: §12.2 invalid for it).
func TestGroupPendingPSKUnknownToCommitter(t *testing.T) {
	secret := []byte("only member 1 and 2 know this one")
	has := func(pid *schedule.PreSharedKeyID) ([]byte, error) {
		if string(pid.PSKID) == "psk-x" {
			return secret, nil
		}
		return nil, fmt.Errorf("unknown psk")
	}
	gg := gtCreate(t, 1, Config{RatchetTreeInWelcome: true}, 3)
	gg.ms[1].g.cfg.PSKs = has
	gg.ms[2].g.cfg.PSKs = has
	nonce := bytes.Repeat([]byte{1}, gg.s.HashSize())
	m, next, err := gg.ms[1].g.Propose(&Proposal{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: schedule.PreSharedKeyID{
		Type: schedule.PSKTypeExternal, PSKID: []byte("psk-x"), Nonce: nonce}}})
	if err != nil {
		t.Fatal(err)
	}
	gg.ms[1].g = next
	gg.deliver(1, m)
	gg.commit(0, CommitOptions{}) // member 0 lacks the PSK
	gg.check()
	gg.appAll("ok")
	// And a committer that holds it includes it.
	gg.deliver(1, func() *Message {
		m, next, err := gg.ms[1].g.Propose(&Proposal{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: schedule.PreSharedKeyID{
			Type: schedule.PSKTypeExternal, PSKID: []byte("psk-x"), Nonce: nonce}}})
		if err != nil {
			t.Fatal(err)
		}
		gg.ms[1].g = next
		return m
	}())
	gg.ms[0].g.cfg.PSKs = has
	gg.commit(2, CommitOptions{})
	if len(gg.lastCommit.Proposals) != 1 {
		t.Fatalf("commit has %d proposals", len(gg.lastCommit.Proposals))
	}
	gg.check()
}

// TestGroupReInit: a committed ReInit freezes the group: no more sending.
func TestGroupReInit(t *testing.T) {
	gg := gtCreate(t, 2, Config{RatchetTreeInWelcome: true}, 3)
	ri := &ReInit{GroupID: []byte("new group"), Version: tree.ProtocolVersionMLS10, CipherSuite: 1, Extensions: tree.Extensions{}}
	gg.commit(1, CommitOptions{ReInit: ri})
	gg.check()
	for _, m := range gg.ms {
		if m.g.ReInitPending() == nil {
			t.Fatalf("%s: no ReInit pending", m.name)
		}
		_, err := m.g.Encrypt([]byte("x"), nil)
		gtExpectErr(t, err, ErrReInitPending)
		_, err = m.g.Commit(CommitOptions{})
		gtExpectErr(t, err, ErrReInitPending)
	}
}

// TestGroupExternalCommitCannotEvictOthers: an external joiner may remove
// only its own old leaf (RFC 9420 §12.4.3.2: the new leaf must meet the
// criteria of an Update of the removed leaf, i.e. the same client).
func TestGroupExternalCommitCannotEvictOthers(t *testing.T) {
	gg := gtCreate(t, 1, Config{RatchetTreeInWelcome: true}, 3)
	mallory := gtNewMember(t, gg.s, "mallory")
	gi := gtGroupInfo(t, gg.ms[0].g, true)
	victim := gg.ms[2].g.OwnLeafIndex()
	_, _, err := joinByExternalCommit(gg.s, mallory.signer, gi, nil, LeafOptions{Credential: mallory.cred}, gg.cfg, externalCommitTweaks{remove: &victim})
	gtExpectErr(t, err, ErrInvalidCredential) // the joiner checks itself as the members will
	bad, _, err := joinByExternalCommit(gg.s, mallory.signer, gi, nil, LeafOptions{Credential: mallory.cred}, gg.cfg, externalCommitTweaks{remove: &victim, noSelf: true})
	if err != nil {
		t.Fatal(err)
	}
	gtReject(t, gg.ms[0].g, bad, ErrInvalidCommit)
	// The same client (same credential, new signature key) may resync.
	again := gtNewMember(t, gg.s, string(gg.ms[2].cred.Identity))
	ok, g, err := joinByExternalCommit(gg.s, again.signer, gi, nil, LeafOptions{Credential: again.cred}, gg.cfg, externalCommitTweaks{remove: &victim})
	if err != nil {
		t.Fatal(err)
	}
	gg.ms = gg.ms[:2]
	gg.deliverAll(ok)
	again.g = g
	gg.ms = append(gg.ms, again)
	gg.check()
	gg.appAll("resynced with a new key")
}

// TestGroupTreeShapes: a one-member group self-updates and talks to itself
// alone; removing the rightmost members truncates the tree; a commit that
// removes and adds puts the joiner in the freed leaf; a member's two
// pending updates, the latest committed by another.
func TestGroupTreeShapes(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 1)
			gg.commit(0, CommitOptions{})
			if _, err := gg.ms[0].g.Encrypt([]byte("alone"), nil); err != nil {
				t.Fatal(err)
			}
			gg.add(0, gg.newMembers(4)...) // leaves 0..4 of 8
			if n := gg.ms[0].g.tree.NumLeaves(); n != 8 {
				t.Fatalf("%d leaves", n)
			}
			gg.commit(1, CommitOptions{Remove: []tree.LeafIndex{4}})
			if n := gg.ms[0].g.tree.NumLeaves(); n != 4 {
				t.Fatalf("%d leaves after removing the last", n)
			}
			gg.check()
			gg.appAll("truncated")

			// Remove 1 and add in one commit: the joiner takes leaf 1.
			res := gg.commit(2, CommitOptions{Remove: []tree.LeafIndex{1}}, gg.newMembers(1)...)
			if len(res.Added) != 1 || res.Added[0] != 1 {
				t.Fatalf("added at %v", res.Added)
			}
			gg.check()
			gg.appAll("refilled")

			// Two updates by one member; the latest is committed.
			gg.deliver(1, gtProposeUpdate(t, gg, 1))
			gg.deliver(1, gtProposeUpdate(t, gg, 1))
			gg.commit(0, CommitOptions{})
			gg.check()
			gg.appAll("after double update")
			gg.commit(1, CommitOptions{})
			gg.check()
		})
	}
}

// TestGroupConcurrentMembers runs every member in its own goroutine: the
// engine is not synchronized, but distinct Groups (even ones that were
// derived from the same Welcome, ratchet tree and commit objects) must
// share no mutable state. Run with -race.
func TestGroupConcurrentMembers(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			t.Parallel()
			s := gtSuite(t, id)
			creator := gtNewMember(t, s, "c")
			g0, err := CreateGroup(s, creator.signer, nil, LeafOptions{Credential: creator.cred}, nil, Config{HandshakeAsPublic: id == 2})
			if err != nil {
				t.Fatal(err)
			}
			joiners := make([]*gtMember, 5)
			var kps []*KeyPackage
			for i := range joiners {
				joiners[i] = gtNewMember(t, s, fmt.Sprintf("j%d", i))
				kps = append(kps, joiners[i].kp)
			}
			res, err := g0.Commit(CommitOptions{Add: kps})
			if err != nil {
				t.Fatal(err)
			}
			creator.g = res.State
			members := []*gtMember{creator}
			errs := make(chan error, 64)
			done := make(chan *gtMember, len(joiners))
			for _, j := range joiners {
				go func() {
					// The same Welcome and tree objects, concurrently.
					jd, err := JoinFromWelcome(res.Welcome, res.RatchetTree, j.finder(t), Config{HandshakeAsPublic: id == 2})
					if err != nil {
						errs <- err
						done <- nil
						return
					}
					j.g = jd.Group
					done <- j
				}()
			}
			for range joiners {
				if j := <-done; j != nil {
					members = append(members, j)
				}
			}
			if len(members) != 6 {
				t.Fatal(<-errs)
			}
			// Rounds: one member commits, the rest process the same
			// message object concurrently; then all send concurrently and
			// each reads everyone else's messages.
			for round := range 6 {
				c := members[round%len(members)]
				r, err := c.g.Commit(CommitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				c.g = r.State
				gtParallel(t, members, func(m *gtMember) error {
					if m == c {
						return nil
					}
					p, err := m.g.Process(r.Commit)
					if err != nil {
						return err
					}
					m.g = p.State
					return nil
				})
				msgs := make([]*Message, len(members))
				gtParallel(t, members, func(m *gtMember) error {
					msg, err := m.g.Encrypt([]byte(m.name), nil)
					msgs[slicesIndex(members, m)] = msg
					return err
				})
				gtParallel(t, members, func(m *gtMember) error {
					for i, msg := range msgs {
						if members[i] == m {
							continue
						}
						p, err := m.g.Process(msg)
						if err != nil {
							return err
						}
						if string(p.ApplicationData) != members[i].name {
							return fmt.Errorf("read %q from %s", p.ApplicationData, members[i].name)
						}
					}
					return nil
				})
				gs := make([]*Group, len(members))
				for i, m := range members {
					gs[i] = m.g
				}
				gtAgree(t, gs...)
			}
		})
	}
}

func slicesIndex(ms []*gtMember, m *gtMember) int {
	for i, x := range ms {
		if x == m {
			return i
		}
	}
	return -1
}

// gtParallel runs f for every member in its own goroutine.
func gtParallel(t *testing.T, ms []*gtMember, f func(*gtMember) error) {
	t.Helper()
	errs := make(chan error, len(ms))
	for _, m := range ms {
		go func() { errs <- f(m) }()
	}
	for range ms {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestGroupExternalCommitProposalList: an external commit holds exactly one
// ExternalInit, at most one Remove, PSKs, and nothing else (RFC 9420 §12.2).
func TestGroupExternalCommitProposalList(t *testing.T) {
	gg := gtCreate(t, 1, Config{RatchetTreeInWelcome: true}, 3)
	gi := gtGroupInfo(t, gg.ms[0].g, true)
	j := gtNewMember(t, gg.s, "j")
	k := gtNewMember(t, gg.s, "k")
	for _, tc := range []struct {
		name  string
		extra []*Proposal
	}{
		{"GroupContextExtensions", []*Proposal{{ProposalType: tree.ProposalTypeGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: tree.Extensions{}}}}},
		{"ReInit", []*Proposal{{ProposalType: tree.ProposalTypeReInit, ReInit: &ReInit{GroupID: []byte("g"), Version: tree.ProtocolVersionMLS10, CipherSuite: 1, Extensions: tree.Extensions{}}}}},
		{"Add", []*Proposal{{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *k.kp}}}},
		{"second ExternalInit", []*Proposal{{ProposalType: tree.ProposalTypeExternalInit, ExternalInit: &ExternalInit{KEMOutput: []byte{1, 2}}}}},
		{"two Removes", []*Proposal{{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 1}}, {ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 2}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad, _, err := joinByExternalCommit(gg.s, j.signer, gi, nil, LeafOptions{Credential: j.cred}, gg.cfg, externalCommitTweaks{extra: tc.extra})
			if err != nil {
				t.Fatal(err)
			}
			gtReject(t, gg.ms[1].g, bad, ErrInvalidCommit)
		})
	}
	// A PSK is allowed (when everyone holds it).
	psks := func(*schedule.PreSharedKeyID) ([]byte, error) { return []byte("shared"), nil }
	for _, m := range gg.ms {
		m.g.cfg.PSKs = psks
	}
	ok, g, err := joinByExternalCommit(gg.s, j.signer, gi, nil, LeafOptions{Credential: j.cred}, gg.cfg, externalCommitTweaks{extra: []*Proposal{{
		ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: schedule.PreSharedKeyID{Type: schedule.PSKTypeExternal, PSKID: []byte("p"),
			Nonce: bytes.Repeat([]byte{9}, gg.s.HashSize())}}}}})
	if err != nil {
		t.Fatal(err)
	}
	_ = g // the joiner's side ignores tweaks in its key schedule: only check acceptance up to the tag
	_, err = gg.ms[1].g.Process(ok)
	gtExpectErr(t, err, ErrInvalidConfirmationTag)
}

// TestGroupNewMemberProposal: a non-member proposes its own Add
// (new_member_proposal, RFC 9420 §12.1.8); a member commits it. An Add
// signed by someone other than the KeyPackage's owner is refused.
func TestGroupNewMemberProposal(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			j := gtNewMember(t, gg.s, "self-adder")
			mk := func(signer *suite.Signer) *Message {
				g := gg.ms[0].g
				fc := &FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: Sender{SenderType: SenderTypeNewMemberProposal},
					ContentType: ContentTypeProposal, Proposal: &Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *j.kp}}}
				ac, err := SignContent(signer, WireFormatPublicMessage, fc, nil)
				if err != nil {
					t.Fatal(err)
				}
				pm, err := ProtectPublic(gg.s, ac, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				m, err := NewMessage(pm)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			gtReject(t, gg.ms[1].g, mk(gtSigner(t, gg.s)), ErrInvalidSignature)
			ps := gg.deliverAll(mk(j.signer))
			if ps[0].Sender.SenderType != SenderTypeNewMemberProposal {
				t.Fatalf("sender %v", ps[0].Sender)
			}
			res := gg.commit(2, CommitOptions{})
			gg.join(res, j)
			gg.check()
			gg.appAll("self-added")
		})
	}
}

// TestGroupResumptionPSK: a commit injects the group's own resumption PSK
// of an earlier epoch (usage application, RFC 9420 §8.6); every member
// finds it locally. One beyond the kept epochs is unavailable.
func TestGroupResumptionPSK(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			gg.commit(1, CommitOptions{})
			g := gg.ms[0].g
			res := schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption, Usage: schedule.UsageApplication, PSKGroupID: g.GroupID(), PSKEpoch: g.Epoch() - 1}
			gg.commit(2, CommitOptions{PSKs: []schedule.PreSharedKeyID{res}})
			gg.check()
			gg.appAll("resumed")
			for range DefaultMaxPastEpochs + 1 {
				gg.commit(0, CommitOptions{})
			}
			_, err := gg.ms[0].g.Commit(CommitOptions{PSKs: []schedule.PreSharedKeyID{res}})
			gtExpectErr(t, err, ErrMissingPSK)
		})
	}
}

// TestGroupExternalCommitBadInputs: a GroupInfo with a broken signature or
// a tree that does not match is refused by the joiner; an external commit
// made from a stale GroupInfo is refused by the members.
func TestGroupExternalCommitBadInputs(t *testing.T) {
	gg := gtCreate(t, 3, Config{RatchetTreeInWelcome: true}, 3)
	j := gtNewMember(t, gg.s, "j")
	gi := gtGroupInfo(t, gg.ms[0].g, false)
	lo := LeafOptions{Credential: j.cred}

	bad := *gi
	bad.Signature = append([]byte(nil), gi.Signature...)
	bad.Signature[2] ^= 1
	_, _, err := JoinByExternalCommit(gg.s, j.signer, &bad, gg.ms[0].g.RatchetTree(), lo, gg.cfg)
	gtExpectErr(t, err, ErrInvalidGroupInfo)

	other := gtCreate(t, 3, Config{RatchetTreeInWelcome: true}, 2) // a tree of another group
	_, _, err = JoinByExternalCommit(gg.s, j.signer, gi, other.ms[0].g.RatchetTree(), lo, gg.cfg)
	gtExpectErr(t, err, ErrInvalidGroupInfo)

	_, _, err = JoinByExternalCommit(gg.s, j.signer, gi, nil, lo, gg.cfg) // no tree anywhere
	gtExpectErr(t, err, ErrInvalidGroupInfo)

	noPub := *gi
	noPub.Extensions = tree.Extensions{}
	if err := SignGroupInfo(gg.ms[0].signer, &noPub); err != nil {
		t.Fatal(err)
	}
	_, _, err = JoinByExternalCommit(gg.s, j.signer, &noPub, gg.ms[0].g.RatchetTree(), lo, gg.cfg)
	gtExpectErr(t, err, ErrInvalidGroupInfo)

	stale, _, err := JoinByExternalCommit(gg.s, j.signer, gi, gg.ms[0].g.RatchetTree(), lo, gg.cfg)
	if err != nil {
		t.Fatal(err)
	}
	gg.commit(1, CommitOptions{})
	gtReject(t, gg.ms[2].g, stale, ErrWrongEpoch)
}

// TestGroupCommitFitsPendingProposals: pending proposals valid alone but
// not together (a new required capability and an Add of a client lacking
// it, proposed by two members at once) must not block the default commit:
// the committer keeps, in order, those that fit.
func TestGroupCommitFitsPendingProposals(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			rc := gtRequiredCaps(t, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{tree.ExtensionTypeLastResort}})
			m, next, err := gg.ms[1].g.Propose(&Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions,
				GroupContextExtensions: &GroupContextExtensions{Extensions: tree.Extensions{rc}}})
			if err != nil {
				t.Fatal(err)
			}
			gg.ms[1].g = next
			gg.deliver(1, m)
			weak := gtNewMember(t, gg.s, "weak")
			weak.newKeyPackage(t, KeyPackageOptions{Capabilities: &tree.Capabilities{}})
			m, next, err = gg.ms[2].g.Propose(&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *weak.kp}})
			if err != nil {
				t.Fatal(err)
			}
			gg.ms[2].g = next
			gg.deliver(2, m)
			res := gg.commit(0, CommitOptions{})
			if res.Welcome != nil || len(gg.lastCommit.Proposals) != 1 {
				t.Fatalf("commit kept %d proposals", len(gg.lastCommit.Proposals))
			}
			if gg.ms[0].g.Context().Extensions.Find(tree.ExtensionTypeRequiredCapabilities) == nil {
				t.Fatal("the earlier proposal (GroupContextExtensions) was not the one kept")
			}
			gg.check()
			gg.appAll("fitted")
		})
	}
}
