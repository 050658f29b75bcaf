package conformance

import (
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/mls/tree"
)

// treeValidationCase is one tree-validation.json case (test-vectors.md
// "Tree Validation").
type treeValidationCase struct {
	CipherSuite uint16     `json:"cipher_suite"`
	Tree        hexBytes   `json:"tree"`
	GroupID     hexBytes   `json:"group_id"`
	Resolutions [][]uint32 `json:"resolutions"`
	TreeHashes  []hexBytes `json:"tree_hashes"`
}

func (c *treeValidationCase) suiteID() uint16 { return c.CipherSuite }

func (c *treeValidationCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	t, err := decodeTree(c.Tree)
	if err != nil {
		return err
	}
	if uint64(len(c.Resolutions)) != uint64(t.Width()) || uint64(len(c.TreeHashes)) != uint64(t.Width()) {
		return fmt.Errorf("vector has %d resolutions and %d tree hashes for %d nodes", len(c.Resolutions), len(c.TreeHashes), t.Width())
	}
	for i, want := range c.Resolutions {
		got := t.Resolution(tree.NodeIndex(i))
		if !slices.EqualFunc(got, want, func(a tree.NodeIndex, b uint32) bool { return uint32(a) == b }) {
			return fmt.Errorf("resolution of node %d: got %v, want %v", i, got, want)
		}
	}
	for i, want := range c.TreeHashes {
		if err := mismatch(fmt.Sprintf("tree hash of node %d", i), t.NodeTreeHash(s, tree.NodeIndex(i)), want); err != nil {
			return err
		}
	}
	if err := t.VerifyParentHashes(s); err != nil {
		return err
	}
	if err := t.VerifyLeafSignatures(s, c.GroupID); err != nil {
		return err
	}
	// The full joiner check as well: unmerged leaves and key uniqueness.
	return t.Validate(s, c.GroupID, t.TreeHash(s))
}
