package channel

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// RolesPolicy is the mls.Policy that enforces channel roles. Every member's
// engine runs it (NewMLSGroupProvider's provider must be configured with
// it, see ProviderOptions) on what it sends and receives; a group without
// the roles extension is not constrained.
//
// Rules, with "the authoriser" of a proposal being its sender (the
// committer for proposals sent by value), and a user being every leaf
// whose credential presents the same user id (its devices):
//   - Remove: the authoriser is an admin, or the proposal is the removed
//     member's own (leaving), or the removed leaf is another device of the
//     authoriser's user. External senders may not remove.
//   - Add: the authoriser is an admin or a member (not read-only), or the
//     key package is a device of the authoriser's own user (which the
//     identity validator has checked against the user's identity key); the
//     joiner is a member unless an admin authorises another role (a role
//     in the same commit's GroupContextExtensions, or a leftover entry) —
//     a new device of a user already in the channel has the user's role.
//   - GroupContextExtensions: roles of members that stay, or of joiners,
//     change only when its sender is an admin; other extensions likewise.
//     Dropping the entries of identities no longer in the group is free
//     (a non-admin committing a Leave may tidy up). Sent as a proposal
//     (by reference) only by admins. The roles extension cannot be
//     removed once installed.
//   - ReInit: admins only.
//   - Update, PreSharedKey: anyone.
//   - After every commit at least one member is an admin: the last admin
//     cannot be demoted, removed or leave.
//   - Application messages: refused from read-only members.
//   - External commits (a member rejoining by GroupInfo) bring no role
//     change; the joiner keeps its identity's role.
type RolesPolicy struct{}

var _ mls.Policy = RolesPolicy{}

func identityOf(m mls.Member) string { return string(m.Credential.Identity) }

func memberIdentities(ms []mls.Member) map[string]int {
	out := map[string]int{}
	for _, m := range ms {
		out[identityOf(m)]++
	}
	return out
}

func policyRoles(ctx *mls.GroupContext) (Roles, error) {
	rs, err := RolesOf(ctx.Extensions)
	if err != nil {
		return nil, fmt.Errorf("%w: group roles unreadable: %w", ErrPermission, err)
	}
	return rs, nil
}

// roleOfSender is the role of a member sender ("" for non-members).
func roleOfSender(rs Roles, members []mls.Member, s mls.Sender) (Role, string) {
	if s.SenderType != mls.SenderTypeMember {
		return "", ""
	}
	m, ok := mls.MemberOf(members, s.LeafIndex)
	if !ok {
		return "", ""
	}
	id := identityOf(m)
	return rs.Of(id), id
}

// CheckApplication refuses application messages of read-only members.
func (RolesPolicy) CheckApplication(ctx *mls.GroupContext, sender mls.Member) error {
	rs, err := policyRoles(ctx)
	if err != nil || rs == nil {
		return err
	}
	if rs.Of(identityOf(sender)) == RoleReadOnly {
		return fmt.Errorf("%w: %q is read-only", ErrPermission, identityOf(sender))
	}
	return nil
}

// CheckProposal refuses, on arrival, proposals no commit could carry.
func (RolesPolicy) CheckProposal(c *mls.ProposalCheck) error {
	rs, err := policyRoles(c.Context)
	if err != nil || rs == nil {
		return err
	}
	role, who := roleOfSender(rs, c.Members, c.Sender)
	p := c.Proposal
	switch p.ProposalType {
	case tree.ProposalTypeRemove:
		if c.Sender.SenderType == mls.SenderTypeMember && c.Sender.LeafIndex == p.Remove.Removed {
			// Leaving: refused if it would take the last admin away.
			after := make([]mls.Member, 0, len(c.Members))
			for _, m := range c.Members {
				if m.LeafIndex != p.Remove.Removed {
					after = append(after, m)
				}
			}
			return checkAdminLeft(rs, after)
		}
		if role != RoleAdmin && !ownDevice(who, c.Members, p.Remove.Removed) {
			return fmt.Errorf("%w: %q (%s) may not propose a removal", ErrPermission, who, roleName(role))
		}
	case tree.ProposalTypeAdd:
		if c.Sender.SenderType == mls.SenderTypeMember && role == RoleReadOnly && !ownKeyPackage(who, p.Add) {
			return fmt.Errorf("%w: %q is read-only and may not invite", ErrPermission, who)
		}
	case tree.ProposalTypeGroupContextExtensions, tree.ProposalTypeReInit:
		if role != RoleAdmin {
			return fmt.Errorf("%w: %q (%s) may not propose %v", ErrPermission, who, roleName(role), p.ProposalType)
		}
	}
	return nil
}

// ownDevice reports whether the leaf removed is a device of who's user.
func ownDevice(who string, members []mls.Member, removed tree.LeafIndex) bool {
	m, ok := mls.MemberOf(members, removed)
	return ok && who != "" && identityOf(m) == who
}

// ownKeyPackage reports whether an Add brings a device of who's user.
func ownKeyPackage(who string, a *mls.Add) bool {
	return who != "" && a != nil && string(a.KeyPackage.LeafNode.Credential.Identity) == who
}

func roleName(r Role) string {
	if r == "" {
		return "not a member"
	}
	return string(r)
}

// checkAdminLeft: some member is an admin.
func checkAdminLeft(rs Roles, members []mls.Member) error {
	if len(members) == 0 {
		return nil // the group is over
	}
	for _, m := range members {
		if rs.Of(identityOf(m)) == RoleAdmin {
			return nil
		}
	}
	return ErrLastAdmin
}

// CheckCommit applies the rules to a commit's staged result.
func (RolesPolicy) CheckCommit(c *mls.CommitCheck) error {
	old, err := policyRoles(c.Context)
	if err != nil {
		return err
	}
	newRoles, err := RolesOf(c.NewExtensions)
	if err != nil {
		return fmt.Errorf("%w: new roles: %w", ErrPermission, err)
	}
	switch {
	case old == nil && newRoles == nil:
		return nil
	case old != nil && newRoles == nil:
		return fmt.Errorf("%w: the roles extension cannot be removed", ErrPermission)
	case old == nil:
		// Roles installed in a group that had none: nobody's role was
		// enforced before, so anyone may; an admin must result.
		return checkAdminLeft(newRoles, c.NewMembers)
	}
	if c.Committer.SenderType == mls.SenderTypeNewMemberCommit {
		// The engine allows ExternalInit, Remove (of the joiner's own old
		// leaf, same credential) and PSK only: no role changes.
		return nil
	}
	committerRole, committer := roleOfSender(old, c.Members, c.Committer)
	authorizer := func(pp mls.PolicyProposal) (Role, string) {
		if pp.Sender.SenderType == mls.SenderTypeMember {
			return roleOfSender(old, c.Members, pp.Sender)
		}
		return "", ""
	}
	var gce *mls.PolicyProposal
	for i := range c.Proposals {
		pp := c.Proposals[i]
		role, who := authorizer(pp)
		switch pp.Proposal.ProposalType {
		case tree.ProposalTypeRemove:
			if pp.Sender.SenderType == mls.SenderTypeMember && pp.Sender.LeafIndex == pp.Proposal.Remove.Removed {
				continue // leaving
			}
			if role != RoleAdmin && !ownDevice(who, c.Members, pp.Proposal.Remove.Removed) {
				return fmt.Errorf("%w: removal by %q (%s)", ErrPermission, who, roleName(role))
			}
		case tree.ProposalTypeAdd:
			if pp.Sender.SenderType != mls.SenderTypeMember {
				role, who = committerRole, committer
			}
			if role == "" || (role == RoleReadOnly && !ownKeyPackage(who, pp.Proposal.Add)) {
				return fmt.Errorf("%w: invitation by %q (%s)", ErrPermission, who, roleName(role))
			}
		case tree.ProposalTypeReInit:
			if role != RoleAdmin {
				return fmt.Errorf("%w: reinit by %q (%s)", ErrPermission, who, roleName(role))
			}
		case tree.ProposalTypeGroupContextExtensions:
			gce = &c.Proposals[i]
		}
	}
	// Who authorises the new epoch's roles: the GroupContextExtensions'
	// sender, or the committer when there is none (roles then change only
	// for joiners with leftover entries).
	authRole, authWho := committerRole, committer
	if gce != nil {
		authRole, authWho = authorizer(*gce)
		if otherExtensionsChanged(c.Context.Extensions, c.NewExtensions) && authRole != RoleAdmin {
			return fmt.Errorf("%w: GroupContext extensions changed by %q (%s)", ErrPermission, authWho, roleName(authRole))
		}
	}
	if authRole != RoleAdmin {
		// A non-admin may only drop entries, never add or change one.
		for id, r := range newRoles {
			if old[id] != r {
				return fmt.Errorf("%w: role entry of %q set by %q (%s)", ErrPermission, id, authWho, roleName(authRole))
			}
		}
	}
	before := memberIdentities(c.Members)
	for id := range memberIdentities(c.NewMembers) {
		was := RoleMember
		if before[id] > 0 {
			was = old.Of(id)
		}
		if now := newRoles.Of(id); now != was && authRole != RoleAdmin {
			return fmt.Errorf("%w: role of %q from %s to %s by %q (%s)", ErrPermission, id, was, now, authWho, roleName(authRole))
		}
	}
	if err := checkAdminLeft(newRoles, c.NewMembers); err != nil {
		return err
	}
	return nil
}

// otherExtensionsChanged compares everything but the roles extension.
func otherExtensionsChanged(a, b tree.Extensions) bool {
	strip := func(es tree.Extensions) tree.Extensions {
		var out tree.Extensions
		for _, e := range es {
			if e.ExtensionType != ExtensionTypeChannelRoles {
				out = append(out, e)
			}
		}
		return out
	}
	x, y := strip(a), strip(b)
	if len(x) != len(y) {
		return true
	}
	for i := range x {
		if x[i].ExtensionType != y[i].ExtensionType || !bytes.Equal(x[i].ExtensionData, y[i].ExtensionData) {
			return true
		}
	}
	return false
}
