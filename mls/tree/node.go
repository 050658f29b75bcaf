package tree

import (
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Decoding errors of this package. They are returned wrapped together with
// wire.ErrInvalidValue; test with errors.Is.
var (
	// ErrDuplicateExtension: an extension list holds two extensions of one type (RFC 9420 §13.4).
	ErrDuplicateExtension = errors.New("tree: duplicate extension type")
	// ErrUnknownLeafNodeSource: a leaf_node_source outside key_package/update/commit (RFC 9420 §7.2).
	ErrUnknownLeafNodeSource = errors.New("tree: unknown leaf node source")
	// ErrUnknownNodeType: a node_type outside leaf/parent (RFC 9420 §7.8).
	ErrUnknownNodeType = errors.New("tree: unknown node type")
	// ErrMalformedTree: a ratchet_tree vector that breaks RFC 9420 §12.4.3.3
	// (empty, trailing blank node, or a node of the wrong type for its position).
	ErrMalformedTree = errors.New("tree: malformed ratchet tree")
	// ErrIncompleteValue: a value cannot be encoded because a field its
	// selector requires is missing (e.g. a Node with neither leaf nor parent).
	ErrIncompleteValue = errors.New("tree: incomplete value")
)

// invalid records err wrapped with wire.ErrInvalidValue on r.
func invalid(r *wire.Reader, err error, format string, args ...any) {
	r.SetError(fmt.Errorf("%w: %s: %w", err, fmt.Sprintf(format, args...), wire.ErrInvalidValue))
}

// ProtocolVersion is an MLS protocol version (RFC 9420 §6).
type ProtocolVersion uint16

// ProtocolVersionMLS10 is the only version defined by RFC 9420.
const ProtocolVersionMLS10 ProtocolVersion = 1

// ProposalType identifies a proposal ("MLS Proposal Types" registry,
// RFC 9420 §17.4). It lives here because Capabilities lists proposal types;
// package mls uses it from here (one home for the vocabulary).
type ProposalType uint16

// Proposal types defined by RFC 9420 §17.4.
const (
	ProposalTypeAdd                    ProposalType = 0x0001
	ProposalTypeUpdate                 ProposalType = 0x0002
	ProposalTypeRemove                 ProposalType = 0x0003
	ProposalTypePSK                    ProposalType = 0x0004
	ProposalTypeReInit                 ProposalType = 0x0005
	ProposalTypeExternalInit           ProposalType = 0x0006
	ProposalTypeGroupContextExtensions ProposalType = 0x0007
)

// IsDefault reports whether t is one of the "default" proposal types that
// MUST NOT be listed in Capabilities.proposals (RFC 9420 §7.2). These are
// exactly the proposal types this implementation can decode.
func (t ProposalType) IsDefault() bool {
	return t >= ProposalTypeAdd && t <= ProposalTypeGroupContextExtensions
}

func (t ProposalType) String() string {
	switch t {
	case ProposalTypeAdd:
		return "add"
	case ProposalTypeUpdate:
		return "update"
	case ProposalTypeRemove:
		return "remove"
	case ProposalTypePSK:
		return "psk"
	case ProposalTypeReInit:
		return "reinit"
	case ProposalTypeExternalInit:
		return "external_init"
	case ProposalTypeGroupContextExtensions:
		return "group_context_extensions"
	}
	return fmt.Sprintf("ProposalType(0x%04x)", uint16(t))
}

// Capabilities lists what a client supports (RFC 9420 §7.2). Unknown
// values (including GREASE) are carried, never rejected (§13.4).
//
//	struct {
//	    ProtocolVersion versions<V>;
//	    CipherSuite cipher_suites<V>;
//	    ExtensionType extensions<V>;
//	    ProposalType proposals<V>;
//	    CredentialType credentials<V>;
//	} Capabilities;
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []suite.ID
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

// MarshalMLS implements wire.Marshaler.
func (c *Capabilities) MarshalMLS(b *wire.Builder) {
	addUint16s(b, c.Versions)
	addUint16s(b, c.CipherSuites)
	addUint16s(b, c.Extensions)
	addUint16s(b, c.Proposals)
	addUint16s(b, c.Credentials)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (c *Capabilities) UnmarshalMLS(r *wire.Reader) {
	c.Versions = readUint16s[ProtocolVersion](r)
	c.CipherSuites = readUint16s[suite.ID](r)
	c.Extensions = readUint16s[ExtensionType](r)
	c.Proposals = readUint16s[ProposalType](r)
	c.Credentials = readUint16s[CredentialType](r)
}

// Lifetime bounds a key_package LeafNode's validity in seconds since the
// Unix epoch (RFC 9420 §7.2).
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// MarshalMLS implements wire.Marshaler.
func (l *Lifetime) MarshalMLS(b *wire.Builder) {
	b.AddUint64(l.NotBefore)
	b.AddUint64(l.NotAfter)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (l *Lifetime) UnmarshalMLS(r *wire.Reader) {
	l.NotBefore = r.Uint64()
	l.NotAfter = r.Uint64()
}

// LeafNodeSource says how a LeafNode came to be (RFC 9420 §7.2).
type LeafNodeSource uint8

// LeafNodeSource values (RFC 9420 §7.2).
const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

func (s LeafNodeSource) String() string {
	switch s {
	case LeafNodeSourceKeyPackage:
		return "key_package"
	case LeafNodeSourceUpdate:
		return "update"
	case LeafNodeSourceCommit:
		return "commit"
	}
	return fmt.Sprintf("LeafNodeSource(%d)", uint8(s))
}

// LeafNode describes one member (RFC 9420 §7.2).
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    SignaturePublicKey signature_key;
//	    Credential credential;
//	    Capabilities capabilities;
//	    LeafNodeSource leaf_node_source;
//	    select (LeafNode.leaf_node_source) {
//	        case key_package: Lifetime lifetime;
//	        case update:      struct{};
//	        case commit:      opaque parent_hash<V>;
//	    };
//	    Extension extensions<V>;
//	    opaque signature<V>;
//	} LeafNode;
type LeafNode struct {
	EncryptionKey  []byte
	SignatureKey   []byte
	Credential     Credential
	Capabilities   Capabilities
	LeafNodeSource LeafNodeSource
	// Lifetime is encoded only when LeafNodeSource is key_package.
	Lifetime Lifetime
	// ParentHash is encoded only when LeafNodeSource is commit.
	ParentHash []byte
	Extensions Extensions
	// Signature is SignWithLabel(., "LeafNodeTBS", LeafNodeTBS).
	Signature []byte
}

// marshalContent writes the fields shared by LeafNode and LeafNodeTBS.
func (ln *LeafNode) marshalContent(b *wire.Builder) {
	b.AddOpaque(ln.EncryptionKey)
	b.AddOpaque(ln.SignatureKey)
	ln.Credential.MarshalMLS(b)
	ln.Capabilities.MarshalMLS(b)
	b.AddUint8(uint8(ln.LeafNodeSource))
	switch ln.LeafNodeSource {
	case LeafNodeSourceKeyPackage:
		ln.Lifetime.MarshalMLS(b)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		b.AddOpaque(ln.ParentHash)
	default:
		b.SetError(fmt.Errorf("%w: %v", ErrUnknownLeafNodeSource, ln.LeafNodeSource))
	}
	ln.Extensions.MarshalMLS(b)
}

// MarshalMLS implements wire.Marshaler.
func (ln *LeafNode) MarshalMLS(b *wire.Builder) {
	ln.marshalContent(b)
	b.AddOpaque(ln.Signature)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (ln *LeafNode) UnmarshalMLS(r *wire.Reader) {
	*ln = LeafNode{}
	ln.EncryptionKey = r.OpaqueCopy()
	ln.SignatureKey = r.OpaqueCopy()
	ln.Credential.UnmarshalMLS(r)
	ln.Capabilities.UnmarshalMLS(r)
	ln.LeafNodeSource = LeafNodeSource(r.Uint8())
	if r.Err() != nil {
		return
	}
	switch ln.LeafNodeSource {
	case LeafNodeSourceKeyPackage:
		ln.Lifetime.UnmarshalMLS(r)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		ln.ParentHash = r.OpaqueCopy()
	default:
		invalid(r, ErrUnknownLeafNodeSource, "%d", uint8(ln.LeafNodeSource))
		return
	}
	ln.Extensions.UnmarshalMLS(r)
	ln.Signature = r.OpaqueCopy()
}

// MarshalTBS returns the LeafNodeTBS encoding that the signature covers
// (RFC 9420 §7.2):
//
//	struct {
//	    ... every LeafNode field above signature ...
//	    select (LeafNodeTBS.leaf_node_source) {
//	        case key_package: struct{};
//	        case update:      opaque group_id<V>; uint32 leaf_index;
//	        case commit:      opaque group_id<V>; uint32 leaf_index;
//	    };
//	} LeafNodeTBS;
//
// groupID and leafIndex are used only for the update and commit sources,
// where they are required; they are ignored for key_package.
func (ln *LeafNode) MarshalTBS(groupID []byte, leafIndex LeafIndex) ([]byte, error) {
	var b wire.Builder
	ln.marshalContent(&b)
	switch ln.LeafNodeSource {
	case LeafNodeSourceUpdate, LeafNodeSourceCommit:
		b.AddOpaque(groupID)
		b.AddUint32(uint32(leafIndex))
	}
	return b.Bytes()
}

// ParentNode is an interior node of the ratchet tree (RFC 9420 §7.1).
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    opaque parent_hash<V>;
//	    uint32 unmerged_leaves<V>;
//	} ParentNode;
//
// The sort order of UnmergedLeaves (MUST be increasing) is checked by tree
// validation, not by the decoder.
type ParentNode struct {
	EncryptionKey  []byte
	ParentHash     []byte
	UnmergedLeaves []LeafIndex
}

// MarshalMLS implements wire.Marshaler.
func (p *ParentNode) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(p.EncryptionKey)
	b.AddOpaque(p.ParentHash)
	addUint32s(b, p.UnmergedLeaves)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (p *ParentNode) UnmarshalMLS(r *wire.Reader) {
	p.EncryptionKey = r.OpaqueCopy()
	p.ParentHash = r.OpaqueCopy()
	p.UnmergedLeaves = readUint32s[LeafIndex](r)
}

// NodeType says whether a Node is a leaf or a parent (RFC 9420 §7.8).
type NodeType uint8

// NodeType values (RFC 9420 §7.8).
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

func (t NodeType) String() string {
	switch t {
	case NodeTypeLeaf:
		return "leaf"
	case NodeTypeParent:
		return "parent"
	}
	return fmt.Sprintf("NodeType(%d)", uint8(t))
}

// Node is a non-blank ratchet tree node: exactly one of Leaf and Parent is
// set (RFC 9420 §12.4.3.3).
//
//	struct {
//	    NodeType node_type;
//	    select (Node.node_type) {
//	        case leaf:   LeafNode leaf_node;
//	        case parent: ParentNode parent_node;
//	    };
//	} Node;
type Node struct {
	Leaf   *LeafNode
	Parent *ParentNode
}

// Type returns the node's type, or 0 when the node is malformed (neither
// or both of Leaf and Parent set).
func (n *Node) Type() NodeType {
	switch {
	case n.Leaf != nil && n.Parent == nil:
		return NodeTypeLeaf
	case n.Parent != nil && n.Leaf == nil:
		return NodeTypeParent
	}
	return 0
}

// MarshalMLS implements wire.Marshaler.
func (n *Node) MarshalMLS(b *wire.Builder) {
	switch n.Type() {
	case NodeTypeLeaf:
		b.AddUint8(uint8(NodeTypeLeaf))
		n.Leaf.MarshalMLS(b)
	case NodeTypeParent:
		b.AddUint8(uint8(NodeTypeParent))
		n.Parent.MarshalMLS(b)
	default:
		b.SetError(fmt.Errorf("%w: node must hold exactly one of leaf and parent", ErrIncompleteValue))
	}
}

// UnmarshalMLS implements wire.Unmarshaler.
func (n *Node) UnmarshalMLS(r *wire.Reader) {
	*n = Node{}
	switch t := NodeType(r.Uint8()); {
	case r.Err() != nil:
	case t == NodeTypeLeaf:
		n.Leaf = new(LeafNode)
		n.Leaf.UnmarshalMLS(r)
	case t == NodeTypeParent:
		n.Parent = new(ParentNode)
		n.Parent.UnmarshalMLS(r)
	default:
		invalid(r, ErrUnknownNodeType, "%d", uint8(t))
	}
}

// RatchetTreeNodes is the ratchet tree as sent in the ratchet_tree
// extension (RFC 9420 §12.4.3.3): `optional<Node> ratchet_tree<V>`, nodes in
// array order (leaf L at index 2L), nil for a blank node.
//
// Decoding enforces the structural rules of §12.4.3.3: the vector is
// non-empty, its last node is non-blank, and every node has the type its
// position requires (leaf at even indices, parent at odd). Encoding
// writes the slice as given; senders MUST trim trailing blanks first
// (Trimmed does).
type RatchetTreeNodes []*Node

// Trimmed returns t without trailing blank nodes.
func (t RatchetTreeNodes) Trimmed() RatchetTreeNodes {
	n := len(t)
	for n > 0 && t[n-1] == nil {
		n--
	}
	return t[:n]
}

// MarshalMLS implements wire.Marshaler.
func (t RatchetTreeNodes) MarshalMLS(b *wire.Builder) {
	b.AddVector(func(b *wire.Builder) {
		for _, n := range t {
			b.AddOptional(n != nil, n.MarshalMLS)
		}
	})
}

// UnmarshalMLS implements wire.Unmarshaler.
func (t *RatchetTreeNodes) UnmarshalMLS(r *wire.Reader) {
	out := RatchetTreeNodes{}
	r.VectorEach(func(r *wire.Reader) {
		var node *Node
		r.Optional(func(r *wire.Reader) {
			node = new(Node)
			node.UnmarshalMLS(r)
		})
		if r.Err() != nil {
			return
		}
		if node != nil {
			want := NodeTypeParent
			if len(out)%2 == 0 {
				want = NodeTypeLeaf
			}
			if got := node.Type(); got != want {
				invalid(r, ErrMalformedTree, "node %d is a %v node", len(out), got)
				return
			}
		}
		out = append(out, node)
	})
	if r.Err() != nil {
		return
	}
	switch {
	case len(out) == 0:
		invalid(r, ErrMalformedTree, "empty tree")
	case out[len(out)-1] == nil:
		invalid(r, ErrMalformedTree, "last node is blank")
	}
	*t = out
}
