package tree

import (
	"slices"
	"testing"
)

// refTree is a link-based left-balanced tree of n leaves, built the slow
// obvious way (RFC 9420 Appendix D shape: the left subtree holds the largest
// power of two strictly below n leaves), numbered in order.
type refTree struct {
	n                   uint32
	root                NodeIndex
	parent, left, right map[NodeIndex]NodeIndex
	level               map[NodeIndex]uint
}

func newRefTree(n uint32) *refTree {
	t := &refTree{
		n:      n,
		parent: map[NodeIndex]NodeIndex{},
		left:   map[NodeIndex]NodeIndex{},
		right:  map[NodeIndex]NodeIndex{},
		level:  map[NodeIndex]uint{},
	}
	next := NodeIndex(0)
	var build func(leaves uint32) (NodeIndex, uint)
	build = func(leaves uint32) (NodeIndex, uint) {
		if leaves == 1 {
			x := next
			next++
			t.level[x] = 0
			return x, 0
		}
		k := uint32(1)
		for k*2 < leaves {
			k *= 2
		}
		l, ll := build(k)
		x := next
		next++
		r, rl := build(leaves - k)
		t.left[x], t.right[x] = l, r
		t.parent[l], t.parent[r] = x, x
		t.level[x] = max(ll, rl) + 1
		return x, t.level[x]
	}
	t.root, _ = build(n)
	return t
}

func (t *refTree) directPath(x NodeIndex) []NodeIndex {
	var d []NodeIndex
	for x != t.root {
		x = t.parent[x]
		d = append(d, x)
	}
	return d
}

func (t *refTree) sibling(x NodeIndex) (NodeIndex, bool) {
	p, ok := t.parent[x]
	if !ok {
		return 0, false
	}
	if t.left[p] == x {
		return t.right[p], true
	}
	return t.left[p], true
}

func opt(v NodeIndex, ok bool) int64 {
	if !ok {
		return -1
	}
	return int64(v)
}

func optMap(m map[NodeIndex]NodeIndex, x NodeIndex) int64 {
	v, ok := m[x]
	return opt(v, ok)
}

// TestAgainstLinkedTree compares every relation, for every node of every
// left-balanced tree up to 300 leaves, with the link-based reference.
func TestAgainstLinkedTree(t *testing.T) {
	for n := uint32(1); n <= 300; n++ {
		ref := newRefTree(n)
		w := NodeWidth(n)
		if w != uint32(len(ref.level)) {
			t.Fatalf("n=%d: NodeWidth %d, want %d", n, w, len(ref.level))
		}
		if LeafCount(w) != n {
			t.Fatalf("n=%d: LeafCount(%d) = %d", n, w, LeafCount(w))
		}
		if Root(n) != ref.root {
			t.Fatalf("n=%d: Root %d, want %d", n, Root(n), ref.root)
		}
		for x := NodeIndex(0); x < NodeIndex(w)+3; x++ {
			in := uint32(x) < w
			if InTree(x, n) != in {
				t.Fatalf("n=%d x=%d: InTree = %v", n, x, !in)
			}
			var wantL, wantR, wantP, wantS int64 = -1, -1, -1, -1
			if in {
				wantL, wantR, wantP = optMap(ref.left, x), optMap(ref.right, x), optMap(ref.parent, x)
				wantS = opt(ref.sibling(x))
				if Level(x) != ref.level[x] || IsLeaf(x) != (ref.level[x] == 0) {
					t.Fatalf("n=%d x=%d: Level %d, want %d", n, x, Level(x), ref.level[x])
				}
			}
			check := func(what string, got, want int64) {
				t.Helper()
				if got != want {
					t.Fatalf("n=%d x=%d: %s = %d, want %d (-1: none)", n, x, what, got, want)
				}
			}
			check("Left", opt(Left(x, n)), wantL)
			check("Right", opt(Right(x, n)), wantR)
			check("Parent", opt(Parent(x, n)), wantP)
			check("Sibling", opt(Sibling(x, n)), wantS)

			var wantDP, wantCP []NodeIndex
			if in {
				wantDP = ref.directPath(x)
				cur := x
				for _, p := range wantDP {
					s, _ := ref.sibling(cur)
					wantCP = append(wantCP, s)
					cur = p
				}
			}
			if got := AppendDirectPath(nil, x, n); !slices.Equal(got, wantDP) {
				t.Fatalf("n=%d x=%d: AppendDirectPath %v, want %v", n, x, got, wantDP)
			}
			if got := AppendCopath(nil, x, n); !slices.Equal(got, wantCP) {
				t.Fatalf("n=%d x=%d: AppendCopath %v, want %v", n, x, got, wantCP)
			}
			if got := DirectPathLen(x, n); got != len(wantDP) {
				t.Fatalf("n=%d x=%d: DirectPathLen %d, want %d", n, x, got, len(wantDP))
			}
			if l, ok := x.Leaf(); ok {
				dp, cp := DirectPath(l, n), Copath(l, n)
				if !slices.Equal(dp, wantDP) || !slices.Equal(cp, wantCP) {
					t.Fatalf("n=%d leaf=%d: DirectPath %v Copath %v, want %v %v", n, l, dp, cp, wantDP, wantCP)
				}
				if in && dp == nil {
					t.Fatalf("n=%d leaf=%d: in-tree DirectPath is nil", n, l)
				}
				if l.Node() != x {
					t.Fatalf("LeafIndex(%d).Node() = %d", l, l.Node())
				}
			}
		}
	}
}

// TestCommonAncestorAndSubtree compares CommonAncestor and IsInSubtree with
// the RFC's common_ancestor_semantic over all pairs of small trees.
func TestCommonAncestorAndSubtree(t *testing.T) {
	for n := uint32(1); n <= 40; n++ {
		ref := newRefTree(n)
		w := NodeIndex(NodeWidth(n))
		for x := NodeIndex(0); x < w; x++ {
			ax := append([]NodeIndex{x}, ref.directPath(x)...)
			for y := NodeIndex(0); y < w; y++ {
				ay := append([]NodeIndex{y}, ref.directPath(y)...)
				var want NodeIndex
				for _, a := range ax { // ax runs upwards: first hit is lowest
					if slices.Contains(ay, a) {
						want = a
						break
					}
				}
				if got := CommonAncestor(x, y); got != want {
					t.Fatalf("n=%d: CommonAncestor(%d, %d) = %d, want %d", n, x, y, got, want)
				}
				if got, want := IsInSubtree(x, y), slices.Contains(ax, y); got != want {
					t.Fatalf("n=%d: IsInSubtree(%d, %d) = %v, want %v", n, x, y, got, want)
				}
			}
		}
	}
}

func TestEdges(t *testing.T) {
	if NodeWidth(0) != 0 || Root(0) != 0 || InTree(0, 0) {
		t.Fatal("empty tree")
	}
	for _, f := range []func(NodeIndex, uint32) (NodeIndex, bool){Left, Right, Parent, Sibling} {
		if _, ok := f(0, 0); ok {
			t.Fatal("relation reported in empty tree")
		}
		if _, ok := f(0, 1); ok {
			t.Fatal("relation reported for a one-leaf tree's root")
		}
	}
	if DirectPath(0, 0) != nil || Copath(5, 5) != nil || AppendDirectPath(nil, 9, 5) != nil {
		t.Fatal("path for a node outside the tree")
	}
	if dp := DirectPath(0, 1); dp == nil || len(dp) != 0 {
		t.Fatalf("one-leaf tree: DirectPath %v, want empty", dp)
	}
	if _, ok := NodeIndex(3).Leaf(); ok {
		t.Fatal("parent node reported as leaf")
	}
	// The largest tree: indices near 2^32 must neither overflow nor loop.
	const n = MaxLeaves
	last := LeafIndex(n - 1)
	if Root(n) != 1<<31-1 || NodeWidth(n) != 1<<32-1 {
		t.Fatalf("Root(2^31) = %d, NodeWidth = %d", Root(n), NodeWidth(n))
	}
	dp, cp := DirectPath(last, n), Copath(last, n)
	if len(dp) != 31 || dp[30] != Root(n) || len(cp) != 31 || cp[30] != Root(n)>>1 {
		t.Fatalf("max tree: DirectPath %v Copath %v", dp, cp)
	}
	if r, ok := Right(Root(n), n); !ok || r != 0xBFFFFFFF {
		t.Fatalf("max tree: Right(root) = %d, %v", r, ok)
	}
	if a := CommonAncestor(0, last.Node()); a != Root(n) {
		t.Fatalf("max tree: CommonAncestor = %d", a)
	}
	// Leaf counts beyond MaxLeaves must not panic (the widths are computed in 64 bits).
	if _, ok := Parent(0, 1<<32-1); !ok {
		t.Fatal("Parent(0) in a tree of 2^32-1 leaves")
	}
	if Level(0xFFFFFFFF) != 32 || !IsInSubtree(0, 0xFFFFFFFF) || CommonAncestor(0xFFFFFFFF, 0) != 0xFFFFFFFF {
		t.Fatal("index 2^32-1")
	}
}

// TestRFCFigures checks the §4.1 example (8 leaves, A=0 ... H=7) and the
// Appendix C eight-leaf array.
func TestRFCFigures(t *testing.T) {
	const (
		A, B, E, F, G = 0, 1, 4, 5, 6
		T, U, V, W    = 1, 3, 5, 7
		X, Y, Z       = 9, 11, 13
	)
	leafNode := func(l LeafIndex) NodeIndex { return l.Node() }
	tests := []struct {
		leaf   LeafIndex
		dp, cp []NodeIndex
	}{
		{A, []NodeIndex{T, U, W}, []NodeIndex{leafNode(B), V, Y}},
		{B, []NodeIndex{T, U, W}, []NodeIndex{leafNode(A), V, Y}},
		{E, []NodeIndex{X, Y, W}, []NodeIndex{leafNode(F), Z, U}},
		{F, []NodeIndex{X, Y, W}, []NodeIndex{leafNode(E), Z, U}},
		{G, []NodeIndex{Z, Y, W}, []NodeIndex{leafNode(7), X, U}},
	}
	for _, tc := range tests {
		if dp := DirectPath(tc.leaf, 8); !slices.Equal(dp, tc.dp) {
			t.Errorf("leaf %d: direct path %v, want %v", tc.leaf, dp, tc.dp)
		}
		if cp := Copath(tc.leaf, 8); !slices.Equal(cp, tc.cp) {
			t.Errorf("leaf %d: copath %v, want %v", tc.leaf, cp, tc.cp)
		}
	}
}

func TestAllocs(t *testing.T) {
	const n = 10000
	buf := make([]NodeIndex, 0, 32)
	a := testing.AllocsPerRun(100, func() {
		for l := LeafIndex(0); l < n; l += 97 {
			buf = AppendDirectPath(buf[:0], l.Node(), n)
			buf = AppendCopath(buf[:0], l.Node(), n)
			_, _ = Sibling(l.Node(), n)
			_ = CommonAncestor(l.Node(), 0)
		}
	})
	if a != 0 {
		t.Fatalf("append variants allocate: %v allocs/run", a)
	}
	if a := testing.AllocsPerRun(100, func() { _ = DirectPath(1234, n) }); a != 1 {
		t.Fatalf("DirectPath: %v allocs, want 1", a)
	}
}

const benchLeaves = 10000

var sink []NodeIndex

func BenchmarkDirectPath(b *testing.B) {
	b.ReportAllocs()
	l := LeafIndex(0)
	for b.Loop() {
		sink = DirectPath(l, benchLeaves)
		if l++; l == benchLeaves {
			l = 0
		}
	}
}

func BenchmarkCopath(b *testing.B) {
	b.ReportAllocs()
	l := LeafIndex(0)
	for b.Loop() {
		sink = Copath(l, benchLeaves)
		if l++; l == benchLeaves {
			l = 0
		}
	}
}

func BenchmarkAppendDirectPath(b *testing.B) {
	b.ReportAllocs()
	buf := make([]NodeIndex, 0, 32)
	l := LeafIndex(0)
	for b.Loop() {
		buf = AppendDirectPath(buf[:0], l.Node(), benchLeaves)
		if l++; l == benchLeaves {
			l = 0
		}
	}
	sink = buf
}

func BenchmarkAppendCopath(b *testing.B) {
	b.ReportAllocs()
	buf := make([]NodeIndex, 0, 32)
	l := LeafIndex(0)
	for b.Loop() {
		buf = AppendCopath(buf[:0], l.Node(), benchLeaves)
		if l++; l == benchLeaves {
			l = 0
		}
	}
	sink = buf
}
