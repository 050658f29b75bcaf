package tree_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/tree/treetest"
	"github.com/spacepanda/spacepanda/mls/wire"
)

func build(t testing.TB, n int, opts treetest.Options) *treetest.Built {
	t.Helper()
	b, err := treetest.Build(suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519), n, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// freshHash recomputes the tree hash without any cache.
func freshHash(t testing.TB, s *suite.Suite, tr *tree.Tree) []byte {
	t.Helper()
	nt, err := tree.New(tr.Nodes())
	if err != nil {
		t.Fatal(err)
	}
	return nt.TreeHash(s)
}

func TestBuiltTreesValidate(t *testing.T) {
	for _, shape := range []treetest.Shape{treetest.Full, treetest.Sparse} {
		for _, n := range []int{1, 2, 5, 16, 100} {
			b := build(t, n, treetest.Options{Shape: shape, Sign: true, GroupID: []byte("g")})
			if err := b.Tree.Validate(b.Suite, b.GroupID, freshHash(t, b.Suite, b.Tree)); err != nil {
				t.Errorf("shape %d n %d: %v", shape, n, err)
			}
			if err := b.Tree.VerifyLeafSignatures(b.Suite, []byte("other")); n > 1 && !errors.Is(err, tree.ErrLeafSignature) {
				t.Errorf("wrong group id accepted: %v", err)
			}
		}
	}
}

func TestResolutionRFCExample(t *testing.T) {
	// RFC 9420 §4.1.1 figure: X[B] at node 3, Y at node 9, leaves A B _ D E F _ H.
	leaf := func(i int) *tree.Node {
		return &tree.Node{Leaf: &tree.LeafNode{EncryptionKey: []byte{byte(i)}, SignatureKey: []byte{byte(i)}, LeafNodeSource: tree.LeafNodeSourceKeyPackage}}
	}
	nodes := make(tree.RatchetTreeNodes, 15)
	for _, i := range []int{0, 1, 3, 4, 5, 7} {
		nodes[2*i] = leaf(i)
	}
	nodes[3] = &tree.Node{Parent: &tree.ParentNode{EncryptionKey: []byte("X"), UnmergedLeaves: []tree.LeafIndex{1}}}
	nodes[9] = &tree.Node{Parent: &tree.ParentNode{EncryptionKey: []byte("Y")}}
	tr, err := tree.New(nodes)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		x    tree.NodeIndex
		want []tree.NodeIndex
	}{{3, []tree.NodeIndex{3, 2}}, {4, nil}, {12, nil}, {7, []tree.NodeIndex{3, 2, 9, 14}}} {
		if got := tr.Resolution(c.x); !slices.Equal(got, c.want) {
			t.Errorf("resolution(%d) = %v, want %v", c.x, got, c.want)
		}
	}
	// Filtered direct path of leaf 6 (node 12): its sibling leaf 7 is
	// non-blank, so 13 stays; 11's copath child 9 is non-blank; the root's 3.
	if got := tr.FilteredDirectPath(6); !slices.Equal(got, []tree.NodeIndex{13, 11, 7}) {
		t.Errorf("fdp(6) = %v", got)
	}
	// Leaf 2 (node 4): sibling leaf 3 non-blank → 5; 3's copath child 1 (blank
	// parent over A,B) non-empty; root.
	if got := tr.FilteredDirectPath(0); !slices.Equal(got, []tree.NodeIndex{1, 3, 7}) {
		t.Errorf("fdp(0) = %v", got)
	}
}

func TestAddUpdateRemoveAndCache(t *testing.T) {
	b := build(t, 8, treetest.Options{Shape: treetest.Full})
	s := b.Suite
	tr := b.Tree
	orig := tr.Clone()
	origHash := slices.Clone(tr.TreeHash(s))
	newLeaf := func(tag byte) *tree.LeafNode {
		return &tree.LeafNode{EncryptionKey: []byte{0xee, tag}, SignatureKey: []byte{0xef, tag}, LeafNodeSource: tree.LeafNodeSourceKeyPackage}
	}
	// All 8 leaves are members, so Add extends to 16.
	if tr.NumLeaves() != 8 {
		t.Fatalf("NumLeaves = %d", tr.NumLeaves())
	}
	li, err := tr.AddLeaf(newLeaf(1))
	if err != nil || li != 8 || tr.NumLeaves() != 16 {
		t.Fatalf("AddLeaf = %d, %v (leaves %d)", li, err, tr.NumLeaves())
	}
	// Non-blank ancestors list the new leaf as unmerged (the new root is blank).
	if p := tr.ParentNode(15); p != nil {
		t.Fatalf("new root not blank")
	}
	if got := tr.Resolution(tr.Root()); !slices.Equal(got, []tree.NodeIndex{7, 16}) {
		t.Errorf("root resolution %v", got)
	}
	if x, ok := tr.FindEncryptionKey([]byte{0xee, 1}); !ok || x != 16 {
		t.Errorf("FindEncryptionKey = %d, %v", x, ok)
	}
	if !bytes.Equal(tr.TreeHash(s), freshHash(t, s, tr)) {
		t.Error("cached hash differs after add")
	}
	// Remove leaf 2: blank path, then leftmost blank is 2.
	if err := tr.RemoveLeaf(2); err != nil {
		t.Fatal(err)
	}
	if tr.Leaf(2) != nil || tr.ParentNode(5) != nil || tr.ParentNode(3) != nil || tr.ParentNode(7) != nil {
		t.Error("remove did not blank leaf and path")
	}
	if li, _ := tr.AddLeaf(newLeaf(2)); li != 2 {
		t.Errorf("AddLeaf after remove = %d, want 2", li)
	}
	if err := tr.UpdateLeaf(0, newLeaf(3)); err != nil {
		t.Fatal(err)
	}
	if tr.ParentNode(1) != nil {
		t.Error("update did not blank the path")
	}
	if !bytes.Equal(tr.TreeHash(s), freshHash(t, s, tr)) {
		t.Error("cached hash differs after update")
	}
	// Removing leaf 8 truncates back to 8 leaves.
	if err := tr.RemoveLeaf(8); err != nil {
		t.Fatal(err)
	}
	if tr.NumLeaves() != 8 {
		t.Errorf("NumLeaves after truncation = %d", tr.NumLeaves())
	}
	if _, ok := tr.FindEncryptionKey([]byte{0xee, 1}); ok {
		t.Error("removed key still indexed")
	}
	if !bytes.Equal(tr.TreeHash(s), freshHash(t, s, tr)) {
		t.Error("cached hash differs after truncation")
	}
	// The clone taken at the start is untouched.
	if !bytes.Equal(orig.TreeHash(s), origHash) || !bytes.Equal(freshHash(t, s, orig), origHash) {
		t.Error("clone changed")
	}
	if _, ok := orig.FindEncryptionKey([]byte{0xee, 1}); ok {
		t.Error("clone's key index changed")
	}
	// Errors.
	if err := tr.RemoveLeaf(2000); !errors.Is(err, tree.ErrLeafOutOfRange) {
		t.Errorf("RemoveLeaf out of range: %v", err)
	}
	if err := tr.UpdateLeaf(8, newLeaf(9)); !errors.Is(err, tree.ErrLeafOutOfRange) {
		t.Errorf("UpdateLeaf out of range: %v", err)
	}
	if _, err := tr.AddLeaf(&tree.LeafNode{}); !errors.Is(err, tree.ErrInvalidLeafNode) {
		t.Errorf("AddLeaf without source: %v", err)
	}
}

func TestRemoveAllButOne(t *testing.T) {
	b := build(t, 16, treetest.Options{Shape: treetest.Sparse})
	tr := b.Tree
	for i := 15; i >= 1; i-- {
		if err := tr.RemoveLeaf(tree.LeafIndex(i)); err != nil {
			t.Fatal(err)
		}
	}
	if tr.NumLeaves() != 1 || len(tr.Nodes()) != 1 {
		t.Errorf("leaves %d, nodes %d", tr.NumLeaves(), len(tr.Nodes()))
	}
	if !bytes.Equal(tr.TreeHash(b.Suite), freshHash(t, b.Suite, tr)) {
		t.Error("hash mismatch")
	}
}

func TestValidateRejects(t *testing.T) {
	b := build(t, 8, treetest.Options{Shape: treetest.Full, Sign: true, GroupID: []byte("g")})
	s := b.Suite
	mutate := func(f func(nodes tree.RatchetTreeNodes)) *tree.Tree {
		nodes := b.Tree.Nodes()
		f(nodes)
		tr, err := tree.New(nodes)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	cases := []struct {
		name string
		tr   *tree.Tree
		want error
	}{
		{"parent key changed", mutate(func(n tree.RatchetTreeNodes) {
			p := *n[3].Parent
			p.EncryptionKey = []byte("other")
			n[3] = &tree.Node{Parent: &p}
		}), tree.ErrParentHash},
		{"duplicate encryption key", mutate(func(n tree.RatchetTreeNodes) {
			l := *n[2].Leaf
			l.EncryptionKey = n[0].Leaf.EncryptionKey
			n[2] = &tree.Node{Leaf: &l}
		}), tree.ErrDuplicateKey},
		{"signature", mutate(func(n tree.RatchetTreeNodes) {
			l := *n[2].Leaf
			l.Signature = slices.Clone(l.Signature)
			l.Signature[0] ^= 1
			n[2] = &tree.Node{Leaf: &l}
		}), tree.ErrLeafSignature},
		{"unmerged leaf not below", mutate(func(n tree.RatchetTreeNodes) {
			p := *n[1].Parent
			p.UnmergedLeaves = []tree.LeafIndex{3}
			n[1] = &tree.Node{Parent: &p}
		}), tree.ErrUnmergedLeaves},
		{"unmerged not in intermediate", mutate(func(n tree.RatchetTreeNodes) {
			p := *n[3].Parent
			p.UnmergedLeaves = []tree.LeafIndex{0}
			n[3] = &tree.Node{Parent: &p}
		}), tree.ErrUnmergedLeaves},
	}
	for _, c := range cases {
		err := c.tr.Validate(s, b.GroupID, nil)
		if c.want == tree.ErrLeafSignature {
			// Changing a leaf also breaks the parent hash above its sibling.
			err = c.tr.VerifyLeafSignatures(s, b.GroupID)
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if err := b.Tree.Validate(s, b.GroupID, []byte("x")); !errors.Is(err, tree.ErrTreeHashMismatch) {
		t.Errorf("tree hash: %v", err)
	}
}

// TestCommitRoundTrip: a committer on a tree with added members creates a
// path; every old member derives the commit secret; the new members get
// theirs from PathSecretFor via DerivePathKeys.
func TestCommitRoundTrip(t *testing.T) {
	for _, shape := range []treetest.Shape{treetest.Full, treetest.Sparse} {
		b := build(t, 12, treetest.Options{Shape: shape, Sign: true, GroupID: []byte("g")})
		s := b.Suite
		tr := b.Tree.Clone()
		// Remove leaf 5, add two joiners (one fills 5, one at 12).
		if err := tr.RemoveLeaf(5); err != nil {
			t.Fatal(err)
		}
		var joinerPriv [2][]byte
		var added []tree.LeafIndex
		for i := range joinerPriv {
			priv, pub, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			joinerPriv[i] = priv
			li, err := tr.AddLeaf(&tree.LeafNode{EncryptionKey: pub, SignatureKey: []byte{0xaa, byte(i)}, LeafNodeSource: tree.LeafNodeSourceKeyPackage})
			if err != nil {
				t.Fatal(err)
			}
			added = append(added, li)
		}
		sender := tree.LeafIndex(3)
		signer, err := b.Signer(sender)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := tr.NewCommitPath(s, rand.Reader, sender, tr.Leaf(sender), func(ln *tree.LeafNode) error {
			return ln.Sign(s, signer, b.GroupID, sender)
		})
		if err != nil {
			t.Fatal(err)
		}
		gc := append([]byte("gc"), cp.Tree.TreeHash(s)...)
		up, err := cp.Encrypt(s, gc, added)
		if err != nil {
			t.Fatal(err)
		}
		enc := wire.MustMarshal(up)
		var got tree.UpdatePath
		if err := wire.Unmarshal(enc, &got); err != nil {
			t.Fatal(err)
		}
		rp, err := tr.MergeUpdatePath(s, sender, &got, added)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rp.Tree.TreeHash(s), cp.Tree.TreeHash(s)) {
			t.Fatal("receiver's merged tree differs")
		}
		if err := rp.Tree.VerifyParentHashes(s); err != nil {
			t.Fatal(err)
		}
		if err := cp.Tree.CheckPrivateKeys(s, cp.PrivateKeys); err != nil {
			t.Fatal(err)
		}
		for i := tree.LeafIndex(0); i < 12; i++ {
			if i == sender || i == 5 {
				continue
			}
			keys, err := b.PrivateKeys(i)
			if err != nil {
				t.Fatal(err)
			}
			cs, _, nk, err := rp.Decrypt(s, gc, i, keys)
			if err != nil {
				t.Fatalf("shape %d leaf %d: %v", shape, i, err)
			}
			if !bytes.Equal(cs, cp.CommitSecret) {
				t.Fatalf("leaf %d: commit secret differs", i)
			}
			if err := rp.Tree.CheckPrivateKeys(s, nk); err != nil {
				t.Fatalf("leaf %d: %v", i, err)
			}
		}
		for j, li := range added {
			ps, ok := cp.PathSecretFor(li)
			if !ok {
				t.Fatalf("no path secret for joiner %d", li)
			}
			lca := tree.CommonAncestor(li.Node(), sender.Node())
			keys, cs, err := cp.Tree.DerivePathKeys(s, lca, ps)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cs, cp.CommitSecret) {
				t.Errorf("joiner %d: commit secret differs", li)
			}
			keys[li.Node()] = joinerPriv[j]
			if err := cp.Tree.CheckPrivateKeys(s, keys); err != nil {
				t.Error(err)
			}
			// Joiners got no ciphertext.
			if _, _, _, err := rp.Decrypt(s, gc, li, tree.PrivateKeys{li.Node(): joinerPriv[j]}); !errors.Is(err, tree.ErrNoPrivateKey) {
				t.Errorf("joiner decrypted: %v", err)
			}
		}
		// Wrong ciphertext count and tampered parent hash are rejected.
		if _, err := tr.MergeUpdatePath(s, sender, &got, nil); !errors.Is(err, tree.ErrInvalidUpdatePath) {
			t.Errorf("count without exclusion: %v", err)
		}
		bad := got
		bad.LeafNode.ParentHash = []byte("x")
		if _, err := tr.MergeUpdatePath(s, sender, &bad, added); !errors.Is(err, tree.ErrParentHash) {
			t.Errorf("bad parent hash: %v", err)
		}
		bad = got
		bad.Nodes = bad.Nodes[1:]
		if _, err := tr.MergeUpdatePath(s, sender, &bad, added); !errors.Is(err, tree.ErrInvalidUpdatePath) {
			t.Errorf("short path: %v", err)
		}
		bad = got
		bad.Nodes = slices.Clone(got.Nodes)
		bad.Nodes[0].EncryptionKey = tr.EncryptionKey(0)
		if _, err := tr.MergeUpdatePath(s, sender, &bad, added); !errors.Is(err, tree.ErrDuplicateKey) {
			t.Errorf("reused key: %v", err)
		}
	}
}

// FuzzNewTree: decode → NewTree → Nodes → encode → decode must round trip.
func FuzzNewTree(f *testing.F) {
	b := build(f, 5, treetest.Options{Shape: treetest.Full})
	f.Add(wire.MustMarshal(b.Tree.Nodes()))
	b = build(f, 3, treetest.Options{Shape: treetest.Sparse})
	f.Add(wire.MustMarshal(b.Tree.Nodes()))
	s := b.Suite
	f.Fuzz(func(t *testing.T, data []byte) {
		var nodes tree.RatchetTreeNodes
		if err := wire.Unmarshal(data, &nodes); err != nil {
			return
		}
		tr, err := tree.New(nodes)
		if err != nil {
			return
		}
		enc, err := wire.Marshal(tr.Nodes())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs")
		}
		var again tree.RatchetTreeNodes
		if err := wire.Unmarshal(enc, &again); err != nil {
			t.Fatal(err)
		}
		// Exercise the read paths; they must not panic.
		_ = tr.TreeHash(s)
		_ = tr.Validate(s, nil, nil)
		for x := tree.NodeIndex(0); x < tree.NodeIndex(tr.Width()); x++ {
			_ = tr.Resolution(x)
		}
	})
}

// TestEncryptManySeals: a sparse tree makes Encrypt seal to every member,
// spread over goroutines; every member still decrypts the commit secret.
func TestEncryptManySeals(t *testing.T) {
	b := build(t, 70, treetest.Options{Shape: treetest.Sparse})
	s := b.Suite
	sender := tree.LeafIndex(0)
	cp, err := b.Tree.NewCommitPath(s, rand.Reader, sender, b.Tree.Leaf(sender), func(*tree.LeafNode) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	gc := []byte("group context")
	up, err := cp.Encrypt(s, gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := b.Tree.MergeUpdatePath(s, sender, up, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, me := range []tree.LeafIndex{1, 2, 33, 69} {
		keys, err := b.PrivateKeys(me)
		if err != nil {
			t.Fatal(err)
		}
		cs, _, _, err := rp.Decrypt(s, gc, me, keys)
		if err != nil {
			t.Fatalf("leaf %d: %v", me, err)
		}
		if !bytes.Equal(cs, cp.CommitSecret) {
			t.Fatalf("leaf %d: commit secret differs", me)
		}
	}
}
