package channel

import (
	"context"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/identity"
)

// Users and their devices. A member of a channel is a user: every leaf
// whose credential presents the user's id, one per certified device. The
// channel invites a user with all their devices at once, removes them all
// at once, and lets a user add and remove their own devices whatever
// their role. Every member refuses two leaves with the same (user,
// device) (provider.ErrDuplicateDevice) and leaves of revoked devices it
// knows of (identity.ErrRevoked).

// Errors of users and devices.
var (
	// ErrUnverified: a key package without a valid device certificate
	// where a user's device is expected.
	ErrUnverified = errors.New("channel: key package without a valid device certificate")
	// ErrWrongUser: a key package of another user than the one named.
	ErrWrongUser = errors.New("channel: key package of another user")
	// ErrDeviceExists: the device is in the channel already.
	ErrDeviceExists = errors.New("channel: device already in the channel")
	// ErrNoIdentity: the GroupProvider knows no users and devices (a test
	// double).
	ErrNoIdentity = errors.New("channel: the group provider has no device identities")
)

// identityProvider is implemented by GroupProviders whose members are
// users with certified devices (the MLS adapter).
type identityProvider interface {
	// KeyPackageMember validates a key package on its own and describes
	// the leaf it would add (LeafIndex 0).
	KeyPackageMember(keyPackage []byte) (Member, error)
}

func (m *Manager) identities() (identityProvider, error) {
	ip, ok := m.gp.(identityProvider)
	if !ok {
		return nil, ErrNoIdentity
	}
	return ip, nil
}

// Members lists the channel's members as users, in the leaf order of
// their first device, each with its devices, verification, fingerprint
// and role.
func (m *Manager) Members(ctx context.Context, channelID string) ([]User, error) {
	leaves, err := m.Leaves(ctx, channelID)
	if err != nil {
		return nil, err
	}
	return usersOf(leaves), nil
}

// usersOf groups leaves by credential identity.
func usersOf(leaves []Member) []User {
	var out []User
	at := map[string]int{}
	for _, l := range leaves {
		i, ok := at[l.Identity]
		if !ok {
			i = len(out)
			at[l.Identity] = i
			u := User{Identity: l.Identity, UserID: l.UserID, Verified: l.Verified, DisplayName: l.DisplayName, Role: l.Role}
			if l.Verified {
				u.Fingerprint = identity.Fingerprint(l.IdentityKey)
			}
			out = append(out, u)
		}
		out[i].Devices = append(out[i].Devices, l)
	}
	return out
}

// InviteUser adds a user to the channel with all their devices in one
// commit: keyPackages are the user's, one per device (as the relay's
// directory hands them out), each certified for userID. Devices already
// in the channel are skipped (ErrDeviceExists when all are). The result
// is CreateInvites'.
func (m *Manager) InviteUser(ctx context.Context, channelID string, userID identity.UserID, keyPackages [][]byte, role Role) (*InviteToken, []byte, error) {
	ip, err := m.identities()
	if err != nil {
		return nil, nil, err
	}
	check := func(d *Descriptor, kps [][]byte) ([][]byte, error) {
		if err := m.checkInvite(ctx, d, role); err != nil {
			return nil, err
		}
		return m.newDevices(ctx, ip, d, userID, kps)
	}
	return m.addLeaves(ctx, channelID, keyPackages, role, check)
}

// AddDevice adds another device of our own user (a newly linked one) to
// the channel, whatever our role: a user's devices share its role. Every
// member enforces that only the user itself (or an inviter allowed by its
// role) adds a device of a user. The result is CreateInvite's.
func (m *Manager) AddDevice(ctx context.Context, channelID string, keyPackage []byte) (*InviteToken, []byte, error) {
	ip, err := m.identities()
	if err != nil {
		return nil, nil, err
	}
	check := func(d *Descriptor, kps [][]byte) ([][]byte, error) {
		return m.newDevices(ctx, ip, d, identity.UserID(m.Identity()), kps)
	}
	return m.addLeaves(ctx, channelID, [][]byte{keyPackage}, RoleMember, check)
}

// newDevices returns the key packages of kps for devices of userID not
// yet in the channel (channel lock held).
func (m *Manager) newDevices(ctx context.Context, ip identityProvider, d *Descriptor, userID identity.UserID, kps [][]byte) ([][]byte, error) {
	if len(kps) == 0 {
		return nil, fmt.Errorf("%w: no key packages for %s", ErrInvalidInvite, userID.Short())
	}
	leaves, err := m.gp.Members(ctx, d.GroupID)
	if err != nil {
		return nil, m.mapErr(err)
	}
	have := map[identity.DeviceID]bool{}
	for _, l := range leaves {
		if l.Verified && l.UserID == userID {
			have[l.DeviceID] = true
		}
	}
	var out [][]byte
	for i, kp := range kps {
		dev, err := ip.KeyPackageMember(kp)
		switch {
		case err != nil:
			return nil, fmt.Errorf("key package %d: %w", i, err)
		case !dev.Verified:
			return nil, fmt.Errorf("%w: key package %d (%q)", ErrUnverified, i, dev.Identity)
		case dev.UserID != userID:
			return nil, fmt.Errorf("%w: key package %d is %s's, not %s's", ErrWrongUser, i, dev.UserID.Short(), userID.Short())
		case dev.Revoked:
			return nil, fmt.Errorf("%w: key package %d: device %s of %s", identity.ErrRevoked, i, dev.DeviceID, userID.Short())
		case have[dev.DeviceID]:
			continue
		}
		have[dev.DeviceID] = true
		out = append(out, kp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: every device of %s", ErrDeviceExists, userID.Short())
	}
	return out, nil
}

// RemoveDevice removes one device of a user from the channel by a commit
// the remaining members must Receive. A user may remove its own other
// devices whatever its role; another user's only an admin. This device
// leaves with Leave instead (ErrRemoveSelf).
func (m *Manager) RemoveDevice(ctx context.Context, channelID string, userID identity.UserID, device identity.DeviceID) ([]byte, error) {
	if _, err := m.identities(); err != nil {
		return nil, err
	}
	return m.removeLeaves(ctx, channelID, func(l Member) bool {
		return l.Verified && l.UserID == userID && l.DeviceID == device
	}, fmt.Sprintf("device %s of %s", device, userID.Short()), false)
}

// RemoveRevoked removes, in one commit, every device of the channel whose
// revocation this member knows (provider.Provider.AddRevocation): its own
// user's whatever its role, others' as an admin. ErrMemberNotFound when
// there is none.
func (m *Manager) RemoveRevoked(ctx context.Context, channelID string) ([]byte, error) {
	if _, err := m.identities(); err != nil {
		return nil, err
	}
	return m.removeLeaves(ctx, channelID, func(l Member) bool { return l.Revoked }, "revoked devices", false)
}

// removeLeaves commits the removal of the leaves pick selects (what names
// them in errors): a user's own other devices whatever its role, others'
// as an admin — every removal only as an admin when admin is set.
func (m *Manager) removeLeaves(ctx context.Context, channelID string, pick func(Member) bool, what string, admin bool) ([]byte, error) {
	defer m.lock(channelID)()
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	rs, ms, err := m.channelRoles(ctx, d)
	if err != nil {
		return nil, err
	}
	if admin {
		if err := m.requireRole(rs, "removing members", RoleAdmin); err != nil {
			return nil, fmt.Errorf("channel %s: remove: %w", channelID, err)
		}
	}
	me, hasMe, err := m.ownLeaf(ctx, d)
	if err != nil {
		return nil, err
	}
	var leaves []uint32
	for _, l := range ms {
		if !pick(l) {
			continue
		}
		if hasMe && l.LeafIndex == me {
			return nil, ErrRemoveSelf
		}
		if l.Identity != m.Identity() {
			if err := m.requireRole(rs, "removing another user's device", RoleAdmin); err != nil {
				return nil, fmt.Errorf("channel %s: remove: %w", channelID, err)
			}
		}
		leaves = append(leaves, l.LeafIndex)
	}
	if len(leaves) == 0 {
		return nil, fmt.Errorf("%w: %s in %s", ErrMemberNotFound, what, channelID)
	}
	c, err := m.gp.RemoveMembers(ctx, d.GroupID, leaves)
	if err != nil {
		return nil, fmt.Errorf("channel %s: remove: %w", channelID, err)
	}
	return c, nil
}

// ownLeafProvider is implemented by GroupProviders that know our leaf.
type ownLeafProvider interface {
	OwnLeaf(ctx context.Context, groupID []byte) (uint32, error)
}

// ownLeaf is our leaf index, when the GroupProvider says it.
func (m *Manager) ownLeaf(ctx context.Context, d *Descriptor) (uint32, bool, error) {
	olp, ok := m.gp.(ownLeafProvider)
	if !ok {
		return 0, false, nil
	}
	l, err := olp.OwnLeaf(ctx, d.GroupID)
	return l, err == nil, m.mapErr(err)
}
