package tree

import "github.com/spacepanda/spacepanda/mls/wire"

// HPKECiphertext is an HPKE encryption result (RFC 9420 §7.6).
//
//	struct {
//	    opaque kem_output<V>;
//	    opaque ciphertext<V>;
//	} HPKECiphertext;
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// MarshalMLS implements wire.Marshaler.
func (c *HPKECiphertext) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(c.KEMOutput)
	b.AddOpaque(c.Ciphertext)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (c *HPKECiphertext) UnmarshalMLS(r *wire.Reader) {
	c.KEMOutput = r.OpaqueCopy()
	c.Ciphertext = r.OpaqueCopy()
}

// UpdatePathNode is one parent node of an UpdatePath (RFC 9420 §7.6).
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    HPKECiphertext encrypted_path_secret<V>;
//	} UpdatePathNode;
type UpdatePathNode struct {
	EncryptionKey       []byte
	EncryptedPathSecret []HPKECiphertext
}

// MarshalMLS implements wire.Marshaler.
func (n *UpdatePathNode) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(n.EncryptionKey)
	b.AddVector(func(b *wire.Builder) {
		for i := range n.EncryptedPathSecret {
			n.EncryptedPathSecret[i].MarshalMLS(b)
		}
	})
}

// UnmarshalMLS implements wire.Unmarshaler.
func (n *UpdatePathNode) UnmarshalMLS(r *wire.Reader) {
	n.EncryptionKey = r.OpaqueCopy()
	n.EncryptedPathSecret = []HPKECiphertext{}
	r.VectorEach(func(r *wire.Reader) {
		var c HPKECiphertext
		c.UnmarshalMLS(r)
		n.EncryptedPathSecret = append(n.EncryptedPathSecret, c)
	})
}

// UpdatePath is the new leaf and parent keys sent in a Commit
// (RFC 9420 §7.6).
//
//	struct {
//	    LeafNode leaf_node;
//	    UpdatePathNode nodes<V>;
//	} UpdatePath;
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// MarshalMLS implements wire.Marshaler.
func (p *UpdatePath) MarshalMLS(b *wire.Builder) {
	p.LeafNode.MarshalMLS(b)
	b.AddVector(func(b *wire.Builder) {
		for i := range p.Nodes {
			p.Nodes[i].MarshalMLS(b)
		}
	})
}

// UnmarshalMLS implements wire.Unmarshaler.
func (p *UpdatePath) UnmarshalMLS(r *wire.Reader) {
	p.LeafNode.UnmarshalMLS(r)
	p.Nodes = []UpdatePathNode{}
	r.VectorEach(func(r *wire.Reader) {
		var n UpdatePathNode
		n.UnmarshalMLS(r)
		p.Nodes = append(p.Nodes, n)
	})
}
