package mlsclient

import (
	"bytes"
	"context"
	"maps"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Reinitialization (RFC 9420 §11.2). A ReInit is proposed (by a member or
// an external sender), committed alone, and the commit freezes the group at
// every member, who then offers a KeyPackage of the new suite (a
// reinit_id). One member — the welcomer — creates the new group with
// everyone else's KeyPackages (ReInitWelcome); the others join it with the
// old group at hand (HandleReInitWelcome), which supplies the reinit
// resumption PSK and what the new group is checked against (§12.4.3.1).

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

// reinitOptions picks the one ReInit a ReInitCommit covers: this member's
// own (committed by value: a member cannot compute the reference of its own
// PrivateMessage, and needs not), another's or an external sender's
// (by reference, RFC 9420 §12.1.5), or one described by value. A ReInit
// commit holds nothing else (§12.2).
func (st *state) reinitOptions(r *mlspb.CommitRequest) (mls.CommitOptions, error) {
	o := mls.CommitOptions{NoPath: !r.ForcePath}
	n := 0
	for _, b := range r.ByReference {
		if ri, ok := st.sentReInit[string(b)]; ok {
			o.ReInit, n = ri, n+1
		} else if rp, ok := st.refs[string(b)]; ok && rp.typ == tree.ProposalTypeReInit {
			o.ReInitRef, n = rp.ref, n+1
		} else {
			return o, status.Error(codes.InvalidArgument, "reinit commit: a by-reference proposal is not a ReInit (RFC 9420 §12.2: a ReInit is committed alone)")
		}
	}
	for _, d := range r.ByValue {
		p, err := st.scope().proposal(d)
		if err != nil {
			return o, err
		}
		if p.ReInit == nil {
			return o, status.Errorf(codes.InvalidArgument, "reinit commit: a by-value %v proposal (RFC 9420 §12.2: a ReInit is committed alone)", p.ProposalType)
		}
		o.ReInit, n = p.ReInit, n+1
	}
	if n != 1 {
		return o, status.Errorf(codes.InvalidArgument, "reinit commit: %d ReInit proposals, want one", n)
	}
	return o, nil
}

// ReInitCommit processes the by-reference proposals, then commits the one
// ReInit among them (or given by value).
func (s *Server) ReInitCommit(_ context.Context, r *mlspb.CommitRequest) (*mlspb.CommitResponse, error) {
	out := &mlspb.CommitResponse{}
	err := s.withState(r.StateId, func(st *state) error {
		if err := s.reconfigure(st, !r.ExternalTree); err != nil {
			return engineError("reinit commit", err)
		}
		if err := st.receiveProposals(r.ByReference); err != nil {
			return err
		}
		o, err := st.reinitOptions(r)
		if err != nil {
			return err
		}
		res, err := st.group.Commit(o)
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
// for the new one (of the ReInit's suite, with a fresh signature key).
func (s *Server) frozen(id uint32, epochAuth []byte) (*mlspb.HandleReInitCommitResponse, error) {
	var ri *mls.ReInit
	var st *state
	err := s.withState(id, func(x *state) error {
		st, ri = x, x.group.ReInitPending()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ri == nil {
		return nil, status.Error(codes.InvalidArgument, "reinit: the commit held no ReInit proposal")
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

// decodeKeyPackages decodes KeyPackages sent as MLSMessages.
func decodeKeyPackages(in [][]byte) ([]*mls.KeyPackage, error) {
	var out []*mls.KeyPackage
	for _, b := range in {
		m, err := decodeMessage(b, mls.WireFormatKeyPackage)
		if err != nil {
			return nil, err
		}
		out = append(out, m.KeyPackage)
	}
	return out, nil
}

// successorState is the state of a member in a group that continues old's:
// the same identity, handshake mode and external PSKs.
func successorState(old *state, tx *joinTx, treeInWelcome bool) *state {
	st := &state{identity: old.identity, suite: old.suite, signer: old.signer, encrypt: old.encrypt,
		psks: maps.Clone(old.psks), treeInWelcome: treeInWelcome}
	if tx != nil {
		st.suite, st.signer = suiteOfKeyPackage(tx), tx.bundle.Signer
		maps.Copy(st.psks, tx.psks)
	}
	return st
}

// takeReinit removes the reinit entry under id and returns it.
func (s *Server) takeReinit(id uint32) (*reinitEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	re, ok := s.entries[id].(*reinitEntry)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no reinit with id %d", id)
	}
	delete(s.entries, id)
	return re, nil
}

// restoreReinit puts back an entry taken by a call that failed.
func (s *Server) restoreReinit(id uint32, re *reinitEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[id] = re
}

// withOld runs f on the frozen old group of re, holding its state's lock.
func withOld(re *reinitEntry, f func(old *state) error) error {
	re.old.mu.Lock()
	defer re.old.mu.Unlock()
	if re.old.freed {
		return status.Error(codes.NotFound, "reinit: the old group's state was freed")
	}
	return f(re.old)
}

// ReInitWelcome creates the new group of a ReInit with the other members'
// KeyPackages (RFC 9420 §11.2): its first commit adds them and injects the
// reinit resumption PSK. This member's leaf has the signature key of the
// KeyPackage it offered. The reinit_id is consumed.
func (s *Server) ReInitWelcome(_ context.Context, r *mlspb.ReInitWelcomeRequest) (*mlspb.CreateSubgroupResponse, error) {
	kps, err := decodeKeyPackages(r.KeyPackage)
	if err != nil {
		return nil, err
	}
	re, err := s.takeReinit(r.ReinitId)
	if err != nil {
		return nil, err
	}
	var st *state
	var res *mls.CommitResult
	err = withOld(re, func(old *state) error {
		st = successorState(old, re.tx, !r.ExternalTree)
		o := mls.SuccessorOptions{Signer: st.signer, Leaf: mls.LeafOptions{Credential: tree.NewBasicCredential(st.identity)},
			Members: kps, NoPath: !r.ForcePath}
		res, err = old.group.ReInitGroup(o, s.config(st, st.treeInWelcome))
		return engineError("reinit welcome", err)
	})
	if err != nil {
		s.restoreReinit(r.ReinitId, re)
		return nil, err
	}
	return s.subgroupResponse(st, res, r.ExternalTree)
}

// subgroupResponse registers the creator's state in a new group and
// returns its Welcome.
func (s *Server) subgroupResponse(st *state, res *mls.CommitResult, externalTree bool) (*mlspb.CreateSubgroupResponse, error) {
	out := &mlspb.CreateSubgroupResponse{EpochAuthenticator: res.State.EpochAuthenticator()}
	var err error
	if res.Welcome != nil {
		if out.Welcome, err = encodeMessage(res.Welcome); err != nil {
			return nil, err
		}
	}
	if externalTree {
		if out.RatchetTree, err = encodeTree(res.RatchetTree); err != nil {
			return nil, err
		}
	}
	st.groupID = res.State.GroupID()
	out.StateId = s.newState(st, res.State)
	return out, nil
}

// HandleReInitWelcome joins the new group of a ReInit with the KeyPackage
// this member offered, checked against the frozen old group (RFC 9420
// §12.4.3.1). The reinit_id is consumed.
func (s *Server) HandleReInitWelcome(_ context.Context, r *mlspb.HandleReInitWelcomeRequest) (*mlspb.JoinGroupResponse, error) {
	m, err := decodeMessage(r.Welcome, mls.WireFormatWelcome)
	if err != nil {
		return nil, err
	}
	rt, err := decodeTree(r.RatchetTree)
	if err != nil {
		return nil, err
	}
	re, err := s.takeReinit(r.ReinitId)
	if err != nil {
		return nil, err
	}
	var st *state
	var j *mls.Joined
	err = withOld(re, func(old *state) error {
		st = successorState(old, re.tx, true)
		j, err = mls.JoinReInitWelcome(m.Welcome, rt, re.tx.find(), old.group, s.config(st, st.treeInWelcome))
		return engineError("handle reinit welcome", err)
	})
	if err != nil {
		s.restoreReinit(r.ReinitId, re)
		return nil, err
	}
	// §12.4.3.1: the new group's id may be the old one's (the group it
	// replaces); the member is in no other group here (a state is a client
	// of its own, see JoinGroup).
	st.groupID = j.Group.GroupID()
	return &mlspb.JoinGroupResponse{StateId: s.newState(st, j.Group), EpochAuthenticator: j.Group.EpochAuthenticator()}, nil
}

// find is the KeyPackageFinder of the transaction's one KeyPackage.
func (tx *joinTx) find() mls.KeyPackageFinder {
	bundle, ref := tx.bundle, tx.ref
	return func(r mls.KeyPackageRef) (*mls.KeyPackageBundle, error) {
		if bundle != nil && bytes.Equal(r, ref) {
			return bundle, nil
		}
		return nil, mls.ErrKeyPackageNotFound
	}
}
