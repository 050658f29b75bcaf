package tree

import "github.com/spacepanda/spacepanda/mls/suite"

// CheckAllNodeKeys runs the HPKE key check of Validate alone (on the same
// worker pool), so that a benchmark can set its cost against Validate's.
func CheckAllNodeKeys(t *Tree, s *suite.Suite) error {
	return t.eachLeaf(func(i LeafIndex) error { return t.checkNodeKeys(s, i) })
}
