package mls

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// welcomeFixture is a committer's new epoch ready to welcome members.
type welcomeFixture struct {
	s         *suite.Suite
	committer *kpMember
	gi        *GroupInfo
	epoch     *schedule.EpochSecrets
	psks      []schedule.PreSharedKeyID
}

func newWelcomeFixture(t *testing.T, id suite.ID, psks []schedule.PreSharedKeyID) *welcomeFixture {
	t.Helper()
	s := suite.MustNew(id)
	c := newKPMember(t, s, 100, "committer", KeyPackageOptions{})
	gc := GroupContext{
		Version: tree.ProtocolVersionMLS10, CipherSuite: id, GroupID: []byte("group"), Epoch: 1,
		TreeHash: bytes.Repeat([]byte{1}, s.HashSize()), ConfirmedTranscriptHash: bytes.Repeat([]byte{2}, s.HashSize()),
		Extensions: tree.Extensions{},
	}
	gcBytes, err := wire.Marshal(&gc)
	if err != nil {
		t.Fatal(err)
	}
	pskSecret := make([]byte, s.HashSize())
	if len(psks) > 0 {
		pskSecret = bytes.Repeat([]byte{9}, s.HashSize()) // stands in for PSKSecret
	}
	epoch, err := schedule.NewEpoch(s, bytes.Repeat([]byte{3}, s.HashSize()), nil, pskSecret, gcBytes)
	if err != nil {
		t.Fatal(err)
	}
	gi := &GroupInfo{
		GroupContext:    gc,
		Extensions:      tree.Extensions{},
		ConfirmationTag: s.MAC(epoch.ConfirmationKey, gc.ConfirmedTranscriptHash),
		Signer:          3,
	}
	if err := SignGroupInfo(c.signer, gi); err != nil {
		t.Fatal(err)
	}
	return &welcomeFixture{s: s, committer: c, gi: gi, epoch: epoch, psks: psks}
}

func (f *welcomeFixture) build(t *testing.T, rs ...welcomeRecipient) *Welcome {
	t.Helper()
	w, err := newWelcome(f.s, f.gi, f.epoch.WelcomeSecret, f.epoch.JoinerSecret, f.psks, rs)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// join opens w as m and checks everything a joiner can check without a tree.
func (f *welcomeFixture) join(t *testing.T, w *Welcome, m *kpMember, wantPath []byte) {
	t.Helper()
	s := f.s
	ref, err := m.kp.Ref(s)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := decryptGroupSecrets(s, w, ref, m.priv.InitKey)
	if err != nil {
		t.Fatalf("group secrets: %v", err)
	}
	if !bytes.Equal(gs.JoinerSecret, f.epoch.JoinerSecret) || !bytes.Equal(gs.PathSecret, wantPath) || len(gs.PSKs) != len(f.psks) {
		t.Fatal("group secrets differ from what the committer sent")
	}
	var pskSecret []byte
	if len(gs.PSKs) > 0 {
		pskSecret = bytes.Repeat([]byte{9}, s.HashSize())
	}
	ws, err := schedule.WelcomeSecret(s, gs.JoinerSecret, pskSecret)
	if err != nil {
		t.Fatal(err)
	}
	gi, err := decryptGroupInfo(s, w, ws)
	if err != nil {
		t.Fatalf("group info: %v", err)
	}
	if err := VerifyGroupInfo(s, gi, f.committer.signer.PublicKey()); err != nil {
		t.Fatalf("group info signature: %v", err)
	}
	gc, _ := wire.Marshal(&gi.GroupContext)
	e, err := schedule.Derive(s, gs.JoinerSecret, pskSecret, gc)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyConfirmationTag(s, gi.ConfirmationTag, e.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash); err != nil {
		t.Fatal(err)
	}
}

func TestWelcomeRoundTrip(t *testing.T) {
	for _, id := range suite.All() {
		t.Run(id.String(), func(t *testing.T) {
			var psks []schedule.PreSharedKeyID
			if id%2 == 0 {
				nonce := bytes.Repeat([]byte{7}, suite.MustNew(id).HashSize())
				psks = []schedule.PreSharedKeyID{{Type: schedule.PSKTypeExternal, PSKID: []byte("psk"), Nonce: nonce}}
			}
			f := newWelcomeFixture(t, id, psks)
			bob := newKPMember(t, f.s, 1, "bob", KeyPackageOptions{})
			carol := newKPMember(t, f.s, 2, "carol", KeyPackageOptions{})
			path := bytes.Repeat([]byte{5}, f.s.HashSize())
			w := f.build(t, welcomeRecipient{KeyPackage: bob.kp, PathSecret: path}, welcomeRecipient{KeyPackage: carol.kp})

			// Over the wire and back.
			msg, _ := NewMessage(w)
			enc, err := wire.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			back, err := UnmarshalMessage(enc)
			if err != nil {
				t.Fatal(err)
			}
			if len(back.Welcome.Secrets) != 2 {
				t.Fatalf("%d entries", len(back.Welcome.Secrets))
			}
			f.join(t, back.Welcome, bob, path)
			f.join(t, back.Welcome, carol, nil)
		})
	}
}

func TestWelcomeErrors(t *testing.T) {
	f := newWelcomeFixture(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, nil)
	s := f.s
	bob := newKPMember(t, s, 1, "bob", KeyPackageOptions{})
	carol := newKPMember(t, s, 2, "carol", KeyPackageOptions{})
	dave := newKPMember(t, s, 3, "dave", KeyPackageOptions{})
	w := f.build(t, welcomeRecipient{KeyPackage: bob.kp}, welcomeRecipient{KeyPackage: carol.kp})

	t.Run("no entry for our key package", func(t *testing.T) {
		ref, _ := dave.kp.Ref(s)
		_, err := decryptGroupSecrets(s, w, ref, dave.priv.InitKey)
		if !errors.Is(err, ErrNoMatchingKeyPackage) {
			t.Fatalf("got %v, want ErrNoMatchingKeyPackage", err)
		}
		var nm *NoMatchingKeyPackageError
		if !errors.As(err, &nm) || len(nm.Wanted) != 1 || len(nm.Have) != 2 {
			t.Fatalf("got %#v", err)
		}
		bobRef, _ := bob.kp.Ref(s)
		for _, want := range []string{hex.EncodeToString(ref), hex.EncodeToString(bobRef)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name ref %s", err, want)
			}
		}
	})
	t.Run("ref over the MLSMessage instead of the KeyPackage", func(t *testing.T) {
		msg, _ := NewMessage(bob.kp)
		enc, _ := wire.Marshal(msg)
		_, err := decryptGroupSecrets(s, w, s.MakeKeyPackageRef(enc), bob.priv.InitKey)
		if !errors.Is(err, ErrNoMatchingKeyPackage) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong init key", func(t *testing.T) {
		ref, _ := bob.kp.Ref(s)
		if _, err := decryptGroupSecrets(s, w, ref, carol.priv.InitKey); !errors.Is(err, ErrDecryption) {
			t.Fatalf("got %v, want ErrDecryption", err)
		}
	})
	t.Run("tampered encrypted_group_info", func(t *testing.T) {
		bad := *w
		bad.EncryptedGroupInfo = bytes.Clone(w.EncryptedGroupInfo)
		bad.EncryptedGroupInfo[len(bad.EncryptedGroupInfo)/2] ^= 0x40
		ref, _ := bob.kp.Ref(s)
		// The group secrets are bound to encrypted_group_info (HPKE context).
		if _, err := decryptGroupSecrets(s, &bad, ref, bob.priv.InitKey); !errors.Is(err, ErrDecryption) {
			t.Fatalf("group secrets: got %v, want ErrDecryption", err)
		}
		// And the GroupInfo itself does not open.
		if _, err := decryptGroupInfo(s, &bad, f.epoch.WelcomeSecret); !errors.Is(err, ErrDecryption) {
			t.Fatalf("group info: got %v, want ErrDecryption", err)
		}
	})
	t.Run("wrong welcome secret", func(t *testing.T) {
		if _, err := decryptGroupInfo(s, w, bytes.Repeat([]byte{1}, s.HashSize())); !errors.Is(err, ErrDecryption) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("suite mismatch", func(t *testing.T) {
		other := suite.MustNew(suite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519)
		ref, _ := bob.kp.Ref(s)
		if _, err := decryptGroupSecrets(other, w, ref, bob.priv.InitKey); !errors.Is(err, suite.ErrUnsupportedSuite) {
			t.Fatalf("got %v", err)
		}
		kp7 := newKPMember(t, other, 4, "eve", KeyPackageOptions{})
		if _, err := newWelcome(s, f.gi, f.epoch.WelcomeSecret, f.epoch.JoinerSecret, nil, []welcomeRecipient{{KeyPackage: kp7.kp}}); !errors.Is(err, suite.ErrUnsupportedSuite) {
			t.Fatalf("build: got %v", err)
		}
	})
	t.Run("duplicate recipient", func(t *testing.T) {
		if _, err := newWelcome(s, f.gi, f.epoch.WelcomeSecret, f.epoch.JoinerSecret, nil,
			[]welcomeRecipient{{KeyPackage: bob.kp}, {KeyPackage: bob.kp}}); err == nil {
			t.Fatal("duplicate recipient accepted")
		}
	})
	t.Run("two reinit PSKs", func(t *testing.T) {
		nonce := bytes.Repeat([]byte{7}, s.HashSize())
		reinit := schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption, Usage: schedule.UsageReinit, PSKGroupID: []byte("g"), Nonce: nonce}
		w2, err := newWelcome(s, f.gi, f.epoch.WelcomeSecret, f.epoch.JoinerSecret, []schedule.PreSharedKeyID{reinit, reinit},
			[]welcomeRecipient{{KeyPackage: bob.kp}})
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := bob.kp.Ref(s)
		if _, err := decryptGroupSecrets(s, w2, ref, bob.priv.InitKey); !errors.Is(err, schedule.ErrInvalidPSK) {
			t.Fatalf("got %v, want ErrInvalidPSK", err)
		}
	})
}

func TestGroupInfoSignature(t *testing.T) {
	f := newWelcomeFixture(t, suite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256, nil)
	s, pub := f.s, f.committer.signer.PublicKey()
	if err := VerifyGroupInfo(s, f.gi, pub); err != nil {
		t.Fatal(err)
	}
	mutations := map[string]func(gi *GroupInfo){
		"signer": func(gi *GroupInfo) { gi.Signer++ },
		"epoch":  func(gi *GroupInfo) { gi.GroupContext.Epoch++ },
		"tag":    func(gi *GroupInfo) { gi.ConfirmationTag[0] ^= 1 },
		"extensions": func(gi *GroupInfo) {
			gi.Extensions = tree.Extensions{{ExtensionType: 0x0a0a, ExtensionData: []byte{}}}
		},
		"signature": func(gi *GroupInfo) { gi.Signature[3] ^= 1 },
	}
	for name, mutate := range mutations {
		enc, _ := wire.Marshal(f.gi)
		gi := new(GroupInfo)
		if err := wire.Unmarshal(enc, gi); err != nil {
			t.Fatal(err)
		}
		mutate(gi)
		if err := VerifyGroupInfo(s, gi, pub); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("%s changed: got %v, want ErrInvalidSignature", name, err)
		}
	}
	other := newKPMember(t, s, 9, "other", KeyPackageOptions{})
	if err := VerifyGroupInfo(s, f.gi, other.signer.PublicKey()); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("other key: %v", err)
	}
	if err := VerifyGroupInfo(suite.MustNew(1), f.gi, pub); !errors.Is(err, suite.ErrUnsupportedSuite) {
		t.Errorf("other suite: %v", err)
	}
}

// TestLeafNodeInGroup covers the group-dependent checks of §7.3.
func TestLeafNodeInGroup(t *testing.T) {
	s := suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	alice := newKPMember(t, s, 1, "alice", KeyPackageOptions{})
	bob := newKPMember(t, s, 2, "bob", KeyPackageOptions{})
	tr, err := tree.NewWithLeaf(&alice.kp.LeafNode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.AddLeaf(&bob.kp.LeafNode); err != nil {
		t.Fatal(err)
	}
	gc := &GroupContext{Version: tree.ProtocolVersionMLS10, CipherSuite: s.ID(), GroupID: []byte("group"), Extensions: tree.Extensions{}}
	opts := ValidateOptions{GroupContext: gc, Members: tr}
	if err := ValidateTreeLeaves(s, tr, opts); err != nil {
		t.Fatalf("tree: %v", err)
	}

	// A new member's KeyPackage (Add).
	carol := newKPMember(t, s, 3, "carol", KeyPackageOptions{})
	if err := ValidateKeyPackage(s, carol.kp, kpTestNow, opts); err != nil {
		t.Fatalf("add carol: %v", err)
	}
	// Bob's KeyPackage again: keys already in the group.
	if err := ValidateKeyPackage(s, bob.kp, kpTestNow, opts); !errors.Is(err, tree.ErrDuplicateKey) {
		t.Errorf("duplicate member: got %v, want ErrDuplicateKey", err)
	}

	// An Update from bob (leaf 1): fresh encryption key, same signature key.
	upd := func(encKey []byte, index tree.LeafIndex) *tree.LeafNode {
		ln := bob.kp.LeafNode
		ln.LeafNodeSource = tree.LeafNodeSourceUpdate
		ln.EncryptionKey = encKey
		if err := ln.Sign(s, bob.signer, gc.GroupID, index); err != nil {
			t.Fatal(err)
		}
		return &ln
	}
	_, fresh, _ := s.GenerateHPKEKeyPair()
	if err := ValidateLeafNode(s, upd(fresh, 1), LeafUseUpdate, 1, kpTestNow, opts); err != nil {
		t.Errorf("update: %v", err)
	}
	if err := ValidateLeafNode(s, upd(bob.kp.LeafNode.EncryptionKey, 1), LeafUseUpdate, 1, kpTestNow, opts); !errors.Is(err, tree.ErrDuplicateKey) {
		t.Errorf("update keeping the encryption key: %v", err)
	}
	if err := ValidateLeafNode(s, upd(alice.kp.LeafNode.EncryptionKey, 1), LeafUseUpdate, 1, kpTestNow, opts); !errors.Is(err, tree.ErrDuplicateKey) {
		t.Errorf("update with alice's encryption key: %v", err)
	}
	// Signed for leaf 1, presented as leaf 0 (and vice versa): bad signature.
	// (Replaces: bob's leaf, so that the successor rule passes and the
	// signature is what fails.)
	if err := ValidateLeafNode(s, upd(fresh, 1), LeafUseUpdate, 0, kpTestNow, ValidateOptions{GroupContext: gc, Members: tr, Replaces: &bob.kp.LeafNode}); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("update for another leaf: %v", err)
	}
	// Signed for another group.
	other := *gc
	other.GroupID = []byte("other")
	if err := ValidateLeafNode(s, upd(fresh, 1), LeafUseUpdate, 1, kpTestNow, ValidateOptions{GroupContext: &other, Members: tr}); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("update for another group: %v", err)
	}
	// Wrong source for the use.
	if err := ValidateLeafNode(s, upd(fresh, 1), LeafUseCommit, 1, kpTestNow, opts); !errors.Is(err, ErrInvalidLeafNode) {
		t.Errorf("update leaf as commit leaf: %v", err)
	}
	if err := ValidateLeafNode(s, upd(fresh, 1), LeafUseUpdate, 1, kpTestNow, ValidateOptions{}); !errors.Is(err, ErrIncompleteValue) {
		t.Errorf("update without group context: %v", err)
	}

	// Credential type compatibility: dave uses an x509-typed credential
	// (accepted by a permissive validator), which alice and bob do not support.
	anyCred := CredentialValidatorFunc(func(*CredentialCheck) error { return nil })
	caps := DefaultCapabilities()
	caps.Credentials = []tree.CredentialType{tree.CredentialTypeBasic, tree.CredentialTypeX509}
	dave := newKPMember(t, s, 4, "dave", KeyPackageOptions{Capabilities: &caps})
	dave.kp.LeafNode.Credential = tree.Credential{CredentialType: tree.CredentialTypeX509, Certificates: [][]byte{{1}}}
	resignKP(t, s, dave.signer, dave.kp)
	optsAny := opts
	optsAny.Credentials = anyCred
	if err := ValidateKeyPackage(s, dave.kp, kpTestNow, optsAny); !errors.Is(err, ErrUnsupportedCapability) {
		t.Errorf("x509 member in a basic-only group: %v", err)
	}
	if err := ValidateKeyPackage(s, dave.kp, kpTestNow, ValidateOptions{Credentials: anyCred}); err != nil {
		t.Errorf("x509 key package outside a group: %v", err)
	}
	if err := ValidateKeyPackage(s, dave.kp, kpTestNow, ValidateOptions{}); !errors.Is(err, ErrInvalidCredential) {
		t.Errorf("x509 with the default validator: %v", err)
	}
	// Erin supports only basic credentials: she cannot join a group with
	// an x509 member (§7.3, the other direction).
	capsX := DefaultCapabilities()
	capsX.Credentials = []tree.CredentialType{tree.CredentialTypeBasic}
	erin := newKPMember(t, s, 5, "erin", KeyPackageOptions{Capabilities: &capsX})
	mixed, err := tree.NewWithLeaf(&dave.kp.LeafNode)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateKeyPackage(s, erin.kp, kpTestNow, ValidateOptions{GroupContext: gc, Members: mixed, Credentials: anyCred}); !errors.Is(err, ErrUnsupportedCapability) {
		t.Errorf("member without support for an x509 member: %v", err)
	}
	// A tree mixing dave (x509) with basic-only members is invalid.
	tr2 := tr.Clone()
	if _, err := tr2.AddLeaf(&dave.kp.LeafNode); err != nil {
		t.Fatal(err)
	}
	if err := ValidateTreeLeaves(s, tr2, optsAny); !errors.Is(err, ErrUnsupportedCapability) {
		t.Errorf("mixed tree: %v", err)
	}
	// Trees validate only within their group context.
	if err := ValidateTreeLeaves(s, tr, ValidateOptions{}); !errors.Is(err, ErrIncompleteValue) {
		t.Errorf("tree without context: %v", err)
	}
	// required_capabilities the tree's leaves lack.
	req := *gc
	req.Extensions = tree.Extensions{requiredCapsExt(t, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{0xff00}})}
	if err := ValidateTreeLeaves(s, tr, ValidateOptions{GroupContext: &req}); !errors.Is(err, ErrUnsupportedCapability) {
		t.Errorf("tree lacking required capabilities: %v", err)
	}
}
