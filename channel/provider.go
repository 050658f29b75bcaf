// Package channel is SpacePanda's chat layer: named channels over MLS
// groups (RFC 9420), invites, joins, chat messages and their history.
//
// A Manager holds one identity's channels. It talks to MLS only through a
// GroupProvider: NewMLSGroupProvider adapts the identity's
// *provider.Provider (real crypto, durable state), and
// channeltest.FakeGroupProvider is an insecure test double for fast tests of
// the channel logic alone.
//
// Every byte string a GroupProvider hands out or takes in is a wire
// encoding (for the MLS adapter: an RFC 9420 MLSMessage, or a
// RatchetTreeNodes vector), so what the Manager returns can be sent as is.
//
// A channel's id is the hex encoding of its MLS group id, so a message
// names its channel by its group_id, and a group made by a plain RFC 9420
// peer is a channel too (named by that hex id).
//
// Members are users: every leaf is one device, its credential the user id
// and its device certificate checked by the provider (see package
// provider). Manager.Members lists users with their devices, verification
// and fingerprint; InviteUser adds all of a user's devices at once,
// RemoveMember removes them all, and a user adds and removes its own
// devices whatever its role (AddDevice, RemoveDevice, RemoveRevoked).
// Roles belong to users. Leaves without a certificate (plain RFC 9420
// peers) are admitted only in plain channels (Options.NoRoles) and are
// marked unverified.
package channel

import (
	"context"
	"errors"

	"github.com/spacepanda/spacepanda/identity"
)

// Errors of package channel. Returned errors wrap one of these (and often
// an error of the MLS engine or the store); test with errors.Is.
var (
	ErrChannelNotFound  = errors.New("channel: channel not found")
	ErrChannelExists    = errors.New("channel: already in this channel")
	ErrAlreadyMember    = errors.New("channel: already a member")
	ErrInviteExpired    = errors.New("channel: invite expired")
	ErrInvalidInvite    = errors.New("channel: invalid invite")
	ErrInvalidEncoding  = errors.New("channel: invalid encoding")
	ErrMemberNotFound   = errors.New("channel: no such member")
	ErrRemoveSelf       = errors.New("channel: cannot remove yourself by commit (RFC 9420 §12.2); use Leave")
	ErrBodyTooLarge     = errors.New("channel: message body too large")
	ErrDuplicateMessage = errors.New("channel: message id already in history")
	ErrWrongChannel     = errors.New("channel: message is for another channel")
	ErrNotMember        = errors.New("channel: no longer a member of this channel")
)

// ContentKind is what a processed message carried (RFC 9420 §6 content types).
type ContentKind uint8

// Content kinds.
const (
	KindApplication ContentKind = 1
	KindProposal    ContentKind = 2
	KindCommit      ContentKind = 3
)

// Member is one leaf of a group: one device of a user.
type Member struct {
	LeafIndex uint32
	// Identity is the authenticated identity of the member's MLS credential
	// (a BasicCredential's identity for the MLS adapter): the user id when
	// Verified, otherwise whatever a plain peer calls itself (shown as
	// unverified, never trusted).
	Identity      string
	SignatureKey  []byte
	EncryptionKey []byte // the leaf's current HPKE key (changes on update)
	// Role is the member's role in the channel (Manager.Leaves; "" when
	// the channel has no roles).
	Role Role
	// Verified: the leaf carries a device certificate from the identity
	// key the user id is derived from (every leaf that entered the group
	// was checked by the identity validator). Unverified leaves exist only
	// in plain channels. The fields below are set only for verified
	// leaves, DeviceID and DisplayName only where the leaf was read (not
	// for the sender of an application message).
	Verified    bool
	UserID      identity.UserID
	IdentityKey identity.IdentityKey
	DeviceID    identity.DeviceID
	// DisplayName is what the leaf's device calls its user: shown beside
	// the user id, never trusted ("" when it set none).
	DisplayName string
	// Revoked: this member knows the device's revocation; its leaf should
	// be removed (Manager.RemoveRevoked).
	Revoked bool
}

// User is one member of a channel as a person: all the leaves (devices)
// whose credentials present the same identity.
type User struct {
	// Identity is the credential identity: the user id when Verified.
	Identity string
	UserID   identity.UserID // "" when unverified
	Verified bool
	// DisplayName is the display name of the user's first device in leaf
	// order (devices name themselves; see Member.DisplayName); never
	// trusted.
	DisplayName string
	// Fingerprint is identity.Fingerprint of the user's identity key, for
	// comparing out of band ("" when unverified).
	Fingerprint string
	Role        Role     // "" when the channel has no roles
	Devices     []Member // the user's leaves in leaf order
}

// AddResult is the outcome of adding members by commit.
type AddResult struct {
	Commit      []byte // for the existing members (MLSMessage)
	Welcome     []byte // for the added members (MLSMessage, wire format welcome)
	RatchetTree []byte // the new epoch's public tree (RatchetTreeNodes encoding)
	Added       []Member
	Epoch       uint64 // the new epoch, already adopted
}

// JoinResult is the outcome of joining from a Welcome.
type JoinResult struct {
	GroupID []byte
	Epoch   uint64
	// Info is the channel data the committer put in the GroupInfo (see
	// GroupProvider.AddMembers), nil when there is none (a plain peer).
	Info []byte
}

// Processed is the typed outcome of an incoming message.
type Processed struct {
	Kind ContentKind
	// Sender is the sending member, its identity taken from its
	// authenticated MLS credential (zero for non-member senders).
	Sender          Member
	ApplicationData []byte // for KindApplication
	// Epoch is the group's epoch after the message.
	Epoch uint64
	// For KindCommit: the members the commit added and removed (a member
	// whose leaf was replaced by an update is in neither), and whether it
	// removed us (the group is then over for us).
	Joined, Removed []Member
	SelfRemoved     bool
	// For KindProposal: the leaves a Remove proposal targets (a member
	// leaving proposes its own removal).
	ProposedRemovals []uint32
	// For KindCommit: the device revocations the commit carries in its
	// authenticated data (revocations.go), not verified yet.
	Revocations []*identity.Revocation
}

// GroupProvider is what the channel layer needs from an MLS implementation:
// one identity's groups. Implementations are safe for concurrent use.
//
// Commits are merged before the call returns: the returned commit is for
// the other members, and this member is in the new epoch. When the
// Manager has a CommitPoster (Options.CommitPoster), the MLS adapter hands it the
// commit between creating and merging it, and merges only if it succeeds
// (a delivery service that orders commits); other implementations may
// ignore it.
type GroupProvider interface {
	// Identity is this member's identity as its credential presents it.
	Identity() string
	// GenerateKeyPackages makes n key packages, stores their private keys,
	// and returns their public encodings (MLSMessage).
	GenerateKeyPackages(ctx context.Context, n int) ([][]byte, error)
	// CreateGroup creates a one-member group with this id.
	CreateGroup(ctx context.Context, groupID []byte) error
	// AddMembers commits Adds for the key packages. info, when non-nil, is
	// carried to the joiners inside the signed GroupInfo of the Welcome
	// (the MLS adapter uses GroupInfo extension ExtensionTypeChannelInfo).
	AddMembers(ctx context.Context, groupID []byte, keyPackages [][]byte, info []byte) (*AddResult, error)
	// JoinFromWelcome joins with one of our stored key packages. ratchetTree
	// nil: the tree is in the Welcome's GroupInfo.
	JoinFromWelcome(ctx context.Context, welcome, ratchetTree []byte) (*JoinResult, error)
	// Encrypt protects application data for the group.
	Encrypt(ctx context.Context, groupID, plaintext []byte) ([]byte, error)
	// ProcessMessage handles an application message, a proposal or a
	// commit. A rejected message changes nothing.
	ProcessMessage(ctx context.Context, groupID, message []byte) (*Processed, error)
	// RemoveMembers commits the removal of these leaves.
	RemoveMembers(ctx context.Context, groupID []byte, leaves []uint32) (commit []byte, err error)
	// ProposeLeave proposes our own removal (a member cannot commit it,
	// RFC 9420 §12.2); another member commits it.
	ProposeLeave(ctx context.Context, groupID []byte) (proposal []byte, err error)
	// SelfUpdate commits a fresh leaf key for this member, together with
	// every pending proposal (post-compromise security).
	SelfUpdate(ctx context.Context, groupID []byte) (commit []byte, err error)
	// Members lists the members in leaf order.
	Members(ctx context.Context, groupID []byte) ([]Member, error)
	// Epoch is the group's current epoch.
	Epoch(ctx context.Context, groupID []byte) (uint64, error)
	// MessageGroupID reads the group id a message is addressed to, without
	// processing it.
	MessageGroupID(message []byte) ([]byte, error)
	// ForgetGroup deletes our state of the group.
	ForgetGroup(ctx context.Context, groupID []byte) error
}
