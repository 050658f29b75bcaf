package channel

import (
	"context"
	"fmt"
)

// Roles of the channel's members (see RolesPolicy for what each may do).
// The Manager checks them before acting, for a clear error; every member's
// MLS engine enforces them again on what it receives.

// channelRoles returns the channel's roles (nil when it has none) and its
// members. Called with the channel's lock held.
func (m *Manager) channelRoles(ctx context.Context, d *Descriptor) (Roles, []Member, error) {
	ms, err := m.gp.Members(ctx, d.GroupID)
	if err != nil {
		return nil, nil, m.mapErr(err)
	}
	rp, ok := m.gp.(RoleProvider)
	if !ok {
		return nil, ms, nil
	}
	rs, err := rp.Roles(ctx, d.GroupID)
	if err != nil {
		return nil, nil, m.mapErr(err)
	}
	return rs, ms, nil
}

func isMember(ms []Member, identity string) bool {
	for _, mem := range ms {
		if mem.Identity == identity {
			return true
		}
	}
	return false
}

// adminsAmong counts the member identities that are admins.
func adminsAmong(rs Roles, ms []Member) int {
	seen := map[string]bool{}
	n := 0
	for _, mem := range ms {
		if !seen[mem.Identity] && rs.Of(mem.Identity) == RoleAdmin {
			n++
		}
		seen[mem.Identity] = true
	}
	return n
}

// requireRole fails with ErrPermission unless we hold one of the roles
// (a channel without roles allows everything).
func (m *Manager) requireRole(rs Roles, what string, ok ...Role) error {
	if rs == nil {
		return nil
	}
	mine := rs.Of(m.Identity())
	for _, r := range ok {
		if mine == r {
			return nil
		}
	}
	return fmt.Errorf("%w: %s needs %v, we are %s", ErrPermission, what, ok, mine)
}

// Roles returns the roles of the channel's members (every member listed,
// RoleMember included). ErrNoRoles when the channel has none.
func (m *Manager) Roles(ctx context.Context, channelID string) (map[string]Role, error) {
	defer m.lock(channelID)()
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	rs, ms, err := m.channelRoles(ctx, d)
	if err != nil {
		return nil, err
	}
	if rs == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoRoles, channelID)
	}
	out := map[string]Role{}
	for _, mem := range ms {
		out[mem.Identity] = rs.Of(mem.Identity)
	}
	return out, nil
}

// Role returns a member's role in the channel.
func (m *Manager) Role(ctx context.Context, channelID, member string) (Role, error) {
	all, err := m.Roles(ctx, channelID)
	if err != nil {
		return "", err
	}
	r, ok := all[member]
	if !ok {
		return "", fmt.Errorf("%w: %q in %s", ErrMemberNotFound, member, channelID)
	}
	return r, nil
}

// SetRole gives a member a role by a commit (a GroupContextExtensions
// proposal) that every other member must Receive. Only admins may; the
// last admin cannot be demoted.
func (m *Manager) SetRole(ctx context.Context, channelID, member string, role Role) ([]byte, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return nil, err
	}
	defer m.lock(channelID)()
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	rs, ms, err := m.channelRoles(ctx, d)
	if err != nil {
		return nil, err
	}
	if rs == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoRoles, channelID)
	}
	if err := m.requireRole(rs, "changing roles", RoleAdmin); err != nil {
		return nil, err
	}
	if !isMember(ms, member) {
		return nil, fmt.Errorf("%w: %q in %s", ErrMemberNotFound, member, channelID)
	}
	next := Roles{}
	for _, mem := range ms { // leftover entries of former members are dropped
		next.Set(mem.Identity, rs.Of(mem.Identity))
	}
	next.Set(member, role)
	if adminsAmong(next, ms) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrLastAdmin, member)
	}
	c, err := m.gp.(RoleProvider).CommitRoles(ctx, d.GroupID, next)
	if err != nil {
		return nil, fmt.Errorf("channel %s: set role: %w", channelID, m.mapErr(err))
	}
	return c, nil
}

// Promote raises a member one step: read-only to member, member to admin.
func (m *Manager) Promote(ctx context.Context, channelID, member string) ([]byte, error) {
	r, err := m.Role(ctx, channelID, member)
	if err != nil {
		return nil, err
	}
	switch r {
	case RoleReadOnly:
		return m.SetRole(ctx, channelID, member, RoleMember)
	case RoleMember:
		return m.SetRole(ctx, channelID, member, RoleAdmin)
	}
	return nil, fmt.Errorf("%w: %q is already an admin", ErrInvalidRole, member)
}

// Demote lowers a member one step: admin to member, member to read-only.
func (m *Manager) Demote(ctx context.Context, channelID, member string) ([]byte, error) {
	r, err := m.Role(ctx, channelID, member)
	if err != nil {
		return nil, err
	}
	switch r {
	case RoleAdmin:
		return m.SetRole(ctx, channelID, member, RoleMember)
	case RoleMember:
		return m.SetRole(ctx, channelID, member, RoleReadOnly)
	}
	return nil, fmt.Errorf("%w: %q is already read-only", ErrInvalidRole, member)
}

// CreateInviteAs is CreateInvite where the invitee gets role, set in the
// same commit as its Add. Members may invite members; only admins may
// invite with another role; read-only members may not invite.
func (m *Manager) CreateInviteAs(ctx context.Context, channelID string, keyPackage []byte, role Role) (*InviteToken, []byte, error) {
	return m.createInvites(ctx, channelID, [][]byte{keyPackage}, role)
}

// CreateInvitesAs is CreateInvites with the invitees' role.
func (m *Manager) CreateInvitesAs(ctx context.Context, channelID string, keyPackages [][]byte, role Role) (*InviteToken, []byte, error) {
	return m.createInvites(ctx, channelID, keyPackages, role)
}

// checkInvite is the local check of an invitation (channel lock held).
func (m *Manager) checkInvite(ctx context.Context, d *Descriptor, role Role) error {
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	rs, _, err := m.channelRoles(ctx, d)
	if err != nil {
		return err
	}
	if rs == nil {
		if role != RoleMember {
			return fmt.Errorf("%w: cannot invite as %s", ErrNoRoles, role)
		}
		return nil
	}
	if role != RoleMember {
		return m.requireRole(rs, "inviting as "+string(role), RoleAdmin)
	}
	return m.requireRole(rs, "inviting", RoleAdmin, RoleMember)
}
