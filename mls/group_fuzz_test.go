package mls

import (
	"bytes"
	"testing"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// gtDeepCopy copies g including its mutable secret trees (current and kept
// past epochs), so that each fuzz iteration starts from the same state.
func gtDeepCopy(t testing.TB, g *Group) *Group {
	t.Helper()
	c := g.clone()
	var err error
	if c.secretTree, err = schedule.RestoreSecretTree(g.suite, g.secretTree.State(), g.cfg.SecretTree); err != nil {
		t.Fatal(err)
	}
	for i, pe := range g.past {
		cp := *pe
		if cp.secretTree, err = schedule.RestoreSecretTree(g.suite, pe.secretTree.State(), g.cfg.SecretTree); err != nil {
			t.Fatal(err)
		}
		c.past[i] = &cp
	}
	return c
}

// FuzzProcess mutates valid messages of a 3-member group (commits as
// PrivateMessage and PublicMessage, proposals, application messages, an
// external commit, a message of the previous epoch) and processes them at
// member 2. Process must never panic; a rejected message leaves the state
// unchanged; an accepted one never modifies the receiver's epoch state and
// a commit moves the returned state to the next epoch.
func FuzzProcess(f *testing.F) {
	gg := gtCreate(f, 1, Config{RatchetTreeInWelcome: true}, 3)
	// Move one epoch on, keeping a message of the old one.
	old := gtEncrypt(f, gg.ms[0].g, "old epoch")
	gg.commit(1, CommitOptions{})
	base := gtDeepCopy(f, gg.ms[2].g)

	seed := func(m *Message) { f.Add(gtWire(f, m)) }
	seed(old)
	seed(gtEncrypt(f, gg.ms[0].g, "application"))
	seed(gtEncrypt(f, gg.ms[1].g, ""))
	for _, public := range []bool{false, true} {
		g := gtDeepCopy(f, gg.ms[0].g)
		g.cfg.HandshakeAsPublic = public
		j := gtNewMember(f, gg.s, "joiner")
		res, err := g.Commit(CommitOptions{Add: []*KeyPackage{j.kp}})
		if err != nil {
			f.Fatal(err)
		}
		seed(res.Commit)
		res, err = g.Commit(CommitOptions{Remove: []tree.LeafIndex{1}})
		if err != nil {
			f.Fatal(err)
		}
		seed(res.Commit)
		res, err = g.Commit(CommitOptions{})
		if err != nil {
			f.Fatal(err)
		}
		seed(res.Commit)
		m, _, err := g.ProposeUpdate()
		if err != nil {
			f.Fatal(err)
		}
		seed(m)
	}
	ext := gtNewMember(f, gg.s, "external")
	gi, err := gg.ms[0].g.GroupInfo(true)
	if err != nil {
		f.Fatal(err)
	}
	em, _, err := JoinByExternalCommit(gg.s, ext.signer, gi, nil, LeafOptions{Credential: ext.cred}, gg.cfg)
	if err != nil {
		f.Fatal(err)
	}
	seed(em)

	f.Fuzz(func(t *testing.T, data []byte) {
		g := gtDeepCopy(t, base)
		before, whole := gtSnapshot(g), hsState(t, g)
		p, err := g.ProcessBytes(data)
		after := gtSnapshot(g)
		if !before.equal(after) {
			t.Fatalf("receiver changed (err %v)", err)
		}
		if err != nil {
			if p != nil {
				t.Fatal("result with an error")
			}
			// Refused: not a byte of the state changed, sender
			// ratchets included.
			if !bytes.Equal(whole, hsState(t, g)) {
				t.Fatalf("refused message changed the serialized state: %v", err)
			}
			return
		}
		switch p.ContentType {
		case ContentTypeCommit:
			if !p.State.Removed() && p.State.Epoch() != g.Epoch()+1 {
				t.Fatalf("commit to epoch %d from %d", p.State.Epoch(), g.Epoch())
			}
			if bytes.Equal(p.State.EpochAuthenticator(), g.EpochAuthenticator()) && !p.State.Removed() {
				t.Fatal("new epoch with the old authenticator")
			}
		case ContentTypeProposal:
			if p.State.PendingProposals() != g.PendingProposals()+1 {
				t.Fatal("proposal not cached")
			}
		case ContentTypeApplication:
			if p.State != g {
				t.Fatal("application: State is not the receiver")
			}
		default:
			t.Fatalf("content type %v", p.ContentType)
		}
	})
}

// FuzzProcessCommit goes past the encryption layer: the fuzzer mutates the
// encoding of a Commit, which member 0 then signs and protects with valid
// keys (as a malicious member could), so the proposal-list validation,
// UpdatePath merging and key schedule see arbitrary content. The same
// invariants as FuzzProcess hold.
func FuzzProcessCommit(f *testing.F) {
	gg := gtCreate(f, 1, Config{RatchetTreeInWelcome: true, HandshakeAsPublic: true}, 3)
	gg.commit(1, CommitOptions{})
	gg.deliver(1, gtProposeUpdate(f, gg, 1))
	base := gtDeepCopy(f, gg.ms[2].g)
	sender := gtDeepCopy(f, gg.ms[0].g)

	for _, o := range []CommitOptions{{}, {Remove: []tree.LeafIndex{1}}, {Add: []*KeyPackage{gtNewMember(f, gg.s, "j").kp}},
		{Extensions: tree.Extensions{}}, {NoPath: true, Add: []*KeyPackage{gtNewMember(f, gg.s, "k").kp}}} {
		res, err := gtDeepCopy(f, sender).Commit(o)
		if err != nil {
			f.Fatal(err)
		}
		c := res.Commit.PublicMessage.Content.Commit
		b, err := wire.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}

	f.Fuzz(func(t *testing.T, data []byte, public bool) {
		var c Commit
		if err := wire.Unmarshal(data, &c); err != nil {
			return
		}
		s := gtDeepCopy(t, sender)
		s.cfg.HandshakeAsPublic = public
		msg := gtForge(t, s, &FramedContent{GroupID: s.GroupID(), Epoch: s.Epoch(), Sender: MemberSender(s.OwnLeafIndex()),
			ContentType: ContentTypeCommit, Commit: &c}, nil)
		g := gtDeepCopy(t, base)
		before := hsState(t, g)
		p, err := g.Process(msg)
		if !bytes.Equal(before, hsState(t, g)) {
			t.Fatalf("receiver changed (err %v)", err)
		}
		if err == nil {
			// The confirmation tag is garbage: no commit may be accepted.
			t.Fatalf("forged commit accepted: %+v", p)
		}
	})
}

// FuzzProposalCommit: the fuzzer mutates a Proposal, which member 1 signs
// and sends (validly protected). If the members accept it on arrival, the
// default commit of another member must succeed and every other member
// must accept that commit: an accepted proposal must never block the
// group (RFC 9420 §12.2, §12.4: invalid pending proposals are left out).
func FuzzProposalCommit(f *testing.F) {
	psks := func(pid *schedule.PreSharedKeyID) ([]byte, error) {
		if string(pid.PSKID) == "known" {
			return []byte("known psk"), nil
		}
		return nil, ErrMissingPSK
	}
	gg := gtCreate(f, 1, Config{RatchetTreeInWelcome: true, PSKs: psks}, 4)
	gg.commit(1, CommitOptions{})
	base := make([]*Group, len(gg.ms))
	for i, m := range gg.ms {
		base[i] = gtDeepCopy(f, m.g)
	}
	nonce := bytes.Repeat([]byte{3}, gg.s.HashSize())
	j := gtNewMember(f, gg.s, "j")
	upd := *gg.ms[1].g.tree.Leaf(gg.ms[1].g.OwnLeafIndex())
	for _, p := range []*Proposal{
		{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *j.kp}},
		{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 3}},
		{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 2}},
		{ProposalType: tree.ProposalTypeUpdate, Update: &Update{LeafNode: upd}},
		{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: schedule.PreSharedKeyID{Type: schedule.PSKTypeExternal, PSKID: []byte("known"), Nonce: nonce}}},
		{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption,
			Usage: schedule.UsageApplication, PSKGroupID: base[0].GroupID(), PSKEpoch: 1, Nonce: nonce}}},
		{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption,
			Usage: schedule.UsageBranch, PSKGroupID: base[0].GroupID(), PSKEpoch: 1, Nonce: nonce}}},
		{ProposalType: tree.ProposalTypeGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: tree.Extensions{
			gtRequiredCaps(f, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{tree.ExtensionTypeLastResort}})}}},
		{ProposalType: tree.ProposalTypeReInit, ReInit: &ReInit{GroupID: []byte("new"), Version: tree.ProtocolVersionMLS10, CipherSuite: 1, Extensions: tree.Extensions{}}},
	} {
		b, err := wire.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var p Proposal
		if err := wire.Unmarshal(data, &p); err != nil {
			return
		}
		proposer := gtDeepCopy(t, base[1])
		msg := gtForge(t, proposer, &FramedContent{GroupID: proposer.GroupID(), Epoch: proposer.Epoch(),
			Sender: MemberSender(proposer.OwnLeafIndex()), ContentType: ContentTypeProposal, Proposal: &p}, nil)
		b := gtWire(t, msg)
		committer := gtDeepCopy(t, base[2])
		pc, err := committer.ProcessBytes(b)
		if err != nil {
			return
		}
		var others []*Group // members 0 and 3, with the proposal
		for _, i := range []int{0, 3} {
			po, err := gtDeepCopy(t, base[i]).ProcessBytes(b)
			if err != nil {
				t.Fatalf("member 2 accepted the proposal, member %d refused it: %v", i, err)
			}
			others = append(others, po.State)
		}
		res, err := pc.State.Commit(CommitOptions{})
		if err != nil {
			t.Fatalf("an accepted %v proposal blocks the default commit: %v", p.ProposalType, err)
		}
		for _, g := range others {
			pr, err := g.Process(res.Commit)
			if err != nil {
				t.Fatalf("commit with the accepted %v proposal refused: %v", p.ProposalType, err)
			}
			if !pr.State.Removed() {
				gtAgree(t, pr.State, res.State)
			}
		}
	})
}
