package tree

import (
	"errors"
	"testing"
)

// TestEmptyKeysIndexed: an empty encryption or signature key is a key like
// any other for the uniqueness lookups (RFC 9420 §7.3): two leaves holding
// one are found by the index, whether built from a vector or added later,
// and are a duplicate for tree validation.
func TestEmptyKeysIndexed(t *testing.T) {
	leaf := func(enc, sig string) *LeafNode {
		return &LeafNode{EncryptionKey: []byte(enc), SignatureKey: []byte(sig), LeafNodeSource: LeafNodeSourceKeyPackage}
	}
	tr, err := NewTree(RatchetTreeNodes{{Leaf: leaf("", "s0")}, nil, {Leaf: leaf("e1", "")}})
	if err != nil {
		t.Fatal(err)
	}
	if x, ok := tr.FindEncryptionKey(nil); !ok || x != 0 {
		t.Fatalf("empty encryption key: %d %v", x, ok)
	}
	if i, ok := tr.FindSignatureKey([]byte{}); !ok || i != 1 {
		t.Fatalf("empty signature key: %d %v", i, ok)
	}
	// Added later (the overlay of the index), after the first is removed.
	if err := tr.RemoveLeaf(0); err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.FindEncryptionKey(nil); ok {
		t.Fatal("removed leaf's empty key still indexed")
	}
	i, err := tr.AddLeaf(leaf("", "s2"))
	if err != nil {
		t.Fatal(err)
	}
	if x, ok := tr.FindEncryptionKey([]byte{}); !ok || x != i.Node() {
		t.Fatalf("added leaf's empty key: %d %v", x, ok)
	}
	// Two empty keys in a received tree.
	two, err := NewTree(RatchetTreeNodes{{Leaf: leaf("", "s0")}, nil, {Leaf: leaf("", "s1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := two.CheckKeysUnique(); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("two empty encryption keys: %v", err)
	}
}
