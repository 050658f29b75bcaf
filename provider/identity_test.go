package provider_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/provider/providertest"
	"github.com/spacepanda/spacepanda/store/memory"
)

// ownLeaf is p's leaf in the group.
func ownLeaf(t testing.TB, p *provider.Provider, gid []byte) *tree.LeafNode {
	t.Helper()
	var ln *tree.LeafNode
	if err := p.View(ctx, gid, func(g *mls.Group) error {
		l := *g.RatchetTree()[int(g.OwnLeafIndex())*2].Leaf
		ln = &l
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ln
}

// leafOf is the leaf whose signature key is sigKey in p's view of the group.
func leafOf(t testing.TB, p *provider.Provider, gid, sigKey []byte) *tree.LeafNode {
	t.Helper()
	var ln *tree.LeafNode
	if err := p.View(ctx, gid, func(g *mls.Group) error {
		for _, n := range g.RatchetTree() {
			if n != nil && n.Leaf != nil && bytes.Equal(n.Leaf.SignatureKey, sigKey) {
				l := *n.Leaf
				ln = &l
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		t.Fatalf("no leaf with signature key %x", sigKey[:4])
	}
	return ln
}

// checkDeviceLeaf checks that ln is p's device: user id credential, its
// certificate and display name, both listed in its capabilities.
func checkDeviceLeaf(t testing.TB, what string, p *provider.Provider, ln *tree.LeafNode) {
	t.Helper()
	if string(ln.Credential.Identity) != string(p.UserID()) {
		t.Fatalf("%s: credential %q, user id %s", what, ln.Credential.Identity, p.UserID())
	}
	cert, err := identity.LeafCertificate(ln)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if cert.UserID() != p.UserID() || cert.Device.ID != p.DeviceID() || !bytes.Equal(cert.Device.SignatureKey, ln.SignatureKey) {
		t.Fatalf("%s: certificate of %s device %s", what, cert.UserID().Short(), cert.Device.ID)
	}
	if got := provider.LeafDisplayName(ln); got != p.DisplayName() {
		t.Fatalf("%s: display name %q, want %q", what, got, p.DisplayName())
	}
	for _, x := range []tree.ExtensionType{identity.ExtensionTypeDeviceCertificate, provider.ExtensionTypeDisplayName} {
		if !slices.Contains(ln.Capabilities.Extensions, x) {
			t.Fatalf("%s: capabilities %v lack 0x%04x", what, ln.Capabilities.Extensions, uint16(x))
		}
	}
}

// TestDeviceIdentity: a new provider is a new user whose user id is the
// hash of its identity key, kept across restarts; every leaf it makes —
// key package, created group, commit path — carries its certificate and
// display name.
func TestDeviceIdentity(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, "Alice")
	uid, dev, ik := p.UserID(), p.DeviceID(), p.IdentityKey()
	if _, err := identity.ParseUserID(string(uid)); err != nil || identity.UserIDFromKey(ik) != uid {
		t.Fatalf("user id %q is not the identity key's (%v)", uid, err)
	}
	if !p.HoldsIdentityKey() || dev.IsZero() || p.DisplayName() != "Alice" {
		t.Fatalf("holds key %v, device %s, name %q", p.HoldsIdentityKey(), dev, p.DisplayName())
	}
	cert := p.Certificate()
	if err := cert.VerifySignature(); err != nil || cert.Device.ID != dev || !bytes.Equal(cert.Device.SignatureKey, p.SignaturePublicKey()) {
		t.Fatalf("certificate %+v: %v", cert, err)
	}
	if c := p.Credential(); string(c.Identity) != string(uid) || c.CredentialType != tree.CredentialTypeBasic {
		t.Fatalf("credential %+v", c)
	}
	kp := newKeyPackage(t, p)
	checkDeviceLeaf(t, "key package", p, &kp.LeafNode)
	if err := p.ValidateKeyPackage(kp); err != nil {
		t.Fatal(err)
	}
	gid, err := p.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkDeviceLeaf(t, "created group", p, ownLeaf(t, p, gid))
	if _, err := p.CommitNow(ctx, gid, mls.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	checkDeviceLeaf(t, "commit path", p, ownLeaf(t, p, gid))
	p.Close()

	p = open(t, dir, "")
	if p.UserID() != uid || p.DeviceID() != dev || p.IdentityKey() != ik || !p.HoldsIdentityKey() || p.DisplayName() != "Alice" {
		t.Fatalf("after restart: user %s device %s name %q", p.UserID().Short(), p.DeviceID(), p.DisplayName())
	}
	if !bytes.Equal(must(t)(p.Certificate().Marshal()), must(t)(cert.Marshal())) {
		t.Fatal("the certificate changed across a restart")
	}
}

func must(t testing.TB) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestLegacyStoreRefused: a store written before user ids were derived
// from keys (schema 1, identity "alice") opens, is migrated, and is then
// refused with a typed error that says what to do; it is not changed.
func TestLegacyStoreRefused(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, "alice")
	gid, err := p.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	raw, err := sql.Open("sqlite", filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{ // schema version 1, as the old program left it
		`ALTER TABLE identity DROP COLUMN device_id`,
		`ALTER TABLE identity DROP COLUMN certificate`,
		`ALTER TABLE identity DROP COLUMN private_identity`,
		`ALTER TABLE identity DROP COLUMN display_name`,
		`UPDATE identity SET name = 'alice'`,
		`DROP TABLE revocations`,
		`DROP TABLE client_records`,
		`ALTER TABLE channels DROP COLUMN name_sealed`,
		`ALTER TABLE messages DROP COLUMN meta`,
		`ALTER TABLE channels DROP COLUMN extra_sealed`,
		`DELETE FROM schema_migrations WHERE version > 1`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	for range 2 {
		_, err = provider.Open(ctx, dir, provider.OpenOptions{Options: provider.Options{Name: "alice"}})
		if !errors.Is(err, provider.ErrLegacyIdentity) || !strings.Contains(err.Error(), `"alice"`) || !strings.Contains(err.Error(), "new data directory") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("legacy store: %v", err)
		}
	}
	// Nothing was lost: the old group is still in the store.
	raw, _ = sql.Open("sqlite", filepath.Join(dir, "store.db"))
	defer raw.Close()
	var n int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM groups WHERE group_id = ?`, gid).Scan(&n); err != nil || n != 1 {
		t.Fatalf("old group rows %d, %v", n, err)
	}
}

// link runs the whole device link between a device holding the identity
// key and a new one, as the sync engine will over the relay's mailbox.
func link(t testing.TB, holder, newDev *provider.Provider) *identity.Certificate {
	t.Helper()
	offer, err := identity.NewLinkOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	join, err := identity.NewLinkJoin(offer.Code(), newDev.Device(), newDev.LinkSigner(), "phone", nil)
	if err != nil {
		t.Fatal(err)
	}
	req, err := join.Respond(offer.Hello())
	if err != nil {
		t.Fatal(err)
	}
	lr, err := offer.ReadRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if lr.Device.ID != newDev.DeviceID() || lr.Name != "phone" {
		t.Fatalf("link request %+v", lr)
	}
	msg, issued, err := holder.AcceptLink(offer, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := join.Finish(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(must(t)(cert.Marshal()), must(t)(issued.Marshal())) {
		t.Fatal("the new device got another certificate than the one issued")
	}
	if err := newDev.InstallCertificate(ctx, cert); err != nil {
		t.Fatal(err)
	}
	return cert
}

func openLinking(t testing.TB, dir, name string) *provider.Provider {
	t.Helper()
	p, err := provider.Open(ctx, dir, provider.OpenOptions{Options: provider.Options{Name: name, Link: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestLinkedDevice: a device made to be linked has no user and can do
// nothing in groups until another device of the user certifies it; then
// it is that user (without the identity key), across restarts, and its
// leaves are accepted by strict members next to the first device's.
func TestLinkedDevice(t *testing.T) {
	laptop := open(t, t.TempDir(), "alice")
	phoneDir := t.TempDir()
	phone := openLinking(t, phoneDir, "alice's phone")
	if phone.UserID() != "" || phone.Certificate() != nil || phone.HoldsIdentityKey() {
		t.Fatalf("an unlinked device has user %q", phone.UserID())
	}
	if _, err := phone.GenerateKeyPackages(ctx, 1); !errors.Is(err, provider.ErrNotLinked) {
		t.Fatalf("key package before linking: %v", err)
	}
	if _, err := phone.CreateGroup(ctx, nil, nil); !errors.Is(err, provider.ErrNotLinked) {
		t.Fatalf("group before linking: %v", err)
	}

	// Certificates that are not for this device are refused.
	other, err := identity.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	wrongDev, _ := identity.NewDeviceID(nil)
	d, _ := identity.NewDevice(wrongDev, phone.Suite().ID(), phone.SignaturePublicKey())
	c, _ := other.Certify(d, time.Now(), 0)
	if err := phone.InstallCertificate(ctx, c); !errors.Is(err, provider.ErrCertificate) {
		t.Fatalf("certificate for another device id: %v", err)
	}
	forged, _ := other.Certify(phone.Device(), time.Now(), 0)
	forged.Signature[0] ^= 1
	if err := phone.InstallCertificate(ctx, forged); !errors.Is(err, provider.ErrCertificate) || !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("forged certificate: %v", err)
	}

	link(t, laptop, phone)
	if phone.UserID() != laptop.UserID() || phone.IdentityKey() != laptop.IdentityKey() || phone.HoldsIdentityKey() || phone.DeviceID() == laptop.DeviceID() {
		t.Fatalf("linked phone: user %s, holds key %v", phone.UserID().Short(), phone.HoldsIdentityKey())
	}
	if _, _, err := phone.AcceptLink(nil, 0); !errors.Is(err, provider.ErrNoIdentityKey) {
		t.Fatalf("a linked device certifies: %v", err)
	}
	if _, err := phone.Revoke(ctx, laptop.DeviceID()); !errors.Is(err, provider.ErrNoIdentityKey) {
		t.Fatalf("a linked device revokes: %v", err)
	}
	// A certificate of another user for the same device is refused now.
	c, _ = other.Certify(phone.Device(), time.Now(), 0)
	if err := phone.InstallCertificate(ctx, c); !errors.Is(err, provider.ErrIdentityMismatch) {
		t.Fatalf("another user's certificate on a linked device: %v", err)
	}
	phone.Close()
	phone = openLinking(t, phoneDir, "")
	if phone.UserID() != laptop.UserID() || phone.DisplayName() != "alice's phone" {
		t.Fatalf("linked phone after restart: %q %q", phone.UserID(), phone.DisplayName())
	}

	// Both devices in bob's group, which takes certified leaves only.
	bob := open(t, t.TempDir(), "bob")
	gid := groupOf(t, bob, laptop, phone)
	checkDeviceLeaf(t, "the phone in bob's view", phone, leafOf(t, bob, gid, phone.SignaturePublicKey()))
	checkDeviceLeaf(t, "the laptop in the phone's view", laptop, leafOf(t, phone, gid, laptop.SignaturePublicKey()))
	// The phone commits; bob and the laptop follow.
	pc, err := phone.CommitNow(ctx, gid, mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*provider.Provider{bob, laptop} {
		if _, err := p.Process(ctx, gid, pc.Commit); err != nil {
			t.Fatal(err)
		}
	}
}

// groupOf makes creator's group with the others added in one commit and
// joined.
func groupOf(t testing.TB, creator *provider.Provider, others ...*provider.Provider) []byte {
	t.Helper()
	gid, err := creator.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kps []*mls.KeyPackage
	for _, p := range others {
		kps = append(kps, newKeyPackage(t, p))
	}
	res, err := creator.CommitNow(ctx, gid, mls.CommitOptions{Add: kps})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range others {
		if _, err := p.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
			t.Fatal(err)
		}
	}
	return gid
}

// TestRevokedDevice: a device revoked by its user's identity key is
// refused by every member that knows the revocation — its key packages,
// its commits, the trees of groups it is in — with state unchanged, and
// the revocation survives a restart. A forged revocation changes nothing.
func TestRevokedDevice(t *testing.T) {
	laptop := open(t, t.TempDir(), "alice")
	phone := openLinking(t, t.TempDir(), "phone")
	link(t, laptop, phone)
	bobDir := t.TempDir()
	bob := open(t, bobDir, "bob")
	gid := groupOf(t, bob, laptop, phone)
	spare := newKeyPackage(t, phone) // published before the revocation

	rev, err := laptop.Revoke(ctx, phone.DeviceID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Revoke(ctx, laptop.DeviceID()); err == nil {
		t.Fatal("a device revoked itself")
	}
	forged := *rev
	forged.DeviceID = laptop.DeviceID()
	if err := bob.AddRevocation(ctx, &forged); !errors.Is(err, identity.ErrBadSignature) || bob.IsRevoked(forged.IdentityKey, forged.DeviceID) {
		t.Fatalf("forged revocation: %v", err)
	}
	if err := bob.AddRevocation(ctx, rev); err != nil {
		t.Fatal(err)
	}

	// The phone's commit (its path leaf) is refused by bob, who learned the
	// revocation, and by the laptop, which issued it.
	pc, err := phone.CommitNow(ctx, gid, mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*provider.Provider{bob, laptop} {
		epoch := epochOf(t, p, gid)
		if _, err := p.Process(ctx, gid, pc.Commit); !errors.Is(err, identity.ErrRevoked) || !errors.Is(err, mls.ErrInvalidCredential) {
			t.Fatalf("the revoked device's commit: %v", err)
		}
		if epochOf(t, p, gid) != epoch {
			t.Fatal("a refused commit moved the epoch")
		}
	}
	// Its key package is refused in an Add, and in a key package check.
	gid2, err := bob.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CommitNow(ctx, gid2, mls.CommitOptions{Add: []*mls.KeyPackage{spare}}); !errors.Is(err, identity.ErrRevoked) {
		t.Fatalf("the revoked device's key package: %v", err)
	}
	if err := bob.ValidateKeyPackage(spare); !errors.Is(err, identity.ErrRevoked) {
		t.Fatalf("ValidateKeyPackage: %v", err)
	}
	// A newcomer who knows the revocation refuses to join a group that
	// still holds the device.
	carol := open(t, t.TempDir(), "carol")
	if err := carol.AddRevocation(ctx, rev); err != nil {
		t.Fatal(err)
	}
	res, err := bob.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{newKeyPackage(t, carol)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Join(ctx, res.Welcome, res.RatchetTree); !errors.Is(err, identity.ErrRevoked) {
		t.Fatalf("joining a group with a revoked device: %v", err)
	}
	if gs, _ := carol.Groups(ctx); len(gs) != 0 {
		t.Fatal("a refused join stored the group")
	}
	// The revoked device learns it and stops making leaves.
	if err := phone.AddRevocation(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.GenerateKeyPackages(ctx, 1); !errors.Is(err, provider.ErrSelfRevoked) {
		t.Fatalf("a revoked device makes key packages: %v", err)
	}
	// Kept across a restart.
	bob.Close()
	bob = open(t, bobDir, "")
	if !bob.IsRevoked(rev.IdentityKey, rev.DeviceID) || len(bob.Revocations()) != 1 {
		t.Fatal("the revocation did not survive a restart")
	}
}

// twin is a rogue device certified by r's own identity key under r's own
// device id, with another signature key: one device in a group twice.
func twin(t testing.TB, r *providertest.Rogue) *providertest.Rogue {
	t.Helper()
	tw := providertest.NewRogue(t, r.Suite.ID(), r.Caps)
	tw.Identity, tw.DeviceID = r.Identity, r.DeviceID
	tw.Cert = tw.CertifiedBy(t, r.Identity, r.DeviceID)
	return tw
}

// TestDuplicateDevice: no two leaves may hold the same (user, device),
// even when the user's identity key certified both: a commit that would
// make one is refused by every honest member with its state unchanged, a
// Welcome into such a tree is refused, and an honest member does not make
// one.
func TestDuplicateDevice(t *testing.T) {
	alice, carol := open(t, t.TempDir(), "alice"), open(t, t.TempDir(), "carol")
	mallory := providertest.NewRogue(t, alice.Suite().ID(), alice.Capabilities())
	gid, err := alice.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{newKeyPackage(t, carol), decodeKP(t, mallory.OwnKeyPackage(t))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
		t.Fatal(err)
	}
	mallory.Join(t, marshalMsg(t, res.Welcome), marshalBytes(t, res.RatchetTree))

	second := twin(t, mallory).OwnKeyPackage(t)
	// An honest member does not commit it.
	if _, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{decodeKP(t, second)}}); !errors.Is(err, provider.ErrDuplicateDevice) {
		t.Fatalf("honest commit of a second leaf of one device: %v", err)
	}
	// The rogue commits it: refused by both honest members.
	dave := open(t, t.TempDir(), "dave")
	c := mallory.AddCommit(t, second, marshalKP(t, newKeyPackage(t, dave)))
	m, err := mls.UnmarshalMessage(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*provider.Provider{alice, carol} {
		epoch := epochOf(t, p, gid)
		if _, err := p.Process(ctx, gid, m); !errors.Is(err, provider.ErrDuplicateDevice) {
			t.Fatalf("the rogue's commit: %v", err)
		}
		if epochOf(t, p, gid) != epoch {
			t.Fatal("a refused commit moved the epoch")
		}
	}
	// Nor does a newcomer join that tree.
	if _, err := dave.Join(ctx, lastWelcome(t, mallory), mallory.LastTree); !errors.Is(err, provider.ErrDuplicateDevice) {
		t.Fatalf("joining a tree with one device twice: %v", err)
	}
	// The honest members go on.
	if _, err := alice.CommitNow(ctx, gid, mls.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
}

func decodeKP(t testing.TB, b []byte) *mls.KeyPackage {
	t.Helper()
	m, err := mls.UnmarshalMessage(b)
	if err != nil || m.KeyPackage == nil {
		t.Fatalf("key package: %v", err)
	}
	return m.KeyPackage
}

func marshalKP(t testing.TB, kp *mls.KeyPackage) []byte {
	t.Helper()
	m, err := mls.NewMessage(kp)
	if err != nil {
		t.Fatal(err)
	}
	return marshalMsg(t, m)
}

func marshalMsg(t testing.TB, v wire.Marshaler) []byte {
	t.Helper()
	if w, ok := v.(*mls.Welcome); ok {
		m, err := mls.NewMessage(w)
		if err != nil {
			t.Fatal(err)
		}
		v = m
	}
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshalBytes(t testing.TB, v wire.Marshaler) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lastWelcome is the Welcome of the rogue's last commit, with the tree.
func lastWelcome(t testing.TB, r *providertest.Rogue) *mls.Welcome {
	t.Helper()
	w := r.LastWelcome
	if w == nil {
		t.Fatal("the rogue's last commit has no Welcome")
	}
	return w
}

// TestUnverifiedLeaves: leaves without a certificate enter only the groups
// Options.AllowUnverified names, and never with a user id; a provider
// without it refuses them everywhere.
func TestUnverifiedLeaves(t *testing.T) {
	// Plain groups: those without a required_capabilities extension.
	plain := func(gc *mls.GroupContext) bool { return !gc.Extensions.Has(tree.ExtensionTypeRequiredCapabilities) }
	alice, err := provider.New(ctx, memory.New(), provider.Options{Name: "alice", AllowUnverified: plain})
	if err != nil {
		t.Fatal(err)
	}
	strictOnly := openOn(t, memory.New(), "bob")
	rc := must(t)(wire.Marshal(&tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{},
		ProposalTypes: []tree.ProposalType{}, CredentialTypes: []tree.CredentialType{}}))
	strictExts := tree.Extensions{{ExtensionType: tree.ExtensionTypeRequiredCapabilities, ExtensionData: rc}}
	rogue := providertest.NewRogue(t, alice.Suite().ID(), mls.DefaultCapabilities())
	peer := decodeKP(t, rogue.KeyPackage(t, "carol"))
	claim := decodeKP(t, rogue.KeyPackage(t, string(alice.UserID())))

	cases := []struct {
		name string
		p    *provider.Provider
		exts tree.Extensions
		kp   *mls.KeyPackage
		want error // nil: admitted
	}{
		{"plain group, plain peer", alice, nil, peer, nil},
		{"group with rules, plain peer", alice, strictExts, peer, identity.ErrNoCertificate},
		{"plain group, uncertified user id", alice, nil, claim, identity.ErrUnverifiedUserID},
		{"no AllowUnverified, plain peer", strictOnly, nil, peer, identity.ErrNoCertificate},
	}
	for _, c := range cases {
		gid, err := c.p.CreateGroup(ctx, nil, c.exts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.p.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{c.kp}})
		if c.want == nil && err != nil || c.want != nil && (!errors.Is(err, c.want) || !errors.Is(err, mls.ErrInvalidCredential)) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestDisplayNames: what a display name may hold, its strict encoding,
// and a new one reaching a group with the device's next commit.
func TestDisplayNames(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"", true}, {"Alice", true}, {"Zoë 🐼", true}, {strings.Repeat("a", provider.MaxDisplayNameLen), true},
		{strings.Repeat("a", provider.MaxDisplayNameLen+1), false}, {"al\nice", false}, {"\x00", false},
		{"alice\u202egnp.exe", false}, {"\u200fbob", false}, {string([]byte{0xff}), false},
	} {
		if err := provider.CheckDisplayName(c.name); (err == nil) != c.ok || (err != nil && !errors.Is(err, provider.ErrInvalidDisplayName)) {
			t.Errorf("CheckDisplayName(%q) = %v", c.name, err)
		}
	}
	e, err := provider.DisplayNameExtension("Alice")
	if err != nil || !bytes.Equal(e.ExtensionData, []byte{1, 5, 'A', 'l', 'i', 'c', 'e'}) {
		t.Fatalf("encoding %x %v", e.ExtensionData, err)
	}
	for _, bad := range [][]byte{{}, {2, 5, 'A', 'l', 'i', 'c', 'e'}, {1, 5, 'A'}, {1, 1, 'A', 'x'}, {1, 0}, {1, 1, '\n'}} {
		if n, err := provider.ParseDisplayName(bad); err == nil {
			t.Errorf("ParseDisplayName(%x) = %q", bad, n)
		}
		ln := &tree.LeafNode{Extensions: tree.Extensions{{ExtensionType: provider.ExtensionTypeDisplayName, ExtensionData: bad}}}
		if n := provider.LeafDisplayName(ln); n != "" {
			t.Errorf("LeafDisplayName of %x = %q", bad, n)
		}
	}
	if _, err := provider.New(ctx, memory.New(), provider.Options{Name: "bad\x1bname"}); !errors.Is(err, provider.ErrInvalidDisplayName) {
		t.Fatalf("a new identity with a control character in its name: %v", err)
	}

	alice, bob := openOn(t, memory.New(), "alice"), openOn(t, memory.New(), "bob")
	gid, err := alice.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{newKeyPackage(t, bob)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetDisplayName(ctx, "Alice B."); err != nil {
		t.Fatal(err)
	}
	if n := provider.LeafDisplayName(leafOf(t, bob, gid, alice.SignaturePublicKey())); n != "alice" {
		t.Fatalf("bob sees %q before alice's commit", n)
	}
	res, err = alice.CommitNow(ctx, gid, mls.CommitOptions{NoPath: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Process(ctx, gid, res.Commit); err != nil {
		t.Fatal(err)
	}
	checkDeviceLeaf(t, "alice after renaming", alice, leafOf(t, bob, gid, alice.SignaturePublicKey()))
}

// TestCertificateRenewal: the device holding the identity key renews its
// own certificate when it starts within 30 days of its expiry, and its
// next commit carries the new one into the groups it is in, which accept
// it (same user, same device) — after the old one expired too.
func TestCertificateRenewal(t *testing.T) {
	clk := &clock{t: time.Now()}
	st := memory.New()
	o := provider.Options{Name: "alice", Now: clk.now, CertificateLifetime: 60 * 24 * time.Hour}
	alice, err := provider.New(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := provider.New(ctx, memory.New(), provider.Options{Name: "bob", Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	first := alice.Certificate()
	gid, err := alice.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{newKeyPackage(t, bob)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
		t.Fatal(err)
	}
	clk.add(61 * 24 * time.Hour) // alice's certificate has expired
	alice, err = provider.New(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	renewed := alice.Certificate()
	if renewed.NotAfter <= first.NotAfter || renewed.Device.ID != first.Device.ID || renewed.IdentityKey != first.IdentityKey {
		t.Fatalf("certificate not renewed: not_after %d -> %d", first.NotAfter, renewed.NotAfter)
	}
	res, err = alice.CommitNow(ctx, gid, mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Process(ctx, gid, res.Commit); err != nil {
		t.Fatalf("bob refuses alice's renewed certificate: %v", err)
	}
	cert, err := identity.LeafCertificate(leafOf(t, bob, gid, alice.SignaturePublicKey()))
	if err != nil || cert.NotAfter != renewed.NotAfter {
		t.Fatalf("bob sees alice's certificate until %d, want %d (%v)", cert.NotAfter, renewed.NotAfter, err)
	}
}

// TestExternalJoinLeaf: a device joining by external commit does so with
// its certificate and display name, and members accept it.
func TestExternalJoinLeaf(t *testing.T) {
	alice, bob := openOn(t, memory.New(), "alice"), openOn(t, memory.New(), "bob")
	gid, err := alice.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var gi *mls.GroupInfo
	if err := alice.View(ctx, gid, func(g *mls.Group) error { gi, err = g.GroupInfo(true); return err }); err != nil {
		t.Fatal(err)
	}
	ej, err := bob.JoinByExternalCommit(ctx, gi, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Process(ctx, gid, ej.Commit); err != nil {
		t.Fatal(err)
	}
	if err := bob.MergeExternalJoin(ctx, ej); err != nil {
		t.Fatal(err)
	}
	checkDeviceLeaf(t, "bob's external join", bob, leafOf(t, alice, gid, bob.SignaturePublicKey()))
	if epochOf(t, bob, gid) != epochOf(t, alice, gid) {
		t.Fatal("bob and alice in different epochs")
	}
}

var _ = suite.ID(0)

// TestCheckDevicesPrefix: CheckDevices tells devices apart by the prefix
// of their certificates' encoding; it must be the identity key and device
// id exactly, in every suite's certificate.
func TestCheckDevicesPrefix(t *testing.T) {
	pi, _ := identity.GenerateIdentity(nil)
	other, _ := identity.GenerateIdentity(nil)
	dev, _ := identity.NewDeviceID(nil)
	dev2, _ := identity.NewDeviceID(nil)
	leaf := func(p *identity.PrivateIdentity, d identity.DeviceID, sid suite.ID) *tree.Node {
		s, _ := suite.New(sid)
		_, pub, err := s.GenerateSignatureKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		dv, _ := identity.NewDevice(d, sid, pub)
		c, err := p.Certify(dv, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := c.Extension()
		return &tree.Node{Leaf: &tree.LeafNode{SignatureKey: pub, Extensions: tree.Extensions{e}}}
	}
	for _, sid := range suite.All() {
		for _, c := range []struct {
			name string
			a, b *tree.Node
			dup  bool
		}{
			{"same device, two keys", leaf(pi, dev, sid), leaf(pi, dev, sid), true},
			{"same user, two devices", leaf(pi, dev, sid), leaf(pi, dev2, sid), false},
			{"two users, one device id", leaf(pi, dev, sid), leaf(other, dev, sid), false},
			{"same device, another suite", leaf(pi, dev, sid), leaf(pi, dev, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519), true},
		} {
			err := provider.CheckDevices(tree.RatchetTreeNodes{c.a, nil, c.b})
			if c.dup != errors.Is(err, provider.ErrDuplicateDevice) {
				t.Errorf("%v %s: %v", sid, c.name, err)
			}
		}
	}
}

// TestIdentityChangesConcurrent: renaming while key packages are made and
// the identity is read is safe (go test -race), and the last name wins.
func TestIdentityChangesConcurrent(t *testing.T) {
	p := openOn(t, memory.New(), "alice")
	done := make(chan error, 3)
	go func() {
		for i := range 20 {
			if err := p.SetDisplayName(ctx, fmt.Sprintf("alice %d", i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		_, err := p.GenerateKeyPackages(ctx, 20)
		done <- err
	}()
	go func() {
		for range 200 {
			_ = p.DisplayName() + string(p.UserID())
			_ = p.Credential()
		}
		done <- nil
	}()
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if p.DisplayName() != "alice 19" {
		t.Fatalf("display name %q", p.DisplayName())
	}
	id, err := p.Store().Identity(ctx)
	if err != nil || id.DisplayName != "alice 19" {
		t.Fatalf("stored name %q, %v", id.DisplayName, err)
	}
}
