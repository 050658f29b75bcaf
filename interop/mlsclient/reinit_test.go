package mlsclient

import (
	"bytes"
	"maps"
	"slices"

	"google.golang.org/grpc/codes"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// reinit is the official runner's "reinit" action: a ReInit proposed by
// proposer (or an external sender's, external), committed by reference by
// committer, every member offering a KeyPackage of the new suite, and the
// new group created by welcomer and joined by everyone else.
type reinit struct {
	proposer, committer, welcomer string
	external                      []byte
	newSuite, newGroupID          bool
	exts                          []*mlspb.Extension
	forcePath, externalTree       bool
}

// nextSuite is the suite a ReInit that changes suites moves to: the next
// one that is not slow under the race detector (slowSuite), so that a
// cheap suite's runs do not pay for P-521 or P-384 groups.
func nextSuite(id uint32) uint32 {
	all := suite.All()
	for i := slices.Index(all, suite.ID(id)) + 1; ; i++ {
		if next := all[i%len(all)]; !slowSuite(next) && next != suite.ID(id) {
			return uint32(next)
		}
	}
}

// reinitParams are the suite and group id the ReInit names.
func (r *runner) reinitParams(ri reinit) (uint32, []byte) {
	cs, gid := r.suite, r.groupID
	if ri.newSuite {
		cs = nextSuite(r.suite)
	}
	if ri.newGroupID {
		gid = r.fresh("reinit-group")
	}
	return cs, gid
}

func reinitDesc(cs uint32, gid []byte, exts []*mlspb.Extension) *mlspb.ProposalDescription {
	return &mlspb.ProposalDescription{ProposalType: []byte(descReInit), CipherSuite: cs, GroupId: gid, Extensions: exts}
}

func (r *runner) reinit(ri reinit, cs uint32, gid []byte) {
	r.t.Helper()
	p := ri.external
	if p == nil {
		resp, err := r.c(ri.proposer).ReInitProposal(r.ctx, &mlspb.ReInitProposalRequest{StateId: r.state[ri.proposer],
			CipherSuite: cs, GroupId: gid, Extensions: ri.exts})
		r.check("reinit proposal", err)
		p = resp.Proposal
	}
	c, err := r.c(ri.committer).ReInitCommit(r.ctx, &mlspb.CommitRequest{StateId: r.state[ri.committer], ByReference: [][]byte{p}})
	r.check("reinit commit", err)
	hp, err := r.c(ri.committer).HandlePendingReInitCommit(r.ctx, &mlspb.HandlePendingCommitRequest{StateId: r.state[ri.committer]})
	r.check("handle pending reinit commit", err)
	ids, kps := map[string]uint32{ri.committer: hp.ReinitId}, map[string][]byte{ri.committer: hp.KeyPackage}
	for _, m := range r.members {
		if m == ri.committer {
			continue
		}
		h, err := r.c(m).HandleReInitCommit(r.ctx, &mlspb.HandleCommitRequest{StateId: r.state[m], Proposal: [][]byte{p}, Commit: c.Commit})
		r.check("handle reinit commit at "+m, err)
		if !bytes.Equal(h.EpochAuthenticator, hp.EpochAuthenticator) {
			r.t.Fatalf("%s disagrees with %s on the reinit epoch", m, ri.committer)
		}
		ids[m], kps[m] = h.ReinitId, h.KeyPackage
		_, err = r.c(m).Protect(r.ctx, &mlspb.ProtectRequest{StateId: r.state[m], Plaintext: []byte("x")})
		wantCode(r.t, "protect in a frozen group", err, codes.FailedPrecondition)
	}
	r.epoch++
	r.agree() // the frozen epoch

	var others [][]byte
	for _, m := range r.members {
		if m != ri.welcomer {
			others = append(others, kps[m])
		}
	}
	w, err := r.c(ri.welcomer).ReInitWelcome(r.ctx, &mlspb.ReInitWelcomeRequest{ReinitId: ids[ri.welcomer], KeyPackage: others,
		ForcePath: ri.forcePath, ExternalTree: ri.externalTree})
	r.check("reinit welcome", err)
	if ri.externalTree == (len(w.RatchetTree) == 0) {
		r.t.Fatalf("reinit welcome: external_tree %v, ratchet tree of %d bytes", ri.externalTree, len(w.RatchetTree))
	}
	next := map[string]uint32{ri.welcomer: w.StateId}
	for _, m := range r.members {
		if m == ri.welcomer {
			continue
		}
		j, err := r.c(m).HandleReInitWelcome(r.ctx, &mlspb.HandleReInitWelcomeRequest{ReinitId: ids[m], Welcome: w.Welcome, RatchetTree: w.RatchetTree})
		r.check("handle reinit welcome at "+m, err)
		if !bytes.Equal(j.EpochAuthenticator, w.EpochAuthenticator) {
			r.t.Fatalf("%s disagrees with %s on the new group's epoch", m, ri.welcomer)
		}
		next[m] = j.StateId
	}
	// A reinit id is consumed by its use.
	_, err = r.c(ri.welcomer).ReInitWelcome(r.ctx, &mlspb.ReInitWelcomeRequest{ReinitId: ids[ri.welcomer], KeyPackage: others})
	wantCode(r.t, "reinit welcome twice", err, codes.NotFound)
	for _, m := range r.members {
		r.free(m)
	}
	maps.Copy(r.state, next)
	r.suite, r.groupID, r.epoch = cs, gid, 1
}

// branch is the official runner's "branch" action: actor creates a
// subgroup with new KeyPackages of members, who join it with the old group.
// The old group stays in use: both are verified.
type branch struct {
	actor                   string
	members                 []string
	exts                    []*mlspb.Extension
	forcePath, externalTree bool
}

func (r *runner) branch(b branch) {
	r.t.Helper()
	var kps [][]byte
	for _, m := range b.members {
		kps = append(kps, r.keyPackage(m))
	}
	gid := r.fresh("branch")
	resp, err := r.c(b.actor).CreateBranch(r.ctx, &mlspb.CreateBranchRequest{StateId: r.state[b.actor], GroupId: gid,
		Extensions: b.exts, KeyPackages: kps, ForcePath: b.forcePath, ExternalTree: b.externalTree})
	r.check("create branch", err)
	if b.externalTree == (len(resp.RatchetTree) == 0) {
		r.t.Fatalf("create branch: external_tree %v, ratchet tree of %d bytes", b.externalTree, len(resp.RatchetTree))
	}
	old, oldMembers, oldEpoch, oldGID := maps.Clone(r.state), r.members, r.epoch, r.groupID
	next := map[string]uint32{b.actor: resp.StateId}
	for _, m := range b.members {
		h, err := r.c(m).HandleBranch(r.ctx, &mlspb.HandleBranchRequest{StateId: r.state[m], TransactionId: r.tx[m],
			Welcome: resp.Welcome, RatchetTree: resp.RatchetTree})
		r.check("handle branch at "+m, err)
		if !bytes.Equal(h.EpochAuthenticator, resp.EpochAuthenticator) {
			r.t.Fatalf("%s disagrees with %s on the branch's epoch", m, b.actor)
		}
		next[m] = h.StateId
		delete(r.tx, m)
	}
	r.state, r.members, r.epoch, r.groupID = next, append([]string{b.actor}, b.members...), 1, gid
	r.fullCommit(b.actor, commit{forcePath: true})
	r.verify()
	r.done()
	// The old group: a commit, agreement and a message read by all.
	r.state, r.members, r.epoch, r.groupID = old, oldMembers, oldEpoch, oldGID
	r.fullCommit(b.actor, commit{})
	r.agree()
	r.protectAll(b.actor)
}

// The ReInit and branch scenarios of test-scenarios.md and of the
// harness's reinit.json, branch.json and external_proposals.json
// (external_reinit).
var successorScenarios = []scenario{
	{"reinit/change-suite", reinitScenario(reinit{proposer: "alice", committer: "bob", welcomer: "charlie", newSuite: true})},
	{"reinit/change-group-id", reinitScenario(reinit{proposer: "alice", committer: "bob", welcomer: "charlie", newGroupID: true})},
	{"reinit/change-extensions", reinitScenario(reinit{proposer: "alice", committer: "bob", welcomer: "charlie",
		exts: []*mlspb.Extension{extRequiredCaps, extExternalSenders0}})},
	{"reinit/all-same-actor", reinitScenario(reinit{proposer: "alice", committer: "alice", welcomer: "alice", newGroupID: true})},
	{"reinit/external-tree", reinitScenario(reinit{proposer: "alice", committer: "bob", welcomer: "charlie", newGroupID: true, externalTree: true})},
	{"reinit/force-path", reinitScenario(reinit{proposer: "alice", committer: "bob", welcomer: "charlie", newGroupID: true, forcePath: true})},
	{"reinit/external-proposal", func(r *runner) {
		r.createGroup("alice")
		r.externalJoin("alice", "bob", false, false)
		r.externalJoin("alice", "charlie", false, false)
		r.fullCommit("alice", commit{byRef: [][]byte{r.addExternalSigner("alice", "ds")}})
		ri := reinit{committer: "alice", welcomer: "bob", newSuite: true, newGroupID: true, exts: []*mlspb.Extension{extRequiredCaps}, forcePath: true}
		cs, gid := r.reinitParams(ri)
		ri.external = r.externalSignerProposal("ds", "alice", reinitDesc(cs, gid, ri.exts))
		r.reinit(ri, cs, gid)
		r.fullCommit("charlie", commit{})
		r.verify()
	}},
	{"branch/base", branchScenario(branch{actor: "alice", members: []string{"bob", "charlie"}})},
	{"branch/with-extensions", branchScenario(branch{actor: "alice", members: []string{"bob", "charlie"},
		exts: []*mlspb.Extension{extRequiredCaps, extExternalSenders0}})},
	{"branch/external-tree", branchScenario(branch{actor: "alice", members: []string{"bob", "charlie"}, externalTree: true})},
	{"branch/force-path", branchScenario(branch{actor: "alice", members: []string{"bob", "charlie"}, forcePath: true})},
	{"branch/subset", branchScenario(branch{actor: "charlie", members: []string{"bob"}})},
}

// reinitScenario: a group of three (proposer, committer and welcomer
// distinct unless the script says otherwise), reinitialized, committed in
// and verified.
func reinitScenario(ri reinit) func(r *runner) {
	return func(r *runner) {
		r.createGroup("alice")
		r.addMembers("alice", "bob", "charlie")
		cs, gid := r.reinitParams(ri)
		r.reinit(ri, cs, gid)
		r.fullCommit("bob", commit{})
		r.verify()
	}
}

func branchScenario(b branch) func(r *runner) {
	return func(r *runner) {
		r.createGroup("alice")
		r.addMembers("alice", "bob", "charlie")
		r.branch(b)
	}
}
