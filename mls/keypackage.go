package mls

import (
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// KeyPackageRef is RefHash("MLS 1.0 KeyPackage Reference", KeyPackage)
// (RFC 9420 §5.2): `opaque HashReference<V>`.
type KeyPackageRef []byte

// KeyPackage is a client's pre-published joining information (RFC 9420 §10).
//
//	struct {
//	    ProtocolVersion version;
//	    CipherSuite cipher_suite;
//	    HPKEPublicKey init_key;
//	    LeafNode leaf_node;
//	    Extension extensions<V>;
//	    opaque signature<V>;
//	} KeyPackage;
//
// Version and CipherSuite are carried as decoded; checking them (version
// equal to the enclosing MLSMessage's, a supported suite, leaf_node_source
// key_package) is KeyPackage validation (§10.1), not decoding.
type KeyPackage struct {
	Version     tree.ProtocolVersion
	CipherSuite suite.ID
	InitKey     []byte
	LeafNode    tree.LeafNode
	Extensions  tree.Extensions
	// Signature is SignWithLabel(., "KeyPackageTBS", KeyPackageTBS).
	Signature []byte
}

func (kp *KeyPackage) marshalTBS(b *wire.Builder) {
	b.AddUint16(uint16(kp.Version))
	b.AddUint16(uint16(kp.CipherSuite))
	b.AddOpaque(kp.InitKey)
	kp.LeafNode.MarshalMLS(b)
	kp.Extensions.MarshalMLS(b)
}

// MarshalTBS returns the KeyPackageTBS encoding (all fields but the
// signature) that the signature covers (RFC 9420 §10).
func (kp *KeyPackage) MarshalTBS() ([]byte, error) {
	var b wire.Builder
	kp.marshalTBS(&b)
	return b.Bytes()
}

// MarshalMLS implements wire.Marshaler.
func (kp *KeyPackage) MarshalMLS(b *wire.Builder) {
	kp.marshalTBS(b)
	b.AddOpaque(kp.Signature)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (kp *KeyPackage) UnmarshalMLS(r *wire.Reader) {
	kp.Version = tree.ProtocolVersion(r.Uint16())
	kp.CipherSuite = suite.ID(r.Uint16())
	kp.InitKey = r.OpaqueCopy()
	kp.LeafNode.UnmarshalMLS(r)
	kp.Extensions.UnmarshalMLS(r)
	kp.Signature = r.OpaqueCopy()
}
