package identity

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// ExtensionTypeDeviceCertificate is the LeafNode extension carrying the
// device certificate (private use, RFC 9420 §13 and §17.3; 0xF5A0 and
// 0xF5A1 are the channel's info and roles). A leaf that carries it must
// list it in its capabilities (§7.2): see Capabilities.
const ExtensionTypeDeviceCertificate tree.ExtensionType = 0xF5A2

// certVersion is the version of the certificate encoding.
const certVersion = 1

// certLabel domain-separates certificate signatures (see signedContent).
const certLabel = "SpacePanda v1 device certificate"

// MaxCertificateSize bounds an encoded certificate; the largest valid one
// (a P-521 device key) is 270 bytes, an Ed25519 one 168.
const MaxCertificateSize = 512

// Lifetimes.
const (
	// DefaultCertificateLifetime is how long Certify makes a certificate
	// valid after now when asked for 0.
	DefaultCertificateLifetime = 365 * 24 * time.Hour
	// DefaultMaxCertificateLifetime is the longest not_after - not_before
	// the Validator accepts by default (RFC 9420 §7.2 has applications
	// bound leaf lifetimes; this bounds the certificate the same way).
	DefaultMaxCertificateLifetime = 400 * 24 * time.Hour
	// DefaultClockSkew is the Validator's default tolerance around a
	// lifetime, for members whose clocks disagree by minutes.
	DefaultClockSkew = 5 * time.Minute
	// certBackdate is how far before now Certify sets not_before, so that a
	// device whose clock is behind the issuer's accepts a fresh certificate.
	certBackdate = time.Hour
)

// Certificate is a device certificate: the identity key's statement that a
// device id and an MLS signature key belong to its user for a time.
//
//	struct {
//	    uint8 version = 1;
//	    opaque identity_key<V>;     // Ed25519 public key, 32 bytes
//	    opaque device_id<V>;        // 16 bytes
//	    uint16 signature_scheme;    // TLS SignatureScheme of the device key
//	    opaque signature_key<V>;    // the device's SignaturePublicKey, the
//	                                // size its scheme fixes
//	    uint64 not_before;          // seconds since the Unix epoch
//	    uint64 not_after;           // not_before <= not_after
//	} DeviceCertificateTBS;
//
//	struct {
//	    DeviceCertificateTBS tbs;
//	    opaque signature<V>;        // Ed25519 by identity_key over
//	                                // IdentitySignContent{"SpacePanda v1
//	                                // device certificate", tbs}, 64 bytes
//	} DeviceCertificate;
//
// Vectors use the MLS varint lengths (RFC 9420 §2.1.2). Decoding is strict:
// version, every size, a known scheme, minimal varints, no trailing bytes.
type Certificate struct {
	IdentityKey IdentityKey
	Device      Device
	// NotBefore and NotAfter are seconds since the Unix epoch, as in the
	// MLS Lifetime (RFC 9420 §7.2).
	NotBefore, NotAfter uint64
	Signature           []byte
}

// Certify issues a certificate for d, valid from an hour before now (for
// clock skew) until now + lifetime (0: DefaultCertificateLifetime).
func (p *PrivateIdentity) Certify(d Device, now time.Time, lifetime time.Duration) (*Certificate, error) {
	if lifetime == 0 {
		lifetime = DefaultCertificateLifetime
	}
	if lifetime < 0 || lifetime+certBackdate > DefaultMaxCertificateLifetime {
		return nil, fmt.Errorf("%w: %v", ErrLifetimeTooLong, lifetime)
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	c := &Certificate{IdentityKey: p.pub, Device: Device{ID: d.ID, Scheme: d.Scheme, SignatureKey: bytes.Clone(d.SignatureKey)},
		NotBefore: unixSeconds(now.Add(-certBackdate)), NotAfter: unixSeconds(now.Add(lifetime))}
	tbs, err := c.marshalTBS()
	if err != nil {
		return nil, err
	}
	c.Signature = p.sign(certLabel, tbs)
	return c, nil
}

func unixSeconds(t time.Time) uint64 { return uint64(max(t.Unix(), 0)) }

// UserID is the user id of the certificate's identity key.
func (c *Certificate) UserID() UserID { return UserIDFromKey(c.IdentityKey) }

func (c *Certificate) marshalTBS() ([]byte, error) {
	b := wire.NewBuilder(MaxCertificateSize)
	c.addTBS(b)
	return b.Bytes()
}

func (c *Certificate) addTBS(b *wire.Builder) {
	b.AddUint8(certVersion)
	b.AddOpaque(c.IdentityKey[:])
	b.AddOpaque(c.Device.ID[:])
	b.AddUint16(uint16(c.Device.Scheme))
	b.AddOpaque(c.Device.SignatureKey)
	b.AddUint64(c.NotBefore)
	b.AddUint64(c.NotAfter)
}

// MarshalMLS implements wire.Marshaler.
func (c *Certificate) MarshalMLS(b *wire.Builder) {
	c.addTBS(b)
	b.AddOpaque(c.Signature)
}

// UnmarshalMLS implements wire.Unmarshaler: it reads one certificate and
// records on r any departure from the strict encoding.
func (c *Certificate) UnmarshalMLS(r *wire.Reader) {
	*c = Certificate{}
	v := r.Uint8()
	ik := r.Opaque()
	did := r.Opaque()
	c.Device.Scheme = SignatureScheme(r.Uint16())
	c.Device.SignatureKey = r.OpaqueCopy()
	c.NotBefore = r.Uint64()
	c.NotAfter = r.Uint64()
	c.Signature = r.OpaqueCopy()
	if r.Err() != nil {
		return
	}
	switch {
	case v != certVersion:
		r.Fail("device certificate version %d", v)
	case len(ik) != len(c.IdentityKey):
		r.Fail("identity key of %d bytes", len(ik))
	case len(did) != len(c.Device.ID):
		r.Fail("device id of %d bytes", len(did))
	case len(c.Signature) != ed25519.SignatureSize:
		r.Fail("signature of %d bytes", len(c.Signature))
	case c.NotBefore > c.NotAfter:
		r.Fail("not_before after not_after")
	}
	copy(c.IdentityKey[:], ik)
	copy(c.Device.ID[:], did)
	if err := c.Device.check(); err != nil && r.Err() == nil {
		r.Fail("%v", err)
	}
}

// Marshal encodes the certificate.
func (c *Certificate) Marshal() ([]byte, error) { return wire.Marshal(c) }

// ParseCertificate decodes an encoded certificate strictly. It does not
// verify it (VerifySignature, or a Validator, does).
func ParseCertificate(data []byte) (*Certificate, error) {
	if len(data) > MaxCertificateSize {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrInvalidCertificate, len(data), MaxCertificateSize)
	}
	c := new(Certificate)
	if err := wire.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCertificate, err)
	}
	return c, nil
}

// VerifySignature checks the identity key's signature.
func (c *Certificate) VerifySignature() error {
	tbs, err := c.marshalTBS()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCertificate, err)
	}
	if !c.IdentityKey.verify(certLabel, tbs, c.Signature) {
		return fmt.Errorf("%w: device certificate of %s", ErrBadSignature, c.UserID())
	}
	return nil
}

// CheckLifetime checks that now is within [not_before - skew,
// not_after + skew].
func (c *Certificate) CheckLifetime(now time.Time, skew time.Duration) error {
	t, s := now.Unix(), int64(max(skew, 0)/time.Second)
	if c.NotBefore > uint64(max(t+s, 0)) {
		return fmt.Errorf("%w: valid from %s", ErrNotYetValid, formatUnix(c.NotBefore))
	}
	if t-s > 0 && c.NotAfter < uint64(t-s) {
		return fmt.Errorf("%w: at %s", ErrExpired, formatUnix(c.NotAfter))
	}
	return nil
}

// Lifetime is not_after - not_before.
func (c *Certificate) Lifetime() time.Duration {
	if c.NotAfter < c.NotBefore {
		return 0
	}
	d := c.NotAfter - c.NotBefore
	if d > uint64(1<<63-1)/uint64(time.Second) {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(d) * time.Second
}

func formatUnix(s uint64) string {
	return time.Unix(int64(min(s, 253402300799)), 0).UTC().Format(time.RFC3339) // at most 9999-12-31
}

// Extension returns the certificate as a LeafNode extension.
func (c *Certificate) Extension() (tree.Extension, error) {
	data, err := c.Marshal()
	if err != nil {
		return tree.Extension{}, err
	}
	return tree.Extension{ExtensionType: ExtensionTypeDeviceCertificate, ExtensionData: data}, nil
}

// LeafCertificate returns the certificate a leaf carries (not verified):
// ErrNoCertificate when it has none, ErrDuplicateCertificate when more
// than one (a leaf decoded from the wire cannot, RFC 9420 §13.4, but one
// built in memory can), ErrInvalidCertificate when it does not decode.
func LeafCertificate(ln *tree.LeafNode) (*Certificate, error) {
	var found *tree.Extension
	for i := range ln.Extensions {
		if ln.Extensions[i].ExtensionType != ExtensionTypeDeviceCertificate {
			continue
		}
		if found != nil {
			return nil, ErrDuplicateCertificate
		}
		found = &ln.Extensions[i]
	}
	if found == nil {
		return nil, ErrNoCertificate
	}
	return ParseCertificate(found.ExtensionData)
}

// Capabilities returns c with ExtensionTypeDeviceCertificate added to its
// extensions: a leaf that carries a certificate must list it (RFC 9420
// §7.2). mls.NewKeyPackage adds it by itself; mls.LeafOptions does not.
func Capabilities(c tree.Capabilities) tree.Capabilities {
	c.Extensions = slices.Clone(c.Extensions)
	if !slices.Contains(c.Extensions, ExtensionTypeDeviceCertificate) {
		c.Extensions = append(c.Extensions, ExtensionTypeDeviceCertificate)
	}
	return c
}
