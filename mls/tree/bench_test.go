package tree_test

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/tree/treetest"
)

var benchShapes = []struct {
	name  string
	shape treetest.Shape
}{{"full", treetest.Full}, {"sparse", treetest.Sparse}}

func forSizes(b *testing.B, f func(b *testing.B, bt *treetest.Built)) {
	for _, sh := range benchShapes {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/%d", sh.name, n), func(b *testing.B) {
				bt := build(b, n, treetest.Options{Shape: sh.shape, GroupID: []byte("g")})
				bt.Tree.TreeHash(bt.Suite) // warm the cache
				f(b, bt)
			})
		}
	}
}

// BenchmarkTreeHashAfterPathChange: clone, change one leaf (which blanks its
// path) and rehash: O(log N) hashes thanks to the cache.
func BenchmarkTreeHashAfterPathChange(b *testing.B) {
	forSizes(b, func(b *testing.B, bt *treetest.Built) {
		leaf := *bt.Tree.Leaf(1)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t := bt.Tree.Clone()
			l := leaf
			l.EncryptionKey = []byte{byte(i), byte(i >> 8), 0xfe}
			if err := t.UpdateLeaf(1, &l); err != nil {
				b.Fatal(err)
			}
			_ = t.TreeHash(bt.Suite)
		}
	})
}

// BenchmarkResolutionRootChildren: resolution of both children of the root.
func BenchmarkResolutionRootChildren(b *testing.B) {
	forSizes(b, func(b *testing.B, bt *treetest.Built) {
		t := bt.Tree
		l, _ := tree.Left(t.Root(), t.NumLeaves())
		r, _ := tree.Right(t.Root(), t.NumLeaves())
		var buf []tree.NodeIndex
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			buf = t.AppendResolution(buf[:0], l)
			buf = t.AppendResolution(buf[:0], r)
		}
	})
}

// BenchmarkCreateUpdatePath: stage a path on a clone, hash, encrypt.
func BenchmarkCreateUpdatePath(b *testing.B) {
	forSizes(b, func(b *testing.B, bt *treetest.Built) {
		s := bt.Suite
		sender := tree.LeafIndex(1)
		sign := func(*tree.LeafNode) error { return nil }
		gc := []byte("group context")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cp, err := bt.Tree.NewCommitPath(s, rand.Reader, sender, bt.Tree.Leaf(sender), sign)
			if err != nil {
				b.Fatal(err)
			}
			_ = cp.Tree.TreeHash(s)
			if _, err := cp.Encrypt(s, gc, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProcessUpdatePath: merge (with parent hash check) and decrypt as
// the member farthest from the sender.
func BenchmarkProcessUpdatePath(b *testing.B) {
	forSizes(b, func(b *testing.B, bt *treetest.Built) {
		s := bt.Suite
		sender := tree.LeafIndex(1)
		cp, err := bt.Tree.NewCommitPath(s, rand.Reader, sender, bt.Tree.Leaf(sender), func(*tree.LeafNode) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		gc := []byte("group context")
		up, err := cp.Encrypt(s, gc, nil)
		if err != nil {
			b.Fatal(err)
		}
		me := tree.LeafIndex(bt.Tree.NumLeaves() - 1)
		keys, err := bt.PrivateKeys(me)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rp, err := bt.Tree.MergeUpdatePath(s, sender, up, nil)
			if err != nil {
				b.Fatal(err)
			}
			_ = rp.Tree.TreeHash(s)
			if _, _, _, err := rp.Decrypt(s, gc, me, keys); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkValidate: a joiner's full validation of a signed tree (leaf
// signatures on all cores), and, as keys/, the part of it that checks every
// node's HPKE public key (suite.ValidateHPKEPublicKey), in suites 1 (X25519)
// and 2 (P-256).
func BenchmarkValidate(b *testing.B) {
	for _, id := range []suite.ID{1, 2} {
		for _, n := range []int{1000, 10000} {
			bt, err := treetest.Build(suite.MustNew(id), n, treetest.Options{Shape: treetest.Full, Sign: true, GroupID: []byte("g")})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("suite=%d/%d", id, n), func(b *testing.B) { benchValidate(b, bt) })
			b.Run(fmt.Sprintf("keys/suite=%d/%d", id, n), func(b *testing.B) {
				for b.Loop() {
					if err := tree.CheckAllNodeKeys(bt.Tree, bt.Suite); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func benchValidate(b *testing.B, bt *treetest.Built) {
	nodes := bt.Tree.Nodes()
	want := bt.Tree.TreeHash(bt.Suite)
	for b.Loop() {
		t, err := tree.New(nodes)
		if err != nil {
			b.Fatal(err)
		}
		if err := t.Validate(bt.Suite, bt.GroupID, want); err != nil {
			b.Fatal(err)
		}
	}
}
