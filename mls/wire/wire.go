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
	"slices"
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
	return Build(v.MarshalMLS)
}

// Build encodes what f writes into a buffer of exactly the right size: f
// runs twice, first only to measure (every vector's length is recorded, no
// byte is written), then to write with each length known in advance, so no
// vector body is moved to make room for its length and the buffer never
// grows. f must write the same thing both times (it is a pure encoder).
func Build(f func(b *Builder)) ([]byte, error) { return AppendBuild(nil, f) }

// AppendBuild is Build appending to dst, whose spare capacity is used when
// it is enough (a caller may recycle buffers). Offsets f reads from Len are
// relative to the start of what it writes.
func AppendBuild(dst []byte, f func(b *Builder)) ([]byte, error) {
	// One allocation for both passes, with room for most values' vector
	// lengths.
	sb := &struct {
		Builder
		few [16]int
	}{}
	b := &sb.Builder
	*b = Builder{measuring: true, sized: true, vectors: sb.few[:0]}
	f(b)
	if b.err != nil {
		return nil, b.err
	}
	n, vectors := b.n, b.vectors
	out := slices.Grow(dst, n)
	*b = Builder{buf: out[len(dst):len(dst)], sized: true, vectors: vectors}
	f(b)
	if b.err == nil && (len(b.buf) != n || b.next != len(b.vectors)) {
		b.err = errChanged // and b.buf may have left out's backing array
	}
	if b.err != nil {
		return nil, b.err
	}
	return out[:len(dst)+n], nil
}

// errChanged: the two passes of Build did not write the same encoding.
var errChanged = errors.New("wire: value changed while it was encoded")

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

	// Under Build: the measuring pass writes nothing and counts n bytes;
	// vectors is each vector's body length in the order they are opened,
	// which the writing pass takes from (next is its place).
	sized, measuring bool
	n                int
	vectors          []int
	next             int
}

// room returns the next n bytes of the buffer for the caller to fill, or
// nil in Build's measuring pass (which only counts them). Reslicing rather
// than appending keeps the buffer's pointer unwritten on the common path.
func (b *Builder) room(n int) []byte {
	if b.measuring {
		b.n += n
		return nil
	}
	l := len(b.buf)
	if cap(b.buf)-l < n {
		b.buf = slices.Grow(b.buf, n)
	}
	b.buf = b.buf[:l+n]
	return b.buf[l:]
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

// Len returns the number of bytes written so far (in Build's measuring
// pass, the number that would have been).
func (b *Builder) Len() int {
	if b.measuring {
		return b.n
	}
	return len(b.buf)
}

// SetError records err unless an error is already recorded.
func (b *Builder) SetError(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *Builder) AddUint8(v uint8) {
	if p := b.room(1); p != nil {
		p[0] = v
	}
}

func (b *Builder) AddUint16(v uint16) {
	if p := b.room(2); p != nil {
		binary.BigEndian.PutUint16(p, v)
	}
}

func (b *Builder) AddUint32(v uint32) {
	if p := b.room(4); p != nil {
		binary.BigEndian.PutUint32(p, v)
	}
}

func (b *Builder) AddUint64(v uint64) {
	if p := b.room(8); p != nil {
		binary.BigEndian.PutUint64(p, v)
	}
}

// AddBool encodes a bool as one octet, 0 or 1.
func (b *Builder) AddBool(v bool) {
	if v {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// AddRaw appends bytes with no length prefix (fixed-size fields).
func (b *Builder) AddRaw(v []byte) {
	if p := b.room(len(v)); p != nil {
		copy(p, v)
	}
}

// varintLen is the size of the minimal varint encoding of v, 0 if v is too large.
func varintLen(v uint64) int {
	switch {
	case v <= 0x3f:
		return 1
	case v <= 0x3fff:
		return 2
	case v <= MaxVarint:
		return 4
	}
	return 0
}

// AddVarint appends v as a minimal MLS varint (RFC 9420 §2.1.2).
func (b *Builder) AddVarint(v uint64) {
	n := varintLen(v)
	if n == 0 {
		b.SetError(fmt.Errorf("%w: %d", ErrVarintTooLarge, v))
		return
	}
	if p := b.room(n); p != nil {
		putVarint(p, v)
	}
}

// putVarint writes v into p, which has exactly varintLen(v) bytes.
func putVarint(p []byte, v uint64) {
	switch len(p) {
	case 1:
		p[0] = byte(v)
	case 2:
		binary.BigEndian.PutUint16(p, uint16(v)|0x4000)
	default:
		binary.BigEndian.PutUint32(p, uint32(v)|0x80000000)
	}
}

// AddOpaque appends v as opaque<V>: a varint length then the bytes.
func (b *Builder) AddOpaque(v []byte) {
	h := varintLen(uint64(len(v)))
	if h == 0 {
		b.SetError(fmt.Errorf("%w: %d", ErrVarintTooLarge, len(v)))
		return
	}
	if p := b.room(h + len(v)); p != nil {
		putVarint(p[:h], uint64(len(v)))
		copy(p[h:], v)
	}
}

// AddVector appends a varint-length-prefixed vector whose body f writes.
func (b *Builder) AddVector(f func(b *Builder)) {
	if b.sized {
		b.addSizedVector(f)
		return
	}
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

// addSizedVector is AddVector under Build: the measuring pass records the
// body's length, the writing pass writes that length and then the body.
func (b *Builder) addSizedVector(f func(b *Builder)) {
	if b.measuring {
		i := len(b.vectors)
		b.vectors = append(b.vectors, 0)
		start := b.n
		f(b)
		n := b.n - start
		b.vectors[i] = n
		if n > MaxVarint {
			b.SetError(fmt.Errorf("%w: vector of %d bytes", ErrVarintTooLarge, n))
			return
		}
		b.AddVarint(uint64(n))
		return
	}
	if b.next >= len(b.vectors) {
		b.SetError(errChanged)
		return
	}
	n := b.vectors[b.next]
	b.next++
	b.AddVarint(uint64(n))
	start := len(b.buf)
	f(b)
	if len(b.buf)-start != n {
		b.SetError(errChanged)
	}
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
