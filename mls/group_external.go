package mls

import (
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Joining a group by external commit (RFC 9420 §12.4.3.2).

// JoinByExternalCommit joins the group that gi describes by an external
// commit (RFC 9420 §12.4.3.2). gi must carry the external_pub extension
// (Group.GroupInfo produces one); its signature and the tree are verified
// here;
// ratchetTree is the group's tree when it travels out of band, nil meaning
// the ratchet_tree extension of gi.
//
// The commit holds an ExternalInit proposal whose kem_output encapsulates
// the new epoch's init_secret to external_pub (§8.3), and, when a leaf of
// the tree already has signer's signature key (a member that lost its
// state and resynchronizes), a Remove of that leaf. The path is mandatory;
// the joiner takes the leftmost free leaf after the Remove (§12.4.3.2).
// The commit is a PublicMessage from a new_member_commit sender.
//
// It returns the commit to send to the group and the joiner's state in the
// new epoch, to adopt once the Delivery Service has accepted the commit.
func JoinByExternalCommit(s *suite.Suite, signer *suite.Signer, gi *GroupInfo, ratchetTree tree.RatchetTreeNodes, leaf LeafOptions, cfg Config) (*Message, *Group, error) {
	return joinByExternalCommit(s, signer, gi, ratchetTree, leaf, cfg, externalCommitTweaks{})
}

// externalCommitTweaks let tests build external commits that a receiver
// must refuse.
type externalCommitTweaks struct {
	remove *tree.LeafIndex         // the leaf to remove instead of the one holding signer's key
	extra  []*Proposal             // appended to the proposal list as they are
	leaf   func(ln *tree.LeafNode) // changes the new leaf before it is signed
	noSelf bool                    // skips the joiner's own check of its new leaf

	// The options of JoinByExternalCommitWith (group_external_with.go).
	prior     *tree.LeafIndex           // the joiner's prior leaf, removed (checked: occupied)
	psks      []schedule.PreSharedKeyID // PreSharedKey proposals, by value, after the Remove
	pskSecret []byte                    // the psk_secret of psks (§8.4)
}

// joinByExternalCommit is JoinByExternalCommit with test tweaks.
func joinByExternalCommit(s *suite.Suite, signer *suite.Signer, gi *GroupInfo, ratchetTree tree.RatchetTreeNodes, leaf LeafOptions, cfg Config, tw externalCommitTweaks) (*Message, *Group, error) {
	gc := gi.GroupContext
	if gc.Version != tree.ProtocolVersionMLS10 {
		return nil, nil, ErrUnsupportedVersion
	}
	if gc.CipherSuite != s.ID() {
		return nil, nil, fmt.Errorf("%w: group suite %v, ours %v", ErrInvalidGroupInfo, gc.CipherSuite, s.ID())
	}
	newEpoch, err := nextEpochNumber(gc.Epoch)
	if err != nil {
		return nil, nil, err
	}
	if err := checkLeafOptions(&leaf); err != nil {
		return nil, nil, err
	}

	t, err := verifiedTree(s, gi, ratchetTree, cfg, ErrInvalidGroupInfo)
	if err != nil {
		return nil, nil, err
	}
	extPub, err := externalPub(gi)
	if err != nil {
		return nil, nil, err
	}
	// §8.3: kem_output and init_secret.
	kemOutput, initSecret, err := schedule.ExternalInit(s, extPub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: external init: %w", ErrInvalidGroupInfo, err)
	}
	defer clear(initSecret) // consumed by the new epoch (§9.2)
	props, nt, replaces, err := externalProposals(t, signer.PublicKey(), kemOutput, tw)
	if err != nil {
		return nil, nil, err
	}
	myLeaf, err := nt.FreeLeaf()
	if err != nil {
		return nil, nil, err
	}

	caps := DefaultCapabilities()
	if leaf.Capabilities != nil {
		caps = *leaf.Capabilities
	}
	template := &tree.LeafNode{SignatureKey: slices.Clone(signer.PublicKey()), Credential: leaf.Credential,
		Capabilities: caps, LeafNodeSource: tree.LeafNodeSourceCommit, Extensions: nonNilExtensions(leaf.Extensions)}
	cp, err := nt.NewCommitPath(s, cfg.rand(), myLeaf, template, func(ln *tree.LeafNode) error {
		if tw.leaf != nil {
			tw.leaf(ln)
		}
		return ln.Sign(s, signer, gc.GroupID, myLeaf)
	})
	if err != nil {
		return nil, nil, err
	}
	// The new leaf as the members will judge it (§12.4.2); for a resync, an
	// acceptable successor of the leaf it removes (§12.2).
	if err := ValidateLeafNode(s, cp.LeafNode, LeafUseCommit, myLeaf, cfg.now(),
		ValidateOptions{GroupContext: &gc, Members: nt, Credentials: cfg.Credentials, Replaces: replaces}); err != nil && !tw.noSelf {
		return nil, nil, err
	}

	newCtx := gc
	newCtx.Extensions = slices.Clone(gc.Extensions)
	newCtx.Epoch = newEpoch
	newCtx.TreeHash = cp.Tree.TreeHash(s)
	provisional, err := wire.Marshal(&newCtx)
	if err != nil {
		return nil, nil, err
	}
	commit := &Commit{Proposals: props}
	if commit.Path, err = cp.Encrypt(s, provisional, nil); err != nil {
		return nil, nil, err
	}
	fc := &FramedContent{GroupID: gc.GroupID, Epoch: gc.Epoch, Sender: Sender{SenderType: SenderTypeNewMemberCommit},
		ContentType: ContentTypeCommit, Commit: commit}
	ac, err := SignContent(signer, WireFormatPublicMessage, fc, &gc)
	if err != nil {
		return nil, nil, err
	}

	// §8.2: the interim transcript hash of the GroupInfo's epoch follows
	// from its confirmed transcript hash and confirmation tag.
	interim, err := NextInterimTranscriptHash(s, gc.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	if newCtx.ConfirmedTranscriptHash, err = NextConfirmedTranscriptHash(s, interim, ac); err != nil {
		return nil, nil, err
	}
	g := &Group{cfg: cfg, suite: s, signer: signer, tree: cp.Tree, myLeaf: myLeaf, keys: cp.PrivateKeys}
	if err := g.setContext(newCtx); err != nil {
		return nil, nil, err
	}
	if err := g.setUpEpoch(epochInput{initSecret: initSecret, commitSecret: cp.CommitSecret, pskSecret: tw.pskSecret}); err != nil {
		return nil, nil, err
	}
	ac.Auth.ConfirmationTag = g.confirmationTag

	pm, err := ProtectPublic(s, ac, &gc, nil)
	if err != nil {
		return nil, nil, err
	}
	msg, err := NewMessage(pm)
	if err != nil {
		return nil, nil, err
	}
	return msg, g, nil
}

// externalPub is the external_pub of gi (§12.4.3.2).
func externalPub(gi *GroupInfo) ([]byte, error) {
	ep := gi.Extensions.Find(tree.ExtensionTypeExternalPub)
	if ep == nil {
		return nil, fmt.Errorf("%w: no external_pub extension", ErrInvalidGroupInfo)
	}
	var extPub tree.ExternalPub
	if err := wire.Unmarshal(ep.ExtensionData, &extPub); err != nil {
		return nil, fmt.Errorf("%w: external_pub: %w", ErrInvalidGroupInfo, err)
	}
	return extPub.ExternalPub, nil
}

// externalProposals are an external commit's proposals (§12.2): the
// ExternalInit and, when a leaf of t holds the joiner's signature key (a
// member resynchronizing), the Remove of that leaf, which the new leaf
// replaces. nt is t with that Remove applied: the tree the path goes into.
func externalProposals(t *tree.Tree, sigKey, kemOutput []byte, tw externalCommitTweaks) (props []ProposalOrRef, nt *tree.Tree, replaces *tree.LeafNode, err error) {
	byValue := func(p *Proposal) { props = append(props, ProposalOrRef{Type: ProposalOrRefTypeProposal, Proposal: p}) }
	byValue(&Proposal{ProposalType: tree.ProposalTypeExternalInit, ExternalInit: &ExternalInit{KEMOutput: kemOutput}})
	nt = t.Clone()
	old, ok := t.FindSignatureKey(sigKey)
	if tw.prior != nil {
		if uint32(*tw.prior) >= t.NumLeaves() || t.Leaf(*tw.prior) == nil {
			return nil, nil, nil, fmt.Errorf("%w: the prior leaf %d to remove is not a member", ErrInvalidProposal, *tw.prior)
		}
		old, ok = *tw.prior, true
	}
	if tw.remove != nil {
		old, ok = *tw.remove, true
	}
	if ok {
		replaces = t.Leaf(old)
		byValue(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: old}})
		if err := nt.RemoveLeaf(old); err != nil {
			return nil, nil, nil, err
		}
	}
	for i := range tw.psks {
		byValue(&Proposal{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: tw.psks[i]}})
	}
	for _, p := range tw.extra {
		byValue(p)
	}
	return props, nt, replaces, nil
}
