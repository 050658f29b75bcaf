package tree

import (
	"maps"
	"testing"
)

// TestCredentialCountsFollowChanges checks the incrementally kept counts
// against a recount after adds, updates, removes and clones, and that a
// clone's changes do not leak into its source.
func TestCredentialCountsFollowChanges(t *testing.T) {
	mk := func(i int, ct CredentialType, caps ...CredentialType) *LeafNode {
		l := leaf(LeafNodeSourceKeyPackage)
		l.EncryptionKey = []byte{byte(i), 1}
		l.SignatureKey = []byte{byte(i), 2}
		l.Credential.CredentialType = ct
		l.Capabilities.Credentials = caps
		return l
	}
	check := func(tr *Tree) {
		t.Helper()
		m, u, s := tr.CredentialCounts()
		fresh := &Tree{nodes: tr.nodes.clone(), nLeaves: tr.nLeaves}
		fm, fu, fs := fresh.CredentialCounts()
		if m != fm || !maps.Equal(u, fu) || !maps.Equal(s, fs) {
			t.Fatalf("counts %d %v %v, recount %d %v %v", m, u, s, fm, fu, fs)
		}
	}
	tr, err := NewWithLeaf(mk(0, 1, 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	tr.CredentialCounts()
	for i := 1; i < 70; i++ {
		if _, err := tr.AddLeaf(mk(i, CredentialType(1+i%2), 1, 2, 2)); err != nil {
			t.Fatal(err)
		}
	}
	check(tr)
	c := tr.Clone()
	if err := c.UpdateLeaf(3, mk(200, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveLeaf(5); err != nil {
		t.Fatal(err)
	}
	check(c)
	check(tr)
	if m, _, _ := tr.CredentialCounts(); m != 70 {
		t.Fatalf("source has %d members after the clone changed, want 70", m)
	}
}
