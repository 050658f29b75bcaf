package channel

import (
	"context"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/provider"
)

// RoleProvider is implemented by GroupProviders whose groups carry roles
// (the MLS adapter). A Manager over a GroupProvider without it has no
// roles (ErrNoRoles).
type RoleProvider interface {
	// Roles returns the group's roles in the current epoch; nil, nil when
	// the group has none.
	Roles(ctx context.Context, groupID []byte) (Roles, error)
	// CommitRoles commits a GroupContextExtensions proposal that sets the
	// group's roles to rs.
	CommitRoles(ctx context.Context, groupID []byte, rs Roles) (commit []byte, err error)
	// AddMembersWithRole is AddMembers where the joiners get role, set in
	// the same commit. Key packages that cannot enforce the group's roles
	// are refused with ErrRolesUnsupported.
	AddMembersWithRole(ctx context.Context, groupID []byte, keyPackages [][]byte, info []byte, role Role) (*AddResult, error)
}

// ProviderOptions configures a device's provider for channels: its leaves
// advertise ExtensionTypeChannelRoles (RolesCapabilities), its engine
// enforces RolesPolicy, and leaves without a device certificate are
// admitted in plain channels only (IsPlain).
func ProviderOptions(o provider.Options) provider.Options {
	caps := RolesCapabilities()
	o.Capabilities = &caps
	o.Engine.Policy = RolesPolicy{}
	o.AllowUnverified = IsPlain
	return o
}

// RelayProviderOptions is ProviderOptions for a node that talks to a
// relay: handshake messages (proposals, commits) are sent as PublicMessage
// (mls.Config.HandshakeAsPublic), so that the relay can verify what it
// orders; application messages stay PrivateMessage.
func RelayProviderOptions(o provider.Options) provider.Options {
	o = ProviderOptions(o)
	o.Engine.HandshakeAsPublic = true
	return o
}

// IsPlain reports whether a group is a plain channel: one without roles,
// which admits members without a device certificate (plain RFC 9420
// peers, shown as unverified). Channels with roles admit certified
// devices only. It is ProviderOptions' provider.Options.AllowUnverified.
func IsPlain(gc *mls.GroupContext) bool { return !gc.Extensions.Has(ExtensionTypeChannelRoles) }

var _ RoleProvider = (*mlsGroupProvider)(nil)

func (a *mlsGroupProvider) Roles(ctx context.Context, groupID []byte) (Roles, error) {
	var rs Roles
	err := a.p.View(ctx, groupID, func(g *mls.Group) error {
		var err error
		rs, err = RolesOf(g.Context().Extensions)
		return err
	})
	return rs, err
}

func (a *mlsGroupProvider) extensions(ctx context.Context, groupID []byte) (tree.Extensions, []Member, error) {
	var exts tree.Extensions
	var ms []Member
	err := a.p.View(ctx, groupID, func(g *mls.Group) error {
		exts, ms = g.Context().Extensions, a.members(g)
		return nil
	})
	return exts, ms, err
}

func (a *mlsGroupProvider) CommitRoles(ctx context.Context, groupID []byte, rs Roles) ([]byte, error) {
	exts, _, err := a.extensions(ctx, groupID)
	if err != nil {
		return nil, err
	}
	if !exts.Has(ExtensionTypeChannelRoles) {
		return nil, ErrNoRoles
	}
	if exts, err = withRoles(exts, rs); err != nil {
		return nil, err
	}
	res, err := a.commit(ctx, groupID, mls.CommitOptions{Extensions: exts})
	if err != nil {
		return nil, err
	}
	return wire.Marshal(res.Commit)
}

func (a *mlsGroupProvider) AddMembersWithRole(ctx context.Context, groupID []byte, keyPackages [][]byte, info []byte, role Role) (*AddResult, error) {
	exts, ms, err := a.extensions(ctx, groupID)
	if err != nil {
		return nil, err
	}
	rs, err := RolesOf(exts)
	if err != nil {
		return nil, err
	}
	if rs == nil {
		if role != RoleMember && role != "" {
			return nil, ErrNoRoles
		}
		return a.addMembers(ctx, groupID, keyPackages, info, nil)
	}
	next := rs.Clone()
	ids := map[string]bool{}
	for _, m := range ms {
		ids[m.Identity] = true
	}
	for id := range next {
		if !ids[id] {
			delete(next, id) // left or removed: tidy up
		}
	}
	for i, b := range keyPackages {
		kp, err := decodeKeyPackage(b)
		if err != nil {
			return nil, err
		}
		if !supportsRoles(kp) {
			return nil, fmt.Errorf("%w: key package %d (%q) lacks extension 0x%04x in its capabilities (a plain RFC 9420 client could not enforce the channel's roles)",
				ErrRolesUnsupported, i, kp.LeafNode.Credential.Identity, uint16(ExtensionTypeChannelRoles))
		}
		if id := string(kp.LeafNode.Credential.Identity); !ids[id] {
			next.Set(id, role)
		}
	}
	var newExts tree.Extensions
	if !next.Equal(rs) {
		if newExts, err = withRoles(exts, next); err != nil {
			return nil, err
		}
	}
	return a.addMembers(ctx, groupID, keyPackages, info, newExts)
}
