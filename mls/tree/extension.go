package tree

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// ExtensionType identifies an extension ("MLS Extension Types" registry,
// RFC 9420 §17.3). Unknown values, including GREASE, are carried opaquely
// (§13.4, §13.5).
type ExtensionType uint16

// Extension types defined by RFC 9420 §17.3.
const (
	ExtensionTypeApplicationID        ExtensionType = 0x0001
	ExtensionTypeRatchetTree          ExtensionType = 0x0002
	ExtensionTypeRequiredCapabilities ExtensionType = 0x0003
	ExtensionTypeExternalPub          ExtensionType = 0x0004
	ExtensionTypeExternalSenders      ExtensionType = 0x0005
)

// IsDefault reports whether t is one of the "default" extension types that
// MUST NOT be listed in Capabilities.extensions (RFC 9420 §7.2).
func (t ExtensionType) IsDefault() bool {
	return t >= ExtensionTypeApplicationID && t <= ExtensionTypeExternalSenders
}

// Extension is one extension with its type-specific data left opaque
// (RFC 9420 §7.2).
//
//	struct {
//	    ExtensionType extension_type;
//	    opaque extension_data<V>;
//	} Extension;
type Extension struct {
	ExtensionType ExtensionType
	ExtensionData []byte
}

// MarshalMLS implements wire.Marshaler.
func (e *Extension) MarshalMLS(b *wire.Builder) {
	b.AddUint16(uint16(e.ExtensionType))
	b.AddOpaque(e.ExtensionData)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (e *Extension) UnmarshalMLS(r *wire.Reader) {
	e.ExtensionType = ExtensionType(r.Uint16())
	e.ExtensionData = r.OpaqueCopy()
}

// Extensions is an `Extension extensions<V>` list. Decoding rejects a list
// with two extensions of the same type: "Any field containing a list of
// extensions MUST NOT have more than one extension of any given type"
// (RFC 9420 §13.4).
type Extensions []Extension

// Find returns the extension of type t, or nil when absent.
func (es Extensions) Find(t ExtensionType) *Extension {
	for i := range es {
		if es[i].ExtensionType == t {
			return &es[i]
		}
	}
	return nil
}

// Has reports whether an extension of type t is present.
func (es Extensions) Has(t ExtensionType) bool { return es.Find(t) != nil }

// MarshalMLS implements wire.Marshaler.
func (es Extensions) MarshalMLS(b *wire.Builder) {
	b.AddVector(func(b *wire.Builder) {
		for i := range es {
			es[i].MarshalMLS(b)
		}
	})
}

// UnmarshalMLS implements wire.Unmarshaler.
func (es *Extensions) UnmarshalMLS(r *wire.Reader) {
	out := Extensions{}
	var seen typeSet
	r.VectorEach(func(r *wire.Reader) {
		var e Extension
		e.UnmarshalMLS(r)
		if r.Err() != nil {
			return
		}
		if !seen.add(out, e.ExtensionType) {
			r.SetError(fmt.Errorf("%w: extension type 0x%04x: %w", ErrDuplicateExtension, uint16(e.ExtensionType), wire.ErrInvalidValue))
			return
		}
		out = append(out, e)
	})
	*es = out
}

// Duplicate returns a type that appears twice in es, if any (RFC 9420
// §13.4). It is linear in len(es).
func (es Extensions) Duplicate() (ExtensionType, bool) {
	var seen typeSet
	for i := range es {
		if !seen.add(es[:i], es[i].ExtensionType) {
			return es[i].ExtensionType, true
		}
	}
	return 0, false
}

// typeSet finds repeated extension types: a scan of the (short) list
// before it, a set once the list is long, so that a hostile list of many
// extensions costs linear time, not quadratic.
type typeSet struct{ m map[ExtensionType]struct{} }

// add records t, the next type after before, and reports whether it is new.
func (s *typeSet) add(before Extensions, t ExtensionType) bool {
	const scan = 16
	if s.m == nil && len(before) < scan {
		return !before.Has(t)
	}
	if s.m == nil {
		s.m = make(map[ExtensionType]struct{}, 2*len(before))
		for i := range before {
			s.m[before[i].ExtensionType] = struct{}{}
		}
	}
	if _, ok := s.m[t]; ok {
		return false
	}
	s.m[t] = struct{}{}
	return true
}

// ExternalPub is the external_pub GroupInfo extension (RFC 9420 §12.4.3.2).
//
//	struct { HPKEPublicKey external_pub; } ExternalPub;
type ExternalPub struct {
	ExternalPub []byte
}

// MarshalMLS implements wire.Marshaler.
func (e *ExternalPub) MarshalMLS(b *wire.Builder) { b.AddOpaque(e.ExternalPub) }

// UnmarshalMLS implements wire.Unmarshaler.
func (e *ExternalPub) UnmarshalMLS(r *wire.Reader) { e.ExternalPub = r.OpaqueCopy() }

// ApplicationID is the application_id LeafNode extension (RFC 9420 §5.3.3).
//
//	opaque application_id<V>;
type ApplicationID []byte

// MarshalMLS implements wire.Marshaler.
func (a ApplicationID) MarshalMLS(b *wire.Builder) { b.AddOpaque(a) }

// UnmarshalMLS implements wire.Unmarshaler.
func (a *ApplicationID) UnmarshalMLS(r *wire.Reader) { *a = r.OpaqueCopy() }

// RequiredCapabilities is the required_capabilities GroupContext extension
// (RFC 9420 §11.1). Proposal types are kept as ProposalType values; unknown
// values are carried.
//
//	struct {
//	    ExtensionType extension_types<V>;
//	    ProposalType proposal_types<V>;
//	    CredentialType credential_types<V>;
//	} RequiredCapabilities;
type RequiredCapabilities struct {
	ExtensionTypes  []ExtensionType
	ProposalTypes   []ProposalType
	CredentialTypes []CredentialType
}

// MarshalMLS implements wire.Marshaler.
func (rc *RequiredCapabilities) MarshalMLS(b *wire.Builder) {
	addUint16s(b, rc.ExtensionTypes)
	addUint16s(b, rc.ProposalTypes)
	addUint16s(b, rc.CredentialTypes)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (rc *RequiredCapabilities) UnmarshalMLS(r *wire.Reader) {
	rc.ExtensionTypes = readUint16s[ExtensionType](r)
	rc.ProposalTypes = readUint16s[ProposalType](r)
	rc.CredentialTypes = readUint16s[CredentialType](r)
}

// ExternalSender is one entry of the external_senders GroupContext
// extension (RFC 9420 §12.1.8.1).
//
//	struct {
//	  SignaturePublicKey signature_key;
//	  Credential credential;
//	} ExternalSender;
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

// MarshalMLS implements wire.Marshaler.
func (e *ExternalSender) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(e.SignatureKey)
	e.Credential.MarshalMLS(b)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (e *ExternalSender) UnmarshalMLS(r *wire.Reader) {
	e.SignatureKey = r.OpaqueCopy()
	e.Credential.UnmarshalMLS(r)
}

// ExternalSenders is the external_senders extension body:
// `ExternalSender external_senders<V>` (RFC 9420 §12.1.8.1).
type ExternalSenders []ExternalSender

// MarshalMLS implements wire.Marshaler.
func (es ExternalSenders) MarshalMLS(b *wire.Builder) {
	b.AddVector(func(b *wire.Builder) {
		for i := range es {
			es[i].MarshalMLS(b)
		}
	})
}

// UnmarshalMLS implements wire.Unmarshaler.
func (es *ExternalSenders) UnmarshalMLS(r *wire.Reader) {
	out := ExternalSenders{}
	r.VectorEach(func(r *wire.Reader) {
		var e ExternalSender
		e.UnmarshalMLS(r)
		out = append(out, e)
	})
	*es = out
}

// addUint16s writes a <V> vector of 16-bit values.
func addUint16s[T ~uint16](b *wire.Builder, vs []T) {
	b.AddVector(func(b *wire.Builder) {
		for _, v := range vs {
			b.AddUint16(uint16(v))
		}
	})
}

// readUint16s reads a <V> vector of 16-bit values (never nil on success).
func readUint16s[T ~uint16](r *wire.Reader) []T {
	out := []T{}
	r.VectorEach(func(r *wire.Reader) { out = append(out, T(r.Uint16())) })
	if r.Err() != nil {
		return nil
	}
	return out
}

// addUint32s writes a <V> vector of 32-bit values.
func addUint32s[T ~uint32](b *wire.Builder, vs []T) {
	b.AddVector(func(b *wire.Builder) {
		for _, v := range vs {
			b.AddUint32(uint32(v))
		}
	})
}

// readUint32s reads a <V> vector of 32-bit values (never nil on success).
func readUint32s[T ~uint32](r *wire.Reader) []T {
	out := []T{}
	r.VectorEach(func(r *wire.Reader) { out = append(out, T(r.Uint32())) })
	if r.Err() != nil {
		return nil
	}
	return out
}

// ExtensionTypeLastResort marks a KeyPackage that may be used more than
// once when a client has run out of fresh ones (RFC 9420 §16.8). It is not
// defined by RFC 9420 itself but by the MLS extensions draft
// (draft-ietf-mls-extensions, "last_resort" 0x000A, empty extension_data),
// the value other implementations (OpenMLS, mls-rs) use.
const ExtensionTypeLastResort ExtensionType = 0x000a
