package conformance

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// treeOperationsCase is one tree-operations.json case (test-vectors.md
// "Tree Operations").
type treeOperationsCase struct {
	CipherSuite    uint16   `json:"cipher_suite"`
	TreeBefore     hexBytes `json:"tree_before"`
	Proposal       hexBytes `json:"proposal"`
	ProposalSender uint32   `json:"proposal_sender"`
	TreeHashBefore hexBytes `json:"tree_hash_before"`
	TreeAfter      hexBytes `json:"tree_after"`
	TreeHashAfter  hexBytes `json:"tree_hash_after"`
}

func (c *treeOperationsCase) suiteID() uint16 { return c.CipherSuite }

// decodeTree decodes an encoded ratchet_tree and builds a Tree.
func decodeTree(data []byte) (*tree.Tree, error) {
	var nodes tree.RatchetTreeNodes
	if err := wire.Unmarshal(data, &nodes); err != nil {
		return nil, fmt.Errorf("decode ratchet tree: %w", err)
	}
	return tree.New(nodes)
}

func (c *treeOperationsCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	t, err := decodeTree(c.TreeBefore)
	if err != nil {
		return err
	}
	if err := mismatch("tree_hash_before", t.TreeHash(s), c.TreeHashBefore); err != nil {
		return err
	}
	var p mls.Proposal
	if err := wire.Unmarshal(c.Proposal, &p); err != nil {
		return fmt.Errorf("decode proposal: %w", err)
	}
	switch p.ProposalType {
	case tree.ProposalTypeAdd:
		_, err = t.AddLeaf(&p.Add.KeyPackage.LeafNode)
	case tree.ProposalTypeUpdate:
		err = t.UpdateLeaf(tree.LeafIndex(c.ProposalSender), &p.Update.LeafNode)
	case tree.ProposalTypeRemove:
		err = t.RemoveLeaf(p.Remove.Removed)
	default:
		return fmt.Errorf("unexpected proposal type %v", p.ProposalType)
	}
	if err != nil {
		return fmt.Errorf("apply %v: %w", p.ProposalType, err)
	}
	after, err := wire.Marshal(t.Nodes())
	if err != nil {
		return err
	}
	if !bytes.Equal(after, c.TreeAfter) {
		return mismatch("tree_after", after, c.TreeAfter)
	}
	return mismatch("tree_hash_after", t.TreeHash(s), c.TreeHashAfter)
}
