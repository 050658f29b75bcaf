package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// The public view follows honest groups and refuses forged handshakes.

var pgCfg = Config{HandshakeAsPublic: true, RatchetTreeInWelcome: true}

// pgTracker is a group of members plus the public view following it.
type pgTracker struct {
	*gtGroup
	pg *PublicGroup
}

func pgNew(t *testing.T, n int) *pgTracker {
	t.Helper()
	gg := gtCreate(t, 1, pgCfg, 1)
	gi, err := gg.ms[0].g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := NewPublicGroup(pgRoundTrip(t, gi), nil, Config{})
	if err != nil {
		t.Fatalf("NewPublicGroup: %v", err)
	}
	tr := &pgTracker{gtGroup: gg, pg: pg}
	if n > 1 {
		tr.commit(0, CommitOptions{}, gg.newMembers(n-1)...)
	}
	return tr
}

func pgRoundTrip(t testing.TB, gi *GroupInfo) *GroupInfo {
	t.Helper()
	var out GroupInfo
	if err := wire.Unmarshal(gtWireOf(t, gi), &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func pgDecode(t testing.TB, msg *Message) *Message {
	t.Helper()
	m, err := UnmarshalMessage(gtWire(t, msg))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// commit has member i commit o (the joiners added by value), the public
// view process it first, then the members; it checks the view agrees.
func (tr *pgTracker) commit(i int, o CommitOptions, joiners ...*gtMember) *PublicCommit {
	tr.t.Helper()
	for _, j := range joiners {
		o.Add = append(o.Add, j.kp)
	}
	res, err := tr.ms[i].g.Commit(o)
	if err != nil {
		tr.t.Fatalf("commit: %v", err)
	}
	pc, err := tr.pg.ProcessCommit(pgDecode(tr.t, res.Commit))
	if err != nil {
		tr.t.Fatalf("public view refuses an honest commit: %v", err)
	}
	tr.deliverCommit(i, res)
	tr.join(res, joiners...)
	tr.adopt(pc.State)
	return pc
}

// adopt takes the new public state through a store round trip and checks
// it against the members' own view.
func (tr *pgTracker) adopt(pg *PublicGroup) {
	t := tr.t
	t.Helper()
	b, err := pg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if tr.pg, err = LoadPublicGroup(b, Config{}); err != nil {
		t.Fatal(err)
	}
	g := tr.ms[0].g
	ctx := g.Context()
	if tr.pg.Epoch() != g.Epoch() || !bytes.Equal(tr.pg.TreeHash(), ctx.TreeHash) ||
		!bytes.Equal(tr.pg.ConfirmedTranscriptHash(), ctx.ConfirmedTranscriptHash) {
		t.Fatalf("public view at epoch %d, members at %d (or hashes differ)", tr.pg.Epoch(), g.Epoch())
	}
	for _, m := range tr.ms {
		gi, err := m.g.GroupInfo(true)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.pg.VerifyGroupInfo(pgRoundTrip(t, gi)); err != nil {
			t.Fatalf("GroupInfo of %s refused: %v", m.name, err)
		}
	}
}

func TestPublicGroupTracksHonestCommits(t *testing.T) {
	tr := pgNew(t, 3)
	// Add (by value), with path.
	pc := tr.commit(1, CommitOptions{}, tr.newMembers(2)...)
	if len(pc.Added) != 2 || len(pc.Removed) != 0 || pc.Committer != tr.ms[1].g.OwnLeafIndex() {
		t.Fatalf("add: %+v", pc)
	}
	// Update (empty commit, path).
	pc = tr.commit(2, CommitOptions{})
	if len(pc.Added)+len(pc.Removed) != 0 {
		t.Fatalf("update: %+v", pc)
	}
	// Add without a path.
	tr.commit(0, CommitOptions{NoPath: true}, tr.newMembers(1)...)
	// Remove.
	victim := tr.ms[3]
	pc = tr.commit(0, CommitOptions{Remove: []tree.LeafIndex{victim.g.OwnLeafIndex()}})
	if len(pc.Removed) != 1 || pc.Removed[0].Index != victim.g.OwnLeafIndex() ||
		!bytes.Equal(pc.Removed[0].Leaf.Credential.Identity, victim.cred.Identity) {
		t.Fatalf("remove: %+v", pc)
	}
	// Proposals by reference: an Update, a Remove and an Add, proposed by
	// members, seen by the relay, committed by another.
	msg, next, err := tr.ms[2].g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	tr.ms[2].g = next
	tr.proposal(2, msg)
	joiner := tr.newMembers(1)[0]
	msg, next, err = tr.ms[1].g.Propose(&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *joiner.kp}})
	if err != nil {
		t.Fatal(err)
	}
	tr.ms[1].g = next
	tr.proposal(1, msg)
	msg, next, err = tr.ms[1].g.Propose(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: tr.ms[4].g.OwnLeafIndex()}})
	if err != nil {
		t.Fatal(err)
	}
	tr.ms[1].g = next
	tr.proposal(1, msg)
	if tr.pg.PendingProposals() != 3 {
		t.Fatalf("%d proposals cached", tr.pg.PendingProposals())
	}
	res, err := tr.ms[0].g.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err = tr.pg.ProcessCommit(pgDecode(t, res.Commit))
	if err != nil {
		t.Fatalf("by reference: %v", err)
	}
	if len(pc.Added) != 1 || len(pc.Removed) != 1 || pc.State.PendingProposals() != 0 {
		t.Fatalf("by reference: %+v", pc)
	}
	tr.deliverCommit(0, res)
	tr.join(res, joiner)
	tr.adopt(pc.State)
	tr.check()
}

// proposal delivers member i's proposal to the others and the view.
func (tr *pgTracker) proposal(i int, msg *Message) {
	tr.t.Helper()
	pg, ref, err := tr.pg.ProcessProposal(pgDecode(tr.t, msg))
	if err != nil || len(ref) == 0 {
		tr.t.Fatalf("public view refuses a proposal: %v", err)
	}
	tr.deliver(i, msg)
	tr.pg = pg
}

func TestPublicGroupRefusesForgedCommits(t *testing.T) {
	tr := pgNew(t, 4)
	g := tr.ms[1].g
	honest, err := g.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	outsider := gtNewMember(t, tr.s, "eve")
	stale := pgDecode(t, honest.Commit)
	stale.PublicMessage.Content.Epoch--

	resign := func(mutate func(fc *FramedContent)) *Message {
		m := pgDecode(t, honest.Commit)
		fc := m.PublicMessage.Content
		mutate(&fc)
		return gtForge(t, g, &fc, m.PublicMessage.Auth.ConfirmationTag)
	}
	cases := []struct {
		name string
		msg  func() *Message
		want error
	}{
		{"bad signature", func() *Message {
			m := pgDecode(t, honest.Commit)
			m.PublicMessage.Auth.Signature[0] ^= 1
			return m
		}, ErrInvalidSignature},
		{"signed by an outsider as a member", func() *Message {
			m := pgDecode(t, honest.Commit)
			fc := m.PublicMessage.Content
			ac, err := SignContent(outsider.signer, WireFormatPublicMessage, &fc, &g.ctx)
			if err != nil {
				t.Fatal(err)
			}
			ac.Auth.ConfirmationTag = m.PublicMessage.Auth.ConfirmationTag
			pm, err := ProtectPublic(g.suite, ac, &g.ctx, g.secrets.MembershipKey)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := NewMessage(pm)
			return out
		}, ErrInvalidSignature},
		{"sender outside the tree", func() *Message {
			return resign(func(fc *FramedContent) { fc.Sender = MemberSender(99) })
		}, ErrUnknownSender},
		{"wrong epoch", func() *Message { return stale }, ErrWrongEpoch},
		{"wrong group", func() *Message {
			return resign(func(fc *FramedContent) { fc.GroupID = []byte("another group") })
		}, ErrWrongGroup},
		{"path with a node missing", func() *Message {
			return resign(func(fc *FramedContent) {
				p := *fc.Commit.Path
				p.Nodes = p.Nodes[:len(p.Nodes)-1]
				fc.Commit = &Commit{Proposals: fc.Commit.Proposals, Path: &p}
			})
		}, ErrInvalidCommit},
		{"path with an extra node", func() *Message {
			return resign(func(fc *FramedContent) {
				p := *fc.Commit.Path
				p.Nodes = append(append([]tree.UpdatePathNode(nil), p.Nodes...), p.Nodes[0])
				fc.Commit = &Commit{Proposals: fc.Commit.Proposals, Path: &p}
			})
		}, ErrInvalidCommit},
		{"no path where one is required", func() *Message {
			return resign(func(fc *FramedContent) { fc.Commit = &Commit{} })
		}, ErrPathRequired},
		{"committer removes itself", func() *Message {
			return gtForgeCommit(t, g, byValue(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: g.OwnLeafIndex()}}))
		}, ErrInvalidCommit},
		{"two removes of one leaf", func() *Message {
			rm := &Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 3}}
			return gtForgeCommit(t, g, byValue(rm), byValue(rm))
		}, ErrInvalidCommit},
		{"remove of a blank leaf", func() *Message {
			return gtForgeCommit(t, g, byValue(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 40}}))
		}, ErrInvalidProposal},
		{"unknown proposal reference", func() *Message {
			return gtForgeCommit(t, g, ProposalOrRef{Type: ProposalOrRefTypeReference, Reference: bytes.Repeat([]byte{7}, 32)})
		}, ErrUnknownProposal},
		{"add of a member already in the group", func() *Message {
			return gtForgeCommit(t, g, byValue(&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *tr.ms[2].kp}}))
		}, ErrInvalidCommit},
		{"a proposal, not a commit", func() *Message {
			return vtProposal(t, g, &Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 3}})
		}, ErrInvalidMessage},
	}
	before, _ := tr.pg.MarshalBinary()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tr.pg.ProcessCommit(pgDecode(t, c.msg()))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if after, _ := tr.pg.MarshalBinary(); !bytes.Equal(before, after) {
				t.Fatal("state changed")
			}
		})
	}
	// The honest commit still goes through after all that.
	if _, err := tr.pg.ProcessCommit(pgDecode(t, honest.Commit)); err != nil {
		t.Fatalf("honest commit after forgeries: %v", err)
	}
}

func TestPublicGroupRefusesOtherMessages(t *testing.T) {
	tr := pgNew(t, 2)
	junk := make([]byte, 300)
	rand.Read(junk)
	if m, err := UnmarshalMessage(junk); err == nil {
		if _, err := tr.pg.ProcessCommit(m); err == nil {
			t.Fatal("random bytes accepted as a commit")
		}
	}
	private := tr.ms[0].g.clone()
	private.cfg.HandshakeAsPublic = false
	res, err := private.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.pg.ProcessCommit(pgDecode(t, res.Commit)); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("private commit: %v", err)
	}
	app, err := tr.ms[0].g.Encrypt([]byte("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.pg.ProcessProposal(pgDecode(t, app)); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("application message as a proposal: %v", err)
	}
	bad := vtProposal(t, tr.ms[0].g, &Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 9}})
	if _, _, err := tr.pg.ProcessProposal(pgDecode(t, bad)); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("remove of a missing leaf: %v", err)
	}
}

func TestPublicGroupVerifyGroupInfo(t *testing.T) {
	tr := pgNew(t, 3)
	g := tr.ms[1].g
	good, err := g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	old := pgRoundTrip(t, good)
	tr.commit(0, CommitOptions{})
	cur, err := tr.ms[1].g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	outsider := gtNewMember(t, tr.s, "eve")
	cases := map[string]func() *GroupInfo{
		"previous epoch": func() *GroupInfo { return old },
		"signed by a non-member": func() *GroupInfo {
			gi := pgRoundTrip(t, cur)
			if err := SignGroupInfo(outsider.signer, gi); err != nil {
				t.Fatal(err)
			}
			return gi
		},
		"signer is another leaf": func() *GroupInfo {
			gi := pgRoundTrip(t, cur)
			gi.Signer = 0
			return gi
		},
		"tree hash changed": func() *GroupInfo {
			gi := pgRoundTrip(t, cur)
			gi.GroupContext.TreeHash[0] ^= 1
			return gi
		},
		"confirmation tag changed": func() *GroupInfo {
			gi := pgRoundTrip(t, cur)
			gi.ConfirmationTag[0] ^= 1
			if err := SignGroupInfo(tr.ms[1].signer, gi); err != nil {
				t.Fatal(err)
			}
			return gi
		},
		"ratchet tree of the previous epoch": func() *GroupInfo {
			gi := pgRoundTrip(t, cur)
			for i := range gi.Extensions {
				if gi.Extensions[i].ExtensionType == tree.ExtensionTypeRatchetTree {
					gi.Extensions[i] = *old.Extensions.Find(tree.ExtensionTypeRatchetTree)
				}
			}
			if err := SignGroupInfo(tr.ms[1].signer, gi); err != nil {
				t.Fatal(err)
			}
			return gi
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			if err := tr.pg.VerifyGroupInfo(mk()); !errors.Is(err, ErrInvalidGroupInfo) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if err := tr.pg.VerifyGroupInfo(pgRoundTrip(t, cur)); err != nil {
		t.Fatal(err)
	}
	// A forged GroupInfo does not start a public view either.
	bad := pgRoundTrip(t, cur)
	bad.Signature[0] ^= 1
	if _, err := NewPublicGroup(bad, nil, Config{}); !errors.Is(err, ErrInvalidGroupInfo) {
		t.Fatalf("NewPublicGroup with a bad signature: %v", err)
	}
	if _, err := LoadPublicGroup([]byte{1, 2, 3}, Config{}); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("LoadPublicGroup of junk: %v", err)
	}
}

// An external join through the view: the joiner's new leaf is added, and
// the members' state after it matches the view's.
func TestPublicGroupExternalCommit(t *testing.T) {
	tr := pgNew(t, 2)
	gi, err := tr.ms[0].g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	joiner := gtNewMember(t, tr.s, "joiner")
	msg, g, err := JoinByExternalCommit(tr.s, joiner.signer, pgRoundTrip(t, gi), nil, LeafOptions{Credential: joiner.cred}, pgCfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := tr.pg.ProcessCommit(pgDecode(t, msg))
	if err != nil {
		t.Fatalf("external commit: %v", err)
	}
	if len(pc.Added) != 1 || pc.Committer != g.OwnLeafIndex() || !bytes.Equal(pc.Added[0].Leaf.SignatureKey, joiner.signer.PublicKey()) {
		t.Fatalf("external commit: %+v", pc)
	}
	for _, m := range tr.ms {
		p, err := m.g.ProcessBytes(gtWire(t, msg))
		if err != nil {
			t.Fatal(err)
		}
		m.g = p.State
	}
	joiner.g = g
	tr.ms = append(tr.ms, joiner)
	tr.adopt(pc.State)
}
