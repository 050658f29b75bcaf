package relay

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// The relay verifies what it orders (issue 13.3), against a real relay
// process on each backend: forged, unreadable and mislabelled commits are
// refused with 400 and change nothing; honest adds and removes move the
// readers, derived from the commit.

// groupView is the relay's answer to GET /v1/groups/{gid}.
func groupView(t *testing.T, c *client, gid []byte) (epoch int64, members string) {
	t.Helper()
	r := c.must(200, "GET", "/v1/groups/"+gidPath(gid), nil)
	return r.num("epoch"), fmt.Sprint(r.body["members"])
}

func TestProcessVerifiedCommits(t *testing.T) {
	forEachRelayProcess(t, func(t *testing.T, start func() *relayProc) {
		p := start()
		alice, bob, carol, eve, mallory := newIdent(t, "alice"), newIdent(t, "bob"), newIdent(t, "carol"), newIdent(t, "eve"), newIdent(t, "mallory")
		ca, cb, cc, ce := login(t, p.base, alice), login(t, p.base, bob), login(t, p.base, carol), login(t, p.base, eve)
		gid := []byte("verified group")
		gp := "/v1/groups/" + gidPath(gid)

		// Registration: the GroupInfo must verify and hold the caller.
		mg := newMGroup(t, alice, gid)
		good := mg.groupInfo(alice)
		forged := bytes.Clone(good)
		forged[len(forged)-1] ^= 1 // in the signature
		for name, c := range map[string]struct {
			c    *client
			info []byte
		}{
			"forged signature":         {ca, forged},
			"caller not in the tree":   {ce, good},
			"random bytes":             {ca, randomBytes(300)},
			"a GroupInfo without tree": {ca, mg.groupInfoNoTree(alice)},
		} {
			if r := c.c.do("POST", "/v1/groups", map[string]any{"group_info": c.info}); r.status != 400 || r.code() != "invalid_group_info" {
				t.Errorf("register with %s: %d %s", name, r.status, r.raw)
			}
		}
		ca.must(200, "POST", "/v1/groups", map[string]any{"group_info": good})

		// An honest add: bob reads from his adding commit on.
		add := mg.commit(alice, mls.CommitOptions{}, bob)
		r := ca.postCommit(gid, add)
		if r.status != 200 {
			t.Fatalf("honest add: %d %s", r.status, r.raw)
		}
		addSeq := r.num("seq")
		add.merge()
		if ms := cb.must(200, "GET", gp+"/messages", nil).body["messages"].([]any); len(ms) != 1 || int64(ms[0].(map[string]any)["seq"].(float64)) != addSeq {
			t.Fatalf("bob reads %v", ms)
		}
		want := sortedUIDs(alice, bob)
		check := func(what string) {
			t.Helper()
			if epoch, members := groupView(t, cb, gid); epoch != 1 || members != want {
				t.Fatalf("after %s: epoch %d, members %s", what, epoch, members)
			}
			ce.must(403, "GET", gp+"/messages", nil)
		}
		check("the add")

		// Bob, a member, posts what the relay must refuse: the epoch
		// stays open, nobody is evicted, eve reads nothing.
		honest := mg.commit(bob, mls.CommitOptions{})
		lookAlike := newMGroup(t, mallory, gid)
		lookAlike.commit(mallory, mls.CommitOptions{}).merge() // epoch 1 too
		fake := lookAlike.commit(mallory, mls.CommitOptions{}, eve)
		badSig := *honest
		badSig.commit = flipSignature(t, honest.commit)
		otherEpoch := mg.forgeEpoch(bob, 7)
		staleInfo := *honest
		staleInfo.groupInfo = mg.groupInfo(alice) // epoch 1's, not 2's
		otherInfo := *honest
		otherInfo.groupInfo = fake.groupInfo
		for name, c := range map[string]struct {
			body map[string]any
			code string
		}{
			"random bytes, removed everyone, added eve": {map[string]any{"message": randomBytes(200), "kind": "commit", "epoch": 1,
				"added": []string{eve.uid()}, "removed": []string{alice.uid(), bob.uid()}}, "bad_request"},
			"random bytes":                      {map[string]any{"message": randomBytes(200)}, "invalid_message"},
			"a PrivateMessage commit":           {map[string]any{"message": privMsg(t, gid, 1, mls.ContentTypeCommit)}, "private_handshake"},
			"a look-alike group's commit":       {map[string]any{"message": fake.commit, "group_info": fake.groupInfo}, "invalid_commit"},
			"a forged signature":                {map[string]any{"message": badSig.commit, "group_info": badSig.groupInfo}, "invalid_commit"},
			"an epoch rewritten":                {map[string]any{"message": otherEpoch, "group_info": honest.groupInfo}, "invalid_commit"},
			"no GroupInfo":                      {map[string]any{"message": honest.commit}, "invalid_commit"},
			"a GroupInfo without the tree":      {map[string]any{"message": honest.commit, "group_info": noTree(t, honest)}, "invalid_commit"},
			"the GroupInfo of the epoch before": {map[string]any{"message": staleInfo.commit, "group_info": staleInfo.groupInfo}, "invalid_commit"},
			"another group's GroupInfo":         {map[string]any{"message": otherInfo.commit, "group_info": otherInfo.groupInfo}, "invalid_commit"},
		} {
			if r := cb.do("POST", gp+"/messages", c.body); r.status != 400 || r.code() != c.code {
				t.Errorf("%s: %d %s, want 400 %s", name, r.status, r.raw, c.code)
			}
			check(name)
		}
		// Alice's honest commit, posted by bob: not his device's.
		if r := cb.postCommit(gid, mg.commit(alice, mls.CommitOptions{})); r.status != 400 || r.code() != "invalid_commit" {
			t.Errorf("another member's commit: %d %s", r.status, r.raw)
		}
		// A replay of the add (epoch 0) loses as a stale commit.
		if r := ca.postCommit(gid, add); r.status != 409 || r.code() != "commit_conflict" || r.num("current_epoch") != 1 {
			t.Errorf("replayed add: %d %s", r.status, r.raw)
		}
		check("the refusals")

		// A revoked device cannot be added.
		dave := newIdent(t, "dave")
		login(t, p.base, dave.another(t, "dave-2")).must(200, "POST", "/v1/devices/revocations", map[string]any{"revocation": dave.revocation(t)})
		if r := cb.postCommit(gid, mg.commit(bob, mls.CommitOptions{}, dave)); r.status != 400 || r.code() != "invalid_commit" {
			t.Errorf("adding a revoked device: %d %s", r.status, r.raw)
		}
		check("adding a revoked device")

		// The honest commit still goes through; then bob adds carol, who
		// reads from that commit and sees the relay's epoch state match.
		if r := cb.postCommit(gid, honest); r.status != 200 {
			t.Fatalf("honest update after the refusals: %d %s", r.status, r.raw)
		}
		honest.merge()
		addCarol := mg.commit(bob, mls.CommitOptions{}, carol)
		r = cb.postCommit(gid, addCarol)
		if r.status != 200 {
			t.Fatalf("honest add of carol: %d %s", r.status, r.raw)
		}
		carolFrom := r.num("seq")
		addCarol.merge()
		if ms := cc.must(200, "GET", gp+"/messages", nil).body["messages"].([]any); len(ms) != 1 || int64(ms[0].(map[string]any)["seq"].(float64)) != carolFrom {
			t.Fatalf("carol reads %v", ms)
		}
		gc := mg.g[carol].Context()
		es := cc.must(200, "GET", gp+"/epochs/3", nil)
		if es.num("epoch") != 3 || es.body["tree_hash"] != std64(gc.TreeHash) || es.body["confirmed_transcript_hash"] != std64(gc.ConfirmedTranscriptHash) {
			t.Fatalf("epoch state %s", es.raw)
		}
		cc.must(404, "GET", gp+"/epochs/4", nil)
		ce.must(403, "GET", gp+"/epochs/3", nil)

		// A GroupInfo that does not match is refused, a matching one kept.
		if r := cc.do("PUT", gp+"/group-info", map[string]any{"group_info": lookAlike.groupInfo(mallory), "epoch": 1}); r.status != 409 {
			t.Errorf("another group's GroupInfo: %d %s", r.status, r.raw)
		}
		wrongSigner := mg.groupInfo(carol)
		wrongSigner[len(wrongSigner)-1] ^= 1
		if r := cc.do("PUT", gp+"/group-info", map[string]any{"group_info": wrongSigner, "epoch": 3}); r.status != 400 || r.code() != "invalid_group_info" {
			t.Errorf("a forged GroupInfo: %d %s", r.status, r.raw)
		}
		cc.must(200, "PUT", gp+"/group-info", map[string]any{"group_info": mg.groupInfo(carol), "epoch": 3})

		// An honest remove: bob reads up to it, then 403, and cannot post.
		rm := mg.commit(alice, mls.CommitOptions{Remove: []tree.LeafIndex{mg.leaf(alice, bob)}})
		r = ca.postCommit(gid, rm)
		if r.status != 200 {
			t.Fatalf("honest remove: %d %s", r.status, r.raw)
		}
		rmSeq := r.num("seq")
		rm.merge()
		// Entries after the removal, which the relay answers its long
		// polls from memory (sql_tail.go): bob reads none of them.
		for range 3 {
			ca.must(200, "POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, 4, mls.ContentTypeApplication)})
		}
		if ms := cb.must(200, "GET", fmt.Sprintf("%s/messages?after=%d", gp, rmSeq-1), nil).body["messages"].([]any); len(ms) != 1 {
			t.Fatalf("bob reads his removal: %v", ms)
		}
		cb.must(403, "GET", fmt.Sprintf("%s/messages?after=%d", gp, rmSeq), nil)
		if r := cb.do("POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, 4, mls.ContentTypeApplication)}); r.status != 403 {
			t.Fatalf("removed bob posts: %d", r.status)
		}
		if epoch, members := groupView(t, ca, gid); epoch != 4 || members != sortedUIDs(alice, carol) {
			t.Fatalf("after the remove: epoch %d, members %s", epoch, members)
		}
	})
}

// TestProcessVerifiedProposals: proposals must be PublicMessages that
// verify; a commit may include those the relay saw by reference.
func TestProcessVerifiedProposals(t *testing.T) {
	forEachRelayProcess(t, func(t *testing.T, start func() *relayProc) {
		p := start()
		alice, bob, carol := newIdent(t, "alice"), newIdent(t, "bob"), newIdent(t, "carol")
		ca, cb := login(t, p.base, alice), login(t, p.base, bob)
		gid := []byte("proposals")
		gp := "/v1/groups/" + gidPath(gid)
		mg := setupGroup(t, ca, gid, alice, bob, carol)
		unsent, _, err := mg.g[bob].Propose(&mls.Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &mls.Remove{Removed: mg.leaf(bob, carol)}})
		if err != nil {
			t.Fatal(err)
		}
		bad := flipSignature(t, mlsWire(t, unsent))
		for name, c := range map[string]struct {
			msg  []byte
			code string
		}{
			"a forged signature":        {bad, "invalid_proposal"},
			"a PrivateMessage proposal": {privMsg(t, gid, 1, mls.ContentTypeProposal), "private_handshake"},
		} {
			if r := cb.do("POST", gp+"/messages", map[string]any{"message": c.msg}); r.status != 400 || r.code() != c.code {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		// Bob proposes carol's removal (the relay caches it); alice
		// commits it by reference; carol is out.
		prop := mg.propose(bob, &mls.Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &mls.Remove{Removed: mg.leaf(bob, carol)}})
		cb.must(200, "POST", gp+"/messages", map[string]any{"message": prop})
		st := mg.commit(alice, mls.CommitOptions{})
		if ps := st.res.Commit.PublicMessage.Content.Commit.Proposals; len(ps) != 1 || ps[0].Type != mls.ProposalOrRefTypeReference {
			t.Fatalf("the commit does not include the proposal by reference: %+v", ps)
		}
		if r := ca.postCommit(gid, st); r.status != 200 {
			t.Fatalf("commit by reference: %d %s", r.status, r.raw)
		}
		if epoch, members := groupView(t, ca, gid); epoch != 2 || members != sortedUIDs(alice, bob) {
			t.Fatalf("epoch %d, members %s", epoch, members)
		}
	})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
