package identity

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// revocationVersion is the version of the revocation encoding.
const revocationVersion = 1

// revocationLabel domain-separates revocation signatures.
const revocationLabel = "SpacePanda v1 device revocation"

// MaxRevocationSize bounds an encoded revocation (a valid one is 125 bytes).
const MaxRevocationSize = 256

// Revocation is the identity key's statement that one of its devices is no
// longer the user's: every certificate for that device id, whatever its
// signature key or lifetime, is refused from then on. Device ids are never
// reused, so a revocation is permanent.
//
//	struct {
//	    uint8 version = 1;
//	    opaque identity_key<V>;   // Ed25519 public key, 32 bytes
//	    opaque device_id<V>;      // 16 bytes
//	    uint64 revoked_at;        // seconds since the Unix epoch (for display)
//	} DeviceRevocationTBS;
//
//	struct {
//	    DeviceRevocationTBS tbs;
//	    opaque signature<V>;      // Ed25519 by identity_key over
//	                              // IdentitySignContent{"SpacePanda v1
//	                              // device revocation", tbs}, 64 bytes
//	} DeviceRevocation;
type Revocation struct {
	IdentityKey IdentityKey
	DeviceID    DeviceID
	RevokedAt   uint64
	Signature   []byte
}

// Revoke issues the revocation of device id, dated at.
func (p *PrivateIdentity) Revoke(id DeviceID, at time.Time) (*Revocation, error) {
	if id.IsZero() {
		return nil, fmt.Errorf("%w: zero device id", ErrInvalidRevocation)
	}
	r := &Revocation{IdentityKey: p.pub, DeviceID: id, RevokedAt: unixSeconds(at)}
	tbs, err := r.marshalTBS()
	if err != nil {
		return nil, err
	}
	r.Signature = p.sign(revocationLabel, tbs)
	return r, nil
}

func (r *Revocation) addTBS(b *wire.Builder) {
	b.AddUint8(revocationVersion)
	b.AddOpaque(r.IdentityKey[:])
	b.AddOpaque(r.DeviceID[:])
	b.AddUint64(r.RevokedAt)
}

func (r *Revocation) marshalTBS() ([]byte, error) {
	b := wire.NewBuilder(MaxRevocationSize)
	r.addTBS(b)
	return b.Bytes()
}

// MarshalMLS implements wire.Marshaler.
func (r *Revocation) MarshalMLS(b *wire.Builder) {
	r.addTBS(b)
	b.AddOpaque(r.Signature)
}

// UnmarshalMLS implements wire.Unmarshaler (strict, like Certificate's).
func (r *Revocation) UnmarshalMLS(rd *wire.Reader) {
	*r = Revocation{}
	v := rd.Uint8()
	ik := rd.Opaque()
	did := rd.Opaque()
	r.RevokedAt = rd.Uint64()
	r.Signature = rd.OpaqueCopy()
	if rd.Err() != nil {
		return
	}
	switch {
	case v != revocationVersion:
		rd.Fail("revocation version %d", v)
	case len(ik) != len(r.IdentityKey):
		rd.Fail("identity key of %d bytes", len(ik))
	case len(did) != len(r.DeviceID):
		rd.Fail("device id of %d bytes", len(did))
	case len(r.Signature) != ed25519.SignatureSize:
		rd.Fail("signature of %d bytes", len(r.Signature))
	}
	copy(r.IdentityKey[:], ik)
	copy(r.DeviceID[:], did)
	if r.DeviceID.IsZero() && rd.Err() == nil {
		rd.Fail("zero device id")
	}
}

// Marshal encodes the revocation.
func (r *Revocation) Marshal() ([]byte, error) { return wire.Marshal(r) }

// ParseRevocation decodes an encoded revocation strictly (not verified).
func ParseRevocation(data []byte) (*Revocation, error) {
	if len(data) > MaxRevocationSize {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrInvalidRevocation, len(data), MaxRevocationSize)
	}
	r := new(Revocation)
	if err := wire.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRevocation, err)
	}
	return r, nil
}

// Verify checks the identity key's signature.
func (r *Revocation) Verify() error {
	tbs, err := r.marshalTBS()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRevocation, err)
	}
	if !r.IdentityKey.verify(revocationLabel, tbs, r.Signature) {
		return fmt.Errorf("%w: revocation by %s", ErrBadSignature, UserIDFromKey(r.IdentityKey))
	}
	return nil
}

// RevocationSet is the set of revoked devices a Validator consults. Only
// verified revocations enter it, each keyed by its identity key and device
// id, so a user can revoke only its own devices. Safe for concurrent use.
type RevocationSet struct {
	mu sync.RWMutex
	m  map[revocationKey]*Revocation
}

type revocationKey struct {
	ik IdentityKey
	d  DeviceID
}

// NewRevocationSet returns an empty set.
func NewRevocationSet() *RevocationSet {
	return &RevocationSet{m: map[revocationKey]*Revocation{}}
}

// Add verifies r and adds it; a revocation with a bad signature is refused
// (ErrBadSignature) and changes nothing. Adding a device twice keeps the
// first revocation.
func (s *RevocationSet) Add(r *Revocation) error {
	if err := r.Verify(); err != nil {
		return err
	}
	k := revocationKey{r.IdentityKey, r.DeviceID}
	c := *r
	c.Signature = append([]byte{}, r.Signature...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok {
		s.m[k] = &c
	}
	return nil
}

// Revoked reports whether the identity key has revoked device d.
func (s *RevocationSet) Revoked(ik IdentityKey, d DeviceID) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.m[revocationKey{ik, d}]
	return ok
}

// Revocations returns the revocations in the set, ordered by identity key
// and device id, for storing or forwarding to other devices.
func (s *RevocationSet) Revocations() []*Revocation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Revocation, 0, len(s.m))
	for _, r := range s.m {
		c := *r
		c.Signature = append([]byte{}, r.Signature...)
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *Revocation) int {
		if c := bytes.Compare(a.IdentityKey[:], b.IdentityKey[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.DeviceID[:], b.DeviceID[:])
	})
	return out
}
