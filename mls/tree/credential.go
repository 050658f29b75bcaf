package tree

import (
	"github.com/spacepanda/spacepanda/mls/wire"
)

// CredentialType identifies a credential format (RFC 9420 §5.3, "MLS
// Credential Types" registry, §17.5).
type CredentialType uint16

// Credential types defined by RFC 9420 §17.5.
const (
	CredentialTypeBasic CredentialType = 0x0001
	CredentialTypeX509  CredentialType = 0x0002
)

// Credential presents an identity bound to a signature key (RFC 9420 §5.3).
//
//	struct {
//	    CredentialType credential_type;
//	    select (Credential.credential_type) {
//	        case basic: opaque identity<V>;
//	        case x509:  Certificate certificates<V>;
//	    };
//	} Credential;
//
// Credential types other than basic and x509 are carried opaquely: their
// body is read and written as a single opaque<V> in Data. The RFC leaves the
// body format to the type's definition; every variable-size body in MLS
// starts with a <V> length, so this is byte-compatible with any such
// definition and is the convention other implementations use. Whether an
// unknown type is acceptable is a validation question (§5.3.1, §7.3), not a
// decoding one.
type Credential struct {
	CredentialType CredentialType
	// Identity is the basic credential's identity (credential_type basic).
	Identity []byte
	// Certificates is the x509 chain, each entry one DER certificate
	// (Certificate.cert_data), end-entity first (credential_type x509).
	Certificates [][]byte
	// Data is the opaque body of any other credential type.
	Data []byte
}

// NewBasicCredential returns a basic credential for identity.
func NewBasicCredential(identity []byte) Credential {
	return Credential{CredentialType: CredentialTypeBasic, Identity: identity}
}

// MarshalMLS implements wire.Marshaler.
func (c *Credential) MarshalMLS(b *wire.Builder) {
	b.AddUint16(uint16(c.CredentialType))
	switch c.CredentialType {
	case CredentialTypeBasic:
		b.AddOpaque(c.Identity)
	case CredentialTypeX509:
		b.AddVector(func(b *wire.Builder) {
			for _, cert := range c.Certificates {
				b.AddOpaque(cert)
			}
		})
	default:
		b.AddOpaque(c.Data)
	}
}

// UnmarshalMLS implements wire.Unmarshaler.
func (c *Credential) UnmarshalMLS(r *wire.Reader) {
	*c = Credential{CredentialType: CredentialType(r.Uint16())}
	switch c.CredentialType {
	case CredentialTypeBasic:
		c.Identity = r.OpaqueCopy()
	case CredentialTypeX509:
		c.Certificates = [][]byte{}
		r.VectorEach(func(r *wire.Reader) {
			c.Certificates = append(c.Certificates, r.OpaqueCopy())
		})
	default:
		c.Data = r.OpaqueCopy()
	}
}
