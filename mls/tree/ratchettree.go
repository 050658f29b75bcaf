package tree

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// Errors of the ratchet tree operations, tree validation and TreeKEM. They
// are returned wrapped with context; test with errors.Is.
var (
	// ErrLeafOutOfRange: a leaf index past the end of the tree.
	ErrLeafOutOfRange = errors.New("tree: leaf index out of range")
	// ErrBlankLeaf: an operation needs a member at a leaf that is blank.
	ErrBlankLeaf = errors.New("tree: blank leaf")
	// ErrInvalidLeafNode: a leaf node that cannot be placed in the tree
	// (nil, or a leaf_node_source outside RFC 9420 §7.2).
	ErrInvalidLeafNode = errors.New("tree: invalid leaf node")
	// ErrTreeFull: adding a leaf would exceed MaxLeaves.
	ErrTreeFull = errors.New("tree: tree is full")
	// ErrDuplicateKey: an encryption or signature key that already appears
	// in the tree (RFC 9420 §7.3, §12.4.2, §12.4.3.1).
	ErrDuplicateKey = errors.New("tree: duplicate key")
	// ErrTreeHashMismatch: the tree hash differs from the expected one (§12.4.3.1).
	ErrTreeHashMismatch = errors.New("tree: tree hash mismatch")
	// ErrParentHash: a parent hash is invalid (§7.9.2).
	ErrParentHash = errors.New("tree: invalid parent hash")
	// ErrUnmergedLeaves: an unmerged_leaves list breaks §7.1 / §12.4.3.1.
	ErrUnmergedLeaves = errors.New("tree: invalid unmerged leaves")
	// ErrLeafSignature: a leaf node signature does not verify (§7.3).
	ErrLeafSignature = errors.New("tree: invalid leaf node signature")
	// ErrInvalidUpdatePath: an UpdatePath of the wrong shape (§7.6, §12.4.2).
	ErrInvalidUpdatePath = errors.New("tree: invalid update path")
	// ErrNoPrivateKey: no held private key can decrypt the UpdatePath.
	ErrNoPrivateKey = errors.New("tree: no private key for the update path")
	// ErrPublicKeyMismatch: a derived public key differs from the one in the
	// tree or the UpdatePath (§7.5, §12.4.3.1).
	ErrPublicKeyMismatch = errors.New("tree: derived public key mismatch")
)

// occupancy flags, cached per node (see Tree.occupancy).
const (
	occKnown uint8 = 1 << iota // the entry is computed
	occAny                     // the subtree holds a non-blank node
	occLeaf                    // the subtree holds a non-blank leaf
)

// Tree is a ratchet tree (RFC 9420 §4, §7): a full binary tree of 2^d leaves
// in the array representation of Appendix C, nodes nil when blank.
//
// Nodes are immutable values: the tree never modifies a *Node, *LeafNode or
// *ParentNode it holds; a change replaces the pointer. Callers must likewise
// not modify nodes they hand to the tree or get from it. This makes Clone
// cheap (it copies slices of pointers and the caches), so an engine can stage
// a commit on a clone and throw it away.
//
// The tree caches per-node tree hashes and subtree occupancy and invalidates
// only the direct path of a change, so one commit costs O(log N) hashes.
// Because even read methods fill these caches, a Tree is not safe for
// concurrent use; Clone it (under the caller's lock) for another goroutine.
type Tree struct {
	nodes   cowVec[*Node] // len == NodeWidth(nLeaves)
	nLeaves uint32        // a power of two
	// hashes[x] is the cached tree hash of node x under suite hashID, nil
	// when stale. The byte slices are never written after being stored.
	hashes cowVec[[]byte]
	hashID suite.ID
	occ    cowVec[uint8] // occupancy flags per node, 0 when stale
	// freeHint: every leaf below it is non-blank.
	freeHint uint32
	encKeys  keyIndex    // encryption key → node
	sigKeys  keyIndex    // signature key → leaf node
	creds    *credCounts // nil until CredentialCounts is called
}

// NewTree builds a tree from a ratchet_tree vector (RFC 9420 §12.4.3.3). It
// checks the structure: the vector is non-empty, its last node is non-blank,
// leaves sit at even and parents at odd indices, and every leaf node has a
// known source. The vector is extended with blank nodes to the width of a
// full tree of 2^d leaves. Semantic checks (hashes, signatures, key
// uniqueness, unmerged leaves) are Validate's. The tree keeps the node
// pointers; they must not be modified afterwards.
func New(nodes RatchetTreeNodes) (*Tree, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: empty tree", ErrMalformedTree)
	}
	if nodes[len(nodes)-1] == nil {
		return nil, fmt.Errorf("%w: last node is blank", ErrMalformedTree)
	}
	if uint64(len(nodes)) > width(MaxLeaves) {
		return nil, fmt.Errorf("%w: %d nodes", ErrMalformedTree, len(nodes))
	}
	n := uint32(1)
	for uint64(NodeWidth(n)) < uint64(len(nodes)) {
		n <<= 1
	}
	t := &Tree{nLeaves: n}
	t.nodes = newCowVec[*Node](int(NodeWidth(n)))
	for i, node := range nodes {
		if node == nil {
			continue
		}
		want := NodeTypeParent
		if i%2 == 0 {
			want = NodeTypeLeaf
		}
		if got := node.Type(); got != want {
			return nil, fmt.Errorf("%w: node %d is a %v node", ErrMalformedTree, i, got)
		}
		if want == NodeTypeLeaf && !validSource(node.Leaf.LeafNodeSource) {
			return nil, fmt.Errorf("%w: leaf %d: %w", ErrMalformedTree, i/2, ErrUnknownLeafNodeSource)
		}
		t.nodes.set(i, node)
	}
	t.hashes = newCowVec[[]byte](t.nodes.len())
	t.occ = newCowVec[uint8](t.nodes.len())
	t.encKeys.base = make(map[string]NodeIndex, len(nodes))
	t.sigKeys.base = make(map[string]NodeIndex, len(nodes)/2+1)
	for i, node := range nodes {
		if node == nil {
			continue
		}
		x := NodeIndex(i)
		if node.Leaf != nil {
			putFirst(t.encKeys.base, node.Leaf.EncryptionKey, x)
			putFirst(t.sigKeys.base, node.Leaf.SignatureKey, x)
		} else {
			putFirst(t.encKeys.base, node.Parent.EncryptionKey, x)
		}
	}
	return t, nil
}

// putFirst maps key to x unless it is mapped already. An empty key is a
// key like any other: skipping it would let two leaves share it unseen
// (RFC 9420 §7.3 uniqueness).
func putFirst(m map[string]NodeIndex, key []byte, x NodeIndex) {
	if _, ok := m[string(key)]; !ok {
		m[string(key)] = x
	}
}

func validSource(s LeafNodeSource) bool {
	return s >= LeafNodeSourceKeyPackage && s <= LeafNodeSourceCommit
}

// NewTreeWithLeaf returns a one-leaf tree holding leaf: a new group's tree
// (RFC 9420 §11).
func NewWithLeaf(leaf *LeafNode) (*Tree, error) {
	if leaf == nil || !validSource(leaf.LeafNodeSource) {
		return nil, ErrInvalidLeafNode
	}
	return New(RatchetTreeNodes{{Leaf: leaf}})
}

// Clone returns a copy of t that can be changed independently. It copies
// the node pointer slice and the caches, not the nodes.
func (t *Tree) Clone() *Tree {
	c := &Tree{
		nodes:    t.nodes.clone(),
		nLeaves:  t.nLeaves,
		hashes:   t.hashes.clone(),
		hashID:   t.hashID,
		occ:      t.occ.clone(),
		freeHint: t.freeHint,
	}
	c.encKeys = t.encKeys.clone()
	c.sigKeys = t.sigKeys.clone()
	if t.creds == nil && t.nLeaves >= credCountsMinLeaves {
		// Count once per tree lineage, so clones (an engine stages every
		// commit on one) inherit the counts instead of each recounting.
		t.CredentialCounts()
	}
	c.creds = t.creds.clone()
	return c
}

// Nodes exports the tree as a ratchet_tree vector, trailing blank nodes
// removed (RFC 9420 §12.4.3.3). The nodes are shared with the tree and must
// not be modified.
func (t *Tree) Nodes() RatchetTreeNodes {
	return t.exportNodes()
}

// NumLeaves returns the number of leaf slots (a power of two), blank or not.
func (t *Tree) NumLeaves() uint32 { return t.nLeaves }

// Width returns the number of nodes, NodeWidth(NumLeaves()).
func (t *Tree) Width() uint32 { return uint32(t.nodes.len()) }

// Root returns the root node index.
func (t *Tree) Root() NodeIndex { return Root(t.nLeaves) }

// Node returns node x, or nil if it is blank or outside the tree.
func (t *Tree) Node(x NodeIndex) *Node {
	if uint64(x) >= uint64(t.nodes.len()) {
		return nil
	}
	return t.nodes.get(int(x))
}

// Leaf returns the leaf node at leaf i, or nil if it is blank or outside
// the tree.
func (t *Tree) Leaf(i LeafIndex) *LeafNode {
	if i >= LeafIndex(t.nLeaves) {
		return nil
	}
	if n := t.nodes.get(int(i.Node())); n != nil {
		return n.Leaf
	}
	return nil
}

// ParentNode returns the parent node at node x, or nil if x is blank, a
// leaf, or outside the tree.
func (t *Tree) ParentNode(x NodeIndex) *ParentNode {
	if IsLeaf(x) || uint64(x) >= uint64(t.nodes.len()) {
		return nil
	}
	if n := t.nodes.get(int(x)); n != nil {
		return n.Parent
	}
	return nil
}

// EncryptionKey returns the HPKE public key of node x, nil if blank.
func (t *Tree) EncryptionKey(x NodeIndex) []byte {
	switch n := t.Node(x); {
	case n == nil:
		return nil
	case n.Leaf != nil:
		return n.Leaf.EncryptionKey
	default:
		return n.Parent.EncryptionKey
	}
}

// MemberCount returns the number of non-blank leaves. It is O(N).
func (t *Tree) MemberCount() int {
	c := 0
	for i := 0; i < t.nodes.len(); i += 2 {
		if t.nodes.get(i) != nil {
			c++
		}
	}
	return c
}

// FindEncryptionKey returns the node holding HPKE public key key, leaf or
// parent (for the uniqueness checks of RFC 9420 §7.3 and §12.4.2).
func (t *Tree) FindEncryptionKey(key []byte) (NodeIndex, bool) {
	return t.encKeys.get(key)
}

// FindSignatureKey returns the leaf whose signature_key is key (RFC 9420 §7.3).
func (t *Tree) FindSignatureKey(key []byte) (LeafIndex, bool) {
	x, ok := t.sigKeys.get(key)
	return LeafIndex(x >> 1), ok
}

// w is the node width as uint64, for the math helpers.
func (t *Tree) w() uint64 { return uint64(t.nodes.len()) }

// invalidate marks the caches of x and its ancestors stale.
func (t *Tree) invalidate(x NodeIndex) {
	root := t.Root()
	w := t.w()
	for {
		// A cached value is computed from its children's, so a stale node
		// has only stale ancestors: stop at the first fully stale one.
		if t.hashes.get(int(x)) == nil && t.occ.get(int(x)) == 0 {
			return
		}
		t.hashes.set(int(x), nil)
		t.occ.set(int(x), 0)
		if x == root {
			return
		}
		x = parent(x, w)
	}
}

// setNode replaces node x (nil blanks it), keeps the key indexes, and
// invalidates the caches along the path.
func (t *Tree) setNode(x NodeIndex, n *Node) {
	if old := t.nodes.get(int(x)); old != nil {
		if old.Leaf != nil {
			if t.creds != nil {
				t.creds.add(old.Leaf, -1)
			}
			t.encKeys.del(old.Leaf.EncryptionKey, x)
			t.sigKeys.del(old.Leaf.SignatureKey, x)
		} else {
			t.encKeys.del(old.Parent.EncryptionKey, x)
		}
	}
	if n != nil {
		if n.Leaf != nil {
			if t.creds != nil {
				t.creds.add(n.Leaf, 1)
			}
			t.encKeys.put(n.Leaf.EncryptionKey, x)
			t.sigKeys.put(n.Leaf.SignatureKey, x)
		} else {
			t.encKeys.put(n.Parent.EncryptionKey, x)
		}
	}
	t.nodes.set(int(x), n)
	t.invalidate(x)
}

// occupancy returns the occupancy flags of the subtree under x, computing
// and caching them on demand.
func (t *Tree) occupancy(x NodeIndex) uint8 {
	if o := t.occ.get(int(x)); o != 0 {
		return o
	}
	o := occKnown
	if IsLeaf(x) {
		if t.nodes.get(int(x)) != nil {
			o |= occAny | occLeaf
		}
	} else {
		o |= (t.occupancy(left(x)) | t.occupancy(right(x, t.w()))) & (occAny | occLeaf)
		if t.nodes.get(int(x)) != nil {
			o |= occAny
		}
	}
	t.occ.set(int(x), o)
	return o
}

// resolutionEmpty reports whether the resolution of x is empty, i.e. the
// subtree under x holds no non-blank node (RFC 9420 §4.1.1).
func (t *Tree) resolutionEmpty(x NodeIndex) bool {
	return t.nodes.get(int(x)) == nil && t.occupancy(x)&occAny == 0
}

// Resolution returns the resolution of node x (RFC 9420 §4.1.1), nil if x
// is outside the tree.
func (t *Tree) Resolution(x NodeIndex) []NodeIndex {
	return t.AppendResolution(nil, x)
}

// AppendResolution appends the resolution of x to dst: a non-blank node is
// itself followed by its unmerged leaves; a blank leaf resolves to nothing;
// a blank parent to its left then its right child's resolution (§4.1.1).
func (t *Tree) AppendResolution(dst []NodeIndex, x NodeIndex) []NodeIndex {
	if uint64(x) >= t.w() {
		return dst
	}
	return t.appendResolution(dst, x, nil)
}

// appendResolution is AppendResolution leaving out the leaves in exclude
// (sorted), as for encrypting path secrets (§12.4.2).
func (t *Tree) appendResolution(dst []NodeIndex, x NodeIndex, exclude []LeafIndex) []NodeIndex {
	if n := t.nodes.get(int(x)); n != nil {
		if n.Leaf != nil {
			if !containsLeaf(exclude, LeafIndex(x>>1)) {
				dst = append(dst, x)
			}
			return dst
		}
		dst = append(dst, x)
		for _, l := range n.Parent.UnmergedLeaves {
			if !containsLeaf(exclude, l) {
				dst = append(dst, l.Node())
			}
		}
		return dst
	}
	if IsLeaf(x) || t.occupancy(x)&occAny == 0 {
		return dst
	}
	dst = t.appendResolution(dst, left(x), exclude)
	return t.appendResolution(dst, right(x, t.w()), exclude)
}

// resolutionSize is len(appendResolution(nil, x, exclude)) without the slice.
func (t *Tree) resolutionSize(x NodeIndex, exclude []LeafIndex) int {
	if n := t.nodes.get(int(x)); n != nil {
		if n.Leaf != nil {
			if containsLeaf(exclude, LeafIndex(x>>1)) {
				return 0
			}
			return 1
		}
		c := 1
		for _, l := range n.Parent.UnmergedLeaves {
			if !containsLeaf(exclude, l) {
				c++
			}
		}
		return c
	}
	if IsLeaf(x) || t.occupancy(x)&occAny == 0 {
		return 0
	}
	return t.resolutionSize(left(x), exclude) + t.resolutionSize(right(x, t.w()), exclude)
}

func containsLeaf(sorted []LeafIndex, l LeafIndex) bool {
	if len(sorted) == 0 {
		return false
	}
	_, ok := slices.BinarySearch(sorted, l)
	return ok
}

// FilteredDirectPath returns the filtered direct path of leaf (RFC 9420
// §4.1.2): its direct path without the nodes whose copath child has an
// empty resolution. nil if leaf is outside the tree.
func (t *Tree) FilteredDirectPath(leaf LeafIndex) []NodeIndex {
	fdp, _ := t.AppendFilteredDirectPath(nil, nil, leaf)
	return fdp
}

// AppendFilteredDirectPath appends the filtered direct path of leaf to fdp
// and, in step, the copath child of each of its nodes to copath.
func (t *Tree) AppendFilteredDirectPath(fdp, copath []NodeIndex, leaf LeafIndex) ([]NodeIndex, []NodeIndex) {
	if leaf >= LeafIndex(t.nLeaves) {
		return fdp, copath
	}
	w := t.w()
	root := t.Root()
	for x := leaf.Node(); x != root; {
		p := parent(x, w)
		s := sibling(x, p, w)
		if !t.resolutionEmpty(s) {
			fdp = append(fdp, p)
			copath = append(copath, s)
		}
		x = p
	}
	return fdp, copath
}

// AddLeaf places leaf in the leftmost blank leaf, extending the tree to the
// right when there is none, and adds its index to the unmerged_leaves of
// every non-blank parent on its direct path (RFC 9420 §7.7, §12.1.1). The
// tree keeps the pointer.
func (t *Tree) AddLeaf(leaf *LeafNode) (LeafIndex, error) {
	if leaf == nil || !validSource(leaf.LeafNodeSource) {
		return 0, ErrInvalidLeafNode
	}
	i := t.freeHint
	for i < t.nLeaves && t.nodes.get(int(2*uint64(i))) != nil {
		i++
	}
	if i == t.nLeaves {
		if uint64(t.nLeaves)*2 > MaxLeaves {
			return 0, ErrTreeFull
		}
		t.extend()
	}
	t.freeHint = i + 1
	li := LeafIndex(i)
	w := t.w()
	root := t.Root()
	for x := li.Node(); x != root; {
		x = parent(x, w)
		if n := t.nodes.get(int(x)); n != nil {
			p := *n.Parent
			at, _ := slices.BinarySearch(p.UnmergedLeaves, li)
			p.UnmergedLeaves = slices.Insert(slices.Clip(p.UnmergedLeaves), at, li)
			t.nodes.set(int(x), &Node{Parent: &p}) // same key: the indexes are unchanged
		}
	}
	t.setNode(li.Node(), &Node{Leaf: leaf})
	return li, nil
}

// extend doubles the number of leaves: the old tree becomes the left
// subtree of a new blank root (RFC 9420 §7.7). Cached hashes stay valid.
func (t *Tree) extend() {
	n := t.nLeaves * 2
	wd := int(NodeWidth(n))
	t.nodes.grow(wd)
	t.hashes.grow(wd)
	t.occ.grow(wd)
	t.nLeaves = n
}

// UpdateLeaf replaces the leaf node at i and blanks its direct path, as for
// an Update proposal (RFC 9420 §12.1.2). Leaf i must be non-blank.
func (t *Tree) UpdateLeaf(i LeafIndex, leaf *LeafNode) error {
	if leaf == nil || !validSource(leaf.LeafNodeSource) {
		return ErrInvalidLeafNode
	}
	if err := t.checkMember(i); err != nil {
		return err
	}
	t.blankDirectPath(i)
	t.setNode(i.Node(), &Node{Leaf: leaf})
	return nil
}

// RemoveLeaf blanks leaf i and its direct path, then truncates the tree
// while the right half of it is blank (RFC 9420 §12.1.3, §7.7). Leaf i must
// be non-blank.
func (t *Tree) RemoveLeaf(i LeafIndex) error {
	if err := t.checkMember(i); err != nil {
		return err
	}
	t.blankDirectPath(i)
	t.setNode(i.Node(), nil)
	if uint32(i) < t.freeHint {
		t.freeHint = uint32(i)
	}
	t.truncate()
	return nil
}

func (t *Tree) checkMember(i LeafIndex) error {
	if i >= LeafIndex(t.nLeaves) {
		return fmt.Errorf("%w: %d", ErrLeafOutOfRange, i)
	}
	if t.nodes.get(int(i.Node())) == nil {
		return fmt.Errorf("%w: %d", ErrBlankLeaf, i)
	}
	return nil
}

// blankDirectPath blanks every parent on the direct path of leaf i.
func (t *Tree) blankDirectPath(i LeafIndex) {
	w := t.w()
	root := t.Root()
	for x := i.Node(); x != root; {
		x = parent(x, w)
		if t.nodes.get(int(x)) != nil {
			t.setNode(x, nil)
		}
	}
}

// truncate halves the tree while its right subtree holds no non-blank node
// (§7.7); the root is dropped whether blank or not.
func (t *Tree) truncate() {
	for t.nLeaves > 1 {
		root := t.Root()
		if t.occupancy(right(root, t.w()))&occAny != 0 {
			return
		}
		if t.nodes.get(int(root)) != nil {
			t.setNode(root, nil)
		}
		n := t.nLeaves / 2
		wd := int(NodeWidth(n))
		t.nodes.shrink(wd)
		t.hashes.shrink(wd)
		t.occ.shrink(wd)
		t.nLeaves = n
	}
	if t.freeHint > t.nLeaves {
		t.freeHint = t.nLeaves
	}
}

// keyIndex maps keys to node indexes. It is a shared, never-written base map
// plus a private overlay of changes, so that cloning a tree copies only the
// overlay; the overlay is folded into a new base when it grows.
type keyIndex struct {
	base map[string]NodeIndex
	over map[string]NodeIndex // noNode marks a deleted base entry
}

const noNode = ^NodeIndex(0)

func (k *keyIndex) get(key []byte) (NodeIndex, bool) {
	if v, ok := k.over[string(key)]; ok {
		return v, v != noNode
	}
	v, ok := k.base[string(key)]
	return v, ok
}

// put maps key to x; an existing mapping is kept (the first node wins, and
// duplicates are reported by validation). Empty keys are indexed too.
func (k *keyIndex) put(key []byte, x NodeIndex) {
	if _, ok := k.get(key); ok {
		return
	}
	if k.over == nil {
		k.over = make(map[string]NodeIndex)
	}
	k.over[string(key)] = x
}

// del removes key if it maps to x.
func (k *keyIndex) del(key []byte, x NodeIndex) {
	if v, ok := k.get(key); !ok || v != x {
		return
	}
	if _, inBase := k.base[string(key)]; inBase {
		if k.over == nil {
			k.over = make(map[string]NodeIndex)
		}
		k.over[string(key)] = noNode
	} else {
		delete(k.over, string(key))
	}
}

// clone returns an index sharing the base. A large overlay is first folded
// into a fresh base, which both copies then share.
func (k *keyIndex) clone() keyIndex {
	if len(k.over) > 64 && len(k.over)*8 > len(k.base) {
		nb := make(map[string]NodeIndex, len(k.base)+len(k.over))
		for key, v := range k.base {
			nb[key] = v
		}
		for key, v := range k.over {
			if v == noNode {
				delete(nb, key)
			} else {
				nb[key] = v
			}
		}
		k.base, k.over = nb, nil
	}
	return keyIndex{base: k.base, over: maps.Clone(k.over)}
}
