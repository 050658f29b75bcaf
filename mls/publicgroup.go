package mls

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// The public view of a group (RFC 9420 §6.3 "public" state, RFC 9750 §5:
// what a Delivery Service can follow): the ratchet tree with public keys
// only, the GroupContext, the interim transcript hash and the proposals
// seen by value this epoch. No secret of any epoch.
//
// A PublicGroup runs the engine's own validation and application of a
// commit (Group.stageReceivedCommit, Group.nextContext: the shared path),
// in a Group without secrets. What it cannot check, and why:
//   - the membership tag of a PublicMessage (§6.2): a MAC under the
//     epoch's membership_key, which only members derive;
//   - the confirmation tag of a commit (§6.1, §8.1): a MAC under the new
//     epoch's confirmation_key; it is taken as given for the interim
//     transcript hash, as members take it once they verified it;
//   - the path secrets of an UpdatePath (§7.6): they are HPKE-encrypted to
//     members; only their structure and public keys are checked, so a
//     committer can send ciphertexts that members cannot open;
//   - PSKs (§8.4): it holds none, so a PSK proposal is checked for its
//     form only;
//   - the application's own rules (Config.Policy) unless it is given one.
// A commit it accepts may therefore still be refused by every member.

// Errors of the public view.
var (
	// ErrTooManyProposals: more proposals this epoch than a PublicGroup
	// caches (MaxPublicProposals).
	ErrTooManyProposals = errors.New("mls: too many proposals cached this epoch")
)

// MaxPublicProposals bounds the proposals a PublicGroup caches per epoch.
const MaxPublicProposals = 256

// noLeaf is the leaf index of the secret-less Group of a PublicGroup: no
// leaf is its own, so no commit is "its own" nor removes or updates it.
const noLeaf = tree.LeafIndex(math.MaxUint32)

// PublicGroup is the public state of a group in one epoch. Its methods do
// not modify it: a change returns a new PublicGroup.
type PublicGroup struct {
	g *Group
}

// PublicLeaf is a leaf a commit added or removed.
type PublicLeaf struct {
	Index tree.LeafIndex
	Leaf  *tree.LeafNode
}

// PublicCommit is what a verified commit changed.
type PublicCommit struct {
	// State is the group in the new epoch.
	State *PublicGroup
	// Committer is the committer's leaf in the new epoch (for an external
	// commit, the joiner's new leaf).
	Committer tree.LeafIndex
	// Added are the leaves the commit adds (Adds, and an external
	// joiner's leaf); Removed those it removes, as they were before.
	Added, Removed []PublicLeaf
}

// NewPublicGroup starts following a group from its GroupInfo and ratchet
// tree (nil: gi's ratchet_tree extension), validated as a joiner validates
// them (§12.4.3.1): the GroupInfo's signature by its signer leaf, its
// extensions, the tree hash against the GroupContext, parent hashes,
// unmerged leaves, unique keys, and every leaf (with cfg.Credentials). The
// GroupInfo's confirmation tag cannot be verified without the epoch's
// secrets; it seeds the interim transcript hash. Errors wrap
// ErrInvalidGroupInfo.
func NewPublicGroup(gi *GroupInfo, ratchetTree tree.RatchetTreeNodes, cfg Config) (*PublicGroup, error) {
	s, err := suite.New(gi.GroupContext.CipherSuite)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
	}
	if gi.GroupContext.Version != tree.ProtocolVersionMLS10 {
		return nil, fmt.Errorf("%w: version %v", ErrInvalidGroupInfo, gi.GroupContext.Version)
	}
	if len(gi.ConfirmationTag) == 0 {
		return nil, fmt.Errorf("%w: no confirmation tag", ErrInvalidGroupInfo)
	}
	t, err := verifiedTree(s, gi, ratchetTree, cfg, ErrInvalidGroupInfo)
	if err != nil {
		return nil, err
	}
	interim, err := NextInterimTranscriptHash(s, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
	}
	g := &Group{cfg: cfg, suite: s, tree: t, myLeaf: noLeaf, interim: interim, public: true}
	ctx := gi.GroupContext
	ctx.Extensions = slices.Clone(ctx.Extensions)
	if err := g.setContext(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
	}
	return &PublicGroup{g: g}, nil
}

// GroupID returns the group id.
func (pg *PublicGroup) GroupID() []byte { return slices.Clone(pg.g.ctx.GroupID) }

// Epoch returns the current epoch.
func (pg *PublicGroup) Epoch() uint64 { return pg.g.ctx.Epoch }

// Context returns a copy of the current GroupContext.
func (pg *PublicGroup) Context() GroupContext { return pg.g.Context() }

// TreeHash returns the tree hash of the current tree (in the GroupContext).
func (pg *PublicGroup) TreeHash() []byte { return slices.Clone(pg.g.ctx.TreeHash) }

// ConfirmedTranscriptHash returns the current confirmed transcript hash.
func (pg *PublicGroup) ConfirmedTranscriptHash() []byte {
	return slices.Clone(pg.g.ctx.ConfirmedTranscriptHash)
}

// RatchetTree returns the public ratchet tree.
func (pg *PublicGroup) RatchetTree() tree.RatchetTreeNodes { return pg.g.tree.Nodes() }

// Members lists the non-blank leaves in leaf order.
func (pg *PublicGroup) Members() []Member { return pg.g.Members() }

// Leaf returns the leaf at i, nil when blank or outside the tree.
func (pg *PublicGroup) Leaf(i tree.LeafIndex) *tree.LeafNode {
	if uint32(i) >= pg.g.tree.NumLeaves() {
		return nil
	}
	return pg.g.tree.Leaf(i)
}

// PendingProposals is the number of proposals cached this epoch.
func (pg *PublicGroup) PendingProposals() int { return len(pg.g.pending) }

// WithConfig returns pg with another Config (its clock, credential
// validator, policy): a loaded state gets the caller's.
func (pg *PublicGroup) WithConfig(cfg Config) *PublicGroup {
	g := pg.g.clone()
	g.cfg = cfg
	return &PublicGroup{g: g}
}

// authenticate checks a PublicMessage of the current epoch: the group,
// the epoch, the sender/content pairing and the signature over
// FramedContentTBS by the sender's key (§6.1); not the membership tag.
// The caller must call enc.close.
func (pg *PublicGroup) authenticate(m *Message) (*AuthenticatedContent, *contentEncoding, error) {
	if m.Version != tree.ProtocolVersionMLS10 {
		return nil, nil, ErrUnsupportedVersion
	}
	if m.WireFormat != WireFormatPublicMessage || m.PublicMessage == nil {
		return nil, nil, fmt.Errorf("%w: the public view reads PublicMessages, not %v", ErrInvalidMessage, m.WireFormat)
	}
	pm := m.PublicMessage
	if err := pg.g.checkGroupEpoch(pm.Content.GroupID, pm.Content.Epoch); err != nil {
		return nil, nil, err
	}
	return pg.g.authenticatePublic(pm)
}

// ProcessCommit verifies a commit sent as a PublicMessage and applies it:
// the sender is a member (or an external joiner) and signed it; the
// proposals, by value or by reference to those cached (ProcessProposal),
// pass the checks of §12.1 and the list rules of §12.2 and are applied
// (§12.3), each new leaf validated; a path is present where required and
// its structure is valid (one node per filtered direct path node,
// ciphertext counts, HPKE public keys that parse and are unique, the
// leaf's source, signature, credential and parent hash); see PublicGroup
// for what cannot be checked. The new GroupContext has the next epoch, the
// new tree hash and the confirmed transcript hash over the commit; the
// interim transcript hash uses the commit's (unverifiable) confirmation
// tag. A refused commit returns an error wrapping one of the package's
// sentinels; pg is unchanged either way.
func (pg *PublicGroup) ProcessCommit(m *Message) (*PublicCommit, error) {
	ac, enc, err := pg.authenticate(m)
	if err != nil {
		return nil, err
	}
	defer enc.close()
	if ac.Content.ContentType != ContentTypeCommit {
		return nil, fmt.Errorf("%w: %v content, not a commit", ErrInvalidMessage, ac.Content.ContentType)
	}
	g := pg.g
	if err := g.checkNotFrozen(ContentTypeCommit); err != nil {
		return nil, err
	}
	sc, _, err := g.stageReceivedCommit(ac)
	if err != nil {
		return nil, err
	}
	ctx, err := g.nextContext(ac, enc, sc)
	if err != nil {
		return nil, err
	}
	interim, err := NextInterimTranscriptHash(g.suite, ctx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	out := &PublicCommit{Committer: ac.Content.Sender.LeafIndex}
	if out.Removed, err = pg.removedLeaves(ac.Content.Commit, ac.Content.Sender); err != nil {
		return nil, err
	}
	for _, i := range sc.added {
		out.Added = append(out.Added, PublicLeaf{Index: i, Leaf: sc.tree.Leaf(i)})
	}
	if ac.Content.Sender.SenderType == SenderTypeNewMemberCommit {
		i, ok := sc.tree.FindSignatureKey(ac.Content.Commit.Path.LeafNode.SignatureKey)
		if !ok {
			return nil, fmt.Errorf("%w: the external joiner's leaf is not in the new tree", ErrInvalidCommit)
		}
		out.Committer = i
		out.Added = append(out.Added, PublicLeaf{Index: i, Leaf: sc.tree.Leaf(i)})
	}
	next := g.clone()
	next.tree, next.interim, next.pending = sc.tree, interim, nil
	if sc.reinit != nil {
		next.reinit = sc.reinit
	}
	if err := next.setContext(ctx); err != nil {
		return nil, err
	}
	out.State = &PublicGroup{g: next}
	return out, nil
}

// removedLeaves lists the leaves the commit's Remove proposals remove, as
// they are in the current tree (the list is valid: stageReceivedCommit
// resolved it).
func (pg *PublicGroup) removedLeaves(c *Commit, committer Sender) ([]PublicLeaf, error) {
	items, err := pg.g.resolve(c, committer)
	if err != nil {
		return nil, err
	}
	var out []PublicLeaf
	for _, it := range items {
		if it.p.ProposalType == tree.ProposalTypeRemove {
			i := it.p.Remove.Removed
			out = append(out, PublicLeaf{Index: i, Leaf: pg.g.tree.Leaf(i)})
		}
	}
	return out, nil
}

// ProcessProposal verifies a proposal sent as a PublicMessage (sender,
// signature, the checks of its type on arrival, §12.1) and returns the
// state with it cached by reference for a later commit, and its
// reference. At most MaxPublicProposals are cached per epoch.
func (pg *PublicGroup) ProcessProposal(m *Message) (*PublicGroup, []byte, error) {
	ac, enc, err := pg.authenticate(m)
	if err != nil {
		return nil, nil, err
	}
	defer enc.close()
	if ac.Content.ContentType != ContentTypeProposal {
		return nil, nil, fmt.Errorf("%w: %v content, not a proposal", ErrInvalidMessage, ac.Content.ContentType)
	}
	if err := pg.g.checkNotFrozen(ContentTypeProposal); err != nil {
		return nil, nil, err
	}
	if len(pg.g.pending) >= MaxPublicProposals {
		return nil, nil, fmt.Errorf("%w: %d", ErrTooManyProposals, len(pg.g.pending))
	}
	res, err := pg.g.processProposal(ac)
	if err != nil {
		return nil, nil, err
	}
	return &PublicGroup{g: res.State}, res.ProposalRef, nil
}

// VerifyGroupInfo checks that gi describes the current state: the same
// GroupContext, a signature by the leaf it names as signer (§12.4.3), a
// confirmation tag that is the one of the commit that started this epoch
// (through the interim transcript hash; the tag itself cannot be verified
// without secrets), valid extensions, and a ratchet_tree extension, when
// present, with the tracked tree's hash. It does not check external_pub
// beyond its form: the key is derived from the epoch's secrets. Errors
// wrap ErrInvalidGroupInfo.
func (pg *PublicGroup) VerifyGroupInfo(gi *GroupInfo) error {
	g := pg.g
	want, err := wire.Marshal(&gi.GroupContext)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
	}
	if !bytes.Equal(want, g.ctxBytes) {
		return fmt.Errorf("%w: the GroupContext (epoch %d) is not the group's (epoch %d)", ErrInvalidGroupInfo, gi.GroupContext.Epoch, g.ctx.Epoch)
	}
	key, err := leafSignatureKey(g.tree, gi.Signer)
	if err != nil {
		return fmt.Errorf("%w: signer: %w", ErrInvalidGroupInfo, err)
	}
	if err := VerifyGroupInfo(g.suite, gi, key); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
	}
	interim, err := NextInterimTranscriptHash(g.suite, g.ctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil || !bytes.Equal(interim, g.interim) {
		return fmt.Errorf("%w: the confirmation tag is not the epoch's", ErrInvalidGroupInfo)
	}
	if err := checkExtensions(g.suite, gi.Extensions, false); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
	}
	if ext := gi.Extensions.Find(tree.ExtensionTypeRatchetTree); ext != nil {
		var nodes tree.RatchetTreeNodes
		if err := wire.Unmarshal(ext.ExtensionData, &nodes); err != nil {
			return fmt.Errorf("%w: ratchet_tree: %w", ErrInvalidGroupInfo, err)
		}
		t, err := tree.New(nodes)
		if err != nil {
			return fmt.Errorf("%w: ratchet_tree: %w", ErrInvalidGroupInfo, err)
		}
		if !bytes.Equal(t.TreeHash(g.suite), g.ctx.TreeHash) {
			return fmt.Errorf("%w: the ratchet_tree is not the group's tree", ErrInvalidGroupInfo)
		}
	}
	return nil
}
