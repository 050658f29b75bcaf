package channel

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Channel roles live in the MLS group itself: the GroupContext extension
// ExtensionTypeChannelRoles (RFC 9420 §13, private-use range §17.3), listed
// in the group's required_capabilities (§11.1) so that only clients that
// enforce it can join. It changes only through a GroupContextExtensions
// proposal in a commit (§12.1.7), so every member holds the same roles in
// every epoch, and every member enforces them (RolesPolicy, an mls.Policy)
// on what it sends and receives.
//
// Members are named by their credential identity (the BasicCredential's
// identity, the user id), not by leaf index (leaves move on removal and
// truncation) nor by signature key: a user's role covers all its clients
// (leaves), matching how the channel layer and the node API name members;
// a signature key may change in an Update (§7.3) and would silently lose
// the role; and the identity is what the Authentication Service binds to
// the keys, which every other decision already trusts.

// ExtensionTypeChannelRoles is the GroupContext extension holding a
// channel's roles (private use, §17.3; distinct from
// ExtensionTypeChannelInfo, which is a GroupInfo extension).
const ExtensionTypeChannelRoles tree.ExtensionType = 0xF5A1

// RolesVersion is the version of the ChannelRoles encoding. A member that
// reads another version refuses the commit that installs it (its policy
// cannot enforce what it cannot read): a new version needs every member
// upgraded first.
const RolesVersion = 1

// Role is a member's role in a channel.
type Role string

// Roles.
const (
	// RoleAdmin may do everything: remove members, change roles and the
	// group's other GroupContext extensions, reinitialise the group.
	RoleAdmin Role = "admin"
	// RoleMember (the default) may send messages and invite new members
	// (as members), commit pending proposals, and leave.
	RoleMember Role = "member"
	// RoleReadOnly may only read: its application messages are refused by
	// every member, and it may not invite.
	RoleReadOnly Role = "read-only"
)

// ParseRole accepts "admin", "member", "read-only" (also "readonly",
// "read_only").
func ParseRole(s string) (Role, error) {
	switch s {
	case "admin":
		return RoleAdmin, nil
	case "member":
		return RoleMember, nil
	case "read-only", "readonly", "read_only":
		return RoleReadOnly, nil
	}
	return "", fmt.Errorf("%w: unknown role %q (admin, member, read-only)", ErrInvalidRole, s)
}

// Errors of roles. Refusals by the MLS policy wrap both mls.ErrPolicy and
// one of these.
var (
	// ErrInvalidRole: an unknown role name.
	ErrInvalidRole = errors.New("channel: invalid role")
	// ErrPermission: the member's role does not allow the operation.
	ErrPermission = errors.New("channel: not permitted by the member's role")
	// ErrLastAdmin: the operation would leave the channel without an admin
	// (an admin leaving must promote another member first).
	ErrLastAdmin = errors.New("channel: the channel's last admin cannot be demoted, removed or leave")
	// ErrNoRoles: the channel has no roles (a group made by a plain
	// RFC 9420 peer, or before roles existed): nobody's role is enforced.
	ErrNoRoles = errors.New("channel: this channel has no roles")
	// ErrRolesUnsupported: the invitee's client (its KeyPackage) does not
	// support the roles extension, so it could not enforce them.
	ErrRolesUnsupported = errors.New("channel: the invitee's client does not support channel roles")
)

// role codes on the wire.
const (
	roleCodeAdmin    = 1
	roleCodeMember   = 2 // the default; never encoded
	roleCodeReadOnly = 3
)

// Roles maps member identities to their roles. A member not listed is a
// RoleMember; entries of identities that are not members are ignored.
type Roles map[string]Role

// Of returns the role of identity.
func (rs Roles) Of(identity string) Role {
	if r, ok := rs[identity]; ok {
		return r
	}
	return RoleMember
}

// Clone copies rs.
func (rs Roles) Clone() Roles {
	out := make(Roles, len(rs))
	for k, v := range rs {
		out[k] = v
	}
	return out
}

// Set sets identity's role (RoleMember removes the entry).
func (rs Roles) Set(identity string, r Role) {
	if r == RoleMember {
		delete(rs, identity)
	} else {
		rs[identity] = r
	}
}

// Equal reports whether rs and o say the same.
func (rs Roles) Equal(o Roles) bool {
	if len(rs) != len(o) {
		return false
	}
	for k, v := range rs {
		if o[k] != v {
			return false
		}
	}
	return true
}

// MaxRoleIdentityLen bounds an identity in the roles extension.
const MaxRoleIdentityLen = 1024

// MarshalRoles encodes roles as the data of ExtensionTypeChannelRoles:
//
//	struct {
//	    opaque identity<V>;      // credential identity, 1..1024 bytes UTF-8
//	    uint8 role;              // admin(1), read_only(3)
//	} RoleEntry;
//
//	struct {
//	    uint8 version = 1;
//	    RoleEntry entries<V>;    // strictly ascending by identity bytes
//	} ChannelRoles;
//
// member(2) is the default and is never listed, so the encoding of a map
// is unique.
func MarshalRoles(rs Roles) ([]byte, error) {
	ids := make([]string, 0, len(rs))
	for id, r := range rs {
		if r == RoleMember {
			continue
		}
		if r != RoleAdmin && r != RoleReadOnly {
			return nil, fmt.Errorf("%w: %q", ErrInvalidRole, r)
		}
		if len(id) == 0 || len(id) > MaxRoleIdentityLen || !utf8.ValidString(id) {
			return nil, fmt.Errorf("%w: roles: identity of %d bytes", ErrInvalidEncoding, len(id))
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := wire.NewBuilder(16 + 32*len(ids))
	b.AddUint8(RolesVersion)
	b.AddVector(func(b *wire.Builder) {
		for _, id := range ids {
			b.AddOpaque([]byte(id))
			code := uint8(roleCodeAdmin)
			if rs[id] == RoleReadOnly {
				code = roleCodeReadOnly
			}
			b.AddUint8(code)
		}
	})
	return b.Bytes()
}

// UnmarshalRoles decodes MarshalRoles strictly (version, order, codes,
// trailing bytes).
func UnmarshalRoles(data []byte) (Roles, error) {
	r := wire.NewReader(data)
	if v := r.Uint8(); r.Err() == nil && v != RolesVersion {
		return nil, fmt.Errorf("%w: roles version %d", ErrInvalidEncoding, v)
	}
	rs := Roles{}
	var prev []byte
	r.Vector(func(r *wire.Reader) {
		for !r.Empty() {
			id := r.Opaque()
			code := r.Uint8()
			if r.Err() != nil {
				return
			}
			switch {
			case len(id) == 0 || len(id) > MaxRoleIdentityLen || !utf8.Valid(id):
				r.Fail("roles: bad identity")
			case prev != nil && bytes.Compare(prev, id) >= 0:
				r.Fail("roles: identities not strictly ascending")
			case code == roleCodeAdmin:
				rs[string(id)] = RoleAdmin
			case code == roleCodeReadOnly:
				rs[string(id)] = RoleReadOnly
			default:
				r.Fail("roles: role code %d", code)
			}
			prev = id
		}
	})
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: roles: %w", ErrInvalidEncoding, err)
	}
	return rs, nil
}

// RolesOf reads the roles of a GroupContext's extensions: nil, nil when the
// group has none.
func RolesOf(exts tree.Extensions) (Roles, error) {
	e := exts.Find(ExtensionTypeChannelRoles)
	if e == nil {
		return nil, nil
	}
	return UnmarshalRoles(e.ExtensionData)
}

// withRoles returns exts with the roles extension set to rs (replacing
// it in place, or appended).
func withRoles(exts tree.Extensions, rs Roles) (tree.Extensions, error) {
	data, err := MarshalRoles(rs)
	if err != nil {
		return nil, err
	}
	out := make(tree.Extensions, 0, len(exts)+1)
	found := false
	for _, e := range exts {
		if e.ExtensionType == ExtensionTypeChannelRoles {
			e = tree.Extension{ExtensionType: ExtensionTypeChannelRoles, ExtensionData: data}
			found = true
		}
		out = append(out, e)
	}
	if !found {
		out = append(out, tree.Extension{ExtensionType: ExtensionTypeChannelRoles, ExtensionData: data})
	}
	return out, nil
}

// RolesCapabilities are the leaf capabilities of a client that enforces
// channel roles: the engine's defaults plus ExtensionTypeChannelRoles
// (RFC 9420 §7.2: a non-default extension type must be listed to be used).
func RolesCapabilities() tree.Capabilities {
	c := mls.DefaultCapabilities()
	c.Extensions = append(c.Extensions, ExtensionTypeChannelRoles)
	return c
}

// newGroupExtensions are the GroupContext extensions of a new channel:
// required_capabilities naming the roles extension, and the roles with
// the creator as admin.
func newGroupExtensions(creator string) (tree.Extensions, error) {
	rc, err := wire.Marshal(&tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{ExtensionTypeChannelRoles},
		ProposalTypes: []tree.ProposalType{}, CredentialTypes: []tree.CredentialType{}})
	if err != nil {
		return nil, err
	}
	rs, err := MarshalRoles(Roles{creator: RoleAdmin})
	if err != nil {
		return nil, err
	}
	return tree.Extensions{
		{ExtensionType: tree.ExtensionTypeRequiredCapabilities, ExtensionData: rc},
		{ExtensionType: ExtensionTypeChannelRoles, ExtensionData: rs},
	}, nil
}

// supportsRoles reports whether a key package's leaf can enforce roles.
func supportsRoles(kp *mls.KeyPackage) bool {
	return slices.Contains(kp.LeafNode.Capabilities.Extensions, ExtensionTypeChannelRoles)
}
