// Package providertest holds a hostile MLS client for attack tests: a
// member with real keys and a real device certificate whose engine checks
// nothing of what it sends (any credential, any successor, no policy), as
// a modified client's would. Tests use it to make the messages honest
// members must refuse. Never use it outside tests.
package providertest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Rogue is one device of its own user (Identity), in at most one group.
type Rogue struct {
	Suite    *suite.Suite
	Identity *identity.PrivateIdentity
	DeviceID identity.DeviceID
	Signer   *suite.Signer
	Cert     *identity.Certificate
	// Caps are the capabilities of its leaves (the device certificate is
	// always listed).
	Caps tree.Capabilities
	// Group is its state once it joined.
	Group *mls.Group
	// Public sends its proposals and commits as PublicMessage (what a
	// relay that verifies handshakes takes), from its next Join on.
	Public bool
	// LastWelcome and LastTree are the Welcome (nil if none) and the new
	// tree of its last commit.
	LastWelcome *mls.Welcome
	LastTree    tree.RatchetTreeNodes

	bundles []*mls.KeyPackageBundle
}

// NewRogue makes a device of a new user in suite sid whose leaves list
// caps (with the device certificate extension added).
func NewRogue(tb testing.TB, sid suite.ID, caps tree.Capabilities) *Rogue {
	tb.Helper()
	s, err := suite.New(sid)
	if err != nil {
		tb.Fatal(err)
	}
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := s.NewSigner(priv)
	if err != nil {
		tb.Fatal(err)
	}
	pi, err := identity.GenerateIdentity(nil)
	if err != nil {
		tb.Fatal(err)
	}
	dev, err := identity.NewDeviceID(nil)
	if err != nil {
		tb.Fatal(err)
	}
	r := &Rogue{Suite: s, Identity: pi, DeviceID: dev, Signer: signer, Caps: identity.Capabilities(caps)}
	r.Cert = r.CertifiedBy(tb, pi, dev)
	return r
}

// UserID is the rogue's own user id.
func (r *Rogue) UserID() identity.UserID { return r.Identity.UserID() }

// CertifiedBy is a certificate for the rogue's signature key as device dev
// of the identity pi (another user the attacker controls, or another
// device id of its own).
func (r *Rogue) CertifiedBy(tb testing.TB, pi *identity.PrivateIdentity, dev identity.DeviceID) *identity.Certificate {
	tb.Helper()
	d, err := identity.NewDevice(dev, r.Suite.ID(), r.Signer.PublicKey())
	if err != nil {
		tb.Fatal(err)
	}
	c, err := pi.Certify(d, time.Now(), 0)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Ext is c as a leaf extension.
func Ext(tb testing.TB, c *identity.Certificate) tree.Extension {
	tb.Helper()
	e, err := c.Extension()
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// OwnKeyPackage is an honest key package of the rogue: its user id and
// certificate (an MLSMessage).
func (r *Rogue) OwnKeyPackage(tb testing.TB) []byte {
	tb.Helper()
	return r.KeyPackage(tb, string(r.UserID()), Ext(tb, r.Cert))
}

// KeyPackage is a key package of the rogue's signature key presenting
// identityText with the leaf extensions exts (an impostor's, with a copied
// certificate or none), as an MLSMessage. The rogue can join with it.
func (r *Rogue) KeyPackage(tb testing.TB, identityText string, exts ...tree.Extension) []byte {
	tb.Helper()
	caps := r.Caps
	kp, priv, err := mls.NewKeyPackage(r.Suite, nil, r.Signer, tree.NewBasicCredential([]byte(identityText)),
		mls.KeyPackageOptions{Capabilities: &caps, LeafExtensions: exts})
	if err != nil {
		tb.Fatal(err)
	}
	r.bundles = append(r.bundles, &mls.KeyPackageBundle{KeyPackage: kp, Private: priv, Signer: r.Signer})
	m, err := mls.NewMessage(kp)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := wire.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Config is the rogue's engine configuration: everything goes.
func Config() mls.Config { return mls.Config{Credentials: anything{}} }

func (r *Rogue) config() mls.Config {
	c := Config()
	c.HandshakeAsPublic = r.Public
	return c
}

type anything struct{}

func (anything) ValidateCredential(*mls.CredentialCheck) error     { return nil }
func (anything) ValidateSuccessor(prev, next *tree.LeafNode) error { return nil }

// Join joins from a Welcome (MLSMessage) with one of its key packages;
// ratchetTree nil: the tree is in the Welcome.
func (r *Rogue) Join(tb testing.TB, welcome, ratchetTree []byte) {
	tb.Helper()
	m, err := mls.UnmarshalMessage(welcome)
	if err != nil || m.Welcome == nil {
		tb.Fatalf("rogue join: not a Welcome: %v", err)
	}
	var rt tree.RatchetTreeNodes
	if len(ratchetTree) > 0 {
		if err := wire.Unmarshal(ratchetTree, &rt); err != nil {
			tb.Fatal(err)
		}
	}
	find := func(ref mls.KeyPackageRef) (*mls.KeyPackageBundle, error) {
		for _, b := range r.bundles {
			if br, err := b.KeyPackage.Ref(r.Suite); err == nil && bytes.Equal(br, ref) {
				return b, nil
			}
		}
		return nil, mls.ErrKeyPackageNotFound
	}
	j, err := mls.JoinFromWelcome(m.Welcome, rt, find, r.config())
	if err != nil {
		tb.Fatalf("rogue join: %v", err)
	}
	r.Group = j.Group
}

// Commit commits o and adopts the new epoch at once (its own engine
// refuses nothing of the identity kind); it returns the commit as sent.
func (r *Rogue) Commit(tb testing.TB, o mls.CommitOptions) []byte {
	tb.Helper()
	res, err := r.Group.Commit(o)
	if err != nil {
		tb.Fatalf("rogue commit: %v", err)
	}
	r.Group, r.LastWelcome, r.LastTree = res.State, res.Welcome, res.RatchetTree
	return marshal(tb, res.Commit)
}

// AddCommit commits the Add of key packages (MLSMessages).
func (r *Rogue) AddCommit(tb testing.TB, keyPackages ...[]byte) []byte {
	tb.Helper()
	var o mls.CommitOptions
	for _, b := range keyPackages {
		m, err := mls.UnmarshalMessage(b)
		if err != nil || m.KeyPackage == nil {
			tb.Fatalf("not a key package: %v", err)
		}
		o.Add = append(o.Add, m.KeyPackage)
	}
	return r.Commit(tb, o)
}

// Send encrypts application data for the group.
func (r *Rogue) Send(tb testing.TB, data []byte) []byte {
	tb.Helper()
	m, err := r.Group.Encrypt(data, nil)
	if err != nil {
		tb.Fatalf("rogue send: %v", err)
	}
	return marshal(tb, m)
}

// Process processes a message of the group (a commit the others made)
// and adopts the result.
func (r *Rogue) Process(tb testing.TB, msg []byte) {
	tb.Helper()
	res, err := r.Group.ProcessBytes(msg)
	if err != nil {
		tb.Fatalf("rogue process: %v", err)
	}
	r.Group = res.State
}

// ProposeUpdate proposes its own leaf changed by change (before it is
// signed again): a swapped credential or certificate.
func (r *Rogue) ProposeUpdate(tb testing.TB, change func(ln *tree.LeafNode)) []byte {
	tb.Helper()
	g := r.Group
	rt := g.RatchetTree()
	ln := *rt[int(g.OwnLeafIndex())*2].Leaf
	_, pub, err := r.Suite.GenerateHPKEKeyPair()
	if err != nil {
		tb.Fatal(err)
	}
	ln.EncryptionKey, ln.LeafNodeSource, ln.Lifetime, ln.ParentHash = pub, tree.LeafNodeSourceUpdate, tree.Lifetime{}, nil
	ln.Extensions = append(tree.Extensions(nil), ln.Extensions...)
	change(&ln)
	if err := ln.Sign(r.Suite, r.Signer, g.GroupID(), g.OwnLeafIndex()); err != nil {
		tb.Fatal(err)
	}
	msg, next, err := g.Propose(&mls.Proposal{ProposalType: tree.ProposalTypeUpdate, Update: &mls.Update{LeafNode: ln}})
	if err != nil {
		tb.Fatalf("rogue update: %v", err)
	}
	r.Group = next
	return marshal(tb, msg)
}

// TamperOwnLeaf rewrites its own stored state, replacing the bytes old by
// new (of the same length: a user id by another, a certificate by another
// of the same scheme), so that its next commit's path leaf — a copy of
// its own leaf — carries them: what a modified client can do to its own
// disk.
func (r *Rogue) TamperOwnLeaf(tb testing.TB, pairs ...[2][]byte) {
	tb.Helper()
	es, err := r.Group.MarshalEpochState()
	if err != nil {
		tb.Fatal(err)
	}
	rs, err := r.Group.MarshalRatchetState()
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range pairs {
		if len(p[0]) != len(p[1]) || !bytes.Contains(es, p[0]) {
			tb.Fatalf("tamper: %d bytes not in the state or not replaced by as many (%d)", len(p[0]), len(p[1]))
		}
		es = bytes.ReplaceAll(es, p[0], p[1])
	}
	g, err := mls.LoadGroup(es, rs, r.Signer, r.config())
	if err != nil {
		tb.Fatalf("tamper: reload: %v", err)
	}
	r.Group = g
}

func marshal(tb testing.TB, m *mls.Message) []byte {
	tb.Helper()
	b, err := wire.Marshal(m)
	if err != nil {
		tb.Fatal(fmt.Errorf("marshal: %w", err))
	}
	return b
}
