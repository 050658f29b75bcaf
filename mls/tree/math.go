// Package tree implements the MLS ratchet tree (RFC 9420 §4, §7): the
// array-based tree math of Appendix C and, in other files, the tree's node
// types and operations.
//
// # Tree math
//
// Nodes live in a flat array: leaf i is node 2i, parent nodes take the odd
// indices, and a node's level is the number of trailing one bits of its
// index (RFC 9420 Appendix C). RFC 9420 trees always have a power-of-two
// number of leaves (§4, §7.8: the tree is extended by doubling and truncated
// by halving), but the functions here accept any leaf count n ≥ 1 and then
// describe the left-balanced tree of n leaves (node width 2n-1), in which a
// node whose parent or right child would lie past the end of the array is
// linked to the nearest ancestor or descendant that does not. For a
// power-of-two n the two views coincide.
//
// Every function is allocation-free and non-recursive except the
// slice-returning DirectPath and Copath, which allocate exactly once; the
// Append variants reuse a caller's slice. Nothing panics: a missing node
// (a leaf's children, the root's parent and sibling, an index outside the
// tree) is reported with ok == false.
package tree

import "math/bits"

// NodeIndex is the position of a node in the array representation of the
// tree (RFC 9420 Appendix C): leaves at even, parents at odd indices.
type NodeIndex uint32

// LeafIndex is the position of a leaf among the leaves (RFC 9420 §4.1), the
// value carried on the wire in e.g. LeafNodeSource and Sender.leaf_index.
type LeafIndex uint32

// MaxLeaves is the largest leaf count whose node indices fit in a NodeIndex.
const MaxLeaves = 1 << 31

// Node returns the node index of leaf i: 2i (RFC 9420 Appendix C). i must be
// below MaxLeaves.
func (i LeafIndex) Node() NodeIndex { return NodeIndex(i) << 1 }

// Leaf returns the leaf index of node x, and false if x is a parent node.
func (x NodeIndex) Leaf() (LeafIndex, bool) {
	if x&1 != 0 {
		return 0, false
	}
	return LeafIndex(x >> 1), true
}

// NodeWidth returns the number of nodes in a tree of n leaves: 2(n-1)+1, or
// 0 for n = 0 (RFC 9420 Appendix C node_width). n must not exceed MaxLeaves.
func NodeWidth(n uint32) uint32 {
	if n == 0 {
		return 0
	}
	return 2*(n-1) + 1
}

// LeafCount returns the number of leaves of a tree of w nodes, the inverse
// of NodeWidth for odd w: (w+1)/2.
func LeafCount(w uint32) uint32 { return uint32((uint64(w) + 1) / 2) }

// Root returns the root of a tree of n leaves: the largest index of the form
// 2^k - 1 that is below NodeWidth(n) (RFC 9420 Appendix C root). Root(0) is
// 0, although an empty tree has no root.
func Root(n uint32) NodeIndex {
	w := width(n)
	if w == 0 {
		return 0
	}
	return NodeIndex(1)<<(bits.Len64(w)-1) - 1
}

// Level returns the level of node x: 0 for leaves, one more than its
// children's for parents, i.e. the number of trailing one bits of x
// (RFC 9420 Appendix C level).
func Level(x NodeIndex) uint {
	return uint(bits.TrailingZeros32(^uint32(x)))
}

// IsLeaf reports whether x is a leaf node (an even index).
func IsLeaf(x NodeIndex) bool { return x&1 == 0 }

// InTree reports whether x is a node of the tree of n leaves.
func InTree(x NodeIndex, n uint32) bool { return uint64(x) < width(n) }

// Left returns the left child of x in the tree of n leaves; ok is false if x
// is a leaf or not in the tree (RFC 9420 Appendix C left).
func Left(x NodeIndex, n uint32) (NodeIndex, bool) {
	if x&1 == 0 || !InTree(x, n) {
		return 0, false
	}
	return left(x), true
}

// Right returns the right child of x in the tree of n leaves; ok is false if
// x is a leaf or not in the tree (RFC 9420 Appendix C right). In a
// left-balanced tree whose right subtree is cut short, the right child is
// the highest node of that subtree that exists.
func Right(x NodeIndex, n uint32) (NodeIndex, bool) {
	if x&1 == 0 || !InTree(x, n) {
		return 0, false
	}
	return right(x, width(n)), true
}

// Parent returns the parent of x in the tree of n leaves; ok is false if x is
// the root or not in the tree (RFC 9420 Appendix C parent).
func Parent(x NodeIndex, n uint32) (NodeIndex, bool) {
	w := width(n)
	if uint64(x) >= w || x == rootOfWidth(w) {
		return 0, false
	}
	return parent(x, w), true
}

// Sibling returns the other child of x's parent in the tree of n leaves; ok
// is false if x is the root or not in the tree (RFC 9420 Appendix C sibling).
func Sibling(x NodeIndex, n uint32) (NodeIndex, bool) {
	w := width(n)
	if uint64(x) >= w || x == rootOfWidth(w) {
		return 0, false
	}
	return sibling(x, parent(x, w), w), true
}

// DirectPath returns the direct path of leaf in the tree of n leaves: its
// parent, its parent's parent and so on up to and including the root
// (RFC 9420 §4.1, Appendix C direct_path). It is empty for the root (the
// single leaf of a one-leaf tree) and nil for a leaf outside the tree.
func DirectPath(leaf LeafIndex, n uint32) []NodeIndex {
	if uint64(leaf) >= uint64(n) {
		return nil
	}
	x := leaf.Node()
	return AppendDirectPath(make([]NodeIndex, 0, pathCap(x, n)), x, n)
}

// Copath returns the copath of leaf in the tree of n leaves: the sibling of
// the leaf and of each node of its direct path except the root, ordered from
// the leaf upwards (RFC 9420 §4.1, Appendix C copath). It has the same length
// as DirectPath and is nil for a leaf outside the tree.
func Copath(leaf LeafIndex, n uint32) []NodeIndex {
	if uint64(leaf) >= uint64(n) {
		return nil
	}
	x := leaf.Node()
	return AppendCopath(make([]NodeIndex, 0, pathCap(x, n)), x, n)
}

// AppendDirectPath appends the direct path of node x (any node, not only a
// leaf) in the tree of n leaves to dst, leaf to root, and returns the
// extended slice. Nothing is appended if x is the root or not in the tree.
func AppendDirectPath(dst []NodeIndex, x NodeIndex, n uint32) []NodeIndex {
	w := width(n)
	if uint64(x) >= w {
		return dst
	}
	for r := rootOfWidth(w); x != r; {
		x = parent(x, w)
		dst = append(dst, x)
	}
	return dst
}

// AppendCopath appends the copath of node x in the tree of n leaves to dst,
// ordered like its direct path, and returns the extended slice. Nothing is
// appended if x is the root or not in the tree.
func AppendCopath(dst []NodeIndex, x NodeIndex, n uint32) []NodeIndex {
	w := width(n)
	if uint64(x) >= w {
		return dst
	}
	for r := rootOfWidth(w); x != r; {
		// Fast path: the full-tree parent (bit k set, bit k+1 cleared) and
		// sibling (bit k+1 flipped) both exist.
		k := Level(x)
		p := (uint64(x) | 1<<k) &^ (2 << k)
		if s := uint64(x) ^ (2 << k); p < w && s < w {
			dst = append(dst, NodeIndex(s))
			x = NodeIndex(p)
			continue
		}
		q := parent(x, w)
		dst = append(dst, sibling(x, q, w))
		x = q
	}
	return dst
}

// DirectPathLen returns the length of the direct path (and of the copath) of
// node x in the tree of n leaves, 0 if x is the root or not in the tree.
func DirectPathLen(x NodeIndex, n uint32) int {
	w := width(n)
	if uint64(x) >= w {
		return 0
	}
	k := 0
	for r := rootOfWidth(w); x != r; k++ {
		x = parent(x, w)
	}
	return k
}

// CommonAncestor returns the lowest common ancestor of x and y: the node of
// lowest level whose subtree contains both (RFC 9420 Appendix C
// common_ancestor_direct). If one node is an ancestor of the other, that node
// is returned; CommonAncestor(x, x) is x. The result does not depend on the
// tree size: for x and y in a tree, their common ancestor is in it too.
func CommonAncestor(x, y NodeIndex) NodeIndex {
	// The ancestor of x at level l is x with bit l cleared and the bits
	// below it set. y lies below it iff x and y agree above bit l, so l is
	// the smallest level ≥ both levels at which the high bits agree.
	l := max(Level(x), Level(y))
	if d := uint(bits.Len32(uint32(x ^ y))); d > 0 && d-1 > l {
		l = d - 1
	}
	return ancestorAt(x, l)
}

// IsInSubtree reports whether x is head or a descendant of head. Like
// CommonAncestor it does not depend on the tree size.
func IsInSubtree(x, head NodeIndex) bool {
	l := Level(head)
	return Level(x) <= l && uint64(x)>>(l+1) == uint64(head)>>(l+1)
}

// width is NodeWidth computed without overflow for any uint32 n.
func width(n uint32) uint64 {
	if n == 0 {
		return 0
	}
	return 2*uint64(n) - 1
}

// rootOfWidth is Root for a tree of w > 0 nodes.
func rootOfWidth(w uint64) NodeIndex {
	return NodeIndex(uint64(1)<<(bits.Len64(w)-1) - 1)
}

// ancestorAt returns the node at level l ≥ Level(x) whose subtree holds x in
// the unbounded tree. Computed in 64 bits so that l = 31 does not overflow.
func ancestorAt(x NodeIndex, l uint) NodeIndex {
	return NodeIndex(uint64(x)>>(l+1)<<(l+1) | (uint64(1)<<l - 1))
}

// left is the left child of parent node x (Level(x) > 0). The left subtree
// of a node in the tree is never cut short.
func left(x NodeIndex) NodeIndex {
	return x ^ (1 << (Level(x) - 1))
}

// right is the right child of parent node x < w. If the full-tree right
// child lies past the end, the right subtree is the left-balanced tree of the
// nodes x+1 .. w-1; since x+1 is a multiple of 2^Level(x), that tree is laid
// out like a tree starting at index 0, and its root is x+1 plus the root of a
// tree of w-x-1 nodes.
func right(x NodeIndex, w uint64) NodeIndex {
	if r := x ^ (3 << (Level(x) - 1)); uint64(r) < w {
		return r
	}
	return x + 1 + rootOfWidth(w-uint64(x)-1)
}

// parent is the parent of x < w, x not the root. If the full-tree parent lies
// past the end, climb on: the root is an ancestor of every node, so this
// ends after at most 31 steps.
func parent(x NodeIndex, w uint64) NodeIndex {
	for {
		k := Level(x)
		b := (uint64(x) >> (k + 1)) & 1
		p := (uint64(x) | 1<<k) ^ (b << (k + 1))
		x = NodeIndex(p)
		if p < w {
			return x
		}
	}
}

// sibling is the other child of p = parent(x, w).
func sibling(x, p NodeIndex, w uint64) NodeIndex {
	if x < p {
		return right(p, w)
	}
	return left(p)
}

// pathCap bounds the direct path length of x: the levels between it and the
// root, each holding at most one node of the path.
func pathCap(x NodeIndex, n uint32) int {
	return int(Level(Root(n))) - int(Level(x))
}
