package mls

import (
	"github.com/spacepanda/spacepanda/mls/internal/fromtree"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// groupFromTree is m's state in epoch e: the group context of e's tree,
// the key schedule from e's init secret, a fresh secret tree.
func groupFromTree(e *fromtree.Epoch, m fromtree.Member, cfg Config) (*Group, error) {
	s := e.Suite
	ctx := GroupContext{Version: tree.ProtocolVersionMLS10, CipherSuite: s.ID(), GroupID: e.GroupID, Epoch: e.Epoch,
		TreeHash: e.Tree.TreeHash(s), ConfirmedTranscriptHash: e.ConfirmedTranscriptHash}
	g := &Group{cfg: cfg, suite: s, signer: m.Signer, tree: e.Tree.Clone(), myLeaf: m.Leaf, keys: m.Keys.Clone()}
	if err := g.setContext(ctx); err != nil {
		return nil, err
	}
	var err error
	if g.secrets, err = schedule.NewEpoch(s, e.InitSecret, nil, nil, g.ctxBytes); err != nil {
		return nil, err
	}
	g.confirmationTag = s.MAC(g.secrets.ConfirmationKey, ctx.ConfirmedTranscriptHash)
	if g.interim, err = NextInterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, g.confirmationTag); err != nil {
		return nil, err
	}
	if g.secretTree, err = schedule.NewSecretTree(s, g.secrets.EncryptionSecret, g.tree.NumLeaves(), cfg.SecretTree); err != nil {
		return nil, err
	}
	g.resumption = map[uint64][]byte{e.Epoch: g.secrets.ResumptionPSK}
	return g, nil
}
