package tree

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// TreeHash returns the tree hash of the root (RFC 9420 §7.8), the value
// that goes into GroupContext.tree_hash. Per-node hashes are cached, so
// after a change only the changed path is rehashed.
func (t *Tree) TreeHash(s *suite.Suite) []byte {
	return t.NodeTreeHash(s, t.Root())
}

// NodeTreeHash returns the tree hash of node x (RFC 9420 §7.8), nil if x is
// outside the tree. The result is shared with the cache: do not modify it.
func (t *Tree) NodeTreeHash(s *suite.Suite, x NodeIndex) []byte {
	if uint64(x) >= t.w() {
		return nil
	}
	t.useSuite(s)
	var scratch []byte
	return t.treeHash(s, x, &scratch)
}

// useSuite resets the hash cache if it was computed under another suite.
func (t *Tree) useSuite(s *suite.Suite) {
	if t.hashID != s.ID() {
		t.hashes.reset()
		t.hashID = s.ID()
	}
}

// treeHash computes (or returns the cached) tree hash of x. scratch is a
// reusable encoding buffer.
//
//	struct {
//	  NodeType node_type;
//	  select (TreeHashInput.node_type) {
//	    case leaf:   LeafNodeHashInput leaf_node;    // uint32 leaf_index; optional<LeafNode> leaf_node;
//	    case parent: ParentNodeHashInput parent_node; // optional<ParentNode> parent_node; opaque left_hash<V>; opaque right_hash<V>;
//	  };
//	} TreeHashInput;
func (t *Tree) treeHash(s *suite.Suite, x NodeIndex, scratch *[]byte) []byte {
	if h := t.hashes.get(int(x)); h != nil {
		return h
	}
	var h []byte
	if IsLeaf(x) {
		h = hashLeaf(s, LeafIndex(x>>1), t.nodes.get(int(x)), scratch)
	} else {
		lh := t.treeHash(s, left(x), scratch)
		rh := t.treeHash(s, right(x, t.w()), scratch)
		var p *ParentNode
		if n := t.nodes.get(int(x)); n != nil {
			p = n.Parent
		}
		h = hashParent(s, p, lh, rh, scratch)
	}
	t.hashes.set(int(x), h)
	return h
}

func hashLeaf(s *suite.Suite, i LeafIndex, n *Node, scratch *[]byte) []byte {
	buf := append((*scratch)[:0], byte(NodeTypeLeaf))
	buf = binary.BigEndian.AppendUint32(buf, uint32(i))
	if n == nil {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		enc, err := wire.Marshal(n.Leaf)
		if err != nil {
			// Unreachable: the tree only holds leaves with a known source,
			// and no field of a decodable leaf exceeds the varint range.
			panic(fmt.Sprintf("tree: cannot encode leaf %d: %v", i, err))
		}
		buf = append(buf, enc...)
	}
	*scratch = buf
	return s.Hash(buf)
}

func hashParent(s *suite.Suite, p *ParentNode, lh, rh []byte, scratch *[]byte) []byte {
	buf := append((*scratch)[:0], byte(NodeTypeParent))
	if p == nil {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		buf = appendParentNode(buf, p, p.UnmergedLeaves, nil)
	}
	buf = appendOpaque(buf, lh)
	buf = appendOpaque(buf, rh)
	*scratch = buf
	return s.Hash(buf)
}

// appendParentNode appends the ParentNode encoding of p with unmerged leaves
// ul, leaving out those in exclude (sorted).
func appendParentNode(buf []byte, p *ParentNode, ul, exclude []LeafIndex) []byte {
	buf = appendOpaque(buf, p.EncryptionKey)
	buf = appendOpaque(buf, p.ParentHash)
	n := 0
	for _, l := range ul {
		if !containsLeaf(exclude, l) {
			n++
		}
	}
	buf = appendVarint(buf, uint32(4*n))
	for _, l := range ul {
		if !containsLeaf(exclude, l) {
			buf = binary.BigEndian.AppendUint32(buf, uint32(l))
		}
	}
	return buf
}

// appendVarint appends an MLS variable-length integer (RFC 9420 §2.1.2).
// Values here are lengths of in-memory keys and hashes, far below 2^30.
func appendVarint(buf []byte, v uint32) []byte {
	switch {
	case v <= 0x3f:
		return append(buf, byte(v))
	case v <= 0x3fff:
		return append(buf, byte(v>>8)|0x40, byte(v))
	default:
		return append(buf, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	}
}

func appendOpaque(buf, v []byte) []byte {
	return append(appendVarint(buf, uint32(len(v))), v...)
}

// parentHash computes the parent hash of parent node p with copath child
// whose (original) tree hash is siblingHash (RFC 9420 §7.9):
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    opaque parent_hash<V>;
//	    opaque original_sibling_tree_hash<V>;
//	} ParentHashInput;
func parentHash(s *suite.Suite, p *ParentNode, siblingHash []byte, scratch *[]byte) []byte {
	buf := appendOpaque((*scratch)[:0], p.EncryptionKey)
	buf = appendOpaque(buf, p.ParentHash)
	buf = appendOpaque(buf, siblingHash)
	*scratch = buf
	return s.Hash(buf)
}

// subtreeLeaves returns the leaf range [lo, hi) under node x.
func subtreeLeaves(x NodeIndex) (lo, hi LeafIndex) {
	k := Level(x)
	lo = LeafIndex(uint64(x) >> (k + 1) << k)
	return lo, lo + LeafIndex(uint64(1)<<k)
}

// anyInSubtree reports whether a leaf of sorted lies under x.
func anyInSubtree(sorted []LeafIndex, x NodeIndex) bool {
	lo, hi := subtreeLeaves(x)
	i, _ := slices.BinarySearch(sorted, lo)
	return i < len(sorted) && sorted[i] < hi
}

// originalTreeHash is the tree hash of x in the tree where the leaves of
// exclude (sorted) are blanked and removed from every unmerged_leaves list:
// the original_sibling_tree_hash of RFC 9420 §7.9. Subtrees without an
// excluded leaf use the cached hashes.
func (t *Tree) originalTreeHash(s *suite.Suite, x NodeIndex, exclude []LeafIndex, scratch *[]byte) []byte {
	if !anyInSubtree(exclude, x) {
		return t.treeHash(s, x, scratch)
	}
	if IsLeaf(x) {
		return hashLeaf(s, LeafIndex(x>>1), nil, scratch)
	}
	lh := t.originalTreeHash(s, left(x), exclude, scratch)
	rh := t.originalTreeHash(s, right(x, t.w()), exclude, scratch)
	buf := append((*scratch)[:0], byte(NodeTypeParent))
	if n := t.nodes.get(int(x)); n == nil {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		buf = appendParentNode(buf, n.Parent, n.Parent.UnmergedLeaves, exclude)
	}
	buf = appendOpaque(buf, lh)
	buf = appendOpaque(buf, rh)
	*scratch = buf
	return s.Hash(buf)
}

// setPathParentHashes sets the parent_hash fields along the filtered direct
// path fdp (leaf to root, with copath children cp) of a freshly updated path,
// top-down: the root's is empty, each other node's is the parent hash of the
// next node with its copath child (RFC 9420 §7.9). The nodes on fdp must be
// new ParentNodes owned by t (their unmerged lists are empty, so original
// sibling tree hashes are current tree hashes). It returns the parent hash
// the leaf must carry.
func (t *Tree) setPathParentHashes(s *suite.Suite, fdp, cp []NodeIndex) []byte {
	t.useSuite(s)
	var scratch []byte
	var ph []byte // parent_hash of the node being visited
	for i := len(fdp) - 1; i >= 0; i-- {
		p := t.nodes.get(int(fdp[i])).Parent
		p.ParentHash = ph
		t.invalidate(fdp[i])
		sh := t.treeHash(s, cp[i], &scratch)
		ph = parentHash(s, p, sh, &scratch)
	}
	return ph
}

// VerifyParentHashes checks that every non-blank parent node is parent-hash
// valid (RFC 9420 §7.9.2), top-down: each has exactly one descendant D, at
// the head of one of its children's resolution, whose parent_hash is the
// node's parent hash with the other child as copath child, and the node's
// unmerged leaves under that child are exactly the rest of the child's
// resolution. Since every non-blank parent is checked, the chains reach
// leaves and cover every parent once.
func (t *Tree) VerifyParentHashes(s *suite.Suite) error {
	t.useSuite(s)
	var scratch []byte
	var res []NodeIndex
	w := t.w()
	for i := 1; i < t.nodes.len(); i += 2 {
		n := t.nodes.get(i)
		if n == nil {
			continue
		}
		x := NodeIndex(i)
		p := n.Parent
		l, r := left(x), right(x, w)
		found := 0
		for side := 0; side < 2; side++ {
			c, sib := l, r
			if side == 1 {
				c, sib = r, l
			}
			// P's unmerged leaves under C, as node indexes (sorted).
			var want []NodeIndex
			for _, u := range p.UnmergedLeaves {
				if IsInSubtree(u.Node(), c) {
					want = append(want, u.Node())
				}
			}
			if t.resolutionSize(c, nil) != len(want)+1 {
				continue
			}
			res = t.appendResolution(res[:0], c, nil)
			for j, d := range res {
				dph, ok := t.nodeParentHash(d)
				if !ok || !sameWithout(res, j, want) {
					continue
				}
				sh := t.originalTreeHash(s, sib, p.UnmergedLeaves, &scratch)
				if string(parentHash(s, p, sh, &scratch)) == string(dph) {
					found++
				}
				break
			}
		}
		if found != 1 {
			return fmt.Errorf("%w: parent node %d is covered by %d chains", ErrParentHash, x, found)
		}
	}
	return nil
}

// nodeParentHash returns the parent_hash field of node x: a parent's, or a
// leaf's whose source is commit.
func (t *Tree) nodeParentHash(x NodeIndex) ([]byte, bool) {
	n := t.nodes.get(int(x))
	switch {
	case n == nil:
		return nil, false
	case n.Parent != nil:
		return n.Parent.ParentHash, true
	case n.Leaf.LeafNodeSource == LeafNodeSourceCommit:
		return n.Leaf.ParentHash, true
	}
	return nil, false
}

// sameWithout reports whether res without its j-th entry equals want as a
// set. want is sorted; res without D lists unmerged leaves in tree order,
// which is sorted too.
func sameWithout(res []NodeIndex, j int, want []NodeIndex) bool {
	k := 0
	for i, x := range res {
		if i == j {
			continue
		}
		if k >= len(want) || want[k] != x {
			return false
		}
		k++
	}
	return k == len(want)
}
