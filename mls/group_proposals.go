package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Proposals: caching by reference (§12.1), list validation (§12.2) and
// application (§12.3).

// proposalItem is one proposal of a commit, resolved from by-value or
// by-reference form.
type proposalItem struct {
	p      *Proposal
	sender Sender // the proposer
	ref    []byte // nil when sent by value
}

// pathRequired reports whether a proposal type requires an UpdatePath (§12.4).
func pathRequired(t ProposalType) bool {
	switch t {
	case ProposalTypeAdd, ProposalTypePSK, ProposalTypeReInit:
		return false
	}
	return true
}

// externalSenderAllowed lists the proposal types an external sender may send (§12.1.8).
func externalSenderAllowed(t ProposalType) bool {
	switch t {
	case ProposalTypeAdd, ProposalTypeRemove, ProposalTypePSK, ProposalTypeReInit, ProposalTypeGroupContextExtensions:
		return true
	}
	return false
}

// resolve turns a commit's ProposalOrRefs into items, looking references up
// in the proposals cached this epoch.
func (g *Group) resolve(c *Commit, committer Sender) ([]proposalItem, error) {
	items := make([]proposalItem, 0, len(c.Proposals))
	for i := range c.Proposals {
		por := &c.Proposals[i]
		switch por.Type {
		case ProposalOrRefTypeProposal:
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

// applied is the result of applying a proposal list to a clone of the state.
type applied struct {
	tree       *tree.Tree
	extensions tree.Extensions
	added      []tree.LeafIndex // leaves of the Adds, in order
	addedKPs   []*KeyPackage
	psks       []PreSharedKeyID
	extInit    []byte // ExternalInit kem_output
	reinit     *ReInit
	removedMe  bool
	updatedMe  *proposalItem // an Update from this member, committed by another
	needPath   bool
}

// validateAndApply checks a proposal list (§12.2) and applies it (§12.3) to
// clones of the tree and extensions. committer is the commit's sender; for
// an external commit it is new_member_commit.
func (g *Group) validateAndApply(items []proposalItem, committer Sender) (*applied, error) {
	external := committer.SenderType == SenderTypeNewMemberCommit
	a := &applied{tree: g.tree.Clone(), extensions: g.ctx.Extensions, needPath: len(items) == 0}
	s := g.suite
	var (
		nGCE, nExtInit, nReInit, nRemove int
		touched                          = map[tree.LeafIndex]bool{}
		addSigKeys                       = map[string]bool{}
		removed                          = map[tree.LeafIndex]bool{}
	)
	for _, it := range items {
		if err := g.checkProposalExtensions(it.p); err != nil {
			return nil, err
		}
		if pathRequired(it.p.ProposalType) {
			a.needPath = true
		}
		if external && it.ref != nil {
			return nil, fmt.Errorf("%w: an external commit cannot include proposals by reference (§12.4.3.2)", ErrInvalidCommit)
		}
		if external {
			switch it.p.ProposalType {
			case ProposalTypeExternalInit, ProposalTypeRemove, ProposalTypePSK:
			default: // §12.2: "No other proposals"
				return nil, fmt.Errorf("%w: %v in an external commit", ErrInvalidCommit, it.p.ProposalType)
			}
		}
		if it.sender.SenderType == SenderTypeExternal && !externalSenderAllowed(it.p.ProposalType) {
			return nil, fmt.Errorf("%w: %v from an external sender", ErrInvalidProposal, it.p.ProposalType)
		}
		switch it.p.ProposalType {
		case ProposalTypeGroupContextExtensions:
			nGCE++
		case ProposalTypeExternalInit:
			nExtInit++
		case ProposalTypeReInit:
			nReInit++
		case ProposalTypeRemove:
			nRemove++
			r := it.p.Remove.Removed
			if uint32(r) >= g.tree.NumLeaves() || g.tree.Leaf(r) == nil {
				return nil, fmt.Errorf("%w: remove of blank or missing leaf %d", ErrInvalidProposal, r)
			}
			if !external && committer.SenderType == SenderTypeMember && r == committer.LeafIndex {
				return nil, fmt.Errorf("%w: a commit cannot remove its committer", ErrInvalidCommit)
			}
			if touched[r] {
				return nil, fmt.Errorf("%w: several updates/removes of leaf %d", ErrInvalidCommit, r)
			}
			touched[r], removed[r] = true, true
		case ProposalTypeUpdate:
			if external {
				return nil, fmt.Errorf("%w: update in an external commit", ErrInvalidCommit)
			}
			if it.sender.SenderType != SenderTypeMember {
				return nil, fmt.Errorf("%w: update from a non-member", ErrInvalidProposal)
			}
			if committer.SenderType == SenderTypeMember && it.sender.LeafIndex == committer.LeafIndex {
				return nil, fmt.Errorf("%w: a commit cannot include its committer's own update", ErrInvalidCommit)
			}
			if touched[it.sender.LeafIndex] {
				return nil, fmt.Errorf("%w: several updates/removes of leaf %d", ErrInvalidCommit, it.sender.LeafIndex)
			}
			touched[it.sender.LeafIndex] = true
		case ProposalTypeAdd:
			if external {
				return nil, fmt.Errorf("%w: add in an external commit", ErrInvalidCommit)
			}
			k := string(it.p.Add.KeyPackage.LeafNode.SignatureKey)
			if addSigKeys[k] {
				return nil, fmt.Errorf("%w: two adds of the same client", ErrInvalidCommit)
			}
			addSigKeys[k] = true
		case ProposalTypePSK:
			id := &it.p.PreSharedKey.PSK
			if err := id.CheckNonce(s); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
			}
			if id.Type == schedule.PSKTypeResumption && id.Usage != schedule.UsageApplication {
				return nil, fmt.Errorf("%w: resumption PSK with usage %v outside reinit/branch", ErrInvalidProposal, id.Usage)
			}
			for _, prev := range a.psks {
				if prev.Equal(id) {
					return nil, fmt.Errorf("%w: the same PSK twice", ErrInvalidCommit)
				}
			}
			a.psks = append(a.psks, *id)
		default:
			return nil, fmt.Errorf("%w: proposal type %v", ErrInvalidProposal, it.p.ProposalType)
		}
	}
	if nGCE > 1 {
		return nil, fmt.Errorf("%w: several GroupContextExtensions proposals", ErrInvalidCommit)
	}
	if nReInit > 0 && len(items) > 1 {
		return nil, fmt.Errorf("%w: a ReInit must be alone in its commit", ErrInvalidCommit)
	}
	if external {
		if nExtInit != 1 {
			return nil, fmt.Errorf("%w: an external commit needs exactly one ExternalInit", ErrInvalidCommit)
		}
		if nRemove > 1 {
			return nil, fmt.Errorf("%w: an external commit may remove at most one leaf", ErrInvalidCommit)
		}
	} else if nExtInit > 0 {
		return nil, fmt.Errorf("%w: ExternalInit outside an external commit", ErrInvalidCommit)
	}
	// An Add of a client already in the group, unless it is removed here.
	for k := range addSigKeys {
		if i, ok := g.tree.FindSignatureKey([]byte(k)); ok && !removed[i] {
			return nil, fmt.Errorf("%w: add of a client already in the group (leaf %d)", ErrInvalidCommit, i)
		}
	}

	// Apply, in the order of §12.3.
	lv := g.leafValidator()
	for _, it := range items {
		if it.p.ProposalType == ProposalTypeGroupContextExtensions {
			a.extensions = it.p.GroupContextExtensions.Extensions
		}
	}
	lv.extensions = a.extensions
	for _, it := range items {
		if it.p.ProposalType != ProposalTypeUpdate {
			continue
		}
		i := it.sender.LeafIndex
		ln := &it.p.Update.LeafNode
		if err := lv.validate(ln, tree.LeafNodeSourceUpdate, i, a.tree); err != nil {
			return nil, fmt.Errorf("%w: update from leaf %d: %w", ErrInvalidProposal, i, err)
		}
		if err := a.tree.UpdateLeaf(i, ln); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		if i == g.myLeaf {
			it := it
			a.updatedMe = &it
		}
	}
	for _, it := range items {
		if it.p.ProposalType != ProposalTypeRemove {
			continue
		}
		r := it.p.Remove.Removed
		if err := a.tree.RemoveLeaf(r); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		if r == g.myLeaf {
			a.removedMe = true
		}
	}
	for _, it := range items {
		switch it.p.ProposalType {
		case ProposalTypeAdd:
			kp := &it.p.Add.KeyPackage
			if err := g.validateKeyPackage(kp, lv, a.tree); err != nil {
				return nil, fmt.Errorf("%w: add: %w", ErrInvalidProposal, err)
			}
			leaf := kp.LeafNode
			i, err := a.tree.AddLeaf(&leaf)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
			}
			a.added = append(a.added, i)
			a.addedKPs = append(a.addedKPs, kp)
		case ProposalTypeExternalInit:
			a.extInit = it.p.ExternalInit.KEMOutput
		case ProposalTypeReInit:
			ri := it.p.ReInit
			if ri.Version < g.ctx.Version {
				return nil, fmt.Errorf("%w: ReInit to an older version", ErrInvalidProposal)
			}
			a.reinit = ri
		}
	}
	// A new required_capabilities must be supported by every member left.
	if nGCE == 1 {
		if err := lv.checkAllSupport(a.tree); err != nil {
			return nil, fmt.Errorf("%w: GroupContextExtensions: %w", ErrInvalidProposal, err)
		}
	}
	// The application's rules, on the staged result (Config.Policy).
	if err := g.policyCheckCommit(items, committer, a); err != nil {
		return nil, err
	}
	return a, nil
}

// pskSecret looks up the PSKs of a commit and chains them (§8.4).
func (g *Group) pskSecret(ids []PreSharedKeyID) ([]byte, error) {
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
func (g *Group) lookupPSK(id *PreSharedKeyID) ([]byte, error) {
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
