package mls

import (
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// GroupContext summarizes the state of the group in one epoch (RFC 9420 §8.1).
//
//	struct {
//	    ProtocolVersion version = mls10;
//	    CipherSuite cipher_suite;
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    opaque tree_hash<V>;
//	    opaque confirmed_transcript_hash<V>;
//	    Extension extensions<V>;
//	} GroupContext;
//
// Version is fixed to mls10: decoding rejects any other value and encoding
// fails (ErrUnsupportedVersion) unless Version is ProtocolVersionMLS10.
type GroupContext struct {
	Version                 tree.ProtocolVersion
	CipherSuite             suite.ID
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              tree.Extensions
}

// MarshalMLS implements wire.Marshaler.
func (gc *GroupContext) MarshalMLS(b *wire.Builder) {
	if gc.Version != tree.ProtocolVersionMLS10 {
		unsupportedVersion(b, gc.Version)
		return
	}
	b.AddUint16(uint16(gc.Version))
	b.AddUint16(uint16(gc.CipherSuite))
	b.AddOpaque(gc.GroupID)
	b.AddUint64(gc.Epoch)
	b.AddOpaque(gc.TreeHash)
	b.AddOpaque(gc.ConfirmedTranscriptHash)
	gc.Extensions.MarshalMLS(b)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (gc *GroupContext) UnmarshalMLS(r *wire.Reader) {
	gc.Version = readVersion(r)
	gc.CipherSuite = suite.ID(r.Uint16())
	gc.GroupID = r.OpaqueCopy()
	gc.Epoch = r.Uint64()
	gc.TreeHash = r.OpaqueCopy()
	gc.ConfirmedTranscriptHash = r.OpaqueCopy()
	gc.Extensions.UnmarshalMLS(r)
}

// readVersion reads a ProtocolVersion that must be mls10.
func readVersion(r *wire.Reader) tree.ProtocolVersion {
	v := tree.ProtocolVersion(r.Uint16())
	if r.Err() == nil && v != tree.ProtocolVersionMLS10 {
		invalid(r, ErrUnsupportedVersion, "%d", uint16(v))
	}
	return v
}

func unsupportedVersion(b *wire.Builder, v tree.ProtocolVersion) {
	b.SetError(wrapf(ErrUnsupportedVersion, "cannot encode version %d", uint16(v)))
}
