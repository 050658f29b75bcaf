package mlsclient

import (
	"bytes"
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
)

// receiveProposals processes proposals on g and returns the group with them
// cached. Proposals this member sent are skipped: it has them already.
func (st *state) receiveProposals(g *mls.Group, msgs [][]byte) (*mls.Group, error) {
	for _, b := range msgs {
		if st.sent[string(b)] {
			continue
		}
		p, err := process(g, b)
		if err != nil {
			return nil, engineError("proposal", err)
		}
		if p.ContentType != mls.ContentTypeProposal {
			return nil, status.Errorf(codes.InvalidArgument, "proposal: a %v message", p.ContentType)
		}
		g = p.State
	}
	return g, nil
}

// process decodes a handshake message and processes it.
func process(g *mls.Group, b []byte) (*mls.Processed, error) {
	m, err := decodeMessage(b, mls.WireFormatPublicMessage, mls.WireFormatPrivateMessage)
	if err != nil {
		return nil, err
	}
	return g.Process(m)
}

// commitOptions adds the by-value proposals of a commit to o.
func commitOptions(sc proposalScope, descs []*mlspb.ProposalDescription, o *mls.CommitOptions) error {
	for _, d := range descs {
		p, err := sc.proposal(d)
		if err != nil {
			return err
		}
		switch p.ProposalType {
		case mls.ProposalTypeAdd:
			o.Add = append(o.Add, &p.Add.KeyPackage)
		case mls.ProposalTypeRemove:
			o.Remove = append(o.Remove, p.Remove.Removed)
		case mls.ProposalTypePSK:
			o.PSKs = append(o.PSKs, p.PreSharedKey.PSK)
		case mls.ProposalTypeGroupContextExtensions:
			if o.Extensions != nil {
				return status.Error(codes.InvalidArgument, "commit: two groupContextExtensions proposals")
			}
			o.Extensions = p.GroupContextExtensions.Extensions
		case mls.ProposalTypeReInit:
			o.ReInit = p.ReInit
		}
	}
	return nil
}

// Commit processes the by-reference proposals of other members, then
// commits them with this member's own pending proposals and the by-value
// ones. The new epoch starts at HandlePendingCommit.
func (s *Server) Commit(_ context.Context, r *mlspb.CommitRequest) (*mlspb.CommitResponse, error) {
	out := &mlspb.CommitResponse{}
	err := s.withState(r.StateId, func(st *state) error {
		// The tree goes in the Welcome unless the caller carries it.
		if err := s.reconfigure(st, !r.ExternalTree); err != nil {
			return engineError("commit", err)
		}
		g, err := st.receiveProposals(st.group, r.ByReference)
		if err != nil {
			return err
		}
		o := mls.CommitOptions{NoPath: !r.ForcePath}
		if err := commitOptions(proposalScope{suite: st.suite, groupID: g.GroupID(), members: g.Members()}, r.ByValue, &o); err != nil {
			return err
		}
		res, err := g.Commit(o)
		if err != nil {
			return engineError("commit", err)
		}
		if out.Commit, err = encodeMessage(res.Commit); err != nil {
			return err
		}
		if res.Welcome != nil {
			if out.Welcome, err = encodeMessage(res.Welcome); err != nil {
				return err
			}
		}
		if r.ExternalTree {
			if out.RatchetTree, err = encodeTree(res.RatchetTree); err != nil {
				return err
			}
		}
		st.adopt(g)
		st.pending, st.pendingCommit = res, out.Commit
		return nil
	})
	return out, err
}

// HandleCommit processes the proposals a commit covers by reference, then
// the commit, and moves the state to the new epoch. This member's own
// pending commit is merged instead of processed.
func (s *Server) HandleCommit(_ context.Context, r *mlspb.HandleCommitRequest) (*mlspb.HandleCommitResponse, error) {
	out := &mlspb.HandleCommitResponse{StateId: r.StateId}
	err := s.withState(r.StateId, func(st *state) error {
		if st.pending != nil && bytes.Equal(r.Commit, st.pendingCommit) {
			st.adopt(st.pending.State)
			out.EpochAuthenticator = st.group.EpochAuthenticator()
			return nil
		}
		g, err := st.receiveProposals(st.group, r.Proposal)
		if err != nil {
			return err
		}
		p, err := process(g, r.Commit)
		if err != nil {
			return engineError("handle commit", err)
		}
		if p.ContentType != mls.ContentTypeCommit {
			return status.Errorf(codes.InvalidArgument, "handle commit: a %v message", p.ContentType)
		}
		st.adopt(p.State)
		out.EpochAuthenticator = st.group.EpochAuthenticator()
		return nil
	})
	return out, err
}

// HandlePendingCommit merges this member's own commit.
func (s *Server) HandlePendingCommit(_ context.Context, r *mlspb.HandlePendingCommitRequest) (*mlspb.HandleCommitResponse, error) {
	out := &mlspb.HandleCommitResponse{StateId: r.StateId}
	err := s.withState(r.StateId, func(st *state) error {
		if st.pending == nil {
			return status.Error(codes.FailedPrecondition, "handle pending commit: no pending commit")
		}
		st.adopt(st.pending.State)
		out.EpochAuthenticator = st.group.EpochAuthenticator()
		return nil
	})
	return out, err
}
