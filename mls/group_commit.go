package mls

import (
	"errors"
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
	PSKs []schedule.PreSharedKeyID
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
	Commit *Message
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
func (g *Group) Commit(o CommitOptions) (*CommitResult, error) { return g.commit(o, commitTweaks{}) }

// commitTweaks let tests build commits that receivers must refuse.
type commitTweaks struct {
	leaf func(*tree.LeafNode) // changes the path's new leaf before it is signed
}

// commit is Commit with test tweaks.
func (g *Group) commit(o CommitOptions, tw commitTweaks) (*CommitResult, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	if err := checkCommitOptions(&o); err != nil {
		return nil, err
	}
	if _, err := nextEpochNumber(g.ctx.Epoch); err != nil {
		return nil, err
	}
	me := MemberSender(g.myLeaf)
	pors, nPending, err := g.commitProposals(&o)
	if err != nil {
		return nil, err
	}
	commit := &Commit{Proposals: pors}
	sc, err := g.stageProposals(commit, me)
	if err != nil && nPending > 0 {
		// Pending proposals that are valid alone may not fit together
		// (e.g. a new required capability and an Add lacking it): keep
		// those that leave the list valid (§12.2, §12.4).
		commit, sc, err = g.fitPending(pors, nPending, me)
	}
	if err != nil {
		return nil, err
	}
	sc.keys = g.keys.Clone()
	sc.keys.Prune(sc.tree)
	sc.initSecret = g.secrets.InitSecret
	var cp *tree.CommitPath
	if sc.needPath || !o.NoPath || o.LeafExtensions != nil {
		if cp, commit.Path, err = g.newPath(sc, o.LeafExtensions, tw); err != nil {
			return nil, err
		}
	}

	fc := &FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: me,
		AuthenticatedData: o.AuthenticatedData, ContentType: ContentTypeCommit, Commit: commit}
	ac, err := SignContent(g.signer, g.handshakeWireFormat(), fc, &g.ctx)
	if err != nil {
		return nil, err
	}
	res := &CommitResult{Added: sc.added, RatchetTree: sc.tree.Nodes()}
	if len(sc.added) > 0 {
		sc.welcome = func(next *Group, joinerSecret, welcomeSecret []byte) error {
			return next.buildWelcome(res, sc, cp, o.GroupInfoExtensions, joinerSecret, welcomeSecret)
		}
	}
	if res.State, err = g.stageNextEpoch(ac, nil, sc); err != nil {
		return nil, err
	}
	ac.Auth.ConfirmationTag = res.State.confirmationTag
	if res.Commit, err = g.protectSigned(ac); err != nil {
		return nil, err
	}
	return res, nil
}

// checkCommitOptions refuses options that cannot make a commit: a nil
// KeyPackage, clashing GroupInfo extensions.
func checkCommitOptions(o *CommitOptions) error {
	if slices.Contains(o.Add, nil) {
		return fmt.Errorf("%w: nil KeyPackage in CommitOptions.Add", ErrInvalidProposal)
	}
	return checkGroupInfoExtensions(o.GroupInfoExtensions)
}

// commitProposals lists a commit's proposals: the pending ones by
// reference (those that can go together, see pendingToCommit), then the
// new ones of o by value. n is the number of pending ones.
func (g *Group) commitProposals(o *CommitOptions) (pors []ProposalOrRef, n int, err error) {
	if !o.SkipPending && o.ReInit == nil && o.ReInitRef == nil {
		pors = g.pendingToCommit(o.Remove, o.Add, o.Extensions != nil)
	}
	n = len(pors)
	add := func(p *Proposal) { pors = append(pors, ProposalOrRef{Type: ProposalOrRefTypeProposal, Proposal: p}) }
	if o.Extensions != nil {
		add(&Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: o.Extensions}})
	}
	for _, r := range o.Remove {
		add(&Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: r}})
	}
	for _, kp := range o.Add {
		add(&Proposal{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: *kp}})
	}
	for _, id := range o.PSKs {
		if len(id.Nonce) == 0 {
			id.Nonce = make([]byte, g.suite.HashSize())
			if _, err := io.ReadFull(g.cfg.rand(), id.Nonce); err != nil {
				return nil, 0, err
			}
		}
		add(&Proposal{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: id}})
	}
	if o.ReInit != nil {
		add(&Proposal{ProposalType: tree.ProposalTypeReInit, ReInit: o.ReInit})
	}
	if o.ReInitRef != nil {
		if err := g.checkReInitRef(o.ReInitRef); err != nil {
			return nil, 0, err
		}
		pors = append(pors, ProposalOrRef{Type: ProposalOrRefTypeReference, Reference: o.ReInitRef})
	}
	return pors, n, nil
}

// newPath makes the committer's UpdatePath over sc.tree (§12.4.1) and puts
// the new tree, private keys and commit secret in sc. leafExts, when not
// nil, replace the extensions of the committer's leaf
// (CommitOptions.LeafExtensions).
func (g *Group) newPath(sc *stagedCommit, leafExts tree.Extensions, tw commitTweaks) (*tree.CommitPath, *tree.UpdatePath, error) {
	s := g.suite
	cur := g.tree.Leaf(g.myLeaf)
	if leafExts != nil {
		renewed := *cur
		renewed.Extensions = slices.Clone(leafExts)
		cur = &renewed
	}
	cp, err := sc.tree.NewCommitPath(s, g.cfg.rand(), g.myLeaf, cur, func(ln *tree.LeafNode) error {
		if tw.leaf != nil {
			tw.leaf(ln)
		}
		return ln.Sign(s, g.signer, g.ctx.GroupID, g.myLeaf)
	})
	if err != nil {
		return nil, nil, err
	}
	if leafExts != nil {
		// The receivers' check of the path leaf (processCommit), before
		// anything leaves.
		lv := g.leafValidator()
		lv.extensions = sc.extensions
		if err := lv.validate(cp.LeafNode, tree.LeafNodeSourceCommit, g.myLeaf, sc.tree); err != nil {
			return nil, nil, fmt.Errorf("%w: LeafExtensions: %w", ErrInvalidLeafNode, err)
		}
	}
	ctx, err := g.provisionalContext(sc.extensions, cp.Tree)
	if err != nil {
		return nil, nil, err
	}
	provisional, err := wire.Marshal(&ctx)
	if err != nil {
		return nil, nil, err
	}
	path, err := cp.Encrypt(s, provisional, sc.added)
	if err != nil {
		return nil, nil, err
	}
	keys := sc.keys
	for x := range keys {
		if cp.Tree.Node(x) == nil || cp.Tree.EncryptionKey(x) == nil {
			delete(keys, x)
		}
	}
	// Drop keys of the (re-keyed) direct path, then take the new ones.
	for _, x := range tree.DirectPath(g.myLeaf, cp.Tree.NumLeaves()) {
		delete(keys, x)
	}
	for x, k := range cp.PrivateKeys {
		keys[x] = k
	}
	sc.tree, sc.commitSecret = cp.Tree, cp.CommitSecret
	return cp, path, nil
}

// buildWelcome makes the Welcome of a commit that adds members (§12.4.3.1)
// with a signed GroupInfo of g, the new epoch. Without new members none is
// built (a signature and a key derivation saved per commit); GroupInfo
// makes one on demand, e.g. for external joins.
func (g *Group) buildWelcome(res *CommitResult, sc *stagedCommit, cp *tree.CommitPath, exts tree.Extensions, joinerSecret, welcomeSecret []byte) error {
	var err error
	if res.GroupInfo, err = g.groupInfo(g.cfg.RatchetTreeInWelcome, exts); err != nil {
		return err
	}
	recips := make([]welcomeRecipient, len(sc.added))
	for i, leaf := range sc.added {
		recips[i].KeyPackage = sc.addedKPs[i]
		if cp != nil {
			if ps, ok := cp.PathSecretFor(leaf); ok {
				recips[i].PathSecret = ps
			}
		}
	}
	res.Welcome, err = newWelcome(g.suite, res.GroupInfo, welcomeSecret, joinerSecret, sc.psks, recips)
	return err
}

// fitPending is the fallback of Commit when the pending proposals pors[:n]
// and the by-value ones pors[n:] do not make a valid list: it keeps the
// pending ones the list stays valid with, earlier arrivals first. While the
// list fails on pending proposals they are left out, a round per failing
// step of validation (misfits, below), so the cost grows with the number of
// rounds, not of proposals. The result is always a list that validates.
func (g *Group) fitPending(pors []ProposalOrRef, n int, me Sender) (*Commit, *stagedCommit, error) {
	pending, err := g.resolve(&Commit{Proposals: pors[:n]}, me)
	if err != nil {
		return nil, nil, err
	}
	m := &misfits{pending: pending, kept: make([]bool, n), gce: -1}
	for i, it := range pending {
		m.kept[i] = true
		if it.p.ProposalType == tree.ProposalTypeGroupContextExtensions {
			m.gce = i // pendingToCommit keeps one at most
		}
	}
	for {
		var list []ProposalOrRef
		var from []int // pending index of each list entry
		for i := range n {
			if m.kept[i] {
				list, from = append(list, pors[i]), append(from, i)
			}
		}
		c := &Commit{Proposals: append(list, pors[n:]...)}
		sc, err := g.stageProposals(c, me)
		var pe *proposalError
		switch {
		case err == nil:
			return c, sc, nil
		case !errors.As(err, &pe) || !m.drop(from, pe.indexes):
			if len(list) == 0 {
				return nil, nil, err // the by-value proposals fail on their own
			}
			clear(m.kept) // not the pending proposals' fault: commit none of them
		}
	}
}

// misfits tracks which pending proposals a default commit keeps.
type misfits struct {
	pending []proposalItem
	kept    []bool
	gce     int   // the pending GroupContextExtensions (-1: none)
	waiting []int // left out while gce is in, which may be what invalidates them
}

// drop leaves out the pending proposals a failed list blames (list indexes;
// from maps them to pending ones) and reports whether it left any out. A
// GroupContextExtensions that arrived after a blamed Add or Update goes
// instead (the earlier arrival is preferred); an Add or Update blamed while
// an earlier GroupContextExtensions is in waits, and comes back if that
// one goes.
func (m *misfits) drop(from, blamed []int) bool {
	var out []int
	for _, j := range blamed {
		if j >= len(from) {
			continue // a by-value proposal: not ours to leave out
		}
		i := from[j]
		t := m.pending[i].p.ProposalType
		gceIn := m.gce >= 0 && m.kept[m.gce] && i != m.gce
		switch {
		case gceIn && m.gce > i && (t == tree.ProposalTypeAdd || t == tree.ProposalTypeUpdate):
			out = []int{m.gce}
		case gceIn && (t == tree.ProposalTypeAdd || t == tree.ProposalTypeUpdate):
			m.waiting = append(m.waiting, i)
			out = append(out, i)
		default:
			out = append(out, i)
		}
		if len(out) == 1 && out[0] == m.gce {
			break
		}
	}
	for _, i := range out {
		m.kept[i] = false
		if i == m.gce {
			for _, w := range m.waiting {
				m.kept[w] = true
			}
			m.waiting = nil
		}
	}
	return len(out) > 0
}

// pendingToCommit selects the cached proposals to commit by reference,
// leaving out those that would make the commit invalid (§12.2) next to the
// others and the by-value proposals of o (adding, removing): the rules that
// need no validation. Those that fail validation in the commit are left
// out by fitPending.
func (g *Group) pendingToCommit(removing []tree.LeafIndex, adding []*KeyPackage, byValueGCE bool) []ProposalOrRef {
	f := g.newPendingFilter(removing, adding, byValueGCE)
	var out []ProposalOrRef
	for i, pp := range g.pending {
		if f.keep(i, pp) {
			out = append(out, ProposalOrRef{Type: ProposalOrRefTypeReference, Reference: pp.ref})
		}
	}
	return out
}

// pendingFilter decides, in arrival order, which pending proposals a
// default commit takes.
type pendingFilter struct {
	g          *Group
	removing   []tree.LeafIndex        // removed by value
	removed    map[tree.LeafIndex]bool // by value or by a pending Remove
	seenRemove map[tree.LeafIndex]bool
	addKeys    map[string]bool        // signature keys of the Adds taken
	lastGCE    int                    // the GroupContextExtensions taken (-1: none)
	lastUpdate map[tree.LeafIndex]int // the Update taken per leaf
}

func (g *Group) newPendingFilter(removing []tree.LeafIndex, adding []*KeyPackage, byValueGCE bool) *pendingFilter {
	f := &pendingFilter{g: g, removing: removing, removed: map[tree.LeafIndex]bool{}, seenRemove: map[tree.LeafIndex]bool{},
		addKeys: map[string]bool{}, lastGCE: -1, lastUpdate: map[tree.LeafIndex]int{}}
	for _, r := range removing {
		f.removed[r] = true
	}
	for _, kp := range adding {
		f.addKeys[string(kp.LeafNode.SignatureKey)] = true
	}
	for i, pp := range g.pending {
		switch p := pp.proposal; p.ProposalType {
		case tree.ProposalTypeRemove:
			if p.Remove.Removed != g.myLeaf {
				f.removed[p.Remove.Removed] = true
			}
		case tree.ProposalTypeUpdate:
			// The most recent update per leaf (§12.2 SHOULD).
			f.lastUpdate[pp.sender.LeafIndex] = i
		case tree.ProposalTypeGroupContextExtensions:
			// At most one: the most recent, unless the commit brings its own.
			if !byValueGCE {
				f.lastGCE = i
			}
		}
	}
	return f
}

func (f *pendingFilter) keep(i int, pp *pendingProposal) bool {
	g := f.g
	switch p := pp.proposal; p.ProposalType {
	case tree.ProposalTypeUpdate:
		// Not our own, nor of a removed leaf (§12.2 SHOULD prefer the Remove).
		l := pp.sender.LeafIndex
		return l != g.myLeaf && !f.removed[l] && f.lastUpdate[l] == i
	case tree.ProposalTypeRemove:
		r := p.Remove.Removed
		if r == g.myLeaf || f.seenRemove[r] || slices.Contains(f.removing, r) {
			return false
		}
		f.seenRemove[r] = true
	case tree.ProposalTypeAdd:
		// One Add per client, and none of a member who stays (§12.2):
		// two members may well propose the same KeyPackage.
		k := p.Add.KeyPackage.LeafNode.SignatureKey
		if f.addKeys[string(k)] {
			return false
		}
		if j, ok := g.tree.FindSignatureKey(k); ok && !f.removed[j] {
			return false
		}
		f.addKeys[string(k)] = true
	case tree.ProposalTypeGroupContextExtensions:
		return i == f.lastGCE
	case tree.ProposalTypePSK:
		// A PSK this member cannot look up cannot be committed by it.
		_, err := g.lookupPSK(&p.PreSharedKey.PSK)
		return err == nil
	case tree.ProposalTypeReInit:
		return false // a ReInit must be alone; committed explicitly
	}
	return true
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
