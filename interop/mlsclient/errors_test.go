package mlsclient

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
)

// TestRefusals: bad input gets a typed status error and leaves the state
// as it was.
func TestRefusals(t *testing.T) {
	clients := startClients(t, 2)
	for _, encrypt := range []bool{false, true} {
		r := newRunner(t, clients, 1, encrypt, 0)
		r.createGroup("alice")
		r.addMembers("alice", "bob")
		auth := func(a string) []byte {
			resp, err := r.c(a).StateAuth(r.ctx, &mlspb.StateAuthRequest{StateId: r.state[a]})
			r.check("state auth", err)
			return resp.StateAuthSecret
		}
		before := auth("bob")

		_, err := r.c("bob").StateAuth(r.ctx, &mlspb.StateAuthRequest{StateId: 1 << 30})
		wantCode(t, "unknown state", err, codes.NotFound)
		_, err = r.c("bob").HandlePendingCommit(r.ctx, &mlspb.HandlePendingCommitRequest{StateId: r.state["bob"]})
		wantCode(t, "no pending commit", err, codes.FailedPrecondition)
		_, err = r.c("bob").HandleCommit(r.ctx, &mlspb.HandleCommitRequest{StateId: r.state["bob"], Commit: []byte{0, 1, 2}})
		wantCode(t, "garbage commit", err, codes.InvalidArgument)
		_, err = r.c("bob").Export(r.ctx, &mlspb.ExportRequest{StateId: r.state["bob"], KeyLength: MaxExportLength + 1})
		wantCode(t, "export too long", err, codes.InvalidArgument)
		_, err = r.c("bob").CreateGroup(r.ctx, &mlspb.CreateGroupRequest{CipherSuite: 0x7777, Identity: []byte("x")})
		wantCode(t, "unknown suite", err, codes.InvalidArgument)
		_, err = r.c("bob").RemoveProposal(r.ctx, &mlspb.RemoveProposalRequest{StateId: r.state["bob"], RemovedId: []byte("nobody")})
		wantCode(t, "remove a stranger", err, codes.InvalidArgument)

		// A proposal handed to Unprotect is refused, not applied.
		p := r.updateProposal("alice")
		_, err = r.c("bob").Unprotect(r.ctx, &mlspb.UnprotectRequest{StateId: r.state["bob"], Ciphertext: p})
		wantCode(t, "unprotect a proposal", err, codes.InvalidArgument)

		// A tampered commit is refused and changes nothing; the real one
		// still goes through.
		resp, err := r.c("alice").Commit(r.ctx, &mlspb.CommitRequest{StateId: r.state["alice"], ByReference: [][]byte{p}})
		r.check("commit", err)
		bad := bytes.Clone(resp.Commit)
		bad[len(bad)-5] ^= 1
		_, err = r.c("bob").HandleCommit(r.ctx, &mlspb.HandleCommitRequest{StateId: r.state["bob"], Proposal: [][]byte{p}, Commit: bad})
		wantCode(t, "tampered commit", err, codes.InvalidArgument)
		if !bytes.Equal(auth("bob"), before) {
			t.Fatal("a refused commit changed the state")
		}
		hp, err := r.c("alice").HandlePendingCommit(r.ctx, &mlspb.HandlePendingCommitRequest{StateId: r.state["alice"]})
		r.check("handle pending commit", err)
		h, err := r.c("bob").HandleCommit(r.ctx, &mlspb.HandleCommitRequest{StateId: r.state["bob"], Proposal: [][]byte{p}, Commit: resp.Commit})
		r.check("handle commit", err)
		if !bytes.Equal(h.EpochAuthenticator, hp.EpochAuthenticator) {
			t.Fatal("members disagree after the refused commit")
		}
		// The same commit again is for a past epoch.
		_, err = r.c("bob").HandleCommit(r.ctx, &mlspb.HandleCommitRequest{StateId: r.state["bob"], Commit: resp.Commit})
		wantCode(t, "replayed commit", err, codes.InvalidArgument)
		r.verify()

		// A transaction is consumed by its join.
		kp := r.keyPackage("charlie")
		tx := r.tx["charlie"]
		r.fullCommit("alice", commit{byValue: []*mlspb.ProposalDescription{addDesc(kp)}, joiners: []string{"charlie"}})
		_, err = r.c("charlie").JoinGroup(r.ctx, &mlspb.JoinGroupRequest{TransactionId: tx})
		wantCode(t, "transaction reused", err, codes.NotFound)
		r.done()
	}
}

// TestStaleStates: the official runner never frees a state. An actor
// that resynchronizes twice, or is removed and added again under the same
// identity, must still work while its old states stay allocated.
func TestStaleStates(t *testing.T) {
	clients := startClients(t, 1)
	for _, encrypt := range []bool{false, true} {
		r := newRunner(t, clients, 1, encrypt, 0)
		r.keepOld = true
		r.createGroup("alice")
		r.externalJoin("alice", "bob", false, false)
		r.externalJoin("alice", "bob", true, true)
		r.externalJoin("alice", "bob", false, true)
		r.verify()
		r.fullCommit("alice", commit{byValue: []*mlspb.ProposalDescription{removeDesc("bob")}})
		r.addMembers("alice", "bob")
		r.verify()
		r.done()
	}
}
