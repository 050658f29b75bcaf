package mls

import (
	"testing"
)

// TestReInitRef: CommitOptions.ReInitRef commits a ReInit another member
// proposed, alone and by reference, and only a cached ReInit.
func TestReInitRef(t *testing.T) {
	gg := gtCreate(t, 1, Config{RatchetTreeInWelcome: true}, 3)
	gg.deliver(1, gtProposeUpdate(t, gg, 1))
	_, err := gg.ms[0].g.Commit(CommitOptions{ReInitRef: gg.ms[0].g.pending[0].ref})
	gtExpectErr(t, err, ErrInvalidProposal)
	_, err = gg.ms[0].g.Commit(CommitOptions{ReInitRef: []byte("no such proposal")})
	gtExpectErr(t, err, ErrUnknownProposal)

	ri := &ReInit{GroupID: []byte("new"), Version: ProtocolVersionMLS10, CipherSuite: 3, Extensions: Extensions{}}
	msg, next, err := gg.ms[2].g.Propose(&Proposal{ProposalType: ProposalTypeReInit, ReInit: ri})
	if err != nil {
		t.Fatal(err)
	}
	gg.ms[2].g = next
	gg.deliver(2, msg)
	res, err := gg.ms[0].g.Commit(CommitOptions{ReInitRef: gg.ms[0].g.pending[1].ref})
	if err != nil {
		t.Fatal(err)
	}
	gg.deliverCommit(0, res)
	if len(gg.lastCommit.Proposals) != 1 || gg.lastCommit.Proposals[0].Type != ProposalOrRefTypeReference {
		t.Fatalf("the ReInit was not committed alone by reference: %+v", gg.lastCommit.Proposals)
	}
	for _, m := range gg.ms {
		if m.g.ReInitPending() == nil {
			t.Fatalf("%s: no ReInit pending", m.name)
		}
	}
}

// TestReInitFrozen: once the ReInit is committed the old group accepts no
// proposal or commit, so its last commit stays the ReInit's (§12.4.3.1).
func TestReInitFrozen(t *testing.T) {
	gg := gtCreate(t, 1, Config{RatchetTreeInWelcome: true}, 3)
	gg.commit(1, CommitOptions{ReInit: &ReInit{GroupID: []byte("new"), Version: ProtocolVersionMLS10, CipherSuite: 3, Extensions: Extensions{}}})
	// Member 1 behaves as if there were no ReInit: its commit and
	// proposal are otherwise valid.
	rogue := gg.ms[1].g.clone()
	rogue.reinit = nil
	res, err := rogue.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gtReject(t, gg.ms[0].g, res.Commit, ErrReInitPending)
	msg, _, err := rogue.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	gtReject(t, gg.ms[2].g, msg, ErrReInitPending)
}
