package conformance

import (
	"crypto/rand"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// treeKEMCase is one treekem.json case (test-vectors.md "TreeKEM").
type treeKEMCase struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	RatchetTree             hexBytes `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          uint32   `json:"index"`
		EncryptionPriv hexBytes `json:"encryption_priv"`
		SignaturePriv  hexBytes `json:"signature_priv"`
		PathSecrets    []struct {
			Node       uint32   `json:"node"`
			PathSecret hexBytes `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        uint32     `json:"sender"`
		UpdatePath    hexBytes   `json:"update_path"`
		PathSecrets   []hexBytes `json:"path_secrets"`
		CommitSecret  hexBytes   `json:"commit_secret"`
		TreeHashAfter hexBytes   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

func (c *treeKEMCase) suiteID() uint16 { return c.CipherSuite }

// groupContext encodes the provisional GroupContext the vector prescribes.
func (c *treeKEMCase) groupContext(treeHash []byte) ([]byte, error) {
	gc := mls.GroupContext{
		Version:                 tree.ProtocolVersionMLS10,
		CipherSuite:             suite.ID(c.CipherSuite),
		GroupID:                 c.GroupID,
		Epoch:                   c.Epoch,
		TreeHash:                treeHash,
		ConfirmedTranscriptHash: c.ConfirmedTranscriptHash,
		Extensions:              tree.Extensions{},
	}
	return wire.Marshal(&gc)
}

func (c *treeKEMCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	t, err := decodeTree(c.RatchetTree)
	if err != nil {
		return err
	}
	// Private states: the leaf key plus one key per listed path secret,
	// each consistent with the tree.
	keys := make(map[tree.LeafIndex]tree.PrivateKeys)
	signers := make(map[tree.LeafIndex]*suite.Signer)
	for _, lp := range c.LeavesPrivate {
		li := tree.LeafIndex(lp.Index)
		pk := tree.PrivateKeys{li.Node(): lp.EncryptionPriv}
		for _, ps := range lp.PathSecrets {
			ns, err := s.DeriveSecret(ps.PathSecret, "node")
			if err != nil {
				return err
			}
			priv, _, err := s.DeriveKeyPair(ns)
			if err != nil {
				return err
			}
			pk[tree.NodeIndex(ps.Node)] = priv
		}
		if err := t.CheckPrivateKeys(s, pk); err != nil {
			return fmt.Errorf("leaf %d private state: %w", li, err)
		}
		keys[li] = pk
		if signers[li], err = s.NewSigner(lp.SignaturePriv); err != nil {
			return fmt.Errorf("leaf %d signature key: %w", li, err)
		}
	}

	for ui, u := range c.UpdatePaths {
		sender := tree.LeafIndex(u.Sender)
		var path tree.UpdatePath
		if err := wire.Unmarshal(u.UpdatePath, &path); err != nil {
			return fmt.Errorf("update path %d: decode: %w", ui, err)
		}
		rp, err := t.MergeUpdatePath(s, sender, &path, nil)
		if err != nil {
			return fmt.Errorf("update path %d: merge: %w", ui, err)
		}
		if err := path.LeafNode.Verify(s, c.GroupID, sender); err != nil {
			return fmt.Errorf("update path %d: %w", ui, err)
		}
		if err := mismatch(fmt.Sprintf("update path %d: tree_hash_after", ui), rp.Tree.TreeHash(s), u.TreeHashAfter); err != nil {
			return err
		}
		if err := rp.Tree.VerifyParentHashes(s); err != nil {
			return fmt.Errorf("update path %d: merged tree: %w", ui, err)
		}
		gc, err := c.groupContext(rp.Tree.TreeHash(s))
		if err != nil {
			return err
		}
		for j, want := range u.PathSecrets {
			lj := tree.LeafIndex(j)
			if lj == sender || t.Leaf(lj) == nil {
				continue
			}
			pk, ok := keys[lj]
			if !ok {
				return fmt.Errorf("update path %d: no private state for leaf %d", ui, j)
			}
			cs, ps, nk, err := rp.Decrypt(s, gc, lj, pk)
			if err != nil {
				return fmt.Errorf("update path %d: leaf %d: %w", ui, j, err)
			}
			if err := mismatch(fmt.Sprintf("update path %d: leaf %d: path secret", ui, j), ps, want); err != nil {
				return err
			}
			if err := mismatch(fmt.Sprintf("update path %d: leaf %d: commit secret", ui, j), cs, u.CommitSecret); err != nil {
				return err
			}
			if err := rp.Tree.CheckPrivateKeys(s, nk); err != nil {
				return fmt.Errorf("update path %d: leaf %d: new private state: %w", ui, j, err)
			}
		}

		// A fresh UpdatePath from the same sender: every other member must
		// derive the same commit secret.
		signer, ok := signers[sender]
		if !ok {
			return fmt.Errorf("update path %d: no signature key for sender %d", ui, sender)
		}
		cp, err := t.NewCommitPath(s, rand.Reader, sender, t.Leaf(sender), func(ln *tree.LeafNode) error {
			return ln.Sign(s, signer, c.GroupID, sender)
		})
		if err != nil {
			return fmt.Errorf("update path %d: new path: %w", ui, err)
		}
		ngc, err := c.groupContext(cp.Tree.TreeHash(s))
		if err != nil {
			return err
		}
		np, err := cp.Encrypt(s, ngc, nil)
		if err != nil {
			return fmt.Errorf("update path %d: new path: %w", ui, err)
		}
		// Round-trip through the wire, as a receiver would see it.
		enc, err := wire.Marshal(np)
		if err != nil {
			return err
		}
		var np2 tree.UpdatePath
		if err := wire.Unmarshal(enc, &np2); err != nil {
			return fmt.Errorf("update path %d: new path: decode: %w", ui, err)
		}
		nrp, err := t.MergeUpdatePath(s, sender, &np2, nil)
		if err != nil {
			return fmt.Errorf("update path %d: new path: merge: %w", ui, err)
		}
		if err := nrp.Tree.VerifyParentHashes(s); err != nil {
			return fmt.Errorf("update path %d: new path: merged tree: %w", ui, err)
		}
		if err := mismatch("new path: tree hash", nrp.Tree.TreeHash(s), cp.Tree.TreeHash(s)); err != nil {
			return err
		}
		if err := np2.LeafNode.Verify(s, c.GroupID, sender); err != nil {
			return fmt.Errorf("update path %d: new path: %w", ui, err)
		}
		for j := range u.PathSecrets {
			lj := tree.LeafIndex(j)
			if lj == sender || t.Leaf(lj) == nil {
				continue
			}
			cs, _, _, err := nrp.Decrypt(s, ngc, lj, keys[lj])
			if err != nil {
				return fmt.Errorf("update path %d: new path: leaf %d: %w", ui, j, err)
			}
			if err := mismatch(fmt.Sprintf("update path %d: new path: leaf %d: commit secret", ui, j), cs, cp.CommitSecret); err != nil {
				return err
			}
		}
	}
	return nil
}
