// Package suite implements the MLS cipher suites 1–7 (RFC 9420 §5.1, §17.1):
// hash, KDF, AEAD, MAC, HPKE and signatures, and the labelled operations MLS
// builds on them (ExpandWithLabel, DeriveSecret, RefHash, SignWithLabel,
// EncryptWithLabel, ...).
//
// A *Suite is an immutable value, safe for concurrent use. There is no
// package-level default: callers obtain one with New and pass it along.
//
// Keys cross this API as bytes in the formats of RFC 9420 and the MLS test
// vectors: HPKE keys as SerializePublicKey/SerializePrivateKey (RFC 9180 §7.1),
// Ed25519/Ed448 private keys as their RFC 8032 seed, ECDSA private keys as the
// big-endian scalar and public keys as uncompressed points.
package suite

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// ID is an MLS CipherSuite value (RFC 9420 §17.1).
type ID uint16

// The cipher suites of RFC 9420 §17.1.
const (
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519        ID = 0x0001
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256             ID = 0x0002
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 ID = 0x0003
	MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448            ID = 0x0004
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521             ID = 0x0005
	MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448     ID = 0x0006
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384             ID = 0x0007
)

// All lists the suites this package implements, in numeric order.
func All() []ID { return []ID{1, 2, 3, 4, 5, 6, 7} }

func (id ID) String() string {
	switch id {
	case MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519:
		return "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"
	case MLS_128_DHKEMP256_AES128GCM_SHA256_P256:
		return "MLS_128_DHKEMP256_AES128GCM_SHA256_P256"
	case MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519:
		return "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519"
	case MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448:
		return "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448"
	case MLS_256_DHKEMP521_AES256GCM_SHA512_P521:
		return "MLS_256_DHKEMP521_AES256GCM_SHA512_P521"
	case MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448:
		return "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448"
	case MLS_256_DHKEMP384_AES256GCM_SHA384_P384:
		return "MLS_256_DHKEMP384_AES256GCM_SHA384_P384"
	}
	return fmt.Sprintf("CipherSuite(0x%04x)", uint16(id))
}

// Errors. Messages never contain key material.
var (
	ErrUnsupportedSuite = errors.New("suite: unsupported cipher suite")
	ErrInvalidSignature = errors.New("suite: invalid signature")
	ErrInvalidKey       = errors.New("suite: invalid key")
	ErrDecrypt          = errors.New("suite: decryption failed")
	ErrLength           = errors.New("suite: invalid length")
)

// Suite is one MLS cipher suite. Obtain it with New.
type Suite struct {
	id      ID
	newHash func() hash.Hash
	nh      int
	aead    aeadAlg
	kem     kemAlg
	sig     sigAlg
	// hpkeKDF and hpkeAEAD are the RFC 9180 ids used for the HPKE suite_id.
	hpkeKDF  uint16
	hpkeAEAD uint16
}

// New returns the cipher suite id, or ErrUnsupportedSuite.
func New(id ID) (*Suite, error) {
	s := &Suite{id: id}
	switch id {
	case MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519:
		s.setHash(sha256.New, 0x0001)
		s.aead, s.hpkeAEAD = aesGCM(16), 0x0001
		s.kem = newStdKEM(kemX25519)
		s.sig = ed25519Alg{curve: ed25519Curve()}
	case MLS_128_DHKEMP256_AES128GCM_SHA256_P256:
		s.setHash(sha256.New, 0x0001)
		s.aead, s.hpkeAEAD = aesGCM(16), 0x0001
		s.kem = newStdKEM(kemP256)
		s.sig = newECDSA(p256, sha256.New)
	case MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519:
		s.setHash(sha256.New, 0x0001)
		s.aead, s.hpkeAEAD = chacha(), 0x0003
		s.kem = newStdKEM(kemX25519)
		s.sig = ed25519Alg{curve: ed25519Curve()}
	case MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448:
		s.setHash(sha512.New, 0x0003)
		s.aead, s.hpkeAEAD = aesGCM(32), 0x0002
		s.kem = newX448KEM()
		s.sig = ed448Alg{curve: ed448Curve()}
	case MLS_256_DHKEMP521_AES256GCM_SHA512_P521:
		s.setHash(sha512.New, 0x0003)
		s.aead, s.hpkeAEAD = aesGCM(32), 0x0002
		s.kem = newStdKEM(kemP521)
		s.sig = newECDSA(p521, sha512.New)
	case MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448:
		s.setHash(sha512.New, 0x0003)
		s.aead, s.hpkeAEAD = chacha(), 0x0003
		s.kem = newX448KEM()
		s.sig = ed448Alg{curve: ed448Curve()}
	case MLS_256_DHKEMP384_AES256GCM_SHA384_P384:
		s.setHash(sha512.New384, 0x0002)
		s.aead, s.hpkeAEAD = aesGCM(32), 0x0002
		s.kem = newStdKEM(kemP384)
		s.sig = newECDSA(p384, sha512.New384)
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedSuite, id)
	}
	if err := s.kem.bind(s.hpkeKDF, s.hpkeAEAD); err != nil {
		return nil, fmt.Errorf("%w: %v: %v", ErrUnsupportedSuite, id, err)
	}
	return s, nil
}

// MustNew is New for suite ids known to be supported; it panics otherwise.
func MustNew(id ID) *Suite {
	s, err := New(id)
	if err != nil {
		panic(err)
	}
	return s
}

func (s *Suite) setHash(h func() hash.Hash, kdfID uint16) {
	s.newHash = h
	s.nh = h().Size()
	s.hpkeKDF = kdfID
}

// ID returns the suite's CipherSuite value.
func (s *Suite) ID() ID { return s.id }

func (s *Suite) String() string { return s.id.String() }

// --- Hash, KDF, MAC (RFC 9420 §5.1, §8) ---

// HashSize is Nh, the output size of the suite's hash and KDF.
func (s *Suite) HashSize() int { return s.nh }

// Hash returns the hash of the concatenation of parts.
func (s *Suite) Hash(parts ...[]byte) []byte {
	h := s.newHash()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(make([]byte, 0, s.nh))
}

// Extract is KDF.Extract(salt, ikm) (HKDF-Extract).
func (s *Suite) Extract(salt, ikm []byte) []byte {
	if len(salt) == 0 {
		salt = make([]byte, s.nh)
	}
	m := hmac.New(s.newHash, salt)
	m.Write(ikm)
	return m.Sum(make([]byte, 0, s.nh))
}

// Expand is KDF.Expand(prk, info, length) (HKDF-Expand).
func (s *Suite) Expand(prk, info []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*s.nh {
		return nil, fmt.Errorf("%w: expand to %d bytes", ErrLength, length)
	}
	out := make([]byte, 0, (length+s.nh-1)/s.nh*s.nh)
	m := hmac.New(s.newHash, prk)
	var prev []byte
	for ctr := byte(1); len(out) < length; ctr++ {
		if ctr > 1 {
			// Not before the first block: HMAC's first Reset snapshots the
			// keyed state, wasted work for the usual one-block expansion.
			m.Reset()
		}
		m.Write(prev)
		m.Write(info)
		m.Write([]byte{ctr})
		out = m.Sum(out)
		prev = out[len(out)-s.nh:]
	}
	return out[:length:length], nil
}

// ExpandWithLabel (RFC 9420 §8):
//
//	ExpandWithLabel(Secret, Label, Context, Length) =
//	    KDF.Expand(Secret, KDFLabel, Length)
//	struct { uint16 length; opaque label<V> = "MLS 1.0 " + Label; opaque context<V>; } KDFLabel;
func (s *Suite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("%w: expand to %d bytes", ErrLength, length)
	}
	b := wire.NewBuilder(2 + 1 + 8 + len(label) + 4 + len(context))
	b.AddUint16(uint16(length))
	b.AddVector(func(b *wire.Builder) {
		b.AddRaw([]byte("MLS 1.0 "))
		b.AddRaw([]byte(label))
	})
	b.AddOpaque(context)
	info, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	return s.Expand(secret, info, length)
}

// DeriveSecret(Secret, Label) = ExpandWithLabel(Secret, Label, "", Nh) (RFC 9420 §8).
func (s *Suite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return s.ExpandWithLabel(secret, label, nil, s.nh)
}

// DeriveTreeSecret(Secret, Label, Generation, Length) =
// ExpandWithLabel(Secret, Label, Generation, Length) with Generation as uint32 (RFC 9420 §9.1).
func (s *Suite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	var g [4]byte
	g[0], g[1], g[2], g[3] = byte(generation>>24), byte(generation>>16), byte(generation>>8), byte(generation)
	return s.ExpandWithLabel(secret, label, g[:], length)
}

// MAC is the suite's HMAC over data.
func (s *Suite) MAC(key, data []byte) []byte {
	m := hmac.New(s.newHash, key)
	m.Write(data)
	return m.Sum(make([]byte, 0, s.nh))
}

// VerifyMAC reports, in constant time, whether tag is the MAC of data.
func (s *Suite) VerifyMAC(key, data, tag []byte) bool {
	return hmac.Equal(s.MAC(key, data), tag)
}

// --- Hash-based identifiers (RFC 9420 §5.2) ---

// RefHash(label, value) = Hash(RefHashInput{label<V>, value<V>}).
func (s *Suite) RefHash(label string, value []byte) []byte {
	b := wire.NewBuilder(len(label) + len(value) + 8)
	b.AddOpaque([]byte(label))
	b.AddOpaque(value)
	in, _ := b.Bytes() // inputs are bounded by the caller's encoded objects
	return s.Hash(in)
}

// MakeKeyPackageRef returns the KeyPackageRef of an encoded KeyPackage.
func (s *Suite) MakeKeyPackageRef(keyPackage []byte) []byte {
	return s.RefHash("MLS 1.0 KeyPackage Reference", keyPackage)
}

// MakeProposalRef returns the ProposalRef of an encoded AuthenticatedContent.
func (s *Suite) MakeProposalRef(authenticatedContent []byte) []byte {
	return s.RefHash("MLS 1.0 Proposal Reference", authenticatedContent)
}

// --- AEAD ---

// AEADKeySize is Nk.
func (s *Suite) AEADKeySize() int { return s.aead.keySize }

// AEADNonceSize is Nn.
func (s *Suite) AEADNonceSize() int { return 12 }

// AEADOverhead is the tag size.
func (s *Suite) AEADOverhead() int { return 16 }

// Seal encrypts and authenticates plaintext, appending to dst.
func (s *Suite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := s.aead.new(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrLength, len(nonce))
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

// Open authenticates and decrypts ciphertext, or returns ErrDecrypt.
func (s *Suite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := s.aead.new(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrLength, len(nonce))
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// --- labelled structures ---

// labelled encodes struct { opaque label<V> = "MLS 1.0 "+label; opaque content<V>; },
// the shape of SignContent and EncryptContext (RFC 9420 §5.1.2, §5.1.3).
func labelled(label string, content []byte) []byte {
	h := labelledHeader(label, len(content))
	if h == nil {
		return nil // content beyond the varint range: nothing verifies
	}
	return append(append(make([]byte, 0, len(h)+len(content)), h...), content...)
}

// labelledHeader is the encoding of labelled(label, content) up to content
// itself, for content of n bytes: the label<V> and content's length; nil
// when n is beyond the varint range.
func labelledHeader(label string, n int) []byte {
	b := wire.NewBuilder(len(label) + 16)
	b.AddVector(func(b *wire.Builder) {
		b.AddRaw([]byte("MLS 1.0 "))
		b.AddRaw([]byte(label))
	})
	b.AddVarint(uint64(n))
	out, _ := b.Bytes()
	return out
}
