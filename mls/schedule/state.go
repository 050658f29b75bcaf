package schedule

import (
	"fmt"
	"sort"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// SecretTreeState is a snapshot of a SecretTree for persistence. It holds
// secrets: store it as confidentially as the group state. Its encoding
// (SpacePanda-specific, in the TLS presentation language) is:
//
//	struct { uint32 node; opaque secret<V>; } NodeSecret;
//	struct { uint32 generation; opaque key<V>; opaque nonce<V>; } RetainedKey;
//	struct {
//	    uint64 next;            // 2^32 when exhausted
//	    uint64 floor;
//	    opaque secret<V>;       // empty when exhausted
//	    RetainedKey retained<V>; // strictly ascending generations in [floor, next)
//	} RatchetState;
//	struct { uint32 leaf; RatchetState handshake; RatchetState application; } LeafRatchetState;
//	struct {
//	    uint32 leaf_count;
//	    NodeSecret nodes<V>;         // strictly ascending node index
//	    LeafRatchetState leaves<V>;  // strictly ascending leaf index
//	} SecretTreeState;
//
// Options and the cipher suite are not part of the state; RestoreSecretTree
// takes them.
type SecretTreeState struct {
	LeafCount uint32
	Nodes     []NodeSecret
	Leaves    []LeafRatchetState
}

// NodeSecret is a stored (not yet consumed) secret-tree node secret.
type NodeSecret struct {
	Node   tree.NodeIndex
	Secret []byte
}

// LeafRatchetState holds the two ratchets of a leaf that has been used.
type LeafRatchetState struct {
	Leaf        tree.LeafIndex
	Handshake   RatchetState
	Application RatchetState
}

// RatchetState is one sender ratchet: the secret of generation Next, the
// retained keys of skipped generations, and Floor, below which every
// generation not retained was discarded (reported as ErrGenerationTooOld).
type RatchetState struct {
	Next     uint64 // 1<<32 once generation 2^32-1 has been used
	Floor    uint64
	Secret   []byte // empty once exhausted
	Retained []KeyNonce
}

// State returns a deep copy of the tree's state.
func (t *SecretTree) State() *SecretTreeState {
	st := &SecretTreeState{LeafCount: t.leafCount}
	for x, sec := range t.nodes {
		st.Nodes = append(st.Nodes, NodeSecret{Node: x, Secret: cloneBytes(sec)})
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Node < st.Nodes[j].Node })
	for l, lr := range t.leaves {
		st.Leaves = append(st.Leaves, LeafRatchetState{
			Leaf:        l,
			Handshake:   lr.handshake.state(),
			Application: lr.application.state(),
		})
	}
	sort.Slice(st.Leaves, func(i, j int) bool { return st.Leaves[i].Leaf < st.Leaves[j].Leaf })
	return st
}

func cloneBytes(b []byte) []byte { return append([]byte{}, b...) }

func cloneKeys(kns []KeyNonce) []KeyNonce {
	out := make([]KeyNonce, len(kns))
	for i, kn := range kns {
		out[i] = KeyNonce{Generation: kn.Generation, Key: cloneBytes(kn.Key), Nonce: cloneBytes(kn.Nonce)}
	}
	return out
}

func (r *ratchet) state() RatchetState {
	return RatchetState{Next: r.next, Floor: r.floor, Secret: cloneBytes(r.secret), Retained: cloneKeys(r.retained)}
}

// RestoreSecretTree rebuilds a SecretTree from a state taken with State (or
// decoded with UnmarshalMLS). It checks the state against the suite's sizes
// and the tree's shape: each stored node and each used leaf must lie in the
// tree, and none may lie below another (a derived node's ancestors are
// deleted). The state is copied.
func RestoreSecretTree(s *suite.Suite, st *SecretTreeState, opts Options) (*SecretTree, error) {
	t, err := newEmptyTree(s, st.LeafCount, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidState, fmt.Sprintf(format, args...))
	}
	width := uint64(2*t.full - 1)
	for _, ns := range st.Nodes {
		if uint64(ns.Node) >= width {
			return nil, bad("node %d outside the tree", ns.Node)
		}
		if !t.usable(ns.Node) {
			return nil, bad("node %d covers no leaf of the tree", ns.Node)
		}
		if _, dup := t.nodes[ns.Node]; dup {
			return nil, bad("node %d twice", ns.Node)
		}
		if len(ns.Secret) != s.HashSize() {
			return nil, bad("node %d secret of %d bytes", ns.Node, len(ns.Secret))
		}
		t.nodes[ns.Node] = cloneBytes(ns.Secret)
	}
	for _, ls := range st.Leaves {
		if uint64(ls.Leaf) >= uint64(t.leafCount) {
			return nil, bad("leaf %d outside the tree", ls.Leaf)
		}
		if _, dup := t.leaves[ls.Leaf]; dup {
			return nil, bad("leaf %d twice", ls.Leaf)
		}
		if _, ok := t.nodes[ls.Leaf.Node()]; ok {
			return nil, bad("leaf %d has both a secret and ratchets", ls.Leaf)
		}
		lr := &leafRatchets{}
		for _, p := range []struct {
			st  *RatchetState
			dst *ratchet
		}{{&ls.Handshake, &lr.handshake}, {&ls.Application, &lr.application}} {
			if err := p.st.check(s); err != nil {
				return nil, bad("leaf %d: %v", ls.Leaf, err)
			}
			*p.dst = ratchet{next: p.st.Next, floor: p.st.Floor, retained: cloneKeys(p.st.Retained)}
			if len(p.st.Secret) > 0 {
				p.dst.secret = cloneBytes(p.st.Secret)
			}
		}
		t.leaves[ls.Leaf] = lr
	}
	// No stored node or used leaf may have a stored ancestor.
	root := tree.Root(t.full)
	below := func(start tree.NodeIndex) error {
		for x := start; x != root; {
			x, _ = tree.Parent(x, t.full)
			if _, ok := t.nodes[x]; ok {
				return bad("node %d stored below stored node %d", start, x)
			}
		}
		return nil
	}
	for x := range t.nodes {
		if err := below(x); err != nil {
			return nil, err
		}
	}
	for l := range t.leaves {
		if err := below(l.Node()); err != nil {
			return nil, err
		}
	}
	// With no overlaps, every leaf is covered exactly once iff the counts add up.
	covered := uint64(len(t.leaves))
	for x := range t.nodes {
		first, end := subtreeLeaves(x)
		covered += min(end, uint64(t.leafCount)) - first
	}
	if covered != uint64(t.leafCount) {
		return nil, bad("secrets cover %d of %d leaves", covered, t.leafCount)
	}
	return t, nil
}

// check validates a ratchet state's invariants and sizes for suite s.
func (r *RatchetState) check(s *suite.Suite) error {
	if err := r.checkShape(); err != nil {
		return err
	}
	switch {
	case r.Next == exhausted && len(r.Secret) != 0:
		return fmt.Errorf("exhausted ratchet with a secret")
	case r.Next < exhausted && len(r.Secret) != s.HashSize():
		return fmt.Errorf("ratchet secret of %d bytes", len(r.Secret))
	}
	for _, kn := range r.Retained {
		if len(kn.Key) != s.AEADKeySize() || len(kn.Nonce) != s.AEADNonceSize() {
			return fmt.Errorf("retained key of generation %d has wrong sizes", kn.Generation)
		}
	}
	return nil
}

// checkShape validates the suite-independent invariants.
func (r *RatchetState) checkShape() error {
	if r.Next > exhausted {
		return fmt.Errorf("next generation %d beyond 2^32", r.Next)
	}
	if r.Floor > r.Next {
		return fmt.Errorf("floor %d above next %d", r.Floor, r.Next)
	}
	for i, kn := range r.Retained {
		g := uint64(kn.Generation)
		if g < r.Floor || g >= r.Next || (i > 0 && kn.Generation <= r.Retained[i-1].Generation) {
			return fmt.Errorf("retained generation %d out of order or range", kn.Generation)
		}
	}
	return nil
}

// MarshalMLS encodes the state in the format documented on SecretTreeState.
func (st *SecretTreeState) MarshalMLS(b *wire.Builder) {
	b.AddUint32(st.LeafCount)
	b.AddVector(func(b *wire.Builder) {
		for _, n := range st.Nodes {
			b.AddUint32(uint32(n.Node))
			b.AddOpaque(n.Secret)
		}
	})
	b.AddVector(func(b *wire.Builder) {
		for i := range st.Leaves {
			l := &st.Leaves[i]
			b.AddUint32(uint32(l.Leaf))
			l.Handshake.MarshalMLS(b)
			l.Application.MarshalMLS(b)
		}
	})
}

// UnmarshalMLS decodes a SecretTreeState strictly: lists must be strictly
// ascending and ratchet invariants must hold. Suite-dependent sizes are
// checked by RestoreSecretTree. Byte fields are copied.
func (st *SecretTreeState) UnmarshalMLS(r *wire.Reader) {
	*st = SecretTreeState{LeafCount: r.Uint32()}
	r.VectorEach(func(r *wire.Reader) {
		n := NodeSecret{Node: tree.NodeIndex(r.Uint32()), Secret: r.OpaqueCopy()}
		if r.Err() != nil {
			return
		}
		if k := len(st.Nodes); k > 0 && n.Node <= st.Nodes[k-1].Node {
			r.Fail("secret tree state: node %d out of order", n.Node)
			return
		}
		st.Nodes = append(st.Nodes, n)
	})
	r.VectorEach(func(r *wire.Reader) {
		var l LeafRatchetState
		l.Leaf = tree.LeafIndex(r.Uint32())
		l.Handshake.UnmarshalMLS(r)
		l.Application.UnmarshalMLS(r)
		if r.Err() != nil {
			return
		}
		if k := len(st.Leaves); k > 0 && l.Leaf <= st.Leaves[k-1].Leaf {
			r.Fail("secret tree state: leaf %d out of order", l.Leaf)
			return
		}
		st.Leaves = append(st.Leaves, l)
	})
}

// MarshalMLS encodes a RatchetState.
func (rs *RatchetState) MarshalMLS(b *wire.Builder) {
	b.AddUint64(rs.Next)
	b.AddUint64(rs.Floor)
	b.AddOpaque(rs.Secret)
	b.AddVector(func(b *wire.Builder) {
		for _, kn := range rs.Retained {
			b.AddUint32(kn.Generation)
			b.AddOpaque(kn.Key)
			b.AddOpaque(kn.Nonce)
		}
	})
}

// UnmarshalMLS decodes a RatchetState and checks its suite-independent
// invariants.
func (rs *RatchetState) UnmarshalMLS(r *wire.Reader) {
	*rs = RatchetState{Next: r.Uint64(), Floor: r.Uint64(), Secret: r.OpaqueCopy()}
	r.VectorEach(func(r *wire.Reader) {
		kn := KeyNonce{Generation: r.Uint32(), Key: r.OpaqueCopy(), Nonce: r.OpaqueCopy()}
		if r.Err() == nil {
			rs.Retained = append(rs.Retained, kn)
		}
	})
	if r.Err() != nil {
		return
	}
	if err := rs.checkShape(); err != nil {
		r.Fail("ratchet state: %v", err)
	}
}
