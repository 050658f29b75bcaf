package tree

import (
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// TestEmptyKeysIndexed: an empty encryption or signature key is a key like
// any other for the uniqueness lookups (RFC 9420 §7.3): two leaves holding
// one are found by the index, whether built from a vector or added later,
// and are a duplicate for tree validation.
func TestEmptyKeysIndexed(t *testing.T) {
	leaf := func(enc, sig string) *LeafNode {
		return &LeafNode{EncryptionKey: []byte(enc), SignatureKey: []byte(sig), LeafNodeSource: LeafNodeSourceKeyPackage}
	}
	tr, err := New(RatchetTreeNodes{{Leaf: leaf("", "s0")}, nil, {Leaf: leaf("e1", "")}})
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
	two, err := New(RatchetTreeNodes{{Leaf: leaf("", "s0")}, nil, {Leaf: leaf("", "s1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := two.CheckKeysUnique(); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("two empty encryption keys: %v", err)
	}
}

// TestExtensionsDuplicates: duplicates are found in short and long lists,
// by the decoder and by Duplicate; a list of every type (a 330 KB message)
// is checked with a set, not the quadratic scan short lists use.
func TestExtensionsDuplicates(t *testing.T) {
	for _, n := range []int{2, 15, 16, 17, 1 << 16} {
		es := make(Extensions, n)
		for i := range es {
			es[i] = Extension{ExtensionType: ExtensionType(i), ExtensionData: []byte{}}
		}
		enc, err := wire.Marshal(es)
		if err != nil {
			t.Fatal(err)
		}
		var out Extensions
		if err := wire.Unmarshal(enc, &out); err != nil || len(out) != n {
			t.Fatalf("%d distinct: %v", n, err)
		}
		if _, dup := es.Duplicate(); dup {
			t.Fatalf("%d distinct: duplicate reported", n)
		}
		es = append(es, Extension{ExtensionType: ExtensionType(n / 2), ExtensionData: []byte{}})
		if d, dup := es.Duplicate(); !dup || d != ExtensionType(n/2) {
			t.Fatalf("%d: Duplicate = %v %v", n, d, dup)
		}
		if enc, err = wire.Marshal(es); err != nil {
			t.Fatal(err)
		}
		if err := wire.Unmarshal(enc, &out); !errors.Is(err, ErrDuplicateExtension) {
			t.Fatalf("%d with a duplicate: %v", n, err)
		}
	}
}
