package schedule

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// PSKType is the kind of a pre-shared key (RFC 9420 §8.4).
type PSKType uint8

// PSK types (RFC 9420 §8.4). 0 is reserved.
const (
	PSKTypeExternal   PSKType = 1
	PSKTypeResumption PSKType = 2
)

func (t PSKType) String() string {
	switch t {
	case PSKTypeExternal:
		return "external"
	case PSKTypeResumption:
		return "resumption"
	}
	return fmt.Sprintf("PSKType(%d)", uint8(t))
}

// ResumptionPSKUsage says what a resumption PSK is used for (RFC 9420 §8.4).
type ResumptionPSKUsage uint8

// Resumption PSK usages (RFC 9420 §8.4). 0 is reserved.
const (
	UsageApplication ResumptionPSKUsage = 1
	UsageReinit      ResumptionPSKUsage = 2
	UsageBranch      ResumptionPSKUsage = 3
)

func (u ResumptionPSKUsage) String() string {
	switch u {
	case UsageApplication:
		return "application"
	case UsageReinit:
		return "reinit"
	case UsageBranch:
		return "branch"
	}
	return fmt.Sprintf("ResumptionPSKUsage(%d)", uint8(u))
}

// PreSharedKeyID identifies a PSK (RFC 9420 §8.4):
//
//	struct {
//	  PSKType psktype;
//	  select (PreSharedKeyID.psktype) {
//	    case external:   opaque psk_id<V>;
//	    case resumption: ResumptionPSKUsage usage; opaque psk_group_id<V>; uint64 psk_epoch;
//	  };
//	  opaque psk_nonce<V>;
//	} PreSharedKeyID;
//
// Only the fields of Type's branch are encoded.
type PreSharedKeyID struct {
	Type PSKType

	PSKID []byte // external

	Usage      ResumptionPSKUsage // resumption
	PSKGroupID []byte             // resumption
	PSKEpoch   uint64             // resumption

	Nonce []byte // psk_nonce, KDF.Nh fresh random bytes (see CheckNonce)
}

// MarshalMLS encodes the PreSharedKeyID. An unknown type or usage is recorded
// as an error on b.
func (p *PreSharedKeyID) MarshalMLS(b *wire.Builder) {
	b.AddUint8(uint8(p.Type))
	switch p.Type {
	case PSKTypeExternal:
		b.AddOpaque(p.PSKID)
	case PSKTypeResumption:
		if !validUsage(p.Usage) {
			b.SetError(fmt.Errorf("%w: %v", ErrInvalidPSK, p.Usage))
			return
		}
		b.AddUint8(uint8(p.Usage))
		b.AddOpaque(p.PSKGroupID)
		b.AddUint64(p.PSKEpoch)
	default:
		b.SetError(fmt.Errorf("%w: %v", ErrInvalidPSK, p.Type))
		return
	}
	b.AddOpaque(p.Nonce)
}

// UnmarshalMLS decodes a PreSharedKeyID strictly: the reserved value 0 and
// unknown psktype or usage values are rejected. Byte fields are copied.
func (p *PreSharedKeyID) UnmarshalMLS(r *wire.Reader) {
	*p = PreSharedKeyID{Type: PSKType(r.Uint8())}
	switch p.Type {
	case PSKTypeExternal:
		p.PSKID = r.OpaqueCopy()
	case PSKTypeResumption:
		p.Usage = ResumptionPSKUsage(r.Uint8())
		if r.Err() == nil && !validUsage(p.Usage) {
			r.Fail("resumption psk usage %d", uint8(p.Usage))
			return
		}
		p.PSKGroupID = r.OpaqueCopy()
		p.PSKEpoch = r.Uint64()
	default:
		if r.Err() == nil {
			r.Fail("psktype %d", uint8(p.Type))
		}
		return
	}
	p.Nonce = r.OpaqueCopy()
}

func validUsage(u ResumptionPSKUsage) bool {
	return u == UsageApplication || u == UsageReinit || u == UsageBranch
}

// CheckNonce reports whether psk_nonce has the length KDF.Nh that RFC 9420
// §8.4 requires.
func (p *PreSharedKeyID) CheckNonce(s *suite.Suite) error {
	if len(p.Nonce) != s.HashSize() {
		return fmt.Errorf("%w: psk_nonce of %d bytes, want %d", ErrInvalidPSK, len(p.Nonce), s.HashSize())
	}
	return nil
}

// Equal reports whether two PreSharedKeyIDs are the same (all encoded fields).
func (p *PreSharedKeyID) Equal(q *PreSharedKeyID) bool {
	a, err1 := wire.Marshal(p)
	b, err2 := wire.Marshal(q)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// PSK is one pre-shared key to inject: its identifier and its value (for a
// resumption PSK, the resumption_psk of the group and epoch it names).
type PSK struct {
	ID     PreSharedKeyID
	Secret []byte
}

// pskLabel encodes PSKLabel (RFC 9420 §8.4):
//
//	struct { PreSharedKeyID id; uint16 index; uint16 count; } PSKLabel;
func pskLabel(id *PreSharedKeyID, index, count uint16) ([]byte, error) {
	var b wire.Builder
	id.MarshalMLS(&b)
	b.AddUint16(index)
	b.AddUint16(count)
	return b.Bytes()
}

// PSKSecret chains the PSKs, in order, into psk_secret (RFC 9420 §8.4):
//
//	psk_extracted_[i] = KDF.Extract(0, psk_[i])
//	psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, KDF.Nh)
//	psk_secret_[0]    = 0
//	psk_secret_[i]    = KDF.Extract(psk_input_[i-1], psk_secret_[i-1])
//
// With no PSKs the result is the all-zero vector of length KDF.Nh.
func PSKSecret(s *suite.Suite, psks []PSK) ([]byte, error) {
	if len(psks) > 0xffff {
		return nil, fmt.Errorf("%w: %d PSKs", ErrInvalidPSK, len(psks))
	}
	secret := make([]byte, s.HashSize())
	for i := range psks {
		label, err := pskLabel(&psks[i].ID, uint16(i), uint16(len(psks)))
		if err != nil {
			return nil, fmt.Errorf("psk %d: %w", i, err)
		}
		extracted := s.Extract(nil, psks[i].Secret)
		input, err := s.ExpandWithLabel(extracted, "derived psk", label, s.HashSize())
		clear(extracted)
		if err != nil {
			return nil, err
		}
		next := s.Extract(input, secret)
		clear(input)
		clear(secret)
		secret = next
	}
	return secret, nil
}
