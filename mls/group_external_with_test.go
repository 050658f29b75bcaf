package mls_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// extPSKs is a PSK store for the external-commit tests.
func extPSKs(known map[string][]byte) mls.PSKLookup {
	return func(id *schedule.PreSharedKeyID) ([]byte, error) {
		if sec, ok := known[string(id.PSKID)]; ok && id.Type == schedule.PSKTypeExternal {
			return sec, nil
		}
		return nil, fmt.Errorf("no PSK %q", id.PSKID)
	}
}

// extTwo is alice and bob in a group of s, with their configurations.
func extTwo(t *testing.T, s *suite.Suite, cfg, bobCfg mls.Config) (a, b *mls.Group) {
	t.Helper()
	alice, bob := newClient(s, "alice"), newClient(s, "bob")
	a, err := mls.CreateGroup(s, alice.signer, nil, mls.LeafOptions{Credential: alice.cred}, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Commit(mls.CommitOptions{Add: []*mls.KeyPackage{bob.kp}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := mls.JoinFromWelcome(res.Welcome, nil, bob.find(s), bobCfg)
	if err != nil {
		t.Fatal(err)
	}
	return res.State, j.Group
}

// TestJoinByExternalCommitWith: an external commit injects PSKs and
// removes the joiner's prior leaf under a new signature key (RFC 9420
// §12.2, §12.4.3.2); members that lack a PSK, bad prior leaves, a
// successor of another identity and reinit PSKs are refused, and a refused
// commit leaves the receiver as it was.
func TestJoinByExternalCommitWith(t *testing.T) {
	s := suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	psk := schedule.PreSharedKeyID{Type: schedule.PSKTypeExternal, PSKID: []byte("shared")}
	reinitPSK := schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption, Usage: schedule.UsageReinit, PSKGroupID: []byte("g"), PSKEpoch: 1}
	both := mls.Config{PSKs: extPSKs(map[string][]byte{"shared": []byte("secret")}), RatchetTreeInWelcome: true}
	leaf := func(i uint32) *tree.LeafIndex { l := tree.LeafIndex(i); return &l }
	for _, c := range []struct {
		name      string
		joiner    string // identity of the joiner (a new signature key)
		joinerCfg mls.Config
		bobCfg    mls.Config // bob's configuration (alice has both)
		o         mls.ExternalCommitOptions
		joinErr   error // the joiner refuses
		bobErr    error // bob refuses (nil: accepts)
	}{
		{name: "psk", joiner: "carol", joinerCfg: both, bobCfg: both, o: mls.ExternalCommitOptions{PSKs: []schedule.PreSharedKeyID{psk}}},
		{name: "psk unknown to a member", joiner: "carol", joinerCfg: both, bobCfg: mls.Config{RatchetTreeInWelcome: true},
			o: mls.ExternalCommitOptions{PSKs: []schedule.PreSharedKeyID{psk}}, bobErr: mls.ErrMissingPSK},
		{name: "psk unknown to the joiner", joiner: "carol", bobCfg: both,
			o: mls.ExternalCommitOptions{PSKs: []schedule.PreSharedKeyID{psk}}, joinErr: mls.ErrMissingPSK},
		{name: "reinit psk", joiner: "carol", joinerCfg: both, bobCfg: both,
			o: mls.ExternalCommitOptions{PSKs: []schedule.PreSharedKeyID{reinitPSK}}, joinErr: mls.ErrInvalidProposal},
		{name: "resync of bob with psk", joiner: "bob", joinerCfg: both, bobCfg: both,
			o: mls.ExternalCommitOptions{RemovePrior: leaf(1), PSKs: []schedule.PreSharedKeyID{psk}}},
		{name: "resync of bob", joiner: "bob", bobCfg: both, o: mls.ExternalCommitOptions{RemovePrior: leaf(1)}},
		{name: "resync of someone else", joiner: "mallory", bobCfg: both, o: mls.ExternalCommitOptions{RemovePrior: leaf(1)},
			joinErr: mls.ErrInvalidCredential},
		{name: "prior leaf outside the tree", joiner: "bob", bobCfg: both, o: mls.ExternalCommitOptions{RemovePrior: leaf(7)},
			joinErr: mls.ErrInvalidProposal},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := extTwo(t, s, both, c.bobCfg)
			gi, err := a.GroupInfo(true)
			if err != nil {
				t.Fatal(err)
			}
			j := newClient(s, c.joiner)
			msg, g, err := mls.JoinByExternalCommitWith(s, j.signer, gi, nil, mls.LeafOptions{Credential: j.cred}, c.joinerCfg, c.o)
			if !errors.Is(err, c.joinErr) {
				t.Fatalf("join: %v, want %v", err, c.joinErr)
			}
			if err != nil {
				return
			}
			pa, err := a.Process(msg)
			if err != nil {
				t.Fatalf("alice: %v", err)
			}
			if !bytes.Equal(pa.State.EpochAuthenticator(), g.EpochAuthenticator()) {
				t.Fatal("alice and the joiner disagree")
			}
			before := b.EpochAuthenticator()
			pb, err := b.Process(msg)
			if !errors.Is(err, c.bobErr) {
				t.Fatalf("bob: %v, want %v", err, c.bobErr)
			}
			if err != nil {
				if !bytes.Equal(b.EpochAuthenticator(), before) || b.Epoch() != pa.State.Epoch()-1 {
					t.Fatal("a refused commit changed bob's state")
				}
				return
			}
			if c.o.RemovePrior != nil {
				if !pb.State.Removed() {
					t.Fatal("the prior bob is not removed")
				}
				old, now := b.RatchetTree(), g.RatchetTree()
				if bytes.Equal(leafKey(t, old, *c.o.RemovePrior), leafKey(t, now, g.OwnLeafIndex())) {
					t.Fatal("the resync reuses the removed leaf's encryption key")
				}
				return
			}
			if !bytes.Equal(pb.State.EpochAuthenticator(), g.EpochAuthenticator()) {
				t.Fatal("bob and the joiner disagree")
			}
		})
	}
}

// leafKey is the encryption key of leaf i of a ratchet tree.
func leafKey(t *testing.T, rt tree.RatchetTreeNodes, i tree.LeafIndex) []byte {
	t.Helper()
	tr, err := tree.New(rt)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Leaf(i).EncryptionKey
}
