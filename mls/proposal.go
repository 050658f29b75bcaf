package mls

import (
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Proposal is a proposed change to the group (RFC 9420 §12.1).
//
//	struct {
//	    ProposalType proposal_type;
//	    select (Proposal.proposal_type) {
//	        case add:                      Add;
//	        case update:                   Update;
//	        case remove:                   Remove;
//	        case psk:                      PreSharedKey;
//	        case reinit:                   ReInit;
//	        case external_init:            ExternalInit;
//	        case group_context_extensions: GroupContextExtensions;
//	    };
//	} Proposal;
//
// ProposalType selects which one of the pointer fields is encoded; it must
// be non-nil. Decoding sets exactly that one. Only the seven types above
// can be decoded: the select has no length prefix, so the body of any other
// type cannot be delimited and is rejected with ErrUnknownProposalType.
type Proposal struct {
	ProposalType           tree.ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
}

// body returns the marshaler for the selected case, or nil.
func (p *Proposal) body() wire.Marshaler {
	switch p.ProposalType {
	case tree.ProposalTypeAdd:
		if p.Add != nil {
			return p.Add
		}
	case tree.ProposalTypeUpdate:
		if p.Update != nil {
			return p.Update
		}
	case tree.ProposalTypeRemove:
		if p.Remove != nil {
			return p.Remove
		}
	case tree.ProposalTypePSK:
		if p.PreSharedKey != nil {
			return p.PreSharedKey
		}
	case tree.ProposalTypeReInit:
		if p.ReInit != nil {
			return p.ReInit
		}
	case tree.ProposalTypeExternalInit:
		if p.ExternalInit != nil {
			return p.ExternalInit
		}
	case tree.ProposalTypeGroupContextExtensions:
		if p.GroupContextExtensions != nil {
			return p.GroupContextExtensions
		}
	}
	return nil
}

// MarshalMLS implements wire.Marshaler.
func (p *Proposal) MarshalMLS(b *wire.Builder) {
	body := p.body()
	if body == nil {
		incomplete(b, "proposal of type %v without its body", p.ProposalType)
		return
	}
	b.AddUint16(uint16(p.ProposalType))
	body.MarshalMLS(b)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (p *Proposal) UnmarshalMLS(r *wire.Reader) {
	*p = Proposal{ProposalType: tree.ProposalType(r.Uint16())}
	if r.Err() != nil {
		return
	}
	switch p.ProposalType {
	case tree.ProposalTypeAdd:
		p.Add = new(Add)
		p.Add.UnmarshalMLS(r)
	case tree.ProposalTypeUpdate:
		p.Update = new(Update)
		p.Update.UnmarshalMLS(r)
	case tree.ProposalTypeRemove:
		p.Remove = new(Remove)
		p.Remove.UnmarshalMLS(r)
	case tree.ProposalTypePSK:
		p.PreSharedKey = new(PreSharedKey)
		p.PreSharedKey.UnmarshalMLS(r)
	case tree.ProposalTypeReInit:
		p.ReInit = new(ReInit)
		p.ReInit.UnmarshalMLS(r)
	case tree.ProposalTypeExternalInit:
		p.ExternalInit = new(ExternalInit)
		p.ExternalInit.UnmarshalMLS(r)
	case tree.ProposalTypeGroupContextExtensions:
		p.GroupContextExtensions = new(GroupContextExtensions)
		p.GroupContextExtensions.UnmarshalMLS(r)
	default:
		invalid(r, ErrUnknownProposalType, "0x%04x", uint16(p.ProposalType))
	}
}

// Add requests adding the client of a KeyPackage (RFC 9420 §12.1.1).
//
//	struct { KeyPackage key_package; } Add;
type Add struct {
	KeyPackage KeyPackage
}

// MarshalMLS implements wire.Marshaler.
func (a *Add) MarshalMLS(b *wire.Builder) { a.KeyPackage.MarshalMLS(b) }

// UnmarshalMLS implements wire.Unmarshaler.
func (a *Add) UnmarshalMLS(r *wire.Reader) { a.KeyPackage.UnmarshalMLS(r) }

// Update replaces the sender's LeafNode (RFC 9420 §12.1.2).
//
//	struct { LeafNode leaf_node; } Update;
type Update struct {
	LeafNode tree.LeafNode
}

// MarshalMLS implements wire.Marshaler.
func (u *Update) MarshalMLS(b *wire.Builder) { u.LeafNode.MarshalMLS(b) }

// UnmarshalMLS implements wire.Unmarshaler.
func (u *Update) UnmarshalMLS(r *wire.Reader) { u.LeafNode.UnmarshalMLS(r) }

// Remove requests removing the member at leaf index Removed (RFC 9420 §12.1.3).
//
//	struct { uint32 removed; } Remove;
type Remove struct {
	Removed tree.LeafIndex
}

// MarshalMLS implements wire.Marshaler.
func (rm *Remove) MarshalMLS(b *wire.Builder) { b.AddUint32(uint32(rm.Removed)) }

// UnmarshalMLS implements wire.Unmarshaler.
func (rm *Remove) UnmarshalMLS(r *wire.Reader) { rm.Removed = tree.LeafIndex(r.Uint32()) }

// PreSharedKey requests injecting a PSK into the next epoch (RFC 9420 §12.1.4).
//
//	struct { PreSharedKeyID psk; } PreSharedKey;
type PreSharedKey struct {
	PSK schedule.PreSharedKeyID
}

// MarshalMLS implements wire.Marshaler.
func (p *PreSharedKey) MarshalMLS(b *wire.Builder) { p.PSK.MarshalMLS(b) }

// UnmarshalMLS implements wire.Unmarshaler.
func (p *PreSharedKey) UnmarshalMLS(r *wire.Reader) { p.PSK.UnmarshalMLS(r) }

// ReInit requests reinitializing the group with new parameters
// (RFC 9420 §12.1.5). Version is the new group's version and is carried as
// decoded (it may legitimately be newer than mls10).
//
//	struct {
//	    opaque group_id<V>;
//	    ProtocolVersion version;
//	    CipherSuite cipher_suite;
//	    Extension extensions<V>;
//	} ReInit;
type ReInit struct {
	GroupID     []byte
	Version     tree.ProtocolVersion
	CipherSuite suite.ID
	Extensions  tree.Extensions
}

// MarshalMLS implements wire.Marshaler.
func (ri *ReInit) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(ri.GroupID)
	b.AddUint16(uint16(ri.Version))
	b.AddUint16(uint16(ri.CipherSuite))
	ri.Extensions.MarshalMLS(b)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (ri *ReInit) UnmarshalMLS(r *wire.Reader) {
	ri.GroupID = r.OpaqueCopy()
	ri.Version = tree.ProtocolVersion(r.Uint16())
	ri.CipherSuite = suite.ID(r.Uint16())
	ri.Extensions.UnmarshalMLS(r)
}

// ExternalInit carries the KEM output of an external join (RFC 9420 §12.1.6).
//
//	struct { opaque kem_output<V>; } ExternalInit;
type ExternalInit struct {
	KEMOutput []byte
}

// MarshalMLS implements wire.Marshaler.
func (e *ExternalInit) MarshalMLS(b *wire.Builder) { b.AddOpaque(e.KEMOutput) }

// UnmarshalMLS implements wire.Unmarshaler.
func (e *ExternalInit) UnmarshalMLS(r *wire.Reader) { e.KEMOutput = r.OpaqueCopy() }

// GroupContextExtensions replaces the GroupContext extensions (RFC 9420 §12.1.7).
//
//	struct { Extension extensions<V>; } GroupContextExtensions;
type GroupContextExtensions struct {
	Extensions tree.Extensions
}

// MarshalMLS implements wire.Marshaler.
func (g *GroupContextExtensions) MarshalMLS(b *wire.Builder) { g.Extensions.MarshalMLS(b) }

// UnmarshalMLS implements wire.Unmarshaler.
func (g *GroupContextExtensions) UnmarshalMLS(r *wire.Reader) { g.Extensions.UnmarshalMLS(r) }
