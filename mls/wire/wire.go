// Package wire implements the TLS presentation language as used by MLS
// (RFC 9420 §2.1): fixed-size integers, MLS variable-length integers,
// variable-length vectors and optional values.
//
// Encoding uses a Builder; decoding uses a Reader. Both carry a sticky error
// so that callers can write a whole structure and check once at the end.
// Decoding is strict: non-minimal varints, the reserved "11" varint prefix,
// lengths past the end of the input, presence octets other than 0 or 1, and
// trailing bytes after a complete value are all errors.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by decoding. They are wrapped with context; test with errors.Is.
var (
	// ErrTruncated: the input ended before the value did.
	ErrTruncated = errors.New("wire: truncated input")
	// ErrTrailingData: bytes remained after a complete value.
	ErrTrailingData = errors.New("wire: trailing data")
	// ErrNonMinimalVarint: a varint used more bytes than needed (RFC 9420 §2.1.2).
	ErrNonMinimalVarint = errors.New("wire: varint not minimally encoded")
	// ErrInvalidVarint: a varint with the reserved prefix 0b11.
	ErrInvalidVarint = errors.New("wire: invalid varint prefix")
	// ErrVarintTooLarge: a value above 2^30-1 cannot be encoded as an MLS varint.
	ErrVarintTooLarge = errors.New("wire: varint too large")
	// ErrInvalidOptional: a presence octet other than 0 or 1 (RFC 9420 §2.1.1).
	ErrInvalidOptional = errors.New("wire: invalid optional presence octet")
	// ErrInvalidValue: a value the RFC forbids in that field (unknown enum, bad length, ...).
	ErrInvalidValue = errors.New("wire: invalid value")
)

// MaxVarint is the largest value an MLS varint can carry (2^30 - 1).
const MaxVarint = 1<<30 - 1

// Marshaler is implemented by every MLS structure that can encode itself.
type Marshaler interface {
	MarshalMLS(b *Builder)
}

// Unmarshaler is implemented by every MLS structure that can decode itself.
// It reads exactly its own encoding from r and records errors on r.
type Unmarshaler interface {
	UnmarshalMLS(r *Reader)
}

// Marshal encodes v. It fails only when a vector exceeds the varint range.
func Marshal(v Marshaler) ([]byte, error) {
	var b Builder
	v.MarshalMLS(&b)
	return b.Bytes()
}

// MustMarshal encodes v and panics if the encoding is impossible (a vector
// over 2^30 bytes). Use it only for values whose size the caller controls.
func MustMarshal(v Marshaler) []byte {
	out, err := Marshal(v)
	if err != nil {
		panic(err)
	}
	return out
}

// Unmarshal decodes exactly one value from data into v; trailing bytes are an error.
func Unmarshal(data []byte, v Unmarshaler) error {
	r := NewReader(data)
	v.UnmarshalMLS(r)
	return r.Finish()
}

// Builder accumulates an encoding. The zero value is ready to use.
type Builder struct {
	buf []byte
	err error
}

// NewBuilder returns a builder with room for n bytes.
func NewBuilder(n int) *Builder { return &Builder{buf: make([]byte, 0, n)} }

// Bytes returns the encoding, or the first error met while building.
func (b *Builder) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.buf, nil
}

// Err returns the first error met while building.
func (b *Builder) Err() error { return b.err }

// Len returns the number of bytes written so far.
func (b *Builder) Len() int { return len(b.buf) }

// SetError records err unless an error is already recorded.
func (b *Builder) SetError(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *Builder) AddUint8(v uint8)   { b.buf = append(b.buf, v) }
func (b *Builder) AddUint16(v uint16) { b.buf = binary.BigEndian.AppendUint16(b.buf, v) }
func (b *Builder) AddUint32(v uint32) { b.buf = binary.BigEndian.AppendUint32(b.buf, v) }
func (b *Builder) AddUint64(v uint64) { b.buf = binary.BigEndian.AppendUint64(b.buf, v) }

// AddBool encodes a bool as one octet, 0 or 1.
func (b *Builder) AddBool(v bool) {
	if v {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// AddRaw appends bytes with no length prefix (fixed-size fields).
func (b *Builder) AddRaw(v []byte) { b.buf = append(b.buf, v...) }

// AddVarint appends v as a minimal MLS varint (RFC 9420 §2.1.2).
func (b *Builder) AddVarint(v uint64) {
	switch {
	case v <= 0x3f:
		b.buf = append(b.buf, byte(v))
	case v <= 0x3fff:
		b.buf = append(b.buf, byte(v>>8)|0x40, byte(v))
	case v <= MaxVarint:
		b.buf = append(b.buf, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	default:
		b.SetError(fmt.Errorf("%w: %d", ErrVarintTooLarge, v))
	}
}

// AddOpaque appends v as opaque<V>: a varint length then the bytes.
func (b *Builder) AddOpaque(v []byte) {
	b.AddVarint(uint64(len(v)))
	b.buf = append(b.buf, v...)
}

// AddVector appends a varint-length-prefixed vector whose body f writes.
func (b *Builder) AddVector(f func(b *Builder)) {
	start := len(b.buf)
	f(b)
	n := len(b.buf) - start
	if n > MaxVarint {
		b.SetError(fmt.Errorf("%w: vector of %d bytes", ErrVarintTooLarge, n))
		return
	}
	// Insert the length prefix in front of the body.
	var hdr [4]byte
	var h []byte
	switch {
	case n <= 0x3f:
		hdr[0] = byte(n)
		h = hdr[:1]
	case n <= 0x3fff:
		hdr[0], hdr[1] = byte(n>>8)|0x40, byte(n)
		h = hdr[:2]
	default:
		hdr[0], hdr[1], hdr[2], hdr[3] = byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n)
		h = hdr[:4]
	}
	b.buf = append(b.buf, h...)
	copy(b.buf[start+len(h):], b.buf[start:start+n])
	copy(b.buf[start:], h)
}

// AddOptional appends optional<T>: a presence octet, then f's encoding if present.
func (b *Builder) AddOptional(present bool, f func(b *Builder)) {
	if !present {
		b.AddUint8(0)
		return
	}
	b.AddUint8(1)
	f(b)
}

// Add appends the encoding of m.
func (b *Builder) Add(m Marshaler) { m.MarshalMLS(b) }

// Reader decodes an MLS encoding. Errors are sticky: after the first error
// every read returns zero values and Err reports the first error.
type Reader struct {
	s   []byte
	err error
}

// NewReader returns a reader over data.
func NewReader(data []byte) *Reader { return &Reader{s: data} }

// Err returns the first error met while reading.
func (r *Reader) Err() error { return r.err }

// SetError records err (if no error is recorded yet) and stops further reads.
func (r *Reader) SetError(err error) {
	if r.err == nil {
		r.err = err
		r.s = nil
	}
}

// Fail records an ErrInvalidValue with a message.
func (r *Reader) Fail(format string, args ...any) {
	r.SetError(fmt.Errorf("%w: %s", ErrInvalidValue, fmt.Sprintf(format, args...)))
}

// Empty reports whether all input has been consumed (or an error occurred).
func (r *Reader) Empty() bool { return len(r.s) == 0 }

// Remaining returns the unread bytes.
func (r *Reader) Remaining() int { return len(r.s) }

// Finish returns the first error, or ErrTrailingData if input remains.
func (r *Reader) Finish() error {
	if r.err != nil {
		return r.err
	}
	if len(r.s) != 0 {
		return fmt.Errorf("%w: %d bytes", ErrTrailingData, len(r.s))
	}
	return nil
}

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.s) {
		r.SetError(fmt.Errorf("%w: need %d bytes, have %d", ErrTruncated, n, len(r.s)))
		return nil
	}
	v := r.s[:n:n]
	r.s = r.s[n:]
	return v
}

func (r *Reader) Uint8() uint8 {
	v := r.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *Reader) Uint16() uint16 {
	v := r.take(2)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

func (r *Reader) Uint32() uint32 {
	v := r.take(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *Reader) Uint64() uint64 {
	v := r.take(8)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Bool reads one octet that must be 0 or 1.
func (r *Reader) Bool() bool {
	v := r.Uint8()
	if v > 1 {
		r.Fail("boolean octet %d", v)
		return false
	}
	return v == 1
}

// Raw reads n bytes with no length prefix. The result aliases the input.
func (r *Reader) Raw(n int) []byte { return r.take(n) }

// Varint reads a minimal MLS varint (RFC 9420 §2.1.2).
func (r *Reader) Varint() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.s) == 0 {
		r.SetError(fmt.Errorf("%w: varint", ErrTruncated))
		return 0
	}
	prefix := r.s[0] >> 6
	if prefix == 3 {
		r.SetError(ErrInvalidVarint)
		return 0
	}
	n := 1 << prefix
	b := r.take(n)
	if b == nil {
		return 0
	}
	v := uint64(b[0] & 0x3f)
	for _, c := range b[1:] {
		v = v<<8 | uint64(c)
	}
	if prefix >= 1 && v < 1<<(8*(n/2)-2) {
		r.SetError(fmt.Errorf("%w: %d in %d bytes", ErrNonMinimalVarint, v, n))
		return 0
	}
	return v
}

// Opaque reads opaque<V>. The result aliases the input; copy it to keep it
// beyond the input's lifetime (OpaqueCopy does).
func (r *Reader) Opaque() []byte {
	n := r.Varint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.s)) {
		r.SetError(fmt.Errorf("%w: vector of %d bytes, %d left", ErrTruncated, n, len(r.s)))
		return nil
	}
	return r.take(int(n))
}

// OpaqueCopy reads opaque<V> into a fresh slice (never nil on success).
func (r *Reader) OpaqueCopy() []byte {
	v := r.Opaque()
	if r.err != nil {
		return nil
	}
	out := make([]byte, len(v))
	copy(out, v)
	return out
}

// Vector reads a varint-length-prefixed vector and calls f on a sub-reader
// holding exactly its body; f must consume all of it.
func (r *Reader) Vector(f func(r *Reader)) {
	body := r.Opaque()
	if r.err != nil {
		return
	}
	sub := NewReader(body)
	f(sub)
	if err := sub.Finish(); err != nil {
		r.SetError(err)
	}
}

// VectorEach reads a vector and calls f until its body is consumed: the
// common shape for T list<V>.
func (r *Reader) VectorEach(f func(r *Reader)) {
	r.Vector(func(sub *Reader) {
		for !sub.Empty() && sub.err == nil {
			f(sub)
		}
	})
}

// Optional reads a presence octet and, if present, calls f. It reports presence.
func (r *Reader) Optional(f func(r *Reader)) bool {
	switch p := r.Uint8(); {
	case r.err != nil:
		return false
	case p == 0:
		return false
	case p == 1:
		f(r)
		return r.err == nil
	default:
		r.SetError(fmt.Errorf("%w: %d", ErrInvalidOptional, p))
		return false
	}
}

// Read decodes u from the reader.
func (r *Reader) Read(u Unmarshaler) { u.UnmarshalMLS(r) }
