package channel_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/provider/providertest"
)

// The attacks on who is who, each refused by every honest member with its
// state unchanged and a typed error — real crypto, real SQLite stores.

// newSQLPeer is a device on a SQLite store in its own data directory; link
// makes it wait for a certificate from another device of its user.
func newSQLPeer(t testing.TB, name string, o channel.Options, link bool) *peer {
	t.Helper()
	po := channel.ProviderOptions(provider.Options{Name: name, Link: link})
	p, err := provider.Open(context.Background(), filepath.Join(t.TempDir(), "data"), provider.OpenOptions{Options: po})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if !link {
		register(p)
	}
	return &peer{Manager: channel.NewManager(channel.NewMLSGroupProvider(p), p.Store(), o), p: p, st: p.Store()}
}

// linkPeer links a new device of holder's user (the identity package's
// flow, which the sync engine runs over the relay's mailbox).
func linkPeer(t testing.TB, holder *peer, name string) *peer {
	t.Helper()
	dev := newSQLPeer(t, name, channel.Options{}, true)
	offer := must[*identity.LinkOffer](t)(identity.NewLinkOffer(nil))
	join := must[*identity.LinkJoin](t)(identity.NewLinkJoin(offer.Code(), dev.p.Device(), dev.p.LinkSigner(), name, nil))
	req := must[[]byte](t)(join.Respond(offer.Hello()))
	if _, err := offer.ReadRequest(req); err != nil {
		t.Fatal(err)
	}
	msg, _, err := holder.p.AcceptLink(offer, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert := must[*identity.Certificate](t)(join.Finish(msg))
	if err := dev.p.InstallCertificate(context.Background(), cert); err != nil {
		t.Fatal(err)
	}
	return dev
}

// rogueIn invites a rogue member into ch (admin invites it; the others
// process the commit) and returns it.
func rogueIn(t testing.TB, admin *peer, ch string, others ...*peer) *providertest.Rogue {
	t.Helper()
	r := providertest.NewRogue(t, admin.p.Suite().ID(), channel.RolesCapabilities())
	registerAs("mallory", string(r.UserID()))
	tok, commit, err := admin.CreateInvite(context.Background(), ch, r.OwnKeyPackage(t))
	if err != nil {
		t.Fatal(err)
	}
	r.Join(t, tok.Welcome, tok.RatchetTree)
	for _, o := range others {
		receiveKind(t, o, commit, channel.EventMemberJoined)
	}
	return r
}

// snapshot is what a refused message must not change.
func snapshot(t testing.TB, p *peer, ch string) string {
	t.Helper()
	ctx := context.Background()
	s := fmt.Sprintf("epoch %d, leaves %v", epochOf(t, p, ch), leafIDs(must[[]channel.Member](t)(p.Leaves(ctx, ch))))
	if rs, err := p.Roles(ctx, ch); err == nil {
		s += fmt.Sprint(", roles ", rs)
	}
	return s
}

func leafIDs(ms []channel.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%d:%s/%s", m.LeafIndex, named(m.Identity), m.DeviceID))
	}
	return out
}

// refusedBy delivers msg to every peer and checks that each refuses it
// with all of want, its state unchanged.
func refusedBy(t testing.TB, ch string, msg []byte, ps []*peer, want ...error) {
	t.Helper()
	for _, p := range ps {
		before := snapshot(t, p, ch)
		_, err := p.Receive(context.Background(), msg)
		for _, w := range want {
			if !errors.Is(err, w) {
				t.Fatalf("%s: got %v, want %v", named(p.Identity()), err, w)
			}
		}
		if after := snapshot(t, p, ch); after != before {
			t.Fatalf("%s: a refused message changed %s into %s", named(p.Identity()), before, after)
		}
	}
}

// talk checks that from's message reaches every one of to.
func talk(t testing.TB, ch string, from *peer, to ...*peer) {
	t.Helper()
	ct := send(t, from, ch, "hello from "+named(from.Identity()))
	for _, p := range to {
		deliver(t, p, ct, named(from.Identity()), "hello from "+named(from.Identity()))
	}
}

// TestImpostorLeafRefused: a member adds a second leaf whose credential
// says the admin's user id — with its own certificate, with a copy of the
// admin's, or with none. Every honest member refuses the commit; the
// admin stays one user with one device.
func TestImpostorLeafRefused(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := newSQLPeer(t, "alice", channel.Options{}, false), newSQLPeer(t, "bob", channel.Options{}, false), newSQLPeer(t, "carol", channel.Options{}, false)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "roles", false)).ID
	invite(t, alice, bob, ch)
	receiveKind(t, bob, invite(t, alice, carol, ch), channel.EventMemberJoined)
	mallory := rogueIn(t, alice, ch, bob, carol)
	honest := []*peer{alice, bob, carol}

	aliceCert := providertest.Ext(t, alice.p.Certificate())
	for _, c := range []struct {
		name string
		ext  []tree.Extension
		want error
	}{
		{"own certificate", []tree.Extension{providertest.Ext(t, mallory.Cert)}, identity.ErrUserIDMismatch},
		{"the admin's certificate", []tree.Extension{aliceCert}, identity.ErrKeyMismatch},
		{"no certificate", nil, identity.ErrUnverifiedUserID},
	} {
		t.Run(c.name, func(t *testing.T) {
			saved := mallory.Group
			defer func() { mallory.Group = saved }()
			other := providertest.NewRogue(t, alice.p.Suite().ID(), channel.RolesCapabilities())
			kp := other.KeyPackage(t, alice.Identity(), c.ext...)
			refusedBy(t, ch, mallory.AddCommit(t, kp), honest, mls.ErrInvalidCredential, c.want)
		})
	}
	// The admin is still one verified user with one device, and the
	// channel works.
	us := must[[]channel.User](t)(bob.Members(ctx, ch))
	if len(us) != 4 || us[0].Identity != alice.Identity() || len(us[0].Devices) != 1 || us[0].Role != channel.RoleAdmin || !us[0].Verified {
		t.Fatalf("bob's members %+v", us)
	}
	talk(t, ch, alice, bob, carol)
}

// TestImpostorInPlainChannel: in a plain channel a plain peer may join
// without a certificate, even calling itself by the admin's display name;
// it is listed as unverified, distinct from the admin, and the admin can
// remove it. Claiming the admin's user id without a certificate is
// refused even there.
func TestImpostorInPlainChannel(t *testing.T) {
	ctx := context.Background()
	alice, bob := newSQLPeer(t, "alice", channel.Options{NoRoles: true}, false), newSQLPeer(t, "bob", channel.Options{NoRoles: true}, false)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "plain", false)).ID
	invite(t, alice, bob, ch)
	imp := providertest.NewRogue(t, alice.p.Suite().ID(), mls.DefaultCapabilities())

	if _, _, err := alice.CreateInvite(ctx, ch, imp.KeyPackage(t, alice.Identity())); !errors.Is(err, identity.ErrUnverifiedUserID) {
		t.Fatalf("an uncertified key package with alice's user id: %v", err)
	}
	tok, commit := must2(t)(alice.CreateInvite(ctx, ch, imp.KeyPackage(t, "alice")))
	imp.Join(t, tok.Welcome, tok.RatchetTree)
	receiveKind(t, bob, commit, channel.EventMemberJoined)

	us := must[[]channel.User](t)(bob.Members(ctx, ch))
	if len(us) != 3 {
		t.Fatalf("bob sees %d members", len(us))
	}
	real, fake := us[0], us[2]
	if !real.Verified || real.UserID != identity.UserID(alice.Identity()) || real.DisplayName != "alice" || len(real.Fingerprint) == 0 {
		t.Fatalf("the real alice: %+v", real)
	}
	if fake.Verified || fake.Identity != "alice" || fake.UserID != "" || fake.Fingerprint != "" || fake.Devices[0].Verified {
		t.Fatalf("the impostor: %+v", fake)
	}
	// Its messages are shown as the unverified "alice", not as alice.
	ev, err := bob.Receive(ctx, imp.Send(t, []byte("send me the key")))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Sender.Identity != "alice" || ev.Sender.Verified || ev.Message.Sender == alice.Identity() {
		t.Fatalf("the impostor's message is from %+v", ev.Sender)
	}
	// The real alice removes it (not herself).
	rm := must[[]byte](t)(alice.RemoveMember(ctx, ch, "alice"))
	ev = receiveKind(t, bob, rm, channel.EventMemberRemoved)
	if len(ev.Removed) != 1 || ev.Removed[0].Identity != "alice" || ev.Removed[0].Verified {
		t.Fatalf("removed %+v", ev.Removed)
	}
	if got := fmt.Sprint(leafIDs(must[[]channel.Member](t)(bob.Leaves(ctx, ch)))); got != fmt.Sprintf("[0:alice/%s 1:bob/%s]", alice.p.DeviceID(), bob.p.DeviceID()) {
		t.Fatalf("bob's leaves after the removal %s", got)
	}
	talk(t, ch, alice, bob)
}

func must2(t testing.TB) func(tok *channel.InviteToken, commit []byte, err error) (*channel.InviteToken, []byte) {
	return func(tok *channel.InviteToken, commit []byte, err error) (*channel.InviteToken, []byte) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok, commit
	}
}

// TestIdentitySwapRefused: a member tries to become someone else in an
// Update or in its commit's path leaf — another user it controls, the
// admin, or another device. Every honest member refuses it.
func TestIdentitySwapRefused(t *testing.T) {
	ctx := context.Background()
	alice, bob := newSQLPeer(t, "alice", channel.Options{}, false), newSQLPeer(t, "bob", channel.Options{}, false)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "roles", false)).ID
	invite(t, alice, bob, ch)
	mallory := rogueIn(t, alice, ch, bob)
	honest := []*peer{alice, bob}
	// A second user mallory controls, certifying the same signature key.
	m2 := must[*identity.PrivateIdentity](t)(identity.GenerateIdentity(nil))
	m2Cert := mallory.CertifiedBy(t, m2, mallory.DeviceID)
	otherDev := must[identity.DeviceID](t)(identity.NewDeviceID(nil))
	newDevCert := mallory.CertifiedBy(t, mallory.Identity, otherDev)
	setCert := func(ln *tree.LeafNode, c *identity.Certificate) {
		for i, e := range ln.Extensions {
			if e.ExtensionType == identity.ExtensionTypeDeviceCertificate {
				ln.Extensions[i] = providertest.Ext(t, c)
			}
		}
	}
	updates := []struct {
		name   string
		change func(ln *tree.LeafNode)
		want   error
	}{
		{"to another user of its own", func(ln *tree.LeafNode) {
			ln.Credential = tree.NewBasicCredential([]byte(m2.UserID()))
			setCert(ln, m2Cert)
		}, identity.ErrIdentityChanged},
		{"to the admin", func(ln *tree.LeafNode) {
			ln.Credential = tree.NewBasicCredential([]byte(alice.Identity()))
			setCert(ln, alice.p.Certificate())
		}, identity.ErrKeyMismatch},
		{"to another device", func(ln *tree.LeafNode) { setCert(ln, newDevCert) }, identity.ErrDeviceChanged},
	}
	for _, u := range updates {
		t.Run("update "+u.name, func(t *testing.T) {
			saved := mallory.Group
			defer func() { mallory.Group = saved }()
			refusedBy(t, ch, mallory.ProposeUpdate(t, u.change), honest, mls.ErrInvalidCredential, u.want)
		})
	}
	t.Run("commit path to another user of its own", func(t *testing.T) {
		saved := mallory.Group
		defer func() { mallory.Group = saved }()
		mallory.TamperOwnLeaf(t, [2][]byte{[]byte(mallory.UserID()), []byte(m2.UserID())},
			[2][]byte{must[[]byte](t)(mallory.Cert.Marshal()), must[[]byte](t)(m2Cert.Marshal())})
		refusedBy(t, ch, mallory.Commit(t, mls.CommitOptions{}), honest, mls.ErrInvalidCredential, identity.ErrIdentityChanged)
	})
	t.Run("commit path to another device", func(t *testing.T) {
		saved := mallory.Group
		defer func() { mallory.Group = saved }()
		c := mallory.Commit(t, mls.CommitOptions{LeafExtensions: tree.Extensions{providertest.Ext(t, newDevCert)}})
		refusedBy(t, ch, c, honest, mls.ErrInvalidCredential, identity.ErrDeviceChanged)
	})
	// Mallory is still mallory, and an honest commit of hers goes through.
	c := mallory.Commit(t, mls.CommitOptions{})
	for _, p := range honest {
		receiveKind(t, p, c, channel.EventEpochChanged)
	}
	talk(t, ch, alice, bob)
}

// TestDuplicateDeviceInChannel: a member adds a second leaf for one of its
// own devices (its identity key certified two signature keys for one
// device id): every honest member refuses.
func TestDuplicateDeviceInChannel(t *testing.T) {
	ctx := context.Background()
	alice, bob := newSQLPeer(t, "alice", channel.Options{}, false), newSQLPeer(t, "bob", channel.Options{}, false)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "roles", false)).ID
	invite(t, alice, bob, ch)
	mallory := rogueIn(t, alice, ch, bob)
	tw := providertest.NewRogue(t, alice.p.Suite().ID(), channel.RolesCapabilities())
	tw.Identity, tw.DeviceID = mallory.Identity, mallory.DeviceID
	tw.Cert = tw.CertifiedBy(t, mallory.Identity, mallory.DeviceID)
	kp := tw.OwnKeyPackage(t)
	refusedBy(t, ch, mallory.AddCommit(t, kp), []*peer{alice, bob}, provider.ErrDuplicateDevice)
	// Nor does an honest member add it, even on request.
	if _, _, err := alice.CreateInvite(ctx, ch, kp); !errors.Is(err, provider.ErrDuplicateDevice) {
		t.Fatalf("honest invite of the same device twice: %v", err)
	}
}

// TestMultiDeviceUser: a user with two devices in a channel with a third
// user: one invite adds both devices, both read and send as the user,
// roles belong to the user, a third device linked later is added by the
// user's own device whatever its role, a revoked device is removed by the
// user itself and refused meanwhile, and removing the user removes all of
// its devices in one commit.
func TestMultiDeviceUser(t *testing.T) {
	ctx := context.Background()
	bob := newSQLPeer(t, "bob", channel.Options{}, false)
	laptop := newSQLPeer(t, "alice", channel.Options{}, false)
	phone := linkPeer(t, laptop, "alice's phone")
	alice := identity.UserID(laptop.Identity())
	if phone.Identity() != laptop.Identity() {
		t.Fatal("the linked phone is another user")
	}
	ch := must[*channel.Descriptor](t)(bob.CreateChannel(ctx, "team", false)).ID

	// One invite, every device of the user (as the relay's directory hands
	// out one key package per device).
	kps := [][]byte{must[[]byte](t)(laptop.GenerateKeyPackage(ctx)), must[[]byte](t)(phone.GenerateKeyPackage(ctx))}
	carol := newSQLPeer(t, "carol", channel.Options{}, false)
	if _, _, err := bob.InviteUser(ctx, ch, alice, append(kps[:1:1], must[[]byte](t)(carol.GenerateKeyPackage(ctx))), channel.RoleMember); !errors.Is(err, channel.ErrWrongUser) {
		t.Fatalf("inviting alice with carol's key package: %v", err)
	}
	plain := providertest.NewRogue(t, bob.p.Suite().ID(), channel.RolesCapabilities())
	if _, _, err := bob.InviteUser(ctx, ch, alice, [][]byte{plain.KeyPackage(t, "alice")}, channel.RoleMember); !errors.Is(err, channel.ErrUnverified) {
		t.Fatalf("inviting alice with an uncertified key package: %v", err)
	}
	tok, _ := must2(t)(bob.InviteUser(ctx, ch, alice, kps, channel.RoleMember))
	for _, p := range []*peer{laptop, phone} {
		if _, err := p.JoinChannel(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := bob.InviteUser(ctx, ch, alice, kps, channel.RoleMember); !errors.Is(err, channel.ErrDeviceExists) {
		t.Fatalf("inviting alice's devices again: %v", err)
	}
	c := invite(t, bob, carol, ch)
	receiveKind(t, laptop, c, channel.EventMemberJoined)
	receiveKind(t, phone, c, channel.EventMemberJoined)
	everyone := []*peer{bob, laptop, phone, carol}

	for _, p := range everyone {
		us := must[[]channel.User](t)(p.Members(ctx, ch))
		if len(us) != 3 || us[1].UserID != alice || len(us[1].Devices) != 2 || us[1].Fingerprint != identity.Fingerprint(laptop.p.IdentityKey()) ||
			us[1].Devices[0].DeviceID != laptop.p.DeviceID() || us[1].Devices[1].DeviceID != phone.p.DeviceID() ||
			us[1].Devices[1].DisplayName != "alice's phone" || us[1].DisplayName != "alice" {
			t.Fatalf("%s sees members %+v", named(p.Identity()), us)
		}
	}
	// Both devices read and send; their messages are the user's.
	talk(t, ch, laptop, bob, phone, carol)
	talk(t, ch, phone, bob, laptop, carol)
	talk(t, ch, carol, bob, laptop, phone)

	// Roles belong to the user: demoted to read-only, both devices are.
	c = must[[]byte](t)(bob.SetRole(ctx, ch, string(alice), channel.RoleReadOnly))
	for _, p := range []*peer{laptop, phone, carol} {
		receiveKind(t, p, c, channel.EventEpochChanged)
	}
	for _, p := range []*peer{laptop, phone} {
		if _, _, err := p.SendMessage(ctx, ch, "hi", ""); !errors.Is(err, channel.ErrPermission) {
			t.Fatalf("a read-only user's device sends: %v", err)
		}
	}

	// A third device, linked later, is added by the user's own (read-only)
	// device; it may not invite anyone else.
	tablet := linkPeer(t, laptop, "alice's tablet")
	if _, _, err := laptop.CreateInvite(ctx, ch, must[[]byte](t)(newSQLPeer(t, "dave", channel.Options{}, false).GenerateKeyPackage(ctx))); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("a read-only device invites another user: %v", err)
	}
	if _, _, err := laptop.AddDevice(ctx, ch, must[[]byte](t)(carol.GenerateKeyPackage(ctx))); !errors.Is(err, channel.ErrWrongUser) {
		t.Fatalf("AddDevice of another user's key package: %v", err)
	}
	tok, c = must2(t)(laptop.AddDevice(ctx, ch, must[[]byte](t)(tablet.GenerateKeyPackage(ctx))))
	for _, p := range []*peer{bob, phone, carol} {
		receiveKind(t, p, c, channel.EventMemberJoined)
	}
	if _, err := tablet.JoinChannel(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if r := must[channel.Role](t)(tablet.Role(ctx, ch, string(alice))); r != channel.RoleReadOnly {
		t.Fatalf("the new device's user is %s", r)
	}
	c = must[[]byte](t)(bob.SetRole(ctx, ch, string(alice), channel.RoleMember))
	for _, p := range []*peer{laptop, phone, carol, tablet} {
		receiveKind(t, p, c, channel.EventEpochChanged)
	}
	everyone = append(everyone, tablet)
	talk(t, ch, tablet, bob, laptop, phone, carol)

	// The phone is revoked: everyone who learns it refuses its commits;
	// the user's own device removes it, whatever its role.
	rev := must[*identity.Revocation](t)(laptop.p.Revoke(ctx, phone.p.DeviceID()))
	for _, p := range []*peer{bob, carol, tablet} {
		if err := p.p.AddRevocation(ctx, rev); err != nil {
			t.Fatal(err)
		}
	}
	refusedBy(t, ch, must[[]byte](t)(phone.SelfUpdate(ctx, ch)), []*peer{bob, laptop, carol, tablet}, identity.ErrRevoked)
	if _, err := carol.RemoveRevoked(ctx, ch); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("carol removes alice's revoked device: %v", err)
	}
	c = must[[]byte](t)(laptop.RemoveRevoked(ctx, ch))
	ev := receiveKind(t, bob, c, channel.EventMemberRemoved)
	if len(ev.Removed) != 1 || ev.Removed[0].DeviceID != phone.p.DeviceID() || !ev.Removed[0].Revoked {
		t.Fatalf("removed %+v", ev.Removed)
	}
	receiveKind(t, carol, c, channel.EventMemberRemoved)
	receiveKind(t, tablet, c, channel.EventMemberRemoved)
	if _, err := laptop.RemoveRevoked(ctx, ch); !errors.Is(err, channel.ErrMemberNotFound) {
		t.Fatalf("no revoked device left: %v", err)
	}
	everyone = []*peer{bob, laptop, carol, tablet}
	talk(t, ch, laptop, bob, carol, tablet)

	// Removing the user removes every one of its devices, in one commit.
	c = must[[]byte](t)(bob.RemoveMember(ctx, ch, string(alice)))
	ev = receiveKind(t, carol, c, channel.EventMemberRemoved)
	if len(ev.Removed) != 2 || ev.Removed[0].UserID != alice || ev.Removed[1].UserID != alice {
		t.Fatalf("removing alice removed %v", leafIDs(ev.Removed))
	}
	for _, p := range []*peer{laptop, tablet} {
		receiveKind(t, p, c, channel.EventRemoved)
	}
	if us := must[[]channel.User](t)(carol.Members(ctx, ch)); len(us) != 2 || slices.ContainsFunc(us, func(u channel.User) bool { return u.UserID == alice }) {
		t.Fatalf("carol's members after alice's removal %+v", us)
	}
	talk(t, ch, carol, bob)
	_ = everyone
}

// TestOwnDeviceRules: the roles policy lets a user add and remove its own
// devices only: a member's engine-made removal of another user's device
// is refused by every member, its removal of its own device accepted.
func TestOwnDeviceRules(t *testing.T) {
	ctx := context.Background()
	bob := newSQLPeer(t, "bob", channel.Options{}, false)
	laptop := newSQLPeer(t, "alice", channel.Options{}, false)
	phone := linkPeer(t, laptop, "phone")
	carol := newSQLPeer(t, "carol", channel.Options{}, false)
	ch := must[*channel.Descriptor](t)(bob.CreateChannel(ctx, "team", false)).ID
	tok, _ := must2(t)(bob.InviteUser(ctx, ch, identity.UserID(laptop.Identity()),
		[][]byte{must[[]byte](t)(laptop.GenerateKeyPackage(ctx)), must[[]byte](t)(phone.GenerateKeyPackage(ctx))}, channel.RoleMember))
	for _, p := range []*peer{laptop, phone} {
		must[*channel.Descriptor](t)(p.JoinChannel(ctx, tok))
	}
	c := invite(t, bob, carol, ch)
	receiveKind(t, laptop, c, channel.EventMemberJoined)
	receiveKind(t, phone, c, channel.EventMemberJoined)

	leafOf := func(p *peer) tree.LeafIndex {
		for _, m := range must[[]channel.Member](t)(bob.Leaves(ctx, ch)) {
			if m.DeviceID == p.p.DeviceID() {
				return tree.LeafIndex(m.LeafIndex)
			}
		}
		t.Fatal("no such device")
		return 0
	}
	// A member may not remove another user's device: carol's Manager and
	// engine refuse, and a rogue member's commit is refused by everyone.
	if _, err := carol.RemoveDevice(ctx, ch, identity.UserID(laptop.Identity()), phone.p.DeviceID()); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("carol removes alice's phone: %v", err)
	}
	if _, err := carol.p.Commit(ctx, gid(t, ch), mls.CommitOptions{Remove: []tree.LeafIndex{leafOf(phone)}}); !errors.Is(err, mls.ErrPolicy) || !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("carol's own engine made the removal: %v", err)
	}
	mallory := rogueIn(t, bob, ch, laptop, phone, carol)
	refusedBy(t, ch, mallory.Commit(t, mls.CommitOptions{Remove: []tree.LeafIndex{leafOf(phone)}}), []*peer{bob, laptop, phone, carol},
		mls.ErrPolicy, channel.ErrPermission)
	// The laptop (a member) removes its own phone: accepted by all.
	if _, err := laptop.RemoveDevice(ctx, ch, identity.UserID(laptop.Identity()), laptop.p.DeviceID()); !errors.Is(err, channel.ErrRemoveSelf) {
		t.Fatalf("a device removes itself by commit: %v", err)
	}
	c = must[[]byte](t)(laptop.RemoveDevice(ctx, ch, identity.UserID(laptop.Identity()), phone.p.DeviceID()))
	receiveKind(t, bob, c, channel.EventMemberRemoved)
	receiveKind(t, carol, c, channel.EventMemberRemoved)
	receiveKind(t, phone, c, channel.EventRemoved)
	talk(t, ch, laptop, bob, carol)
}

var _ = time.Second

// TestRevocationTravelsWithRemoval: the commit removing a revoked device
// carries its revocation, so every member learns it from the group — not
// only from a relay directory that may leave it out — and then refuses
// the device's key packages when inviting its user elsewhere.
func TestRevocationTravelsWithRemoval(t *testing.T) {
	ctx := context.Background()
	bob := newSQLPeer(t, "bob", channel.Options{}, false)
	laptop := newSQLPeer(t, "alice", channel.Options{}, false)
	phone := linkPeer(t, laptop, "alice's phone")
	alice := identity.UserID(laptop.Identity())
	ch := must[*channel.Descriptor](t)(bob.CreateChannel(ctx, "team", false)).ID
	tok, _ := must2(t)(bob.InviteUser(ctx, ch, alice, [][]byte{must[[]byte](t)(laptop.GenerateKeyPackage(ctx)), must[[]byte](t)(phone.GenerateKeyPackage(ctx))}, channel.RoleMember))
	for _, p := range []*peer{laptop, phone} {
		if _, err := p.JoinChannel(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	stolen := must[[]byte](t)(phone.GenerateKeyPackage(ctx)) // a key package the thief keeps

	must[*identity.Revocation](t)(laptop.p.Revoke(ctx, phone.p.DeviceID()))
	if bob.p.IsRevoked(laptop.p.IdentityKey(), phone.p.DeviceID()) {
		t.Fatal("bob knows the revocation before the removal")
	}
	c := must[[]byte](t)(laptop.RemoveRevoked(ctx, ch))
	receiveKind(t, bob, c, channel.EventMemberRemoved)
	if !bob.p.IsRevoked(laptop.p.IdentityKey(), phone.p.DeviceID()) {
		t.Fatal("the removal did not teach bob the revocation")
	}
	other := must[*channel.Descriptor](t)(bob.CreateChannel(ctx, "elsewhere", false)).ID
	if _, _, err := bob.InviteUser(ctx, other, alice, [][]byte{must[[]byte](t)(laptop.GenerateKeyPackage(ctx)), stolen}, channel.RoleMember); !errors.Is(err, identity.ErrRevoked) {
		t.Fatalf("inviting alice with the revoked phone's key package: %v", err)
	}
	talk(t, ch, laptop, bob)
}
