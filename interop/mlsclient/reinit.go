package mlsclient

import (
	"context"
	"slices"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
)

// Reinitialization (RFC 9420 §11.2) and branching (§11.3). The engine's
// public API can propose a ReInit, commit one this member proposed (by
// value) and process such a commit, which freezes the group; it cannot yet
// create or join the successor group, nor commit another member's ReInit
// by reference, nor branch.

// reinitEntry is a member of a group frozen by a ReInit commit, with the
// KeyPackage it offers for the new group (a reinit_id).
type reinitEntry struct {
	old    *state
	reinit *mls.ReInit
	tx     *joinTx
}

// ReInitProposal proposes reinitializing the group (mls10, the given
// suite, group id and extensions).
func (s *Server) ReInitProposal(_ context.Context, r *mlspb.ReInitProposalRequest) (*mlspb.ProposalResponse, error) {
	d := &mlspb.ProposalDescription{ProposalType: []byte(descReInit), CipherSuite: r.CipherSuite, GroupId: r.GroupId, Extensions: r.Extensions}
	return s.describe(r.StateId, "reinit proposal", d)
}

// ReInitCommit commits a ReInit proposal. A ReInit this member proposed is
// committed by value; another member's would have to be committed by
// reference, which the public API cannot do.
func (s *Server) ReInitCommit(_ context.Context, r *mlspb.CommitRequest) (*mlspb.CommitResponse, error) {
	out := &mlspb.CommitResponse{}
	err := s.withState(r.StateId, func(st *state) error {
		var ri *mls.ReInit
		for _, b := range r.ByReference {
			if own, ok := st.sentReInit[string(b)]; ok {
				ri = own
			}
		}
		if ri == nil || len(r.ByValue) > 0 || slices.ContainsFunc(r.ByReference, func(b []byte) bool { return !st.seen[string(b)] }) {
			return unimplemented("ReInitCommit of another member's ReInit proposal",
				"mls.CommitOptions cannot commit a cached ReInit proposal by reference (Group.Commit leaves ReInits out of the pending proposals)")
		}
		if err := s.reconfigure(st, !r.ExternalTree); err != nil {
			return engineError("reinit commit", err)
		}
		res, err := st.group.Commit(mls.CommitOptions{ReInit: ri, NoPath: !r.ForcePath})
		if err != nil {
			return engineError("reinit commit", err)
		}
		if out.Commit, err = encodeMessage(res.Commit); err != nil {
			return err
		}
		if r.ExternalTree {
			if out.RatchetTree, err = encodeTree(res.RatchetTree); err != nil {
				return err
			}
		}
		st.pending, st.pendingCommit = res, out.Commit
		return nil
	})
	return out, err
}

// HandlePendingReInitCommit merges this member's ReInit commit and offers
// a KeyPackage for the new group.
func (s *Server) HandlePendingReInitCommit(ctx context.Context, r *mlspb.HandlePendingCommitRequest) (*mlspb.HandleReInitCommitResponse, error) {
	hc, err := s.HandlePendingCommit(ctx, r)
	if err != nil {
		return nil, err
	}
	return s.frozen(r.StateId, hc.EpochAuthenticator)
}

// HandleReInitCommit processes another member's ReInit commit and offers a
// KeyPackage for the new group.
func (s *Server) HandleReInitCommit(ctx context.Context, r *mlspb.HandleCommitRequest) (*mlspb.HandleReInitCommitResponse, error) {
	hc, err := s.HandleCommit(ctx, r)
	if err != nil {
		return nil, err
	}
	return s.frozen(r.StateId, hc.EpochAuthenticator)
}

// frozen registers the KeyPackage a member of a reinitialized group offers
// for the new one (of the ReInit's suite).
func (s *Server) frozen(id uint32, epochAuth []byte) (*mlspb.HandleReInitCommitResponse, error) {
	st, err := lookup[*state](s, id, "state")
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	ri := st.group.ReInitPending()
	st.mu.Unlock()
	if ri == nil {
		return nil, engineError("reinit", mls.ErrInvalidCommit)
	}
	cs, err := suiteOf(uint32(ri.CipherSuite))
	if err != nil {
		return nil, err
	}
	tx, txID, _, err := s.newKeyPackage(cs, st.identity)
	if err != nil {
		return nil, err
	}
	s.remove(txID)
	kp, err := encodeMessage(tx.bundle.KeyPackage)
	if err != nil {
		return nil, err
	}
	rid := s.add(&reinitEntry{old: st, reinit: ri, tx: tx})
	return &mlspb.HandleReInitCommitResponse{ReinitId: rid, KeyPackage: kp, EpochAuthenticator: epochAuth}, nil
}

// ReInitWelcome would create the new group of a ReInit.
func (s *Server) ReInitWelcome(context.Context, *mlspb.ReInitWelcomeRequest) (*mlspb.CreateSubgroupResponse, error) {
	return nil, unimplemented("ReInitWelcome",
		"no way to create the successor group of a ReInit with its resumption PSK (usage reinit) — an API such as Group.ReInitGroup")
}

// HandleReInitWelcome would join the new group of a ReInit.
func (s *Server) HandleReInitWelcome(context.Context, *mlspb.HandleReInitWelcomeRequest) (*mlspb.JoinGroupResponse, error) {
	return nil, unimplemented("HandleReInitWelcome",
		"mls.JoinFromWelcome cannot resolve the reinit resumption PSK of the old group (its resumption_psk is not exposed) — an API such as JoinReInitWelcome(w, tree, find, old, cfg)")
}

// CreateBranch would branch a subgroup (RFC 9420 §11.3).
func (s *Server) CreateBranch(context.Context, *mlspb.CreateBranchRequest) (*mlspb.CreateSubgroupResponse, error) {
	return nil, unimplemented("CreateBranch",
		"no way to create a group whose first epoch injects the branch resumption PSK of this one — an API such as Group.Branch(groupID, extensions, keyPackages)")
}

// HandleBranch would join a branched subgroup.
func (s *Server) HandleBranch(context.Context, *mlspb.HandleBranchRequest) (*mlspb.HandleBranchResponse, error) {
	return nil, unimplemented("HandleBranch",
		"mls.JoinFromWelcome cannot resolve the branch resumption PSK of the parent group — an API such as JoinBranchWelcome(w, tree, find, parent, cfg)")
}
