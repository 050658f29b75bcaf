package mls

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"encoding/hex"
	"encoding/json"

	"github.com/spacepanda/spacepanda/internal/testvec"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// kpTestNow is the fixed clock of these tests.
var kpTestNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// kpTestRand returns a deterministic randomness source.
func kpTestRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

// kpMember is a client with a signature key and one KeyPackage.
type kpMember struct {
	signer *suite.Signer
	kp     *KeyPackage
	priv   *KeyPackagePrivate
}

func newKPMember(t testing.TB, s *suite.Suite, seed uint64, name string, opts KeyPackageOptions) *kpMember {
	t.Helper()
	rnd := kpTestRand(seed)
	sigPriv, _, err := s.GenerateSignatureKeyPair(rnd)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := s.NewSigner(sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Now.IsZero() {
		opts.Now = kpTestNow
	}
	kp, priv, err := NewKeyPackage(s, rnd, signer, tree.NewBasicCredential([]byte(name)), opts)
	if err != nil {
		t.Fatal(err)
	}
	return &kpMember{signer: signer, kp: kp, priv: priv}
}

func TestNewKeyPackageValidates(t *testing.T) {
	for _, id := range suite.All() {
		t.Run(id.String(), func(t *testing.T) {
			s := suite.MustNew(id)
			m := newKPMember(t, s, uint64(id), "alice", KeyPackageOptions{LastResort: true})
			kp := m.kp
			if err := ValidateKeyPackage(s, kp, kpTestNow, ValidateOptions{MaxLifetime: DefaultMaxLifetime}); err != nil {
				t.Fatalf("fresh key package: %v", err)
			}
			if !kp.IsLastResort() {
				t.Error("last_resort extension missing")
			}
			// The private keys belong to the public ones.
			if pub, err := s.HPKEPublicKey(m.priv.InitKey); err != nil || !bytes.Equal(pub, kp.InitKey) {
				t.Errorf("init key pair mismatch (%v)", err)
			}
			if pub, err := s.HPKEPublicKey(m.priv.EncryptionKey); err != nil || !bytes.Equal(pub, kp.LeafNode.EncryptionKey) {
				t.Errorf("encryption key pair mismatch (%v)", err)
			}
			// It survives an MLSMessage round trip, still valid, same ref.
			msg, err := NewMessage(kp)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := wire.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			back, err := UnmarshalMessage(enc)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateKeyPackage(s, back.KeyPackage, kpTestNow, ValidateOptions{}); err != nil {
				t.Fatalf("decoded key package: %v", err)
			}
			r1, err := kp.Ref(s)
			if err != nil {
				t.Fatal(err)
			}
			r2, _ := back.KeyPackage.Ref(s)
			kpEnc, _ := wire.Marshal(kp)
			if !bytes.Equal(r1, r2) || !bytes.Equal(r1, s.MakeKeyPackageRef(kpEnc)) || len(r1) != s.HashSize() {
				t.Error("KeyPackageRef mismatch")
			}
			// Clock skew: valid a little before creation, not after the lifetime.
			if err := ValidateKeyPackage(s, kp, kpTestNow.Add(-30*time.Minute), ValidateOptions{}); err != nil {
				t.Errorf("30 minutes early: %v", err)
			}
			if err := ValidateKeyPackage(s, kp, kpTestNow.Add(DefaultKeyPackageLifetime+time.Second), ValidateOptions{}); !errors.Is(err, ErrExpired) {
				t.Errorf("after lifetime: %v, want ErrExpired", err)
			}
		})
	}
}

// resign re-signs kp's leaf and kp after a test changed them.
func resignKP(t *testing.T, s *suite.Suite, signer *suite.Signer, kp *KeyPackage) {
	t.Helper()
	if err := kp.LeafNode.Sign(s, signer, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := SignKeyPackage(signer, kp); err != nil {
		t.Fatal(err)
	}
}

func cloneKP(t *testing.T, kp *KeyPackage) *KeyPackage {
	t.Helper()
	enc, err := wire.Marshal(kp)
	if err != nil {
		t.Fatal(err)
	}
	out := new(KeyPackage)
	if err := wire.Unmarshal(enc, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func requiredCapsExt(t *testing.T, rc tree.RequiredCapabilities) tree.Extension {
	t.Helper()
	data, err := wire.Marshal(&rc)
	if err != nil {
		t.Fatal(err)
	}
	return tree.Extension{ExtensionType: tree.ExtensionTypeRequiredCapabilities, ExtensionData: data}
}

func TestValidateKeyPackageRejects(t *testing.T) {
	s := suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	m := newKPMember(t, s, 1, "alice", KeyPackageOptions{})
	other := newKPMember(t, s, 2, "bob", KeyPackageOptions{})
	group := func(exts ...tree.Extension) *GroupContext {
		return &GroupContext{Version: tree.ProtocolVersionMLS10, CipherSuite: s.ID(), GroupID: []byte("g"), Extensions: exts}
	}
	tests := []struct {
		name   string
		mutate func(kp *KeyPackage) // may re-sign
		now    time.Time
		opts   ValidateOptions
		want   []error
	}{
		{name: "tampered signature", mutate: func(kp *KeyPackage) { kp.Signature[0] ^= 1 },
			want: []error{ErrInvalidSignature}},
		{name: "signed by another key", mutate: func(kp *KeyPackage) { _ = SignKeyPackage(other.signer, kp) },
			want: []error{ErrInvalidSignature}},
		{name: "tampered leaf signature", mutate: func(kp *KeyPackage) { kp.LeafNode.Signature[0] ^= 1 },
			want: []error{ErrInvalidLeafNode, ErrInvalidSignature}},
		{name: "changed leaf, only key package re-signed", mutate: func(kp *KeyPackage) {
			kp.LeafNode.Credential.Identity = []byte("mallory")
			_ = SignKeyPackage(m.signer, kp)
		}, want: []error{ErrInvalidLeafNode, ErrInvalidSignature}},
		{name: "expired", now: kpTestNow.Add(DefaultKeyPackageLifetime + time.Hour),
			want: []error{ErrInvalidLeafNode, ErrExpired}},
		{name: "not yet valid", now: kpTestNow.Add(-2 * time.Hour),
			want: []error{ErrInvalidLeafNode, ErrExpired}},
		{name: "inverted lifetime", mutate: func(kp *KeyPackage) {
			kp.LeafNode.Lifetime.NotBefore, kp.LeafNode.Lifetime.NotAfter = kp.LeafNode.Lifetime.NotAfter, kp.LeafNode.Lifetime.NotBefore
			resignKP(t, s, m.signer, kp)
		}, want: []error{ErrExpired}},
		{name: "lifetime too long", opts: ValidateOptions{MaxLifetime: 24 * time.Hour},
			want: []error{ErrExpired}},
		{name: "init_key equals encryption_key", mutate: func(kp *KeyPackage) {
			kp.InitKey = bytes.Clone(kp.LeafNode.EncryptionKey)
			resignKP(t, s, m.signer, kp)
		}},
		{name: "unsupported suite", mutate: func(kp *KeyPackage) {
			kp.CipherSuite = 0x0a0a
			resignKP(t, s, m.signer, kp)
		}, want: []error{suite.ErrUnsupportedSuite}},
		{name: "other suite", mutate: func(kp *KeyPackage) {
			kp.CipherSuite = suite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
			resignKP(t, s, m.signer, kp)
		}, want: []error{suite.ErrUnsupportedSuite}},
		{name: "unsupported version", mutate: func(kp *KeyPackage) {
			kp.Version = 2
			resignKP(t, s, m.signer, kp)
		}, want: []error{ErrUnsupportedVersion}},
		{name: "wrong leaf source", mutate: func(kp *KeyPackage) {
			kp.LeafNode.LeafNodeSource = tree.LeafNodeSourceUpdate
			resignKP(t, s, m.signer, kp)
		}, want: []error{ErrInvalidLeafNode}},
		{name: "leaf extension not in capabilities", mutate: func(kp *KeyPackage) {
			kp.LeafNode.Extensions = tree.Extensions{{ExtensionType: 0xff01, ExtensionData: []byte{}}}
			resignKP(t, s, m.signer, kp)
		}, want: []error{ErrInvalidLeafNode, ErrUnsupportedCapability}},
		{name: "last_resort not in capabilities", mutate: func(kp *KeyPackage) {
			kp.Extensions = tree.Extensions{{ExtensionType: tree.ExtensionTypeLastResort, ExtensionData: []byte{}}}
			kp.LeafNode.Capabilities.Extensions = nil
			resignKP(t, s, m.signer, kp)
		}, want: []error{ErrUnsupportedCapability}},
		{name: "credential type not in capabilities", mutate: func(kp *KeyPackage) {
			kp.LeafNode.Capabilities.Credentials = []tree.CredentialType{tree.CredentialTypeX509}
			resignKP(t, s, m.signer, kp)
		}, want: []error{ErrInvalidLeafNode, ErrUnsupportedCapability}},
		{name: "version not in capabilities", mutate: func(kp *KeyPackage) {
			kp.LeafNode.Capabilities.Versions = []tree.ProtocolVersion{0x0a0a}
			resignKP(t, s, m.signer, kp)
		}, want: []error{ErrInvalidLeafNode, ErrUnsupportedCapability}},
		{name: "empty identity", mutate: func(kp *KeyPackage) {
			kp.LeafNode.Credential.Identity = nil
			resignKP(t, s, m.signer, kp)
		}, want: []error{ErrInvalidLeafNode, ErrInvalidCredential}},
		{name: "rejected by the application", opts: ValidateOptions{Credentials: CredentialValidatorFunc(
			func(*CredentialCheck) error { return errors.New("unknown user") })},
			want: []error{ErrInvalidLeafNode, ErrInvalidCredential}},
		{name: "required extension missing", opts: ValidateOptions{GroupContext: group(requiredCapsExt(t,
			tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{0xff02}}))},
			want: []error{ErrInvalidLeafNode, ErrUnsupportedCapability}},
		{name: "required proposal missing", opts: ValidateOptions{GroupContext: group(requiredCapsExt(t,
			tree.RequiredCapabilities{ProposalTypes: []tree.ProposalType{0xff03}}))},
			want: []error{ErrInvalidLeafNode, ErrUnsupportedCapability}},
		{name: "required credential missing", opts: ValidateOptions{GroupContext: group(requiredCapsExt(t,
			tree.RequiredCapabilities{CredentialTypes: []tree.CredentialType{tree.CredentialTypeX509}}))},
			want: []error{ErrInvalidLeafNode, ErrUnsupportedCapability}},
		{name: "group context extension unsupported", opts: ValidateOptions{GroupContext: group(
			tree.Extension{ExtensionType: 0xff04, ExtensionData: []byte{}})},
			want: []error{ErrInvalidLeafNode, ErrUnsupportedCapability}},
		{name: "group of another suite", opts: ValidateOptions{GroupContext: &GroupContext{
			Version: tree.ProtocolVersionMLS10, CipherSuite: suite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384}},
			want: []error{suite.ErrUnsupportedSuite}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kp := cloneKP(t, m.kp)
			if tc.mutate != nil {
				tc.mutate(kp)
			}
			now := tc.now
			if now.IsZero() {
				now = kpTestNow
			}
			err := ValidateKeyPackage(s, kp, now, tc.opts)
			if !errors.Is(err, ErrInvalidKeyPackage) {
				t.Fatalf("got %v, want ErrInvalidKeyPackage", err)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want it to wrap %v", err, w)
				}
			}
		})
	}

	// Supported required capabilities and group extensions pass.
	caps := DefaultCapabilities()
	caps.Extensions = append(caps.Extensions, 0xff02)
	caps.Proposals = append(caps.Proposals, 0xff03)
	ok := newKPMember(t, s, 3, "carol", KeyPackageOptions{Capabilities: &caps})
	gc := group(requiredCapsExt(t, tree.RequiredCapabilities{
		ExtensionTypes:  []tree.ExtensionType{0xff02, tree.ExtensionTypeExternalSenders},
		ProposalTypes:   []tree.ProposalType{0xff03, tree.ProposalTypeAdd},
		CredentialTypes: []tree.CredentialType{tree.CredentialTypeBasic},
	}), tree.Extension{ExtensionType: 0xff02, ExtensionData: []byte{}})
	if err := ValidateKeyPackage(s, ok.kp, kpTestNow, ValidateOptions{GroupContext: gc}); err != nil {
		t.Errorf("supported requirements: %v", err)
	}
	// Unknown (e.g. GREASE) KeyPackage extensions are ignored (§13.4).
	grease := cloneKP(t, m.kp)
	grease.Extensions = tree.Extensions{{ExtensionType: 0x3a3a, ExtensionData: []byte{1, 2, 3}}}
	resignKP(t, s, m.signer, grease)
	if err := ValidateKeyPackage(s, grease, kpTestNow, ValidateOptions{}); err != nil {
		t.Errorf("GREASE key package extension: %v", err)
	}
}

// TestValidateKeyPackageVectors validates the KeyPackages of the official
// welcome vectors (generated by another implementation).
func TestValidateKeyPackageVectors(t *testing.T) {
	for _, c := range welcomeVectorCases(t) {
		m, err := UnmarshalMessage(c.kp)
		if err != nil {
			t.Fatal(err)
		}
		s := suite.MustNew(m.KeyPackage.CipherSuite)
		if err := ValidateKeyPackage(s, m.KeyPackage, kpTestNow, ValidateOptions{}); err != nil {
			t.Errorf("suite %v: %v", s.ID(), err)
		}
	}
}

type welcomeVector struct{ kp, welcome []byte }

// welcomeVectorCases reads welcome.json when the vectors are present.
func welcomeVectorCases(t testing.TB) []welcomeVector {
	dir, ok := testvec.Dir()
	if !ok {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "welcome.json"))
	if err != nil {
		return nil
	}
	var raw []struct {
		KeyPackage string `json:"key_package"`
		Welcome    string `json:"welcome"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	var out []welcomeVector
	for _, r := range raw {
		kp, err1 := hex.DecodeString(r.KeyPackage)
		w, err2 := hex.DecodeString(r.Welcome)
		if err1 != nil || err2 != nil {
			t.Fatal("bad hex in welcome.json")
		}
		out = append(out, welcomeVector{kp, w})
	}
	return out
}

// FuzzValidateKeyPackage decodes random bytes as an MLSMessage; a key
// package must re-encode stably and validation must never panic.
func FuzzValidateKeyPackage(f *testing.F) {
	for _, c := range welcomeVectorCases(f) {
		f.Add(c.kp)
	}
	for i, id := range []suite.ID{1, 2} {
		s := suite.MustNew(id)
		m := newKPMember(f, s, uint64(10+i), "fuzz", KeyPackageOptions{LastResort: true})
		msg, _ := NewMessage(m.kp)
		enc, err := wire.Marshal(msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := UnmarshalMessage(data)
		if err != nil || m.KeyPackage == nil {
			return
		}
		enc1, err := wire.Marshal(m)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := UnmarshalMessage(enc1)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		enc2, err := wire.Marshal(m2)
		if err != nil || !bytes.Equal(enc1, enc2) {
			t.Fatalf("round trip differs (%v)", err)
		}
		s, err := suite.New(m.KeyPackage.CipherSuite)
		if err != nil {
			s = suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
		}
		_ = ValidateKeyPackage(s, m.KeyPackage, kpTestNow, ValidateOptions{MaxLifetime: DefaultMaxLifetime})
		if _, err := m.KeyPackage.Ref(s); err != nil {
			t.Fatalf("ref of a decoded key package: %v", err)
		}
	})
}
