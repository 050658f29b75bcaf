package mlsclient

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// Subgroup branching (RFC 9420 §11.3): a member creates a new group with
// some of the group's members (their new KeyPackages), linked to the
// current epoch by the branch resumption PSK; the others join it with the
// old group at hand. The old group is unchanged and stays in use.

// suiteOfKeyPackage is the suite of a transaction's KeyPackage.
func suiteOfKeyPackage(tx *joinTx) *suite.Suite {
	return suite.MustNew(tx.bundle.KeyPackage.CipherSuite)
}

// CreateBranch creates the subgroup: same suite, the creator's leaf with
// its credential and signature key of the old group, a group id (empty:
// random) and extensions of its own.
func (s *Server) CreateBranch(_ context.Context, r *mlspb.CreateBranchRequest) (*mlspb.CreateSubgroupResponse, error) {
	kps, err := decodeKeyPackages(r.KeyPackages)
	if err != nil {
		return nil, err
	}
	exts, err := extensions(r.Extensions)
	if err != nil {
		return nil, err
	}
	var st *state
	var res *mls.CommitResult
	err = s.withState(r.StateId, func(old *state) error {
		st = successorState(old, nil, !r.ExternalTree)
		var groupID []byte
		if len(r.GroupId) > 0 {
			groupID = r.GroupId
		}
		res, err = old.group.Branch(groupID, exts, mls.SuccessorOptions{Members: kps, NoPath: !r.ForcePath},
			s.config(st, st.treeInWelcome))
		return engineError("create branch", err)
	})
	if err != nil {
		return nil, err
	}
	return s.subgroupResponse(st, res, r.ExternalTree)
}

// HandleBranch joins a subgroup of the state's group with the KeyPackage of
// a transaction (consumed), checked against the old group (RFC 9420
// §12.4.3.1).
func (s *Server) HandleBranch(_ context.Context, r *mlspb.HandleBranchRequest) (*mlspb.HandleBranchResponse, error) {
	tx, err := lookup[*joinTx](s, r.TransactionId, "transaction")
	if err != nil {
		return nil, err
	}
	m, err := decodeMessage(r.Welcome, mls.WireFormatWelcome)
	if err != nil {
		return nil, err
	}
	rt, err := decodeTree(r.RatchetTree)
	if err != nil {
		return nil, err
	}
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.bundle == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "transaction %d was used", r.TransactionId)
	}
	var st *state
	var j *mls.Joined
	err = s.withState(r.StateId, func(old *state) error {
		st = successorState(old, tx, true)
		j, err = mls.JoinBranchWelcome(m.Welcome, rt, tx.find(), old.group, s.config(st, st.treeInWelcome))
		return engineError("handle branch", err)
	})
	if err != nil {
		return nil, err
	}
	tx.bundle = nil
	s.remove(r.TransactionId)
	st.groupID = j.Group.GroupID()
	return &mlspb.HandleBranchResponse{StateId: s.newState(st, j.Group), EpochAuthenticator: j.Group.EpochAuthenticator()}, nil
}
