package mlsclient

import (
	"bytes"
	"context"
	"crypto/rand"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Proposal types as ProposalDescription.proposal_type names them.
const (
	descAdd           = "add"
	descRemove        = "remove"
	descExternalPSK   = "externalPSK"
	descResumptionPSK = "resumptionPSK"
	descGCE           = "groupContextExtensions"
	descReInit        = "reinit"
)

// proposalScope is what turning a ProposalDescription into a Proposal needs
// to know of the group.
type proposalScope struct {
	suite   *suite.Suite
	groupID []byte
	members []mls.Member
}

func (st *state) scope() proposalScope {
	return proposalScope{suite: st.suite, groupID: st.group.GroupID(), members: st.group.Members()}
}

// leafOf finds the member whose basic credential has identity id.
func (sc proposalScope) leafOf(id []byte) (tree.LeafIndex, error) {
	var found []tree.LeafIndex
	for _, m := range sc.members {
		if m.Credential.CredentialType == tree.CredentialTypeBasic && bytes.Equal(m.Credential.Identity, id) {
			found = append(found, m.LeafIndex)
		}
	}
	switch len(found) {
	case 0:
		return 0, status.Errorf(codes.InvalidArgument, "no member %q", id)
	case 1:
		return found[0], nil
	}
	return 0, status.Errorf(codes.InvalidArgument, "%d members are %q", len(found), id)
}

// nonce returns a fresh psk_nonce (RFC 9420 §8.4: KDF.Nh random bytes).
func (sc proposalScope) nonce() ([]byte, error) {
	n := make([]byte, sc.suite.HashSize())
	if _, err := rand.Read(n); err != nil {
		return nil, status.Errorf(codes.Internal, "psk nonce: %v", err)
	}
	return n, nil
}

// proposal builds the Proposal a description asks for.
func (sc proposalScope) proposal(d *mlspb.ProposalDescription) (*mls.Proposal, error) {
	if d == nil {
		return nil, status.Error(codes.InvalidArgument, "missing proposal description")
	}
	switch string(d.ProposalType) {
	case descAdd:
		m, err := decodeMessage(d.KeyPackage, mls.WireFormatKeyPackage)
		if err != nil {
			return nil, err
		}
		return &mls.Proposal{ProposalType: tree.ProposalTypeAdd, Add: &mls.Add{KeyPackage: *m.KeyPackage}}, nil
	case descRemove:
		leaf, err := sc.leafOf(d.RemovedId)
		if err != nil {
			return nil, err
		}
		return &mls.Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &mls.Remove{Removed: leaf}}, nil
	case descExternalPSK, descResumptionPSK:
		nonce, err := sc.nonce()
		if err != nil {
			return nil, err
		}
		id := schedule.PreSharedKeyID{Type: schedule.PSKTypeExternal, PSKID: d.PskId, Nonce: nonce}
		if string(d.ProposalType) == descResumptionPSK {
			id = schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption, Usage: schedule.UsageApplication,
				PSKGroupID: bytes.Clone(sc.groupID), PSKEpoch: d.EpochId, Nonce: nonce}
		} else if len(d.PskId) == 0 {
			return nil, status.Error(codes.InvalidArgument, "external PSK proposal without psk_id")
		}
		return &mls.Proposal{ProposalType: tree.ProposalTypePSK, PreSharedKey: &mls.PreSharedKey{PSK: id}}, nil
	case descGCE:
		exts, err := extensions(d.Extensions)
		if err != nil {
			return nil, err
		}
		return &mls.Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions,
			GroupContextExtensions: &mls.GroupContextExtensions{Extensions: exts}}, nil
	case descReInit:
		cs, err := suiteOf(d.CipherSuite)
		if err != nil {
			return nil, err
		}
		exts, err := extensions(d.Extensions)
		if err != nil {
			return nil, err
		}
		return &mls.Proposal{ProposalType: tree.ProposalTypeReInit, ReInit: &mls.ReInit{GroupID: d.GroupId,
			Version: tree.ProtocolVersionMLS10, CipherSuite: cs.ID(), Extensions: exts}}, nil
	}
	return nil, status.Errorf(codes.InvalidArgument, "unknown proposal type %q", d.ProposalType)
}

// propose sends a proposal from the state's member and remembers it as its
// own for the rest of the epoch.
func (s *Server) propose(id uint32, op string, build func(st *state) (*mls.Proposal, error)) (*mlspb.ProposalResponse, error) {
	out := &mlspb.ProposalResponse{}
	err := s.withState(id, func(st *state) error {
		var (
			msg  *mls.Message
			next *mls.Group
			err  error
		)
		var p *mls.Proposal
		if build == nil {
			msg, next, err = st.group.ProposeUpdate()
		} else {
			if p, err = build(st); err != nil {
				return err
			}
			msg, next, err = st.group.Propose(p)
		}
		if err != nil {
			return engineError(op, err)
		}
		if out.Proposal, err = encodeMessage(msg); err != nil {
			return err
		}
		st.adopt(next)
		st.seen[string(out.Proposal)] = true
		if p != nil && p.ReInit != nil {
			st.sentReInit[string(out.Proposal)] = p.ReInit
		}
		return nil
	})
	return out, err
}

// describe is propose for a ProposalDescription.
func (s *Server) describe(id uint32, op string, d *mlspb.ProposalDescription) (*mlspb.ProposalResponse, error) {
	return s.propose(id, op, func(st *state) (*mls.Proposal, error) { return st.scope().proposal(d) })
}

// AddProposal proposes adding the owner of a KeyPackage.
func (s *Server) AddProposal(_ context.Context, r *mlspb.AddProposalRequest) (*mlspb.ProposalResponse, error) {
	return s.describe(r.StateId, "add proposal", &mlspb.ProposalDescription{ProposalType: []byte(descAdd), KeyPackage: r.KeyPackage})
}

// UpdateProposal proposes a fresh leaf for the state's member.
func (s *Server) UpdateProposal(_ context.Context, r *mlspb.UpdateProposalRequest) (*mlspb.ProposalResponse, error) {
	return s.propose(r.StateId, "update proposal", nil)
}

// RemoveProposal proposes removing the member with identity removed_id.
func (s *Server) RemoveProposal(_ context.Context, r *mlspb.RemoveProposalRequest) (*mlspb.ProposalResponse, error) {
	return s.describe(r.StateId, "remove proposal", &mlspb.ProposalDescription{ProposalType: []byte(descRemove), RemovedId: r.RemovedId})
}

// ExternalPSKProposal proposes injecting an external PSK.
func (s *Server) ExternalPSKProposal(_ context.Context, r *mlspb.ExternalPSKProposalRequest) (*mlspb.ProposalResponse, error) {
	return s.describe(r.StateId, "external psk proposal", &mlspb.ProposalDescription{ProposalType: []byte(descExternalPSK), PskId: r.PskId})
}

// ResumptionPSKProposal proposes injecting the resumption PSK of an
// earlier epoch of this group (usage application).
func (s *Server) ResumptionPSKProposal(_ context.Context, r *mlspb.ResumptionPSKProposalRequest) (*mlspb.ProposalResponse, error) {
	return s.describe(r.StateId, "resumption psk proposal", &mlspb.ProposalDescription{ProposalType: []byte(descResumptionPSK), EpochId: r.EpochId})
}

// GroupContextExtensionsProposal proposes new GroupContext extensions.
func (s *Server) GroupContextExtensionsProposal(_ context.Context, r *mlspb.GroupContextExtensionsProposalRequest) (*mlspb.ProposalResponse, error) {
	return s.describe(r.StateId, "group context extensions proposal", &mlspb.ProposalDescription{ProposalType: []byte(descGCE), Extensions: r.Extensions})
}
