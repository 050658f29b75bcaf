package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// PrivateIdentity is a user's identity key pair. It certifies the user's
// devices and revokes them. Its String, GoString and slog value name the
// user id only; the private key leaves only through MarshalBinary, for the
// caller's sealed store.
type PrivateIdentity struct {
	priv ed25519.PrivateKey
	pub  IdentityKey
	id   UserID
}

// GenerateIdentity makes a new identity key pair (rnd nil: crypto/rand).
func GenerateIdentity(rnd io.Reader) (*PrivateIdentity, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var seed [ed25519.SeedSize]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("identity: generate: %w", err)
	}
	defer clear(seed[:])
	return newPrivateIdentity(seed[:]), nil
}

func newPrivateIdentity(seed []byte) *PrivateIdentity {
	priv := ed25519.NewKeyFromSeed(seed)
	p := &PrivateIdentity{priv: priv}
	copy(p.pub[:], priv.Public().(ed25519.PublicKey))
	p.id = UserIDFromKey(p.pub)
	return p
}

// IdentityKey is the public identity key.
func (p *PrivateIdentity) IdentityKey() IdentityKey { return p.pub }

// UserID is the user id of the identity.
func (p *PrivateIdentity) UserID() UserID { return p.id }

// sign signs the domain-separated content (see signedContent).
func (p *PrivateIdentity) sign(label string, content []byte) []byte {
	return ed25519.Sign(p.priv, signedContent(label, content))
}

// privateVersion is the version of the MarshalBinary encoding.
const privateVersion = 1

// MarshalBinary encodes the private identity for storage:
//
//	struct {
//	    uint8 version = 1;
//	    opaque seed<V>;          // the RFC 8032 private key, 32 bytes
//	    opaque identity_key<V>;  // its public key, 32 bytes (a check)
//	} PrivateIdentity;
//
// The result is secret: seal it (the provider's store encrypts at rest)
// and wipe it after use.
func (p *PrivateIdentity) MarshalBinary() ([]byte, error) {
	b := wire.NewBuilder(1 + 2 + ed25519.SeedSize + 2 + ed25519.PublicKeySize)
	b.AddUint8(privateVersion)
	b.AddOpaque(p.priv.Seed())
	b.AddOpaque(p.pub[:])
	return b.Bytes()
}

// ParsePrivateIdentity decodes MarshalBinary strictly; the public key must
// be the one the seed derives. Errors never contain key bytes.
func ParsePrivateIdentity(data []byte) (*PrivateIdentity, error) {
	r := wire.NewReader(data)
	v := r.Uint8()
	seed := r.Opaque()
	pub := r.Opaque()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: private identity: %w", ErrInvalidKey, err)
	}
	switch {
	case v != privateVersion:
		return nil, fmt.Errorf("%w: private identity version %d", ErrInvalidKey, v)
	case len(seed) != ed25519.SeedSize || len(pub) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("%w: private identity of the wrong size", ErrInvalidKey)
	}
	p := newPrivateIdentity(seed)
	if subtle.ConstantTimeCompare(p.pub[:], pub) != 1 {
		return nil, fmt.Errorf("%w: private identity's public key does not match its seed", ErrInvalidKey)
	}
	return p, nil
}

// String names the identity without its secret.
func (p PrivateIdentity) String() string { return "private identity " + string(p.id) }

// GoString is String: %#v must not print the key either.
func (p PrivateIdentity) GoString() string { return p.String() }

// Format implements fmt.Formatter: every verb, on the value or a pointer,
// prints String, never the fields.
func (p PrivateIdentity) Format(f fmt.State, verb rune) { io.WriteString(f, p.String()) }

// LogValue implements slog.LogValuer: the user id only.
func (p PrivateIdentity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user_id", string(p.id)))
}

// signedContent is the message an identity key signs: the label and the
// content, each with a varint length (RFC 9420 §2.1.2), like MLS's
// SignContent (§5.1.2) but with labels starting "SpacePanda v1 ", so that
// a signature for one purpose never verifies for another nor as an MLS
// signature.
//
//	struct {
//	    opaque label<V>;
//	    opaque content<V>;
//	} IdentitySignContent;
func signedContent(label string, content []byte) []byte {
	b := wire.NewBuilder(len(label) + len(content) + 8)
	b.AddOpaque([]byte(label))
	b.AddOpaque(content)
	out, err := b.Bytes()
	if err != nil { // contents are bounded far below 2^30 bytes
		panic(err)
	}
	return out
}
