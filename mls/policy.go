package mls

import (
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/tree"
)

// Application policy: a hook through which the application refuses
// proposals, commits and application messages that RFC 9420 allows but its
// own rules do not (RFC 9420 §12.2: "the application ... MAY impose
// additional restrictions"; §13: extensions define application state).
// The engine calls it with the staged information before anything is
// accepted, so a refusal leaves the group exactly as it was.

// ErrPolicy: Config.Policy refused a proposal, commit or application
// message. The returned error wraps both ErrPolicy and the policy's own
// error.
var ErrPolicy = errors.New("mls: refused by the group's policy")

// Policy is an application's rules over a group, evaluated by every member
// on what it sends and on what it receives. Implementations must be
// deterministic functions of their arguments (every member must reach the
// same verdict) and must not modify them.
type Policy interface {
	// CheckProposal is called for a proposal received (before it is cached)
	// and for one this member sends.
	CheckProposal(c *ProposalCheck) error
	// CheckCommit is called for a commit received (after RFC 9420
	// validation of its proposals, before the new epoch is computed) and
	// for one this member creates.
	CheckCommit(c *CommitCheck) error
	// CheckApplication is called for an application message received
	// (before its key is consumed) and for one this member encrypts. ctx
	// is the GroupContext of the message's epoch.
	CheckApplication(ctx *GroupContext, sender Member) error
}

// ProposalCheck is a proposal as a Policy sees it.
type ProposalCheck struct {
	Context *GroupContext
	// Members are the group's members in the proposal's epoch.
	Members  []Member
	Sender   Sender
	Proposal *Proposal
}

// PolicyProposal is one proposal of a commit, resolved, with its sender
// (the committer for proposals sent by value).
type PolicyProposal struct {
	Proposal    *Proposal
	Sender      Sender
	ByReference bool
}

// CommitCheck is a commit as a Policy sees it.
type CommitCheck struct {
	// Context is the GroupContext of the epoch the commit is sent in.
	Context *GroupContext
	// Members are the members of that epoch.
	Members []Member
	// Committer is the commit's sender (a member, or new_member_commit for
	// an external commit).
	Committer Sender
	// Proposals are the commit's proposals in order.
	Proposals []PolicyProposal
	// NewExtensions are the GroupContext extensions of the new epoch.
	NewExtensions tree.Extensions
	// NewMembers are the members after the proposals are applied (for an
	// external commit, without the joiner, whose leaf the path brings).
	NewMembers []Member
}

// MemberOf returns the member at leaf i of members (Member.LeafIndex).
func MemberOf(members []Member, i tree.LeafIndex) (Member, bool) {
	for _, m := range members {
		if m.LeafIndex == i {
			return m, true
		}
	}
	return Member{}, false
}

func membersOf(t *tree.Tree) []Member {
	var out []Member
	for i := tree.LeafIndex(0); uint32(i) < t.NumLeaves(); i++ {
		if l := t.Leaf(i); l != nil {
			out = append(out, Member{LeafIndex: i, Credential: l.Credential, SignatureKey: l.SignatureKey})
		}
	}
	return out
}

func policyError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPolicy, err)
}

// policyCheckProposal runs Config.Policy on a proposal of this epoch.
func (g *Group) policyCheckProposal(p *Proposal, sender Sender) error {
	if g.cfg.Policy == nil {
		return nil
	}
	ctx := g.Context()
	return policyError(g.cfg.Policy.CheckProposal(&ProposalCheck{Context: &ctx, Members: membersOf(g.tree), Sender: sender, Proposal: p}))
}

// policyCheckCommit runs Config.Policy on a commit's validated proposals.
func (g *Group) policyCheckCommit(items []proposalItem, committer Sender, a *applied) error {
	if g.cfg.Policy == nil {
		return nil
	}
	ctx := g.Context()
	c := &CommitCheck{Context: &ctx, Members: membersOf(g.tree), Committer: committer,
		NewExtensions: a.extensions, NewMembers: membersOf(a.tree)}
	for _, it := range items {
		c.Proposals = append(c.Proposals, PolicyProposal{Proposal: it.p, Sender: it.sender, ByReference: it.ref != nil})
	}
	return policyError(g.cfg.Policy.CheckCommit(c))
}

// policyCheckApplication runs Config.Policy on an application message of
// the epoch (ctx, t).
func (g *Group) policyCheckApplication(ctx *GroupContext, t *tree.Tree, sender Sender) error {
	if g.cfg.Policy == nil {
		return nil
	}
	m, ok := Member{}, false
	if sender.SenderType == SenderTypeMember && uint32(sender.LeafIndex) < t.NumLeaves() {
		if l := t.Leaf(sender.LeafIndex); l != nil {
			m, ok = Member{LeafIndex: sender.LeafIndex, Credential: l.Credential, SignatureKey: l.SignatureKey}, true
		}
	}
	if !ok {
		return fmt.Errorf("%w: application message from a non-member", ErrUnknownSender)
	}
	c := *ctx
	return policyError(g.cfg.Policy.CheckApplication(&c, m))
}

// PendingRemovals returns the leaves that Remove proposals cached in this
// epoch target (a default commit includes them by reference).
func (g *Group) PendingRemovals() []tree.LeafIndex {
	var out []tree.LeafIndex
	for _, pp := range g.pending {
		if pp.proposal.ProposalType == tree.ProposalTypeRemove {
			out = append(out, pp.proposal.Remove.Removed)
		}
	}
	return out
}
