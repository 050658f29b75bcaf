package mls

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Processing a commit (RFC 9420 §12.4.2): another member's, or an external
// joiner's (§12.4.3.2).

// processCommit stages a commit from another member (or an external
// joiner). ac has been unprotected and its signature verified over enc.
// Everything that can be checked without the new epoch's secrets is
// checked before a commit that removes this member is accepted, so an
// insider cannot split a member off with a commit the others refuse.
func (g *Group) processCommit(ac *AuthenticatedContent, enc *contentEncoding) (*Group, error) {
	sender := ac.Content.Sender
	sc, rp, err := g.stageReceivedCommit(ac)
	if err != nil {
		return nil, err
	}
	external := sender.SenderType == SenderTypeNewMemberCommit
	if sc.removedMe {
		// Removed: the member follows no further; it needs no new secrets.
		next := g.clone()
		next.removed, next.tree, next.pending = true, sc.tree, nil
		return next, nil
	}
	if err := g.receivedSecrets(sc, rp, sender); err != nil {
		return nil, err
	}
	if external {
		defer clear(sc.initSecret) // the external init secret, consumed (§9.2)
	}
	sc.confirmationTag = ac.Auth.ConfirmationTag
	return g.stageNextEpoch(ac, enc, sc)
}

// stageReceivedCommit is the part of processing a received commit that
// needs no secret of the epoch, shared with PublicGroup.ProcessCommit: the
// frame, the proposal list (resolved, validated §12.2, applied §12.3),
// whether a path is required, and the path's validation and merge
// (§12.4.2). sc.tree is the new epoch's public tree.
func (g *Group) stageReceivedCommit(ac *AuthenticatedContent) (*stagedCommit, *tree.ReceivedPath, error) {
	commit, sender := ac.Content.Commit, ac.Content.Sender
	if err := g.checkCommitFrame(ac); err != nil {
		return nil, nil, err
	}
	sc, err := g.stageProposals(commit, sender)
	if err != nil {
		return nil, nil, err
	}
	if sc.needPath && commit.Path == nil {
		return nil, nil, ErrPathRequired
	}
	if sender.SenderType == SenderTypeNewMemberCommit && commit.Path == nil {
		return nil, nil, fmt.Errorf("%w: an external commit must have a path", ErrPathRequired)
	}
	var rp *tree.ReceivedPath
	if commit.Path != nil {
		if rp, err = g.mergePath(sc, commit.Path, sender); err != nil {
			return nil, nil, err
		}
		sc.tree = rp.Tree
	}
	return sc, rp, nil
}

// checkCommitFrame: a commit from another member or a new member, with a
// confirmation tag, in a group that can still advance.
func (g *Group) checkCommitFrame(ac *AuthenticatedContent) error {
	sender := ac.Content.Sender
	switch sender.SenderType {
	case SenderTypeMember:
		if sender.LeafIndex == g.myLeaf {
			return ErrOwnCommit
		}
	case SenderTypeNewMemberCommit:
	default:
		return fmt.Errorf("%w: commit from a %v sender", ErrInvalidCommit, sender.SenderType)
	}
	if ac.Content.Commit == nil {
		return fmt.Errorf("%w: no commit", ErrInvalidCommit)
	}
	if len(ac.Auth.ConfirmationTag) == 0 {
		return fmt.Errorf("%w: missing confirmation tag", ErrInvalidCommit)
	}
	_, err := nextEpochNumber(g.ctx.Epoch)
	return err
}

// mergePath validates a commit's UpdatePath and merges it into sc.tree
// (§12.4.2): the committer's new leaf (§7.3: source commit, signature,
// credential and successor rule, capabilities with the new extensions,
// unique keys), then the path's structure, fresh keys and parent hashes
// (tree.MergeUpdatePath). For an external commit the joiner takes the
// leftmost free leaf, and a resync's new leaf must be acceptable as an
// Update of the leaf it removes (§12.2): an acceptable successor with
// another encryption key.
func (g *Group) mergePath(sc *stagedCommit, path *tree.UpdatePath, sender Sender) (*tree.ReceivedPath, error) {
	committer, replaces := sender.LeafIndex, (*tree.LeafNode)(nil)
	if sender.SenderType == SenderTypeNewMemberCommit {
		var err error
		if committer, err = sc.tree.FreeLeaf(); err != nil {
			return nil, err
		}
		if replaces = sc.removedLeaf; replaces != nil {
			if err := checkFreshKeys(path, replaces); err != nil {
				return nil, err
			}
		}
	}
	lv := g.leafValidator()
	lv.extensions = sc.extensions
	if err := lv.validateReplacing(&path.LeafNode, tree.LeafNodeSourceCommit, committer, sc.tree, replaces); err != nil {
		return nil, fmt.Errorf("%w: committer's leaf: %w", ErrInvalidCommit, err)
	}
	rp, err := sc.tree.MergeUpdatePath(g.suite, committer, path, sc.added)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	return rp, nil
}

// checkFreshKeys: no key of a resync's path is the removed leaf's
// encryption key (§12.1.2: an Update's leaf has a new one).
func checkFreshKeys(path *tree.UpdatePath, removed *tree.LeafNode) error {
	reused := bytes.Equal(path.LeafNode.EncryptionKey, removed.EncryptionKey)
	for i := range path.Nodes {
		reused = reused || bytes.Equal(path.Nodes[i].EncryptionKey, removed.EncryptionKey)
	}
	if reused {
		return fmt.Errorf("%w: %w: the resync reuses the removed leaf's encryption key", ErrInvalidCommit, tree.ErrDuplicateKey)
	}
	return nil
}

// receivedSecrets fills in the secrets of a received commit: this
// member's private keys in the new tree (those of its own committed
// Update, the path secrets it decrypts), the commit secret and the init
// secret (the external one for an external commit, §8.3).
func (g *Group) receivedSecrets(sc *stagedCommit, rp *tree.ReceivedPath, sender Sender) error {
	s := g.suite
	keys := g.keys.Clone()
	if sc.updatedMe != nil {
		// Our own Update was committed: take the new leaf's private key.
		priv, ok := g.ownUpdates[string(sc.updatedMe.ref)]
		if !ok {
			return fmt.Errorf("%w: own update committed but its private key is unknown", ErrInvalidCommit)
		}
		keys = tree.PrivateKeys{g.myLeaf.Node(): priv}
	}
	keys.Prune(sc.tree)
	if rp != nil {
		ctx, err := g.provisionalContext(sc.extensions, sc.tree)
		if err != nil {
			return err
		}
		provisional, err := wire.Marshal(&ctx)
		if err != nil {
			return err
		}
		if sc.commitSecret, _, keys, err = rp.Decrypt(s, provisional, g.myLeaf, keys); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
	}
	sc.keys = keys
	sc.initSecret = g.secrets.InitSecret
	if sender.SenderType == SenderTypeNewMemberCommit {
		priv, _, err := g.secrets.ExternalKeyPair()
		if err != nil {
			return err
		}
		if sc.initSecret, err = schedule.ExternalInitSecret(s, priv, sc.extInit); err != nil {
			return fmt.Errorf("%w: external init: %w", ErrInvalidCommit, err)
		}
	}
	return nil
}
