package identity_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// TestCertificateEverySuite certifies a device key of each of the seven
// suites' signature schemes: it encodes within the bound, decodes to the
// same certificate and verifies.
func TestCertificateEverySuite(t *testing.T) {
	p := newIdentity(t)
	for _, id := range suite.All() {
		d := newTestDevice(t, id)
		c := certify(t, p, d.device)
		enc, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) > identity.MaxCertificateSize {
			t.Errorf("%v: %d bytes", id, len(enc))
		}
		back, err := identity.ParseCertificate(enc)
		if err != nil {
			t.Fatalf("%v: %v", id, err)
		}
		again, _ := back.Marshal()
		if !bytes.Equal(enc, again) {
			t.Fatalf("%v: re-encoding differs", id)
		}
		if err := back.VerifySignature(); err != nil {
			t.Fatalf("%v: %v", id, err)
		}
		if back.UserID() != p.UserID() || back.Device.ID != d.device.ID || !bytes.Equal(back.Device.SignatureKey, d.signer.PublicKey()) {
			t.Fatalf("%v: decoded certificate differs", id)
		}
		if back.NotBefore != uint64(testNow.Add(-time.Hour).Unix()) || back.NotAfter != uint64(testNow.Add(identity.DefaultCertificateLifetime).Unix()) {
			t.Fatalf("%v: lifetime %d..%d", id, back.NotBefore, back.NotAfter)
		}
	}
}

// certFields writes a certificate field by field, for malformed encodings.
type certFields struct {
	version         uint8
	ik, did, sigKey []byte
	scheme          uint16
	nb, na          uint64
	sig             []byte
}

func fieldsOf(c *identity.Certificate) certFields {
	return certFields{version: 1, ik: c.IdentityKey.Bytes(), did: append([]byte{}, c.Device.ID[:]...),
		scheme: uint16(c.Device.Scheme), sigKey: c.Device.SignatureKey, nb: c.NotBefore, na: c.NotAfter, sig: c.Signature}
}

func (f certFields) encode() []byte {
	b := wire.NewBuilder(300)
	b.AddUint8(f.version)
	b.AddOpaque(f.ik)
	b.AddOpaque(f.did)
	b.AddUint16(f.scheme)
	b.AddOpaque(f.sigKey)
	b.AddUint64(f.nb)
	b.AddUint64(f.na)
	b.AddOpaque(f.sig)
	out, _ := b.Bytes()
	return out
}

// TestParseCertificateStrict: every malformed encoding is refused with
// ErrInvalidCertificate.
func TestParseCertificateStrict(t *testing.T) {
	p := newIdentity(t)
	c := certify(t, p, newTestDevice(t, suite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256).device)
	good := fieldsOf(c).encode()
	if _, err := identity.ParseCertificate(good); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*certFields)) []byte {
		cf := fieldsOf(c)
		f(&cf)
		return cf.encode()
	}
	cases := map[string][]byte{
		"empty":               nil,
		"trailing byte":       append(append([]byte{}, good...), 0),
		"oversized":           append(append([]byte{}, good...), make([]byte, identity.MaxCertificateSize)...),
		"version 0":           mod(func(f *certFields) { f.version = 0 }),
		"version 2":           mod(func(f *certFields) { f.version = 2 }),
		"identity key 31":     mod(func(f *certFields) { f.ik = f.ik[:31] }),
		"identity key 33":     mod(func(f *certFields) { f.ik = append(f.ik, 0) }),
		"device id 15":        mod(func(f *certFields) { f.did = f.did[:15] }),
		"zero device id":      mod(func(f *certFields) { f.did = make([]byte, 16) }),
		"unknown scheme":      mod(func(f *certFields) { f.scheme = 0x0804 }),
		"key size for scheme": mod(func(f *certFields) { f.scheme = uint16(identity.SchemeEd25519) }),
		"compressed point":    mod(func(f *certFields) { f.sigKey = append([]byte{0x02}, f.sigKey[1:]...) }),
		"empty key":           mod(func(f *certFields) { f.sigKey = nil }),
		"signature 63":        mod(func(f *certFields) { f.sig = f.sig[:63] }),
		"signature 65":        mod(func(f *certFields) { f.sig = append(f.sig, 0) }),
		"not_before > after":  mod(func(f *certFields) { f.nb, f.na = f.na, f.nb }),
		// identity_key's length 32 as a two-byte varint: not minimal.
		"non-minimal varint": append([]byte{1, 0x40, 32}, good[2:]...),
	}
	for n := 1; n < len(good); n++ {
		cases[fmt.Sprintf("truncated to %d", n)] = good[:n]
	}
	for name, enc := range cases {
		if _, err := identity.ParseCertificate(enc); !errors.Is(err, identity.ErrInvalidCertificate) {
			t.Errorf("%s: %v, want ErrInvalidCertificate", name, err)
		}
	}
}

// TestCertificateTampering: changing any signed field breaks the signature.
func TestCertificateTampering(t *testing.T) {
	p, other := newIdentity(t), newIdentity(t)
	d := newTestDevice(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	c := certify(t, p, d.device)
	other2 := newTestDevice(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	tamper := map[string]func(*identity.Certificate){
		"identity key": func(c *identity.Certificate) { c.IdentityKey = other.IdentityKey() },
		"device id":    func(c *identity.Certificate) { c.Device.ID[0] ^= 1 },
		"signature key": func(c *identity.Certificate) {
			c.Device.SignatureKey = other2.signer.PublicKey()
		},
		"scheme":     func(c *identity.Certificate) { c.Device.Scheme = identity.SchemeEd448 },
		"not_before": func(c *identity.Certificate) { c.NotBefore-- },
		"not_after":  func(c *identity.Certificate) { c.NotAfter++ },
		"signature":  func(c *identity.Certificate) { c.Signature[10] ^= 0x80 },
	}
	for name, f := range tamper {
		cc := *c
		cc.Device.SignatureKey = bytes.Clone(c.Device.SignatureKey)
		cc.Signature = bytes.Clone(c.Signature)
		f(&cc)
		if err := cc.VerifySignature(); !errors.Is(err, identity.ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	if err := c.VerifySignature(); err != nil {
		t.Fatalf("the original no longer verifies: %v", err)
	}
}

func TestCertificateLifetime(t *testing.T) {
	p := newIdentity(t)
	c := certify(t, p, newTestDevice(t, 1).device)
	nb, na := time.Unix(int64(c.NotBefore), 0), time.Unix(int64(c.NotAfter), 0)
	skew := 5 * time.Minute
	cases := []struct {
		name string
		now  time.Time
		want error
	}{
		{"issued", testNow, nil},
		{"at not_before", nb, nil},
		{"within skew before", nb.Add(-skew + time.Second), nil},
		{"before skew", nb.Add(-skew - time.Second), identity.ErrNotYetValid},
		{"at not_after", na, nil},
		{"within skew after", na.Add(skew - time.Second), nil},
		{"after skew", na.Add(skew + time.Second), identity.ErrExpired},
		{"long gone", na.Add(1000 * time.Hour), identity.ErrExpired},
	}
	for _, tc := range cases {
		if err := c.CheckLifetime(tc.now, skew); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := p.Certify(newTestDevice(t, 1).device, testNow, 10*365*24*time.Hour); !errors.Is(err, identity.ErrLifetimeTooLong) {
		t.Fatalf("a ten-year certificate: %v", err)
	}
	if _, err := p.Certify(identity.Device{}, testNow, 0); !errors.Is(err, identity.ErrInvalidCertificate) {
		t.Fatalf("certifying an empty device: %v", err)
	}
}

func TestRevocationEncoding(t *testing.T) {
	p, mallory := newIdentity(t), newIdentity(t)
	d := newTestDevice(t, 1)
	r, err := p.Revoke(d.device.ID, testNow)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := r.Marshal()
	back, err := identity.ParseRevocation(enc)
	if err != nil || back.Verify() != nil || back.DeviceID != d.device.ID || back.IdentityKey != p.IdentityKey() {
		t.Fatalf("round trip: %v", err)
	}
	for n := range len(enc) {
		if _, err := identity.ParseRevocation(enc[:n]); !errors.Is(err, identity.ErrInvalidRevocation) {
			t.Errorf("truncated to %d: %v", n, err)
		}
	}
	for name, b := range map[string][]byte{
		"trailing":  append(append([]byte{}, enc...), 0),
		"oversized": make([]byte, identity.MaxRevocationSize+1),
		"version":   append([]byte{2}, enc[1:]...),
	} {
		if _, err := identity.ParseRevocation(b); !errors.Is(err, identity.ErrInvalidRevocation) {
			t.Errorf("%s: %v", name, err)
		}
	}

	set := identity.NewRevocationSet()
	// Mallory cannot revoke p's device: a revocation naming p's key but
	// signed by Mallory's is refused and changes nothing.
	forged, _ := mallory.Revoke(d.device.ID, testNow)
	forged.IdentityKey = p.IdentityKey()
	if err := set.Add(forged); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("forged revocation: %v", err)
	}
	own, _ := mallory.Revoke(d.device.ID, testNow)
	if err := set.Add(own); err != nil {
		t.Fatal(err)
	}
	if set.Revoked(p.IdentityKey(), d.device.ID) {
		t.Fatal("another user's revocation revoked p's device")
	}
	if err := set.Add(back); err != nil || !set.Revoked(p.IdentityKey(), d.device.ID) {
		t.Fatalf("revocation not in force: %v", err)
	}
	if n := len(set.Revocations()); n != 2 {
		t.Fatalf("%d revocations listed", n)
	}
}
