package mls

import (
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// ProposalRef is MakeProposalRef(AuthenticatedContent) (RFC 9420 §5.2):
// `opaque HashReference<V>`.
type ProposalRef []byte

// ProposalOrRefType says whether a ProposalOrRef holds a proposal by value
// or by reference (RFC 9420 §12.4).
type ProposalOrRefType uint8

// ProposalOrRefType values (RFC 9420 §12.4).
const (
	ProposalOrRefTypeProposal  ProposalOrRefType = 1
	ProposalOrRefTypeReference ProposalOrRefType = 2
)

// ProposalOrRef is one proposal covered by a Commit (RFC 9420 §12.4).
//
//	struct {
//	  ProposalOrRefType type;
//	  select (ProposalOrRef.type) {
//	    case proposal:  Proposal proposal;
//	    case reference: ProposalRef reference;
//	  };
//	} ProposalOrRef;
//
// Proposal must be non-nil when Type is proposal.
type ProposalOrRef struct {
	Type      ProposalOrRefType
	Proposal  *Proposal
	Reference ProposalRef
}

// MarshalMLS implements wire.Marshaler.
func (p *ProposalOrRef) MarshalMLS(b *wire.Builder) {
	switch p.Type {
	case ProposalOrRefTypeProposal:
		if p.Proposal == nil {
			incomplete(b, "ProposalOrRef of type proposal without a proposal")
			return
		}
		b.AddUint8(uint8(p.Type))
		p.Proposal.MarshalMLS(b)
	case ProposalOrRefTypeReference:
		b.AddUint8(uint8(p.Type))
		b.AddOpaque(p.Reference)
	default:
		incomplete(b, "ProposalOrRef type %d", uint8(p.Type))
	}
}

// UnmarshalMLS implements wire.Unmarshaler.
func (p *ProposalOrRef) UnmarshalMLS(r *wire.Reader) {
	*p = ProposalOrRef{Type: ProposalOrRefType(r.Uint8())}
	switch {
	case r.Err() != nil:
	case p.Type == ProposalOrRefTypeProposal:
		p.Proposal = new(Proposal)
		p.Proposal.UnmarshalMLS(r)
	case p.Type == ProposalOrRefTypeReference:
		p.Reference = r.OpaqueCopy()
	default:
		invalid(r, ErrUnknownProposalOrRefType, "%d", uint8(p.Type))
	}
}

// Commit moves the group to a new epoch (RFC 9420 §12.4).
//
//	struct {
//	    ProposalOrRef proposals<V>;
//	    optional<UpdatePath> path;
//	} Commit;
//
// Path is nil when absent.
type Commit struct {
	Proposals []ProposalOrRef
	Path      *tree.UpdatePath
}

// MarshalMLS implements wire.Marshaler.
func (c *Commit) MarshalMLS(b *wire.Builder) {
	b.AddVector(func(b *wire.Builder) {
		for i := range c.Proposals {
			c.Proposals[i].MarshalMLS(b)
		}
	})
	b.AddOptional(c.Path != nil, func(b *wire.Builder) { c.Path.MarshalMLS(b) })
}

// UnmarshalMLS implements wire.Unmarshaler.
func (c *Commit) UnmarshalMLS(r *wire.Reader) {
	*c = Commit{Proposals: []ProposalOrRef{}}
	r.VectorEach(func(r *wire.Reader) {
		var p ProposalOrRef
		p.UnmarshalMLS(r)
		c.Proposals = append(c.Proposals, p)
	})
	r.Optional(func(r *wire.Reader) {
		c.Path = new(tree.UpdatePath)
		c.Path.UnmarshalMLS(r)
	})
}
