package mlsclient

import (
	"bytes"
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// signerEntry is an external sender (RFC 9420 §12.1.8.1): a signature key
// and credential outside the group, such as a delivery service.
type signerEntry struct {
	suite  *suite.Suite
	signer *suite.Signer
}

// CreateExternalSigner makes an external sender's key and returns the
// ExternalSender struct to list in the group's external_senders.
func (s *Server) CreateExternalSigner(_ context.Context, r *mlspb.CreateExternalSignerRequest) (*mlspb.CreateExternalSignerResponse, error) {
	cs, err := suiteOf(r.CipherSuite)
	if err != nil {
		return nil, err
	}
	signer, _, err := newSigner(cs)
	if err != nil {
		return nil, err
	}
	es := tree.ExternalSender{SignatureKey: signer.PublicKey(), Credential: tree.NewBasicCredential(r.Identity)}
	b, err := wire.Marshal(&es)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "external sender: %v", err)
	}
	id := s.add(&signerEntry{suite: cs, signer: signer})
	return &mlspb.CreateExternalSignerResponse{SignerId: id, ExternalSender: b}, nil
}

// externalSenders decodes the external_senders extension of exts (none: empty).
func externalSenders(exts tree.Extensions) (tree.ExternalSenders, error) {
	var es tree.ExternalSenders
	if e := exts.Find(tree.ExtensionTypeExternalSenders); e != nil {
		if err := wire.Unmarshal(e.ExtensionData, &es); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "external_senders: %v", err)
		}
	}
	return es, nil
}

// AddExternalSigner proposes the group's extensions with external_sender
// appended to external_senders (a GroupContextExtensions proposal).
func (s *Server) AddExternalSigner(_ context.Context, r *mlspb.AddExternalSignerRequest) (*mlspb.ProposalResponse, error) {
	var add tree.ExternalSender
	if err := wire.Unmarshal(r.ExternalSender, &add); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "external sender: %v", err)
	}
	return s.propose(r.StateId, "add external signer", func(st *state) (*mls.Proposal, error) {
		exts := st.group.Context().Extensions
		senders, err := externalSenders(exts)
		if err != nil {
			return nil, err
		}
		data, err := wire.Marshal(append(senders, add))
		if err != nil {
			return nil, status.Errorf(codes.Internal, "external_senders: %v", err)
		}
		next := slices.DeleteFunc(slices.Clone(exts), func(e tree.Extension) bool {
			return e.ExtensionType == tree.ExtensionTypeExternalSenders
		})
		next = append(next, tree.Extension{ExtensionType: tree.ExtensionTypeExternalSenders, ExtensionData: data})
		return &mls.Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions,
			GroupContextExtensions: &mls.GroupContextExtensions{Extensions: next}}, nil
	})
}

// ExternalSignerProposal makes a proposal signed by an external sender for
// the epoch a GroupInfo (and ratchet tree) describes. The sender index is
// the signer's position in the group's external_senders.
func (s *Server) ExternalSignerProposal(_ context.Context, r *mlspb.ExternalSignerProposalRequest) (*mlspb.ProposalResponse, error) {
	se, err := lookup[*signerEntry](s, r.SignerId, "external signer")
	if err != nil {
		return nil, err
	}
	gi, t, err := verifiedGroupInfo(r.GroupInfo, r.RatchetTree)
	if err != nil {
		return nil, err
	}
	if gi.GroupContext.CipherSuite != se.suite.ID() {
		return nil, status.Errorf(codes.InvalidArgument, "external signer of suite %v, group of %v", se.suite.ID(), gi.GroupContext.CipherSuite)
	}
	senders, err := externalSenders(gi.GroupContext.Extensions)
	if err != nil {
		return nil, err
	}
	index := slices.IndexFunc(senders, func(e tree.ExternalSender) bool { return bytes.Equal(e.SignatureKey, se.signer.PublicKey()) })
	if index < 0 {
		return nil, status.Error(codes.FailedPrecondition, "external signer proposal: the signer is not in the group's external_senders")
	}
	sc := proposalScope{suite: se.suite, groupID: gi.GroupContext.GroupID, members: treeMembers(t)}
	p, err := sc.proposal(r.Description)
	if err != nil {
		return nil, err
	}
	msg, err := externalProposal(se.suite, se.signer, &gi.GroupContext, mls.Sender{SenderType: mls.SenderTypeExternal, SenderIndex: uint32(index)}, p)
	if err != nil {
		return nil, err
	}
	return &mlspb.ProposalResponse{Proposal: msg}, nil
}

// treeMembers lists the members of a ratchet tree.
func treeMembers(t *tree.Tree) []mls.Member {
	var out []mls.Member
	for i := range t.NumLeaves() {
		if ln := t.Leaf(tree.LeafIndex(i)); ln != nil {
			out = append(out, mls.Member{LeafIndex: tree.LeafIndex(i), Credential: ln.Credential, SignatureKey: ln.SignatureKey})
		}
	}
	return out
}
