package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"io"
	"strings"
)

// IdentityKey is a user's Ed25519 identity public key (RFC 8032). It is the
// root of everything the package verifies: the user id is its hash and it
// signs device certificates and revocations.
type IdentityKey [ed25519.PublicKeySize]byte

// ParseIdentityKey reads a 32-byte Ed25519 public key.
func ParseIdentityKey(b []byte) (IdentityKey, error) {
	var k IdentityKey
	if len(b) != len(k) {
		return k, fmt.Errorf("%w: identity key of %d bytes, want %d", ErrInvalidKey, len(b), len(k))
	}
	copy(k[:], b)
	return k, nil
}

// Bytes returns a copy of the key.
func (k IdentityKey) Bytes() []byte { return append([]byte{}, k[:]...) }

// UserID is the user id the key certifies.
func (k IdentityKey) UserID() UserID { return UserIDFromKey(k) }

// String is the user id, which names the key.
func (k IdentityKey) String() string { return "identity key of " + string(k.UserID()) }

// verify checks an Ed25519 signature by k over the domain-separated content
// (see signedContent).
func (k IdentityKey) verify(label string, content, sig []byte) bool {
	return ed25519.Verify(ed25519.PublicKey(k[:]), signedContent(label, content), sig)
}

// UserIDPrefix starts every user id: "sp" and the version 1 of the
// derivation. Text starting with it is reserved: an uncertified leaf may
// not present such an identity.
const UserIDPrefix = "sp1"

// UserIDLen is the length of a user id in characters: the prefix and the
// unpadded base32 of a 32-byte hash.
const UserIDLen = len(UserIDPrefix) + 52

// userIDLabel domain-separates the user id hash.
const userIDLabel = "SpacePanda v1 user id"

// b32 is RFC 4648 base32 in lowercase without padding: case-insensitive
// transports cannot alter it, and it avoids 0/O and 1/l confusion.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// UserID is a self-certifying user id: UserIDPrefix followed by the
// lowercase unpadded base32 (RFC 4648) of
//
//	SHA-256(lv("SpacePanda v1 user id") || identity_key)
//
// (lv: a varint length, RFC 9420 §2.1.2, then the bytes): 55 characters
// carrying all 256 bits, so finding a second key for a user id costs a
// SHA-256 preimage and two keys sharing an id a collision (2^128). It is
// the BasicCredential identity of every device of the user.
type UserID string

// UserIDFromKey derives the user id of an identity key.
func UserIDFromKey(k IdentityKey) UserID {
	h := sha256.New()
	h.Write([]byte{byte(len(userIDLabel))})
	h.Write([]byte(userIDLabel))
	h.Write(k[:])
	return UserID(UserIDPrefix + b32.EncodeToString(h.Sum(nil)))
}

// ParseUserID accepts exactly the canonical text of a user id (lowercase,
// no padding, no separators, unused trailing bits zero).
func ParseUserID(s string) (UserID, error) {
	if len(s) != UserIDLen || !strings.HasPrefix(s, UserIDPrefix) {
		return "", fmt.Errorf("%w: want %d characters starting %q", ErrInvalidUserID, UserIDLen, UserIDPrefix)
	}
	body := s[len(UserIDPrefix):]
	raw, err := b32.DecodeString(body)
	if err != nil || len(raw) != sha256.Size || b32.EncodeToString(raw) != body {
		return "", fmt.Errorf("%w: not canonical base32", ErrInvalidUserID)
	}
	return UserID(s), nil
}

// String returns the id's text.
func (u UserID) String() string { return string(u) }

// Short is a short human-typable form for display and for finding a
// contact among known ones: the prefix and the first 8 characters (40 bits)
// in two groups, e.g. "sp1-abcd-efgh". It is not unique and is never an id.
func (u UserID) Short() string {
	if len(u) < len(UserIDPrefix)+8 {
		return string(u)
	}
	b := u[len(UserIDPrefix):]
	return fmt.Sprintf("%s-%s-%s", UserIDPrefix, b[:4], b[4:8])
}

// Matches reports whether k is the identity key u was derived from.
func (u UserID) Matches(k IdentityKey) bool { return UserIDFromKey(k) == u }

// DeviceID names one device of a user across its key rotations: the
// identity key certifies (DeviceID, signature key) pairs, and a member's
// device id never changes in its updates.
type DeviceID [16]byte

// NewDeviceID returns a random device id (rnd nil: crypto/rand).
func NewDeviceID(rnd io.Reader) (DeviceID, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var d DeviceID
	if _, err := io.ReadFull(rnd, d[:]); err != nil {
		return d, fmt.Errorf("identity: device id: %w", err)
	}
	return d, nil
}

// ParseDeviceID accepts the text of DeviceID.String.
func ParseDeviceID(s string) (DeviceID, error) {
	var d DeviceID
	raw, err := b32.DecodeString(s)
	if err != nil || len(raw) != len(d) || b32.EncodeToString(raw) != s {
		return d, fmt.Errorf("%w: want 26 characters of lowercase base32", ErrInvalidDeviceID)
	}
	copy(d[:], raw)
	return d, nil
}

// String is the lowercase unpadded base32 of the id (26 characters).
func (d DeviceID) String() string { return b32.EncodeToString(d[:]) }

// IsZero reports whether d is the zero id (no device).
func (d DeviceID) IsZero() bool { return d == DeviceID{} }
