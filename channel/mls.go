package channel

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store"
)

// ExtensionTypeChannelInfo is the GroupInfo extension (RFC 9420 §12.4.3,
// GroupInfo.extensions) in which a channel's inviter tells joiners the
// channel's id and name. It is in the private-use range 0xF000-0xFFFF
// (§17.3) and lives only in the GroupInfo, never in the GroupContext, so a
// peer that does not know it can still join (unknown GroupInfo extensions
// are ignored) and members need not list it in their capabilities.
const ExtensionTypeChannelInfo tree.ExtensionType = 0xF5A0

// mlsGroupProvider is the GroupProvider over one identity's provider.
type mlsGroupProvider struct {
	p *provider.Provider
	// post, when set, receives each commit before it is merged.
	post CommitPoster
}

// NewMLSGroupProvider adapts the identity's provider: every operation is
// real RFC 9420 with its state in the identity's store.
func NewMLSGroupProvider(p *provider.Provider) GroupProvider { return &mlsGroupProvider{p: p} }

func (a *mlsGroupProvider) Identity() string { return string(a.p.UserID()) }

func (a *mlsGroupProvider) GenerateKeyPackages(ctx context.Context, n int) ([][]byte, error) {
	return a.p.GenerateKeyPackages(ctx, n)
}

// CreateGroup creates the group with roles (the creator is its admin),
// required of every member (required_capabilities). The provider must
// advertise the roles extension (ProviderOptions).
func (a *mlsGroupProvider) CreateGroup(ctx context.Context, groupID []byte) error {
	exts, err := newGroupExtensions(a.Identity())
	if err != nil {
		return err
	}
	if _, err := a.p.CreateGroup(ctx, groupID, exts); err != nil {
		if errors.Is(err, mls.ErrUnsupportedCapability) {
			return fmt.Errorf("%w (configure the provider with channel.ProviderOptions)", err)
		}
		return err
	}
	return nil
}

// plainGroupCreator is implemented by GroupProviders whose CreateGroup
// adds roles, to create a group without them (Options.NoRoles).
type plainGroupCreator interface {
	CreatePlainGroup(ctx context.Context, groupID []byte) error
}

// CreatePlainGroup creates the group with no GroupContext extensions (no
// roles), which any RFC 9420 client can join.
func (a *mlsGroupProvider) CreatePlainGroup(ctx context.Context, groupID []byte) error {
	_, err := a.p.CreateGroup(ctx, groupID, nil)
	return err
}

func marshalMessage(body wire.Marshaler) ([]byte, error) {
	m, err := mls.NewMessage(body)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(m)
}

// decodeKeyPackage accepts a KeyPackage in an MLSMessage (RFC 9420 §6) or bare.
func decodeKeyPackage(b []byte) (*mls.KeyPackage, error) {
	if m, err := mls.UnmarshalMessage(b); err == nil {
		if m.KeyPackage == nil {
			return nil, fmt.Errorf("%w: message is a %v, not a key package", ErrInvalidEncoding, m.WireFormat)
		}
		return m.KeyPackage, nil
	}
	var kp mls.KeyPackage
	if err := wire.Unmarshal(b, &kp); err != nil {
		return nil, fmt.Errorf("%w: key package: %w", ErrInvalidEncoding, err)
	}
	return &kp, nil
}

func (a *mlsGroupProvider) AddMembers(ctx context.Context, groupID []byte, keyPackages [][]byte, info []byte) (*AddResult, error) {
	return a.AddMembersWithRole(ctx, groupID, keyPackages, info, RoleMember)
}

// addMembers commits the Adds, and the GroupContext extensions exts when
// non-nil.
func (a *mlsGroupProvider) addMembers(ctx context.Context, groupID []byte, keyPackages [][]byte, info []byte, exts tree.Extensions) (*AddResult, error) {
	kps := make([]*mls.KeyPackage, len(keyPackages))
	for i, b := range keyPackages {
		kp, err := decodeKeyPackage(b)
		if err != nil {
			return nil, err
		}
		kps[i] = kp
	}
	o := mls.CommitOptions{Add: kps, Extensions: exts}
	if info != nil {
		o.GroupInfoExtensions = tree.Extensions{{ExtensionType: ExtensionTypeChannelInfo, ExtensionData: info}}
	}
	res, err := a.commit(ctx, groupID, o)
	if err != nil {
		return nil, err
	}
	out := &AddResult{Epoch: res.State.Epoch()}
	if out.Commit, err = wire.Marshal(res.Commit); err != nil {
		return nil, err
	}
	if out.Welcome, err = marshalMessage(res.Welcome); err != nil {
		return nil, err
	}
	rt := res.RatchetTree.Trimmed()
	if out.RatchetTree, err = wire.Marshal(rt); err != nil {
		return nil, err
	}
	for _, l := range res.Added {
		if n := int(l) * 2; n < len(rt) && rt[n] != nil && rt[n].Leaf != nil {
			out.Added = append(out.Added, a.leafMember(uint32(l), rt[n].Leaf))
		}
	}
	return out, nil
}

func (a *mlsGroupProvider) JoinFromWelcome(ctx context.Context, welcome, ratchetTree []byte) (*JoinResult, error) {
	m, err := mls.UnmarshalMessage(welcome)
	if err != nil {
		return nil, fmt.Errorf("%w: welcome: %w", ErrInvalidEncoding, err)
	}
	if m.Welcome == nil {
		return nil, fmt.Errorf("%w: message is a %v, not a welcome", ErrInvalidEncoding, m.WireFormat)
	}
	var rt tree.RatchetTreeNodes
	if len(ratchetTree) > 0 {
		if err := wire.Unmarshal(ratchetTree, &rt); err != nil {
			return nil, fmt.Errorf("%w: ratchet tree: %w", ErrInvalidEncoding, err)
		}
	}
	joined, err := a.p.Join(ctx, m.Welcome, rt)
	if err != nil {
		return nil, err
	}
	out := &JoinResult{GroupID: joined.Group.GroupID(), Epoch: joined.Group.Epoch()}
	if e := joined.GroupInfo.Extensions.Find(ExtensionTypeChannelInfo); e != nil {
		out.Info = slices.Clone(e.ExtensionData)
	}
	return out, nil
}

func (a *mlsGroupProvider) Encrypt(ctx context.Context, groupID, plaintext []byte) ([]byte, error) {
	return a.EncryptTx(ctx, groupID, plaintext, nil)
}

// Store is the identity's store, where the provider keeps the groups.
func (a *mlsGroupProvider) Store() store.Store { return a.p.Store() }

func (a *mlsGroupProvider) EncryptTx(ctx context.Context, groupID, plaintext []byte, fn func(tx store.Tx, ct []byte) error) ([]byte, error) {
	var each func(store.Tx, int, []byte) error
	if fn != nil {
		each = func(tx store.Tx, _ int, ct []byte) error { return fn(tx, ct) }
	}
	cts, err := a.EncryptAllTx(ctx, groupID, [][]byte{plaintext}, each)
	if err != nil {
		return nil, err
	}
	return cts[0], nil
}

func (a *mlsGroupProvider) EncryptAllTx(ctx context.Context, groupID []byte, plaintexts [][]byte, fn func(tx store.Tx, i int, ct []byte) error) ([][]byte, error) {
	out := make([][]byte, len(plaintexts))
	_, err := a.p.EncryptAllWith(ctx, groupID, plaintexts, nil, func(tx store.Tx, i int, m *mls.Message) error {
		var err error
		if out[i], err = wire.Marshal(m); err != nil {
			return err
		}
		if fn != nil {
			return fn(tx, i, out[i])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (a *mlsGroupProvider) ProcessMessage(ctx context.Context, groupID, message []byte) (*Processed, error) {
	return a.ProcessMessageTx(ctx, groupID, message, nil)
}

func (a *mlsGroupProvider) ProcessMessageTx(ctx context.Context, groupID, message []byte, fn func(tx store.Tx, p *Processed) error) (*Processed, error) {
	var out *Processed
	n, err := a.ProcessMessagesTx(ctx, groupID, [][]byte{message}, func(tx store.Tx, _ int, p *Processed) error {
		out = p
		if fn != nil {
			return fn(tx, p)
		}
		return nil
	})
	if n == 0 {
		return nil, err
	}
	return out, nil
}

// isHandshake reports whether m is a proposal or a commit.
func isHandshake(m *mls.Message) bool {
	switch {
	case m.PublicMessage != nil:
		return m.PublicMessage.Content.ContentType != mls.ContentTypeApplication
	case m.PrivateMessage != nil:
		return m.PrivateMessage.ContentType != mls.ContentTypeApplication
	}
	return false
}

func isCommit(m *mls.Message) bool {
	return (m.PublicMessage != nil && m.PublicMessage.Content.ContentType == mls.ContentTypeCommit) ||
		(m.PrivateMessage != nil && m.PrivateMessage.ContentType == mls.ContentTypeCommit)
}

// ProcessMessagesTx processes a run of messages with one store transaction
// (provider.ProcessBatch). The run ends after the first proposal or
// commit, so that what the Manager looks up after it (the members a
// proposal removes, the group a commit removed us from) is as it would be
// one message at a time; application messages, the bulk, batch.
func (a *mlsGroupProvider) ProcessMessagesTx(ctx context.Context, groupID []byte, messages [][]byte, each func(tx store.Tx, i int, p *Processed) error) (int, error) {
	var ms []*mls.Message
	var stop error
	for _, b := range messages {
		m, err := mls.UnmarshalMessage(b)
		if err != nil {
			stop = fmt.Errorf("%w: %w", ErrInvalidEncoding, err)
			break
		}
		ms = append(ms, m)
		if isHandshake(m) {
			break
		}
	}
	if len(ms) == 0 {
		return 0, stop
	}
	var before []leafSnap
	if last := ms[len(ms)-1]; isCommit(last) {
		var err error
		if before, err = a.snapshot(ctx, groupID); err != nil {
			return 0, err
		}
	}
	n, err := a.p.ProcessBatch(ctx, groupID, ms, func(tx store.Tx, i int, res *mls.Processed) error {
		out := a.processed(res, isCommit(ms[i]), before)
		if each != nil {
			return each(tx, i, out)
		}
		return nil
	})
	if n < len(ms) {
		return n, err
	}
	return n, stop
}

// processed converts the engine's outcome, reading the group after the
// message (res.State). isCommit: before is the membership before it.
func (a *mlsGroupProvider) processed(res *mls.Processed, isCommit bool, before []leafSnap) *Processed {
	out := &Processed{Kind: ContentKind(res.ContentType), ApplicationData: res.ApplicationData}
	if res.Sender.SenderType == mls.SenderTypeMember {
		out.Sender.LeafIndex = uint32(res.Sender.LeafIndex)
		if res.Credential != nil {
			out.Sender.Identity = string(res.Credential.Identity)
			setVerified(&out.Sender)
		}
	}
	if res.Proposal != nil && res.Proposal.Remove != nil {
		out.ProposedRemovals = []uint32{uint32(res.Proposal.Remove.Removed)}
	}
	g := res.State
	out.Epoch = g.Epoch()
	out.SelfRemoved = g.Removed()
	if out.Sender.Identity != "" {
		if sm, ok := g.Member(res.Sender.LeafIndex); ok && string(sm.Credential.Identity) == out.Sender.Identity {
			out.Sender.SignatureKey = slices.Clone(sm.SignatureKey)
		}
	}
	if isCommit {
		// Also when we were removed: the state then holds the new tree,
		// so Removed lists what the commit removed, not everyone.
		out.Joined, out.Removed = a.diffMembers(before, snapshotOf(g))
		// Authenticated data we cannot read is another application's: the
		// commit stands, and teaches nothing.
		out.Revocations, _ = decodeRevocations(res.AuthenticatedData)
	}
	return out
}

// leafSnap is one leaf of a group state, to compare two states by.
type leafSnap struct {
	index uint32
	leaf  *tree.LeafNode // shared with the group's tree: read only
}

// snapshotOf lists g's leaves.
func snapshotOf(g *mls.Group) []leafSnap {
	rt := g.RatchetTree()
	out := make([]leafSnap, 0, len(rt)/2+1)
	for i := 0; i < len(rt); i += 2 {
		if n := rt[i]; n != nil && n.Leaf != nil {
			out = append(out, leafSnap{uint32(i / 2), n.Leaf})
		}
	}
	return out
}

func (a *mlsGroupProvider) snapshot(ctx context.Context, groupID []byte) ([]leafSnap, error) {
	var out []leafSnap
	err := a.p.View(ctx, groupID, func(g *mls.Group) error { out = snapshotOf(g); return nil })
	return out, err
}

// diffMembers describes the leaves of after not in before and those of
// before not in after, a leaf being its index and signature key (a member
// whose leaf an update replaced is in neither).
func (a *mlsGroupProvider) diffMembers(before, after []leafSnap) (joined, removed []Member) {
	key := func(l leafSnap) string { return fmt.Sprintf("%d/%x", l.index, l.leaf.SignatureKey) }
	was := make(map[string]bool, len(before))
	for _, l := range before {
		was[key(l)] = true
	}
	is := make(map[string]bool, len(after))
	for _, l := range after {
		is[key(l)] = true
		if !was[key(l)] {
			joined = append(joined, a.leafMember(l.index, l.leaf))
		}
	}
	for _, l := range before {
		if !is[key(l)] {
			removed = append(removed, a.leafMember(l.index, l.leaf))
		}
	}
	return joined, removed
}

func (a *mlsGroupProvider) RemoveMembers(ctx context.Context, groupID []byte, leaves []uint32) ([]byte, error) {
	o := mls.CommitOptions{}
	for _, l := range leaves {
		o.Remove = append(o.Remove, tree.LeafIndex(l))
	}
	// Drop the roles of identities that no longer have a leaf.
	exts, ms, err := a.extensions(ctx, groupID)
	if err != nil {
		return nil, err
	}
	if rs, err := RolesOf(exts); err == nil && rs != nil {
		stay := map[string]bool{}
		for _, m := range ms {
			if !slices.Contains(leaves, m.LeafIndex) {
				stay[m.Identity] = true
			}
		}
		next := rs.Clone()
		for id := range next {
			if !stay[id] {
				delete(next, id)
			}
		}
		if !next.Equal(rs) {
			if o.Extensions, err = withRoles(exts, next); err != nil {
				return nil, err
			}
		}
	}
	// The revoked devices go with their revocations (revocations.go).
	if o.AuthenticatedData, err = encodeRevocations(a.revocationsOf(ms, leaves)); err != nil {
		return nil, err
	}
	res, err := a.commit(ctx, groupID, o)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(res.Commit)
}

func (a *mlsGroupProvider) ProposeLeave(ctx context.Context, groupID []byte) ([]byte, error) {
	var me tree.LeafIndex
	if err := a.p.View(ctx, groupID, func(g *mls.Group) error { me = g.OwnLeafIndex(); return nil }); err != nil {
		return nil, err
	}
	m, err := a.p.Propose(ctx, groupID, &mls.Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &mls.Remove{Removed: me}})
	if err != nil {
		return nil, err
	}
	return wire.Marshal(m)
}

func (a *mlsGroupProvider) SelfUpdate(ctx context.Context, groupID []byte) ([]byte, error) {
	res, err := a.commit(ctx, groupID, mls.CommitOptions{})
	if err != nil {
		return nil, err
	}
	return wire.Marshal(res.Commit)
}

func (a *mlsGroupProvider) Members(ctx context.Context, groupID []byte) ([]Member, error) {
	var out []Member
	err := a.p.View(ctx, groupID, func(g *mls.Group) error { out = a.members(g); return nil })
	return out, err
}

// members lists g's leaves.
func (a *mlsGroupProvider) members(g *mls.Group) []Member {
	rt := g.RatchetTree()
	var out []Member
	for i := 0; i < len(rt); i += 2 {
		if n := rt[i]; n != nil && n.Leaf != nil {
			out = append(out, a.leafMember(uint32(i/2), n.Leaf))
		}
	}
	return out
}

// leafMember describes a leaf of one of our groups. Every leaf in our
// groups passed the provider's identity validator when it entered, so a
// leaf with a certificate for its credential's user id is verified
// without checking the certificate again.
func (a *mlsGroupProvider) leafMember(i uint32, ln *tree.LeafNode) Member {
	m := Member{LeafIndex: i, Identity: string(ln.Credential.Identity), SignatureKey: slices.Clone(ln.SignatureKey),
		EncryptionKey: slices.Clone(ln.EncryptionKey), DisplayName: provider.LeafDisplayName(ln)}
	if cert, err := identity.LeafCertificate(ln); err == nil && string(cert.UserID()) == m.Identity {
		m.Verified, m.UserID, m.IdentityKey, m.DeviceID = true, cert.UserID(), cert.IdentityKey, cert.Device.ID
		m.Revoked = a.p.IsRevoked(cert.IdentityKey, cert.Device.ID)
	}
	return m
}

// setVerified marks a member known by its credential identity alone (the
// sender of a message): in our groups only a certified leaf may present a
// user id (identity.ErrUnverifiedUserID), so the identity says it.
func setVerified(m *Member) {
	if _, err := identity.ParseUserID(m.Identity); err == nil {
		m.Verified, m.UserID = true, identity.UserID(m.Identity)
	}
}

// KeyPackageMember validates a key package on its own and says whose
// device it is.
func (a *mlsGroupProvider) KeyPackageMember(keyPackage []byte) (Member, error) {
	kp, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return Member{}, err
	}
	if err := a.p.ValidateKeyPackage(kp); err != nil {
		return Member{}, fmt.Errorf("%w: key package: %w", ErrInvalidInvite, err)
	}
	return a.leafMember(0, &kp.LeafNode), nil
}

func (a *mlsGroupProvider) Epoch(ctx context.Context, groupID []byte) (uint64, error) {
	var e uint64
	err := a.p.View(ctx, groupID, func(g *mls.Group) error { e = g.Epoch(); return nil })
	return e, err
}

func (a *mlsGroupProvider) MessageGroupID(message []byte) ([]byte, error) {
	m, err := mls.UnmarshalMessage(message)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEncoding, err)
	}
	switch {
	case m.PrivateMessage != nil:
		return m.PrivateMessage.GroupID, nil
	case m.PublicMessage != nil:
		return m.PublicMessage.Content.GroupID, nil
	}
	return nil, fmt.Errorf("%w: a %v is not addressed to a group", ErrInvalidEncoding, m.WireFormat)
}

func (a *mlsGroupProvider) ForgetGroup(ctx context.Context, groupID []byte) error {
	return a.p.ForgetGroup(ctx, groupID)
}

// OwnLeaf is our leaf index in the group.
func (a *mlsGroupProvider) OwnLeaf(ctx context.Context, groupID []byte) (uint32, error) {
	var l uint32
	err := a.p.View(ctx, groupID, func(g *mls.Group) error { l = uint32(g.OwnLeafIndex()); return nil })
	return l, err
}
