package mlsclient

import (
	"bytes"
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// receiveProposals processes proposals and caches each valid one in the
// state at once: processing a PrivateMessage consumes its ratchet key, so a
// proposal once opened is kept even if a later message is refused.
// Proposals this member sent or already cached are skipped.
func (st *state) receiveProposals(msgs [][]byte) error {
	for _, b := range msgs {
		if st.seen[string(b)] {
			continue
		}
		m, err := decodeMessage(b, mls.WireFormatPublicMessage, mls.WireFormatPrivateMessage)
		if err != nil {
			return err
		}
		if ct := contentType(m); ct != mls.ContentTypeProposal {
			return status.Errorf(codes.InvalidArgument, "proposal: a %v message", ct)
		}
		p, err := st.group.Process(m)
		if err != nil {
			return engineError("proposal", err)
		}
		st.adopt(p.State)
		st.seen[string(b)] = true
		st.refs[string(b)] = received{ref: p.ProposalRef, typ: p.Proposal.ProposalType}
	}
	return nil
}

// contentType is the content type an MLSMessage shows before it is opened.
func contentType(m *mls.Message) mls.ContentType {
	if m.PrivateMessage != nil {
		return m.PrivateMessage.ContentType
	}
	return m.PublicMessage.Content.ContentType
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
		case tree.ProposalTypeAdd:
			o.Add = append(o.Add, &p.Add.KeyPackage)
		case tree.ProposalTypeRemove:
			o.Remove = append(o.Remove, p.Remove.Removed)
		case tree.ProposalTypePSK:
			o.PSKs = append(o.PSKs, p.PreSharedKey.PSK)
		case tree.ProposalTypeGroupContextExtensions:
			if o.Extensions != nil {
				return status.Error(codes.InvalidArgument, "commit: two groupContextExtensions proposals")
			}
			o.Extensions = p.GroupContextExtensions.Extensions
		case tree.ProposalTypeReInit:
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
		if err := st.receiveProposals(r.ByReference); err != nil {
			return err
		}
		g := st.group
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
		if err := st.receiveProposals(r.Proposal); err != nil {
			return err
		}
		p, err := process(st.group, r.Commit)
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
