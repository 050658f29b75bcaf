package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Proposals: the checks of each proposal on its own (RFC 9420 §12.1), the
// validation of a commit's proposal list (§12.2) and its application
// (§12.3). A proposal received on its own is checked only for what does not
// depend on the rest of a commit (checkProposal, arrival) and cached; the
// list is judged when a commit includes it (§12.1.7: "including those
// added in the same Commit, and excluding those removed").

// proposalItem is one proposal of a commit, resolved from by-value or
// by-reference form.
type proposalItem struct {
	p      *Proposal
	sender Sender // the proposer
	ref    []byte // nil when sent by value
}

// pathRequired reports whether a proposal type requires an UpdatePath (§12.4).
func pathRequired(t tree.ProposalType) bool {
	switch t {
	case tree.ProposalTypeAdd, tree.ProposalTypePSK, tree.ProposalTypeReInit:
		return false
	}
	return true
}

// externalSenderAllowed lists the proposal types an external sender may send (§12.1.8).
func externalSenderAllowed(t tree.ProposalType) bool {
	switch t {
	case tree.ProposalTypeAdd, tree.ProposalTypeRemove, tree.ProposalTypePSK, tree.ProposalTypeReInit, tree.ProposalTypeGroupContextExtensions:
		return true
	}
	return false
}

// checkBody refuses a nil proposal or one without the body its type selects.
func checkBody(p *Proposal) error {
	if p == nil {
		return fmt.Errorf("%w: nil proposal", ErrInvalidProposal)
	}
	if p.body() == nil {
		return fmt.Errorf("%w: %v proposal without its body", ErrInvalidProposal, p.ProposalType)
	}
	return nil
}

// checkProposalSender applies the sender rules of §12.1.2 and §12.1.8.
func checkProposalSender(p *Proposal, s Sender) error {
	switch s.SenderType {
	case SenderTypeMember, SenderTypeNewMemberCommit:
	case SenderTypeExternal:
		if !externalSenderAllowed(p.ProposalType) {
			return fmt.Errorf("%w: %v from an external sender", ErrInvalidProposal, p.ProposalType)
		}
	case SenderTypeNewMemberProposal:
		if p.ProposalType != tree.ProposalTypeAdd {
			return fmt.Errorf("%w: new_member_proposal must be an Add", ErrInvalidProposal)
		}
	default:
		return fmt.Errorf("%w: proposal from a %v sender", ErrInvalidProposal, s.SenderType)
	}
	if p.ProposalType == tree.ProposalTypeUpdate && s.SenderType != SenderTypeMember {
		return fmt.Errorf("%w: update from a non-member", ErrInvalidProposal)
	}
	return nil
}

// --- each proposal on its own (§12.1) ---

// checkProposal checks p as its type requires whatever else a commit holds.
// arrival adds the checks that need signatures verified (the KeyPackage of
// an Add, the leaf of an Update): in a commit, applyProposals validates
// those leaves fully, against the tree they enter.
func (g *Group) checkProposal(p *Proposal, sender Sender, arrival bool) error {
	if err := checkBody(p); err != nil {
		return err
	}
	if err := checkProposalSender(p, sender); err != nil {
		return err
	}
	if err := g.checkProposalExtensions(p); err != nil {
		return err
	}
	switch p.ProposalType {
	case tree.ProposalTypeAdd:
		if arrival {
			return g.checkAdd(p.Add)
		}
	case tree.ProposalTypeUpdate:
		if arrival {
			return g.checkUpdate(p.Update, sender.LeafIndex)
		}
	case tree.ProposalTypeRemove:
		return g.checkRemove(p.Remove)
	case tree.ProposalTypePSK:
		return g.checkPSK(p.PreSharedKey)
	case tree.ProposalTypeReInit:
		return g.checkReInit(p.ReInit)
	case tree.ProposalTypeExternalInit:
		if arrival { // only ever valid by value in an external commit
			return fmt.Errorf("%w: ExternalInit outside an external commit", ErrInvalidProposal)
		}
	case tree.ProposalTypeGroupContextExtensions:
		return checkGroupContextExtensions(p.GroupContextExtensions)
	}
	return nil
}

// checkAdd: the KeyPackage is valid on its own (§10.1: version, suite,
// signatures, lifetime, credential). Whether it fits the group (its
// capabilities, unique keys) depends on the commit.
func (g *Group) checkAdd(a *Add) error {
	opts := ValidateOptions{Credentials: g.cfg.Credentials, MaxLifetime: g.cfg.MaxLeafLifetime}
	if err := ValidateKeyPackage(g.suite, &a.KeyPackage, g.cfg.now(), opts); err != nil {
		return fmt.Errorf("%w: add: %w", ErrInvalidProposal, err)
	}
	return nil
}

// checkUpdate: the leaf is valid for an Update of leaf i (§7.3: source,
// signature over group id and index, credential, an acceptable successor
// of the current leaf, its own capabilities). The group's extensions and
// the uniqueness of its keys are judged in the commit.
func (g *Group) checkUpdate(u *Update, i tree.LeafIndex) error {
	ctx := g.ctx
	ctx.Extensions = nil
	opts := ValidateOptions{GroupContext: &ctx, Credentials: g.cfg.Credentials, Replaces: g.tree.Leaf(i)}
	if err := ValidateLeafNode(g.suite, &u.LeafNode, LeafUseUpdate, i, g.cfg.now(), opts); err != nil {
		return fmt.Errorf("%w: update: %w", ErrInvalidProposal, err)
	}
	return nil
}

// checkRemove: removed is a non-blank leaf (§12.1.3).
func (g *Group) checkRemove(r *Remove) error {
	if uint32(r.Removed) >= g.tree.NumLeaves() || g.tree.Leaf(r.Removed) == nil {
		return fmt.Errorf("%w: remove of blank or missing leaf %d", ErrInvalidProposal, r.Removed)
	}
	return nil
}

// checkPSK: psk_nonce of length Nh; no reinit/branch resumption PSK outside
// the first commit of a reinitialized or branched group (§12.1.4), which
// does not go through a proposal of this group.
func (g *Group) checkPSK(p *PreSharedKey) error {
	id := &p.PSK
	if err := id.CheckNonce(g.suite); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	if !g.successorPSKAllowed(id) {
		return fmt.Errorf("%w: resumption PSK with usage %v outside reinit/branch", ErrInvalidProposal, id.Usage)
	}
	return nil
}

// checkReInit: not to an older version (§12.1.5).
func (g *Group) checkReInit(ri *ReInit) error {
	if ri.Version < g.ctx.Version {
		return fmt.Errorf("%w: ReInit to an older version", ErrInvalidProposal)
	}
	return nil
}

// checkGroupContextExtensions: one extension per type (§13.4), and the
// extensions this implementation interprets decode. Whether the members
// support them is judged in the commit (§12.1.7).
func checkGroupContextExtensions(gce *GroupContextExtensions) error {
	seen := map[tree.ExtensionType]bool{}
	for _, e := range gce.Extensions {
		if seen[e.ExtensionType] {
			return fmt.Errorf("%w: GroupContextExtensions: extension type 0x%04x twice", ErrInvalidProposal, uint16(e.ExtensionType))
		}
		seen[e.ExtensionType] = true
	}
	if _, err := requiredCapabilities(gce.Extensions); err != nil {
		return fmt.Errorf("%w: GroupContextExtensions: %w", ErrInvalidProposal, err)
	}
	if e := gce.Extensions.Find(tree.ExtensionTypeExternalSenders); e != nil {
		var es tree.ExternalSenders
		if err := wire.Unmarshal(e.ExtensionData, &es); err != nil {
			return fmt.Errorf("%w: GroupContextExtensions: external_senders: %w", ErrInvalidProposal, err)
		}
	}
	return nil
}

// --- the list (§12.2) ---

// resolve turns a commit's ProposalOrRefs into items, looking references up
// in the proposals cached this epoch.
func (g *Group) resolve(c *Commit, committer Sender) ([]proposalItem, error) {
	items := make([]proposalItem, 0, len(c.Proposals))
	for i := range c.Proposals {
		por := &c.Proposals[i]
		switch por.Type {
		case ProposalOrRefTypeProposal:
			if err := checkBody(por.Proposal); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
			}
			items = append(items, proposalItem{p: por.Proposal, sender: committer})
		case ProposalOrRefTypeReference:
			j := slices.IndexFunc(g.pending, func(pp *pendingProposal) bool { return bytes.Equal(pp.ref, por.Reference) })
			if j < 0 {
				return nil, fmt.Errorf("%w: %x", ErrUnknownProposal, []byte(por.Reference))
			}
			pp := g.pending[j]
			items = append(items, proposalItem{p: pp.proposal, sender: pp.sender, ref: pp.ref})
		default:
			return nil, fmt.Errorf("%w: ProposalOrRef type %d", ErrInvalidCommit, por.Type)
		}
	}
	return items, nil
}

// validateProposals checks a commit's proposal list (§12.2): every proposal
// on its own, then the rules of a regular or of an external commit.
// committer is the commit's sender (new_member_commit for an external one).
// Errors that proposals of the list cause are a *proposalError naming
// every proposal at fault in the step that failed, so that a committer can
// leave them out (fitPending).
func (g *Group) validateProposals(items []proposalItem, committer Sender) error {
	var b blamed
	for i, it := range items {
		b.add(i, g.checkProposal(it.p, it.sender, false))
	}
	if b.failed() {
		return b.result()
	}
	if err := checkDistinctPSKs(items); err != nil {
		return err
	}
	if committer.SenderType == SenderTypeNewMemberCommit {
		return checkExternalList(items)
	}
	r := listRules{g: g, committer: committer.LeafIndex, touched: map[tree.LeafIndex]bool{},
		removed: map[tree.LeafIndex]bool{}, added: map[string]int{}}
	for i, it := range items {
		b.add(i, r.check(i, it, len(items)))
	}
	r.finish(&b)
	return b.result()
}

// proposalError is an error caused by the proposals at indexes of the list
// (of two that conflict, the later one). err is the first of their errors.
type proposalError struct {
	indexes []int
	err     error
}

func (e *proposalError) Error() string { return e.err.Error() }
func (e *proposalError) Unwrap() error { return e.err }

func blame(i int, err error) error { return &proposalError{indexes: []int{i}, err: err} }

// blamed collects the proposals at fault in one step of validation.
type blamed proposalError

func (b *blamed) add(i int, err error) {
	if err == nil {
		return
	}
	if b.err == nil {
		b.err = err
	}
	b.indexes = append(b.indexes, i)
}

func (b *blamed) failed() bool { return b.err != nil }

func (b *blamed) result() error {
	if b.err == nil {
		return nil
	}
	return (*proposalError)(b)
}

// checkDistinctPSKs: no PreSharedKeyID twice.
func checkDistinctPSKs(items []proposalItem) error {
	var ids []*schedule.PreSharedKeyID
	for i, it := range items {
		if it.p.ProposalType != tree.ProposalTypePSK {
			continue
		}
		id := &it.p.PreSharedKey.PSK
		if slices.ContainsFunc(ids, id.Equal) {
			return blame(i, fmt.Errorf("%w: the same PSK twice", ErrInvalidCommit))
		}
		ids = append(ids, id)
	}
	return nil
}

// checkExternalList: by value only (§12.4.3.2); exactly one ExternalInit,
// at most one Remove, PSKs, nothing else (§12.2).
func checkExternalList(items []proposalItem) error {
	var nInit, nRemove int
	for _, it := range items {
		if it.ref != nil {
			return fmt.Errorf("%w: an external commit cannot include proposals by reference (§12.4.3.2)", ErrInvalidCommit)
		}
		switch it.p.ProposalType {
		case tree.ProposalTypeExternalInit:
			nInit++
		case tree.ProposalTypeRemove:
			nRemove++
		case tree.ProposalTypePSK:
		default:
			return fmt.Errorf("%w: %v in an external commit", ErrInvalidCommit, it.p.ProposalType)
		}
	}
	if nInit != 1 {
		return fmt.Errorf("%w: an external commit needs exactly one ExternalInit", ErrInvalidCommit)
	}
	if nRemove > 1 {
		return fmt.Errorf("%w: an external commit may remove at most one leaf", ErrInvalidCommit)
	}
	return nil
}

// listRules are the rules of §12.2 over a regular commit's list, checked
// one proposal at a time.
type listRules struct {
	g         *Group
	committer tree.LeafIndex
	touched   map[tree.LeafIndex]bool // leaves updated or removed
	removed   map[tree.LeafIndex]bool
	added     map[string]int // signature keys of the Adds, to their index
	nGCE      int
}

func (r *listRules) check(i int, it proposalItem, n int) error {
	switch it.p.ProposalType {
	case tree.ProposalTypeUpdate:
		if it.sender.LeafIndex == r.committer {
			return fmt.Errorf("%w: a commit cannot include its committer's own update", ErrInvalidCommit)
		}
		return r.touch(it.sender.LeafIndex)
	case tree.ProposalTypeRemove:
		l := it.p.Remove.Removed
		if l == r.committer {
			return fmt.Errorf("%w: a commit cannot remove its committer", ErrInvalidCommit)
		}
		r.removed[l] = true
		return r.touch(l)
	case tree.ProposalTypeAdd:
		k := string(it.p.Add.KeyPackage.LeafNode.SignatureKey)
		if _, ok := r.added[k]; ok {
			return fmt.Errorf("%w: two adds of the same client", ErrInvalidCommit)
		}
		r.added[k] = i
	case tree.ProposalTypeGroupContextExtensions:
		if r.nGCE++; r.nGCE > 1 {
			return fmt.Errorf("%w: several GroupContextExtensions proposals", ErrInvalidCommit)
		}
	case tree.ProposalTypeReInit:
		if n > 1 {
			return fmt.Errorf("%w: a ReInit must be alone in its commit", ErrInvalidCommit)
		}
	case tree.ProposalTypeExternalInit:
		return fmt.Errorf("%w: ExternalInit outside an external commit", ErrInvalidCommit)
	}
	return nil
}

// touch: at most one Update or Remove per leaf.
func (r *listRules) touch(l tree.LeafIndex) error {
	if r.touched[l] {
		return fmt.Errorf("%w: several updates/removes of leaf %d", ErrInvalidCommit, l)
	}
	r.touched[l] = true
	return nil
}

// finish: no Add of a client already in the group, unless it is removed
// in the same commit.
func (r *listRules) finish(b *blamed) {
	byIndex := make([]string, 0, len(r.added))
	for k := range r.added {
		byIndex = append(byIndex, k)
	}
	slices.SortFunc(byIndex, func(x, y string) int { return r.added[x] - r.added[y] })
	for _, k := range byIndex {
		if i, ok := r.g.tree.FindSignatureKey([]byte(k)); ok && !r.removed[i] {
			b.add(r.added[k], fmt.Errorf("%w: add of a client already in the group (leaf %d)", ErrInvalidCommit, i))
		}
	}
}

// --- application (§12.3) ---

// applied is the result of applying a proposal list to a clone of the state.
type applied struct {
	tree       *tree.Tree
	extensions tree.Extensions
	newExts    bool             // a GroupContextExtensions proposal is applied
	added      []tree.LeafIndex // leaves of the Adds, in order
	addedKPs   []*KeyPackage
	psks       []schedule.PreSharedKeyID
	extInit    []byte // ExternalInit kem_output
	// removedLeaf is the last leaf a Remove blanked: for an external
	// commit (one Remove at most), the resynchronizing member's old leaf.
	removedLeaf *tree.LeafNode
	reinit      *ReInit
	removedMe   bool
	updatedMe   *proposalItem // an Update from this member, committed by another
	needPath    bool
}

// stageProposals resolves, validates (§12.2) and applies (§12.3) a commit's
// proposals and looks up its PSKs: the part of a commit the committer and
// every receiver do alike. g is not modified.
func (g *Group) stageProposals(c *Commit, committer Sender) (*stagedCommit, error) {
	items, err := g.resolve(c, committer)
	if err != nil {
		return nil, err
	}
	if err := g.validateProposals(items, committer); err != nil {
		return nil, err
	}
	a, err := g.applyProposals(items, committer)
	if err != nil {
		return nil, err
	}
	sc := &stagedCommit{applied: a, tree: a.tree}
	// A removed member derives no new epoch; a PublicGroup holds no PSKs
	// and derives no key schedule.
	if !a.removedMe && !g.public {
		if sc.pskSecret, err = g.pskSecret(a.psks); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// applyProposals applies a valid list to clones of the tree and extensions
// in the order of §12.3, validating each new leaf against the tree it
// enters, with the new extensions.
func (g *Group) applyProposals(items []proposalItem, committer Sender) (*applied, error) {
	a := &applied{tree: g.tree.Clone(), extensions: g.ctx.Extensions, needPath: len(items) == 0}
	gce := -1 // the GroupContextExtensions proposal's index
	for i, it := range items {
		a.needPath = a.needPath || pathRequired(it.p.ProposalType)
		if it.p.ProposalType == tree.ProposalTypeGroupContextExtensions {
			a.extensions, a.newExts, gce = it.p.GroupContextExtensions.Extensions, true, i
		}
	}
	lv := g.leafValidator()
	lv.extensions = a.extensions
	for _, step := range []func(*applied, *leafValidator, proposalItem) error{g.applyUpdate, g.applyRemove, g.applyAdd, g.applyRest} {
		var b blamed
		for i, it := range items {
			b.add(i, step(a, lv, it))
		}
		if b.failed() {
			return nil, b.result()
		}
	}
	if a.newExts {
		if err := g.checkNewExtensions(a, lv, committer); err != nil {
			return nil, blame(gce, err)
		}
	}
	// The application's rules, on the staged result (Config.Policy).
	if err := g.policyCheckCommit(items, committer, a); err != nil {
		return nil, err
	}
	return a, nil
}

// applyUpdate replaces the proposer's leaf (§12.1.2).
func (g *Group) applyUpdate(a *applied, lv *leafValidator, it proposalItem) error {
	if it.p.ProposalType != tree.ProposalTypeUpdate {
		return nil
	}
	i, ln := it.sender.LeafIndex, &it.p.Update.LeafNode
	if err := lv.validate(ln, tree.LeafNodeSourceUpdate, i, a.tree); err != nil {
		return fmt.Errorf("%w: update from leaf %d: %w", ErrInvalidProposal, i, err)
	}
	if err := a.tree.UpdateLeaf(i, ln); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	if i == g.myLeaf {
		a.updatedMe = &it
	}
	return nil
}

// applyRemove blanks the removed leaf (§12.1.3).
func (g *Group) applyRemove(a *applied, _ *leafValidator, it proposalItem) error {
	if it.p.ProposalType != tree.ProposalTypeRemove {
		return nil
	}
	r := it.p.Remove.Removed
	a.removedLeaf = g.tree.Leaf(r)
	if err := a.tree.RemoveLeaf(r); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	a.removedMe = a.removedMe || r == g.myLeaf
	return nil
}

// applyAdd places the KeyPackage's leaf in the leftmost free leaf (§12.1.1).
func (g *Group) applyAdd(a *applied, lv *leafValidator, it proposalItem) error {
	if it.p.ProposalType != tree.ProposalTypeAdd {
		return nil
	}
	kp := &it.p.Add.KeyPackage
	if err := g.validateKeyPackage(kp, lv, a.tree); err != nil {
		return fmt.Errorf("%w: add: %w", ErrInvalidProposal, err)
	}
	leaf := kp.LeafNode
	i, err := a.tree.AddLeaf(&leaf)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	a.added = append(a.added, i)
	a.addedKPs = append(a.addedKPs, kp)
	return nil
}

// applyRest notes the PSKs, the ExternalInit and the ReInit for the key
// schedule (§12.3).
func (g *Group) applyRest(a *applied, _ *leafValidator, it proposalItem) error {
	switch it.p.ProposalType {
	case tree.ProposalTypePSK:
		a.psks = append(a.psks, it.p.PreSharedKey.PSK)
	case tree.ProposalTypeExternalInit:
		a.extInit = it.p.ExternalInit.KEMOutput
	case tree.ProposalTypeReInit:
		a.reinit = it.p.ReInit
	}
	return nil
}

// checkNewExtensions: every member after the commit supports the new
// GroupContext extensions and required capabilities (§12.1.7), the added
// ones included and the removed ones not. A committer other than this
// member is judged by the leaf of its path (validated against the new
// extensions when the path is merged), which may differ from its current
// one; a GroupContextExtensions commit always has a path.
func (g *Group) checkNewExtensions(a *applied, lv *leafValidator, committer Sender) error {
	var members LeafSet = a.tree
	if committer.SenderType == SenderTypeMember && committer.LeafIndex != g.myLeaf {
		members = leavesExcept{Tree: a.tree, skip: committer.LeafIndex}
	}
	if err := lv.checkAllSupport(members); err != nil {
		return fmt.Errorf("%w: GroupContextExtensions: %w", ErrInvalidProposal, err)
	}
	return nil
}

// pskSecret looks up the PSKs of a commit and chains them (§8.4).
func (g *Group) pskSecret(ids []schedule.PreSharedKeyID) ([]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	psks := make([]schedule.PSK, len(ids))
	for i := range ids {
		sec, err := g.lookupPSK(&ids[i])
		if err != nil {
			return nil, err
		}
		psks[i] = schedule.PSK{ID: ids[i], Secret: sec}
	}
	return schedule.PSKSecret(g.suite, psks)
}

// lookupPSK finds a PSK: resumption PSKs of this group's recent epochs
// locally, everything else through Config.PSKs.
func (g *Group) lookupPSK(id *schedule.PreSharedKeyID) ([]byte, error) {
	if sec, ok := g.successorSecret(id); ok {
		return sec, nil
	}
	if id.Type == schedule.PSKTypeResumption && bytes.Equal(id.PSKGroupID, g.ctx.GroupID) {
		if sec, ok := g.resumption[id.PSKEpoch]; ok {
			return sec, nil
		}
	}
	if g.cfg.PSKs == nil {
		return nil, fmt.Errorf("%w: no PSK source configured", ErrMissingPSK)
	}
	sec, err := g.cfg.PSKs(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMissingPSK, err)
	}
	return sec, nil
}

// proposalRef computes the reference of a proposal's AuthenticatedContent (§5.2).
func (g *Group) proposalRef(ac *AuthenticatedContent) ([]byte, error) {
	b, err := wire.Marshal(ac)
	if err != nil {
		return nil, err
	}
	return g.suite.MakeProposalRef(b), nil
}
