package mls

import (
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// GroupInfo describes a group to joiners (RFC 9420 §12.4.3).
//
//	struct {
//	    GroupContext group_context;
//	    Extension extensions<V>;
//	    MAC confirmation_tag;
//	    uint32 signer;
//	    opaque signature<V>;
//	} GroupInfo;
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      tree.Extensions
	ConfirmationTag []byte
	Signer          tree.LeafIndex
	// Signature is SignWithLabel(., "GroupInfoTBS", GroupInfoTBS).
	Signature []byte
}

func (gi *GroupInfo) marshalTBS(b *wire.Builder) {
	gi.GroupContext.MarshalMLS(b)
	gi.Extensions.MarshalMLS(b)
	b.AddOpaque(gi.ConfirmationTag)
	b.AddUint32(uint32(gi.Signer))
}

// MarshalTBS returns the GroupInfoTBS encoding (every field above the
// signature) that the signature covers (RFC 9420 §12.4.3).
func (gi *GroupInfo) MarshalTBS() ([]byte, error) {
	var b wire.Builder
	gi.marshalTBS(&b)
	return b.Bytes()
}

// MarshalMLS implements wire.Marshaler.
func (gi *GroupInfo) MarshalMLS(b *wire.Builder) {
	gi.marshalTBS(b)
	b.AddOpaque(gi.Signature)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (gi *GroupInfo) UnmarshalMLS(r *wire.Reader) {
	gi.GroupContext.UnmarshalMLS(r)
	gi.Extensions.UnmarshalMLS(r)
	gi.ConfirmationTag = r.OpaqueCopy()
	gi.Signer = tree.LeafIndex(r.Uint32())
	gi.Signature = r.OpaqueCopy()
}
