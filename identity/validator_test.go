package identity_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// TestValidatorForgeries is the table of leaves an attacker can present:
// each is refused with its typed error, also as mls.ErrInvalidCredential.
func TestValidatorForgeries(t *testing.T) {
	bob, mallory := newIdentity(t), newIdentity(t)
	bobDev := newTestDevice(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	malDev := newTestDevice(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	bobCert := certify(t, bob, bobDev.device)
	bobID := string(bob.UserID())

	revokedDev := newTestDevice(t, suite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256)
	revoked := identity.NewRevocationSet()
	rev, _ := bob.Revoke(revokedDev.device.ID, testNow)
	if err := revoked.Add(rev); err != nil {
		t.Fatal(err)
	}

	badSig := *bobCert
	badSig.Signature = bytes.Clone(bobCert.Signature)
	badSig.Signature[0] ^= 1
	encoded, _ := bobCert.Marshal()
	rawExt := func(data []byte) tree.Extension {
		return tree.Extension{ExtensionType: identity.ExtensionTypeDeviceCertificate, ExtensionData: data}
	}
	at := func(d time.Duration) *identity.Validator {
		return &identity.Validator{Now: func() time.Time { return testNow.Add(d) }}
	}
	strict := &identity.Validator{Now: clock, Revocations: revoked}
	lenient := &identity.Validator{Now: clock, AllowUnverified: true}
	x509 := leaf(bobID, bobDev, certExt(t, bobCert))
	x509.Credential = tree.Credential{CredentialType: tree.CredentialTypeX509, Certificates: [][]byte{{1}}}

	cases := []struct {
		name string
		v    *identity.Validator
		ln   *tree.LeafNode
		use  mls.LeafUse
		want error // nil: accepted
	}{
		{"valid", strict, leaf(bobID, bobDev, certExt(t, bobCert)), mls.LeafUseKeyPackage, nil},
		{"valid among other extensions", strict, leaf(bobID, bobDev, tree.Extension{ExtensionType: 0x0a0a, ExtensionData: []byte{}}, certExt(t, bobCert)), mls.LeafUseCommit, nil},
		{"wrong identity key for the user id", strict, leaf(bobID, malDev, certExt(t, certify(t, mallory, malDev.device))), mls.LeafUseKeyPackage, identity.ErrUserIDMismatch},
		{"certificate for another signature key", strict, leaf(bobID, malDev, certExt(t, bobCert)), mls.LeafUseKeyPackage, identity.ErrKeyMismatch},
		{"bad signature", strict, leaf(bobID, bobDev, certExt(t, &badSig)), mls.LeafUseUpdate, identity.ErrBadSignature},
		{"expired", at(identity.DefaultCertificateLifetime + time.Hour), leaf(bobID, bobDev, certExt(t, bobCert)), mls.LeafUseCommit, identity.ErrExpired},
		{"not yet valid", at(-2 * time.Hour), leaf(bobID, bobDev, certExt(t, bobCert)), mls.LeafUseKeyPackage, identity.ErrNotYetValid},
		{"expired, in a tree a joiner receives", at(identity.DefaultCertificateLifetime + time.Hour), leaf(bobID, bobDev, certExt(t, bobCert)), mls.LeafUseTree, nil},
		{"lifetime longer than allowed", &identity.Validator{Now: clock, MaxLifetime: 30 * 24 * time.Hour}, leaf(bobID, bobDev, certExt(t, bobCert)), mls.LeafUseTree, identity.ErrLifetimeTooLong},
		{"truncated", strict, leaf(bobID, bobDev, rawExt(encoded[:len(encoded)-1])), mls.LeafUseKeyPackage, identity.ErrInvalidCertificate},
		{"trailing byte", strict, leaf(bobID, bobDev, rawExt(append(bytes.Clone(encoded), 0))), mls.LeafUseKeyPackage, identity.ErrInvalidCertificate},
		{"oversized", strict, leaf(bobID, bobDev, rawExt(make([]byte, 70000))), mls.LeafUseKeyPackage, identity.ErrInvalidCertificate},
		{"duplicate certificate extensions", strict, leaf(bobID, bobDev, certExt(t, bobCert), certExt(t, bobCert)), mls.LeafUseKeyPackage, identity.ErrDuplicateCertificate},
		{"revoked device", strict, leaf(bobID, revokedDev, certExt(t, certify(t, bob, revokedDev.device))), mls.LeafUseKeyPackage, identity.ErrRevoked},
		{"revoked device, in a tree", strict, leaf(bobID, revokedDev, certExt(t, certify(t, bob, revokedDev.device))), mls.LeafUseTree, identity.ErrRevoked},
		{"no certificate", strict, leaf("bob", bobDev), mls.LeafUseKeyPackage, identity.ErrNoCertificate},
		{"no certificate, plain channel", lenient, leaf("bob", bobDev), mls.LeafUseKeyPackage, nil},
		{"no certificate claiming a user id", lenient, leaf(bobID, malDev), mls.LeafUseKeyPackage, identity.ErrUnverifiedUserID},
		{"no certificate in the user id namespace", lenient, leaf(identity.UserIDPrefix+"bob", malDev), mls.LeafUseKeyPackage, identity.ErrUnverifiedUserID},
		{"x509 credential", strict, x509, mls.LeafUseKeyPackage, identity.ErrUnsupportedCredential},
		{"empty identity", lenient, leaf("", bobDev), mls.LeafUseKeyPackage, identity.ErrUnsupportedCredential},
	}
	for _, tc := range cases {
		err := tc.v.ValidateCredential(check(tc.ln, tc.use))
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !errors.Is(err, mls.ErrInvalidCredential) {
			t.Errorf("%s: %v, want %v and mls.ErrInvalidCredential", tc.name, err, tc.want)
		}
	}
}

// TestVerify: what a caller learns about a leaf.
func TestVerify(t *testing.T) {
	bob := newIdentity(t)
	d := newTestDevice(t, suite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384)
	cert := certify(t, bob, d.device)
	v := &identity.Validator{Now: clock, AllowUnverified: true}

	m, err := v.Verify(leaf(string(bob.UserID()), d, certExt(t, cert)))
	if err != nil || !m.Verified || m.UserID != bob.UserID() || m.DeviceID != d.device.ID ||
		m.IdentityKey != bob.IdentityKey() || m.Identity != string(bob.UserID()) || m.Certificate == nil {
		t.Fatalf("verified leaf: %+v %v", m, err)
	}
	m, err = v.Verify(leaf("bob (laptop)", d))
	if err != nil || m.Verified || m.Identity != "bob (laptop)" || m.UserID != "" || !m.DeviceID.IsZero() {
		t.Fatalf("unverified leaf: %+v %v", m, err)
	}
	// An expired member is still named, for display.
	late := &identity.Validator{Now: func() time.Time { return testNow.Add(2 * identity.DefaultCertificateLifetime) }}
	m, err = late.Verify(leaf(string(bob.UserID()), d, certExt(t, cert)))
	if !errors.Is(err, identity.ErrExpired) || m.UserID != bob.UserID() {
		t.Fatalf("expired leaf: %+v %v", m, err)
	}
}

func TestExternalSenders(t *testing.T) {
	c := &mls.CredentialCheck{Credential: &tree.Credential{CredentialType: tree.CredentialTypeBasic, Identity: []byte("relay")},
		SignatureKey: []byte{1}}
	if err := (&identity.Validator{AllowUnverified: true}).ValidateCredential(c); !errors.Is(err, identity.ErrExternalSender) ||
		!errors.Is(err, mls.ErrInvalidCredential) {
		t.Fatalf("external sender without a validator: %v", err)
	}
	v := &identity.Validator{ExternalSenders: mls.BasicCredentialValidator{}}
	if err := v.ValidateCredential(c); err != nil {
		t.Fatalf("external sender with a validator: %v", err)
	}
}

// TestSuccessor: an update or commit may not change the user nor the
// device; it may rotate the device's signature key under a new certificate.
func TestSuccessor(t *testing.T) {
	bob, mallory := newIdentity(t), newIdentity(t)
	d1 := newTestDevice(t, 1)
	d2 := newTestDevice(t, 1)
	rotated := newTestDevice(t, 1)
	rotated.device.ID = d1.device.ID
	bobID, malID := string(bob.UserID()), string(mallory.UserID())
	cur := leaf(bobID, d1, certExt(t, certify(t, bob, d1.device)))

	cases := []struct {
		name       string
		prev, next *tree.LeafNode
		want       error
	}{
		{"same leaf", cur, cur, nil},
		{"key rotation on the same device", cur, leaf(bobID, rotated, certExt(t, certify(t, bob, rotated.device))), nil},
		{"unverified, same name", leaf("bob", d1), leaf("bob", d2), nil},
		{"changes the user id", cur, leaf(malID, d1, certExt(t, certify(t, mallory, d1.device))), identity.ErrIdentityChanged},
		{"changes the device id", cur, leaf(bobID, d2, certExt(t, certify(t, bob, d2.device))), identity.ErrDeviceChanged},
		{"drops the certificate", cur, leaf(bobID, d1), identity.ErrDeviceChanged},
		{"unverified changes its name", leaf("bob", d1), leaf("alice", d1), identity.ErrIdentityChanged},
	}
	v := &identity.Validator{Now: clock}
	for _, tc := range cases {
		err := v.ValidateSuccessor(tc.prev, tc.next)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !errors.Is(err, mls.ErrInvalidCredential) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestVerifyCertificate: the relay's check of a login or a published
// KeyPackage, where the certificate comes without a leaf.
func TestVerifyCertificate(t *testing.T) {
	bob, mallory := newIdentity(t), newIdentity(t)
	d, other := newTestDevice(t, 2), newTestDevice(t, 2)
	enc, _ := certify(t, bob, d.device).Marshal()
	revoked := identity.NewRevocationSet()
	rd := newTestDevice(t, 2)
	rev, _ := bob.Revoke(rd.device.ID, testNow)
	if err := revoked.Add(rev); err != nil {
		t.Fatal(err)
	}
	revEnc, _ := certify(t, bob, rd.device).Marshal()
	tampered := bytes.Clone(enc)
	tampered[len(tampered)-1] ^= 1
	v := &identity.Validator{Now: clock, Revocations: revoked}
	cases := []struct {
		name   string
		userID string
		key    []byte
		cert   []byte
		want   error
	}{
		{"valid", string(bob.UserID()), d.signer.PublicKey(), enc, nil},
		{"claims another user id", string(mallory.UserID()), d.signer.PublicKey(), enc, identity.ErrUserIDMismatch},
		{"another signature key", string(bob.UserID()), other.signer.PublicKey(), enc, identity.ErrKeyMismatch},
		{"bad signature", string(bob.UserID()), d.signer.PublicKey(), tampered, identity.ErrBadSignature},
		{"truncated", string(bob.UserID()), d.signer.PublicKey(), enc[:40], identity.ErrInvalidCertificate},
		{"revoked", string(bob.UserID()), rd.signer.PublicKey(), revEnc, identity.ErrRevoked},
	}
	for _, tc := range cases {
		m, err := v.VerifyCertificate(tc.userID, tc.key, tc.cert)
		if tc.want == nil {
			if err != nil || m.UserID != bob.UserID() || m.DeviceID != d.device.ID {
				t.Errorf("%s: %+v %v", tc.name, m, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
