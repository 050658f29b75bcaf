package mls

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Commits (RFC 9420 §12.4): creating one, and processing another member's.

// CommitOptions say what a commit changes. The zero value is an empty
// commit: a self-update of the committer's path (PCS for the committer).
type CommitOptions struct {
	Add    []*KeyPackage
	Remove []tree.LeafIndex
	// PSKs are injected with PreSharedKey proposals (psk_nonce is filled in
	// when empty).
	PSKs []PreSharedKeyID
	// Extensions, when non-nil, replace the GroupContext extensions
	// (a GroupContextExtensions proposal).
	Extensions tree.Extensions
	// ReInit, when set, is committed alone.
	ReInit *ReInit
	// ReInitRef, when set, commits alone, by reference, the cached ReInit
	// proposal with this reference (one another member proposed, §12.1.5).
	ReInitRef []byte
	// SkipPending leaves out the proposals received in this epoch; by
	// default they are all committed by reference (§12.4 SHOULD).
	SkipPending bool
	// NoPath omits the UpdatePath when the proposals allow it.
	NoPath bool
	// LeafExtensions, when non-nil, replace the extensions of the
	// committer's leaf in its UpdatePath (e.g. a renewed credential
	// certificate, RFC 9420 §7.2); the commit then always has a path.
	// Their types must be in the leaf's capabilities.
	LeafExtensions tree.Extensions
	// AuthenticatedData travels in the clear with the commit.
	AuthenticatedData []byte
	// GroupInfoExtensions go into the extensions of the GroupInfo built for
	// the Welcome (RFC 9420 §12.4.3), before it is signed: application data
	// for joiners, e.g. in a private-use type (§17.3, 0xF000-0xFFFF).
	// external_pub and ratchet_tree are set by the engine and may not
	// appear here, nor any type twice.
	GroupInfoExtensions tree.Extensions
}

// CommitResult is a commit and everything it produced.
type CommitResult struct {
	// Commit goes to the existing members (the current epoch's keys protect it).
	Commit *MLSMessage
	// Welcome goes to the added members (nil if none).
	Welcome *Welcome
	// GroupInfo describes the new epoch, signed, with external_pub; it is
	// built when the commit adds members (State.GroupInfo builds one later).
	GroupInfo *GroupInfo
	// RatchetTree is the new epoch's public tree (for Welcomes sent without
	// the ratchet_tree extension).
	RatchetTree tree.RatchetTreeNodes
	// Added are the leaf indexes of the added members, in order.
	Added []tree.LeafIndex
	// State is the group in the new epoch. Persist it, then adopt it, once
	// the Delivery Service has accepted Commit.
	State *Group
}

// Commit creates a commit (RFC 9420 §12.4.1). The receiver is not modified
// except for its handshake ratchet when the commit is a PrivateMessage.
func (g *Group) Commit(o CommitOptions) (*CommitResult, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	if err := checkGroupInfoExtensions(o.GroupInfoExtensions); err != nil {
		return nil, err
	}
	s, rnd := g.suite, g.cfg.rand()
	me := MemberSender(g.myLeaf)

	// Proposals: the pending ones by reference (skipping this member's own
	// updates, which it cannot commit, and updates/removes of a leaf that a
	// newer or stronger proposal touches), then the new ones by value.
	var pors []ProposalOrRef
	if !o.SkipPending && o.ReInit == nil && o.ReInitRef == nil {
		pors = g.pendingToCommit(o.Remove, o.Add, o.Extensions != nil)
	}
	nPending := len(pors)
	add := func(p *Proposal) { pors = append(pors, ProposalOrRef{Type: ProposalOrRefTypeProposal, Proposal: p}) }
	if o.Extensions != nil {
		add(&Proposal{ProposalType: ProposalTypeGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: o.Extensions}})
	}
	for _, r := range o.Remove {
		add(&Proposal{ProposalType: ProposalTypeRemove, Remove: &Remove{Removed: r}})
	}
	for _, kp := range o.Add {
		add(&Proposal{ProposalType: ProposalTypeAdd, Add: &Add{KeyPackage: *kp}})
	}
	for _, id := range o.PSKs {
		if len(id.Nonce) == 0 {
			id.Nonce = make([]byte, s.HashSize())
			if _, err := io.ReadFull(rnd, id.Nonce); err != nil {
				return nil, err
			}
		}
		add(&Proposal{ProposalType: ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: id}})
	}
	if o.ReInit != nil {
		add(&Proposal{ProposalType: ProposalTypeReInit, ReInit: o.ReInit})
	}
	if o.ReInitRef != nil {
		if err := g.checkReInitRef(o.ReInitRef); err != nil {
			return nil, err
		}
		pors = append(pors, ProposalOrRef{Type: ProposalOrRefTypeReference, Reference: o.ReInitRef})
	}
	commit := &Commit{Proposals: pors}
	items, err := g.resolve(commit, me)
	if err != nil {
		return nil, err
	}
	a, err := g.validateAndApply(items, me)
	if err != nil && nPending > 0 {
		// Pending proposals that are valid alone may not fit together
		// (e.g. a new required capability and an Add lacking it): keep,
		// in arrival order, those that leave the list valid (§12.2, §12.4).
		commit.Proposals, items, a, err = g.fitPending(pors, nPending, me)
	}
	if err != nil {
		return nil, err
	}

	newCtx := g.ctx
	newCtx.Epoch++
	newCtx.Extensions = a.extensions
	newTree := a.tree
	keys := g.keys.Clone()
	keys.Prune(newTree)
	var commitSecret []byte
	var cp *tree.CommitPath
	if a.needPath || !o.NoPath || o.LeafExtensions != nil {
		cur := g.tree.Leaf(g.myLeaf)
		if o.LeafExtensions != nil {
			renewed := *cur
			renewed.Extensions = slices.Clone(o.LeafExtensions)
			cur = &renewed
		}
		cp, err = newTree.NewCommitPath(s, rnd, g.myLeaf, cur, func(ln *tree.LeafNode) error {
			return ln.Sign(s, g.signer, g.ctx.GroupID, g.myLeaf)
		})
		if err != nil {
			return nil, err
		}
		if o.LeafExtensions != nil {
			// The receivers' check (processCommit), before anything leaves.
			lv := g.leafValidator()
			lv.extensions = a.extensions
			if err := lv.validate(cp.LeafNode, tree.LeafNodeSourceCommit, g.myLeaf, a.tree); err != nil {
				return nil, fmt.Errorf("%w: LeafExtensions: %w", ErrInvalidLeafNode, err)
			}
		}
		newTree = cp.Tree
		newCtx.TreeHash = newTree.TreeHash(s)
		provisional, err := wire.Marshal(&newCtx)
		if err != nil {
			return nil, err
		}
		if commit.Path, err = cp.Encrypt(s, provisional, a.added); err != nil {
			return nil, err
		}
		commitSecret = cp.CommitSecret
		for x := range keys {
			if newTree.Node(x) == nil || bytes.Equal(newTree.EncryptionKey(x), nil) {
				delete(keys, x)
			}
		}
		// Drop keys of the (re-keyed) direct path, then take the new ones.
		for _, x := range tree.DirectPath(g.myLeaf, newTree.NumLeaves()) {
			delete(keys, x)
		}
		for x, k := range cp.PrivateKeys {
			keys[x] = k
		}
	}
	newCtx.TreeHash = newTree.TreeHash(s)
	pskSecret, err := g.pskSecret(a.psks)
	if err != nil {
		return nil, err
	}

	wf := g.handshakeWireFormat()
	fc := &FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: me,
		AuthenticatedData: o.AuthenticatedData, ContentType: ContentTypeCommit, Commit: commit}
	ac, err := SignContent(g.signer, wf, fc, &g.ctx)
	if err != nil {
		return nil, err
	}
	next, err := g.nextEpoch(ac, nil, &newCtx, newTree, g.secrets.InitSecret, commitSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	ac.Auth.ConfirmationTag = next.confirmationTag
	next.keys = keys
	next.myLeaf = g.myLeaf
	if a.reinit != nil {
		next.reinit = a.reinit
	}
	msg, err := g.protectSigned(ac)
	if err != nil {
		return nil, err
	}

	res := &CommitResult{Commit: msg, State: next, Added: a.added, RatchetTree: newTree.Nodes()}
	if len(a.added) > 0 {
		// The Welcome carries a signed GroupInfo. Without new members none is
		// built here (a signature and a key derivation saved per commit);
		// State.GroupInfo makes one on demand, e.g. for external joins.
		if res.GroupInfo, err = next.groupInfo(g.cfg.RatchetTreeInWelcome, o.GroupInfoExtensions); err != nil {
			return nil, err
		}
		recips := make([]WelcomeRecipient, len(a.added))
		for i, leaf := range a.added {
			recips[i].KeyPackage = a.addedKPs[i]
			if cp != nil {
				if ps, ok := cp.PathSecretFor(leaf); ok {
					recips[i].PathSecret = ps
				}
			}
		}
		if res.Welcome, err = BuildWelcome(s, res.GroupInfo, next.secrets.WelcomeSecret, next.secrets.JoinerSecret, a.psks, recips); err != nil {
			return nil, err
		}
	}
	next.secrets.ForgetJoiner()
	return res, nil
}

// fitPending is the fallback of Commit when the pending proposals pors[:n]
// and the by-value ones pors[n:] do not make a valid list: it keeps the
// pending ones, in order, that the list stays valid with.
func (g *Group) fitPending(pors []ProposalOrRef, n int, me Sender) ([]ProposalOrRef, []proposalItem, *applied, error) {
	byValue := pors[n:]
	var kept []ProposalOrRef
	for _, por := range pors[:n] {
		try := append(slices.Clip(kept), por)
		items, err := g.resolve(&Commit{Proposals: slices.Concat(try, byValue)}, me)
		if err != nil {
			continue
		}
		if _, err := g.validateAndApply(items, me); err == nil {
			kept = try
		}
	}
	final := slices.Concat(kept, byValue)
	items, err := g.resolve(&Commit{Proposals: final}, me)
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := g.validateAndApply(items, me)
	return final, items, a, err
}

// pendingToCommit selects the cached proposals to commit by reference,
// leaving out those that would make the commit invalid (§12.2) next to the
// others and the by-value proposals of o (adding, removing).
func (g *Group) pendingToCommit(removing []tree.LeafIndex, adding []*KeyPackage, byValueGCE bool) []ProposalOrRef {
	removed := map[tree.LeafIndex]bool{}
	for _, r := range removing {
		removed[r] = true
	}
	for _, pp := range g.pending {
		if pp.proposal.ProposalType == ProposalTypeRemove && pp.proposal.Remove.Removed != g.myLeaf {
			removed[pp.proposal.Remove.Removed] = true
		}
	}
	addKeys := map[string]bool{}
	for _, kp := range adding {
		addKeys[string(kp.LeafNode.SignatureKey)] = true
	}
	// At most one GroupContextExtensions: the most recent pending one,
	// unless the commit brings its own (-1).
	lastGCE := -1
	if !byValueGCE {
		for i, pp := range g.pending {
			if pp.proposal.ProposalType == ProposalTypeGroupContextExtensions {
				lastGCE = i
			}
		}
	}
	// The most recent update per leaf, unless the leaf is removed (§12.2 SHOULD).
	lastUpdate := map[tree.LeafIndex]int{}
	for i, pp := range g.pending {
		if pp.proposal.ProposalType == ProposalTypeUpdate {
			lastUpdate[pp.sender.LeafIndex] = i
		}
	}
	seenRemove := map[tree.LeafIndex]bool{}
	var out []ProposalOrRef
	for i, pp := range g.pending {
		switch pp.proposal.ProposalType {
		case ProposalTypeUpdate:
			l := pp.sender.LeafIndex
			if l == g.myLeaf || removed[l] || lastUpdate[l] != i {
				continue
			}
		case ProposalTypeRemove:
			r := pp.proposal.Remove.Removed
			if r == g.myLeaf || seenRemove[r] || slices.Contains(removing, r) {
				continue
			}
			seenRemove[r] = true
		case ProposalTypeAdd:
			// One Add per client, and none of a member who stays (§12.2):
			// two members may well propose the same KeyPackage.
			k := pp.proposal.Add.KeyPackage.LeafNode.SignatureKey
			if addKeys[string(k)] {
				continue
			}
			if j, ok := g.tree.FindSignatureKey(k); ok && !removed[j] {
				continue
			}
			addKeys[string(k)] = true
		case ProposalTypeGroupContextExtensions:
			if i != lastGCE {
				continue
			}
		case ProposalTypePSK:
			// A PSK this member cannot look up cannot be committed by it.
			if _, err := g.lookupPSK(&pp.proposal.PreSharedKey.PSK); err != nil {
				continue
			}
		case ProposalTypeReInit:
			continue // a ReInit must be alone; committed explicitly
		}
		out = append(out, ProposalOrRef{Type: ProposalOrRefTypeReference, Reference: pp.ref})
	}
	return out
}

// nextEpoch builds the group state of the epoch a commit starts (§8,
// §8.2): transcript hashes, key schedule, secret tree. It returns the new
// state with confirmationTag set to the value the commit must carry.
// enc, when not nil, is the encoding of ac (see contentEncoding).
func (g *Group) nextEpoch(ac *AuthenticatedContent, enc *contentEncoding, newCtx *GroupContext, newTree *tree.Tree, initSecret, commitSecret, pskSecret []byte) (*Group, error) {
	s := g.suite
	confirmed, err := nextConfirmedTranscriptHashEnc(s, g.interim, ac, enc)
	if err != nil {
		return nil, err
	}
	newCtx.ConfirmedTranscriptHash = confirmed
	next := g.clone()
	next.tree = newTree
	if err := next.setContext(*newCtx); err != nil {
		return nil, err
	}
	if next.secrets, err = schedule.NewEpoch(s, initSecret, commitSecret, pskSecret, next.ctxBytes); err != nil {
		return nil, err
	}
	next.confirmationTag = s.MAC(next.secrets.ConfirmationKey, confirmed)
	if next.interim, err = NextInterimTranscriptHash(s, confirmed, next.confirmationTag); err != nil {
		return nil, err
	}
	if next.secretTree, err = schedule.NewSecretTree(s, next.secrets.EncryptionSecret, newTree.NumLeaves(), g.cfg.SecretTree); err != nil {
		return nil, err
	}
	next.secrets.ForgetEncryptionSecret() // §9.2: the tree now holds what is needed
	next.pending = nil
	next.ownUpdates = nil
	next.sendMark, next.sendNeedsSave = 0, false // a new secret tree: nothing reserved yet
	// Keep this epoch to open late application messages (§14), bounded.
	if max := g.cfg.maxPast(); max > 0 {
		next.past = append(next.past, &pastEpoch{ctx: g.ctx, ctxBytes: g.ctxBytes, tree: g.tree,
			secretTree: g.secretTree, senderData: g.secrets.SenderDataSecret})
		if len(next.past) > max {
			next.past = slices.Clone(next.past[len(next.past)-max:])
		}
	}
	next.resumption[newCtx.Epoch] = next.secrets.ResumptionPSK
	for e := range next.resumption {
		if e+uint64(max(g.cfg.maxPast(), 1)) < newCtx.Epoch {
			delete(next.resumption, e)
		}
	}
	return next, nil
}

// GroupInfo returns a signed GroupInfo for the current epoch with the
// external_pub extension (so others can join by external commit), and the
// ratchet tree if withTree.
func (g *Group) GroupInfo(withTree bool) (*GroupInfo, error) { return g.groupInfo(withTree, nil) }

// checkGroupInfoExtensions rejects extra GroupInfo extensions that clash
// with the engine's own or with each other (§13.4: one of each type).
func checkGroupInfoExtensions(extra tree.Extensions) error {
	seen := map[tree.ExtensionType]bool{tree.ExtensionTypeExternalPub: true, tree.ExtensionTypeRatchetTree: true}
	for _, e := range extra {
		if seen[e.ExtensionType] {
			return fmt.Errorf("%w: GroupInfo extension type 0x%04x given twice or reserved to the engine", ErrInvalidGroupInfo, uint16(e.ExtensionType))
		}
		seen[e.ExtensionType] = true
	}
	return nil
}

func (g *Group) groupInfo(withTree bool, extra tree.Extensions) (*GroupInfo, error) {
	_, pub, err := g.secrets.ExternalKeyPair()
	if err != nil {
		return nil, err
	}
	ep, err := wire.Marshal(&tree.ExternalPub{ExternalPub: pub})
	if err != nil {
		return nil, err
	}
	exts := tree.Extensions{{ExtensionType: tree.ExtensionTypeExternalPub, ExtensionData: ep}}
	if withTree {
		rt, err := wire.Marshal(g.tree.Nodes())
		if err != nil {
			return nil, err
		}
		exts = append(exts, tree.Extension{ExtensionType: tree.ExtensionTypeRatchetTree, ExtensionData: rt})
	}
	for _, e := range extra {
		exts = append(exts, tree.Extension{ExtensionType: e.ExtensionType, ExtensionData: slices.Clone(e.ExtensionData)})
	}
	gi := &GroupInfo{GroupContext: g.Context(), Extensions: exts,
		ConfirmationTag: slices.Clone(g.confirmationTag), Signer: g.myLeaf}
	if err := SignGroupInfo(g.signer, gi); err != nil {
		return nil, err
	}
	return gi, nil
}

// --- processing a commit (§12.4.2) ---

// processCommit stages a commit from another member (or an external
// joiner). ac has been unprotected and its signature verified over enc.
func (g *Group) processCommit(ac *AuthenticatedContent, enc *contentEncoding) (*Group, error) {
	s := g.suite
	commit := ac.Content.Commit
	sender := ac.Content.Sender
	switch sender.SenderType {
	case SenderTypeMember:
		if sender.LeafIndex == g.myLeaf {
			return nil, ErrOwnCommit
		}
	case SenderTypeNewMemberCommit:
	default:
		return nil, fmt.Errorf("%w: commit from a %v sender", ErrInvalidCommit, sender.SenderType)
	}
	if len(ac.Auth.ConfirmationTag) == 0 {
		return nil, fmt.Errorf("%w: missing confirmation tag", ErrInvalidCommit)
	}
	items, err := g.resolve(commit, sender)
	if err != nil {
		return nil, err
	}
	a, err := g.validateAndApply(items, sender)
	if err != nil {
		return nil, err
	}
	if a.needPath && commit.Path == nil {
		return nil, ErrPathRequired
	}
	external := sender.SenderType == SenderTypeNewMemberCommit
	if external && commit.Path == nil {
		return nil, fmt.Errorf("%w: an external commit must have a path", ErrPathRequired)
	}
	if external {
		// §12.4.3.2: the joiner may remove only its own old leaf; its new
		// leaf must be acceptable as an Update of the removed one. Without
		// a successor hook in CredentialValidator, the same credential.
		for _, it := range items {
			if it.p.ProposalType != ProposalTypeRemove {
				continue
			}
			oldCred, err1 := wire.Marshal(&g.tree.Leaf(it.p.Remove.Removed).Credential)
			newCred, err2 := wire.Marshal(&commit.Path.LeafNode.Credential)
			if err1 != nil || err2 != nil || !bytes.Equal(oldCred, newCred) {
				return nil, fmt.Errorf("%w: an external commit may remove only the joiner's own old leaf", ErrInvalidCommit)
			}
		}
	}
	newCtx := g.ctx
	newCtx.Epoch++
	newCtx.Extensions = a.extensions
	newTree := a.tree
	keys := g.keys.Clone()
	if a.updatedMe != nil {
		// Our own Update was committed: take the new leaf's private key.
		priv, ok := g.ownUpdates[string(a.updatedMe.ref)]
		if !ok {
			return nil, fmt.Errorf("%w: own update committed but its private key is unknown", ErrInvalidCommit)
		}
		keys = tree.PrivateKeys{g.myLeaf.Node(): priv}
	}
	keys.Prune(newTree)
	var commitSecret []byte
	if a.removedMe {
		// Removed: the member follows no further; it needs no new secrets.
		next := g.clone()
		next.removed = true
		next.tree = newTree
		next.pending = nil
		return next, nil
	}
	if commit.Path != nil {
		committerLeaf := sender.LeafIndex
		if external {
			// The joiner takes the leftmost blank leaf (§12.4.3.2).
			if committerLeaf, err = newTree.FreeLeaf(); err != nil {
				return nil, err
			}
		}
		lv := g.leafValidator()
		lv.extensions = a.extensions
		if err := lv.validate(&commit.Path.LeafNode, tree.LeafNodeSourceCommit, committerLeaf, newTree); err != nil {
			return nil, fmt.Errorf("%w: committer's leaf: %w", ErrInvalidCommit, err)
		}
		rp, err := newTree.MergeUpdatePath(s, committerLeaf, commit.Path, a.added)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		newTree = rp.Tree
		newCtx.TreeHash = newTree.TreeHash(s)
		provisional, err := wire.Marshal(&newCtx)
		if err != nil {
			return nil, err
		}
		var newKeys tree.PrivateKeys
		commitSecret, _, newKeys, err = rp.Decrypt(s, provisional, g.myLeaf, keys)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		keys = newKeys
	}
	newCtx.TreeHash = newTree.TreeHash(s)
	pskSecret, err := g.pskSecret(a.psks)
	if err != nil {
		return nil, err
	}
	initSecret := g.secrets.InitSecret
	if external {
		priv, _, err := g.secrets.ExternalKeyPair()
		if err != nil {
			return nil, err
		}
		if initSecret, err = schedule.ExternalInitSecret(s, priv, a.extInit); err != nil {
			return nil, fmt.Errorf("%w: external init: %w", ErrInvalidCommit, err)
		}
	}
	next, err := g.nextEpoch(ac, enc, &newCtx, newTree, initSecret, commitSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	if err := VerifyConfirmationTag(s, ac.Auth.ConfirmationTag, next.secrets.ConfirmationKey, newCtx.ConfirmedTranscriptHash); err != nil {
		return nil, err
	}
	next.confirmationTag = slices.Clone(ac.Auth.ConfirmationTag)
	next.keys = keys
	next.secrets.ForgetJoiner()
	if a.reinit != nil {
		next.reinit = a.reinit
	}
	// Our leaf may have moved only if the tree was truncated past it, which
	// cannot happen while we are a member; keep the index.
	return next, nil
}
