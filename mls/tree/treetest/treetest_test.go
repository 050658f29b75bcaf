package treetest

import (
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// TestExactSizes: trees of any member count validate, have exactly n
// members, and members hold keys consistent with the tree.
func TestExactSizes(t *testing.T) {
	s := suite.MustNew(1)
	for _, shape := range []Shape{Full, Sparse} {
		for _, n := range []int{1, 2, 3, 5, 10, 17, 100} {
			b, err := Build(s, n, Options{Shape: shape, GroupID: []byte("g"), Sign: true})
			if err != nil {
				t.Fatalf("shape %d n=%d: %v", shape, n, err)
			}
			if got := b.Tree.MemberCount(); got != n {
				t.Fatalf("shape %d n=%d: %d members", shape, n, got)
			}
			if err := b.Tree.Validate(s, b.GroupID, nil); err != nil {
				t.Fatalf("shape %d n=%d: %v", shape, n, err)
			}
			for i := 0; i < n; i++ {
				k, err := b.PrivateKeys(tree.LeafIndex(i))
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Tree.CheckPrivateKeys(s, k); err != nil {
					t.Fatalf("shape %d n=%d leaf %d: %v", shape, n, i, err)
				}
			}
		}
	}
}
