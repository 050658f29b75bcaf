package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spacepanda/spacepanda/internal/testvec"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// varintValue is a bare varint as a full message (for Unmarshal's strictness).
type varintValue uint64

func (v varintValue) MarshalMLS(b *Builder)   { b.AddVarint(uint64(v)) }
func (v *varintValue) UnmarshalMLS(r *Reader) { *v = varintValue(r.Varint()) }

// opaqueValue is opaque<V>.
type opaqueValue []byte

func (v opaqueValue) MarshalMLS(b *Builder)   { b.AddOpaque(v) }
func (v *opaqueValue) UnmarshalMLS(r *Reader) { *v = r.OpaqueCopy() }

// TestVarintEncode covers RFC 9420 §2.1.2 boundaries: 1, 2 and 4 byte forms.
func TestVarintEncode(t *testing.T) {
	tests := []struct {
		v    uint64
		want string
	}{
		{0, "00"},
		{1, "01"},
		{37, "25"}, // RFC 9420 §2.1.2 example: 0x25 = 37
		{63, "3f"},
		{64, "4040"},
		{15293, "7bbd"}, // RFC 9420 §2.1.2 example
		{16383, "7fff"},
		{16384, "80004000"},
		{494878333, "9d7f3e7d"}, // RFC 9420 §2.1.2 example
		{MaxVarint, "bfffffff"},
	}
	for _, tc := range tests {
		var b Builder
		b.AddVarint(tc.v)
		got, err := b.Bytes()
		if err != nil {
			t.Fatalf("AddVarint(%d): %v", tc.v, err)
		}
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("AddVarint(%d) = %x, want %s", tc.v, got, tc.want)
		}
		var v varintValue
		if err := Unmarshal(got, &v); err != nil || uint64(v) != tc.v {
			t.Errorf("decode %x = %d, %v; want %d", got, v, err, tc.v)
		}
	}
	for _, v := range []uint64{MaxVarint + 1, 1 << 32, 1<<64 - 1} {
		var b Builder
		b.AddVarint(v)
		if _, err := b.Bytes(); !errors.Is(err, ErrVarintTooLarge) {
			t.Errorf("AddVarint(%d): err %v, want ErrVarintTooLarge", v, err)
		}
		if _, err := Marshal(varintValue(v)); !errors.Is(err, ErrVarintTooLarge) {
			t.Errorf("Marshal(%d): err %v, want ErrVarintTooLarge", v, err)
		}
	}
}

// TestVarintDecode covers strict decoding: minimality, the reserved 0b11
// prefix, truncation and trailing data.
func TestVarintDecode(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr error
	}{
		{"00", 0, nil},
		{"3f", 63, nil},
		{"4040", 64, nil},
		{"7fff", 16383, nil},
		{"80004000", 16384, nil},
		{"bfffffff", MaxVarint, nil},
		// Non-minimal: each value would fit the shorter form.
		{"4000", 0, ErrNonMinimalVarint},
		{"4025", 0, ErrNonMinimalVarint},
		{"403f", 0, ErrNonMinimalVarint},
		{"80000000", 0, ErrNonMinimalVarint},
		{"8000003f", 0, ErrNonMinimalVarint},
		{"80003fff", 0, ErrNonMinimalVarint},
		// Prefix 0b11 (would be an 8-byte QUIC varint) is invalid in MLS.
		{"c0", 0, ErrInvalidVarint},
		{"c000000000000000", 0, ErrInvalidVarint},
		{"ffffffffffffffff", 0, ErrInvalidVarint},
		// Truncated.
		{"", 0, ErrTruncated},
		{"40", 0, ErrTruncated},
		{"80", 0, ErrTruncated},
		{"800040", 0, ErrTruncated},
		// Trailing data after a complete varint.
		{"0000", 0, ErrTrailingData},
		{"404000", 0, ErrTrailingData},
		{"80004000ff", 0, ErrTrailingData},
	}
	for _, tc := range tests {
		var v varintValue
		err := Unmarshal(unhex(t, tc.in), &v)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("decode %q: err %v, want %v", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || uint64(v) != tc.want {
			t.Errorf("decode %q = %d, %v; want %d", tc.in, v, err, tc.want)
		}
	}
}

// TestOpaque covers opaque<V> length handling.
func TestOpaque(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"00", "", nil},
		{"03616263", "616263", nil},
		{"4003616263", "", ErrNonMinimalVarint},
		{"04616263", "", ErrTruncated},
		{"bfffffff00", "", ErrTruncated},
		{"c0", "", ErrInvalidVarint},
		{"0361626364", "", ErrTrailingData},
	}
	for _, tc := range tests {
		var v opaqueValue
		err := Unmarshal(unhex(t, tc.in), &v)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("decode %q: err %v, want %v", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || hex.EncodeToString(v) != tc.want || v == nil {
			t.Errorf("decode %q = %x (nil=%v), %v; want %s", tc.in, []byte(v), v == nil, err, tc.want)
		}
	}

	// Opaque aliases the input but with capacity clipped, so appending to
	// the result cannot overwrite the following bytes; OpaqueCopy copies.
	in := unhex(t, "0261620363")
	r := NewReader(in)
	a := r.Opaque()
	_ = append(a, 'X')
	if !bytes.Equal(in, unhex(t, "0261620363")) {
		t.Fatal("append to Opaque result clobbered the input")
	}
	r = NewReader(in)
	c := r.OpaqueCopy()
	c[0] = 'Z'
	if in[1] != 'a' {
		t.Fatal("OpaqueCopy aliases the input")
	}
}

// TestOptional covers optional<T> presence octets (RFC 9420 §2.1.1 / TLS).
func TestOptional(t *testing.T) {
	tests := []struct {
		in      string
		present bool
		wantErr error
	}{
		{"00", false, nil},
		{"0107", true, nil},
		{"02", false, ErrInvalidOptional},
		{"0207", false, ErrInvalidOptional},
		{"ff", false, ErrInvalidOptional},
		{"01", false, ErrTruncated},
		{"", false, ErrTruncated},
		{"0007", false, ErrTrailingData},
	}
	for _, tc := range tests {
		r := NewReader(unhex(t, tc.in))
		var got uint8
		present := r.Optional(func(r *Reader) { got = r.Uint8() })
		err := r.Finish()
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) || present {
				t.Errorf("optional %q: present %v err %v, want %v", tc.in, present, err, tc.wantErr)
			}
			continue
		}
		if err != nil || present != tc.present || (present && got != 7) {
			t.Errorf("optional %q: present %v value %d err %v", tc.in, present, got, err)
		}
	}
	var b Builder
	b.AddOptional(false, func(b *Builder) { b.AddUint8(9) })
	b.AddOptional(true, func(b *Builder) { b.AddUint8(9) })
	if got, _ := b.Bytes(); !bytes.Equal(got, []byte{0, 1, 9}) {
		t.Fatalf("AddOptional: %x", got)
	}
}

func TestBoolAndFixed(t *testing.T) {
	var b Builder
	b.AddBool(true)
	b.AddBool(false)
	b.AddUint16(0x0102)
	b.AddUint32(0x03040506)
	b.AddUint64(0x0708090a0b0c0d0e)
	b.AddRaw([]byte{0xaa})
	enc, err := b.Bytes()
	if err != nil || b.Len() != len(enc) {
		t.Fatal(err)
	}
	if want := "0100010203040506" + "0708090a0b0c0d0e" + "aa"; hex.EncodeToString(enc) != want {
		t.Fatalf("encoding %x, want %s", enc, want)
	}
	r := NewReader(enc)
	if !r.Bool() || r.Bool() || r.Uint16() != 0x0102 || r.Uint32() != 0x03040506 ||
		r.Uint64() != 0x0708090a0b0c0d0e || !bytes.Equal(r.Raw(1), []byte{0xaa}) || r.Finish() != nil {
		t.Fatal("fixed-size round trip failed")
	}
	for _, n := range []int{1, 3, 7, 15} { // every truncation point of a field
		r := NewReader(enc[:n])
		r.Bool()
		r.Bool()
		r.Uint16()
		r.Uint32()
		r.Uint64()
		if !errors.Is(r.Err(), ErrTruncated) {
			t.Errorf("truncated at %d: err %v", n, r.Err())
		}
	}
	r = NewReader([]byte{2})
	if r.Bool(); !errors.Is(r.Err(), ErrInvalidValue) {
		t.Fatalf("bool octet 2: err %v", r.Err())
	}
}

// TestStickyError: after the first error every read yields zero values and
// the first error is kept.
func TestStickyError(t *testing.T) {
	r := NewReader(unhex(t, "c0010203040506070809"))
	r.Varint()
	if !errors.Is(r.Err(), ErrInvalidVarint) {
		t.Fatalf("err %v", r.Err())
	}
	if r.Uint8() != 0 || r.Uint64() != 0 || r.Opaque() != nil || r.Raw(1) != nil || r.Varint() != 0 {
		t.Fatal("read after error returned data")
	}
	called := false
	r.Vector(func(*Reader) { called = true })
	r.Optional(func(*Reader) { called = true })
	if called || !errors.Is(r.Finish(), ErrInvalidVarint) || !r.Empty() {
		t.Fatal("error not sticky")
	}
	r.Fail("later %d", 1)
	if !errors.Is(r.Err(), ErrInvalidVarint) || errors.Is(r.Err(), ErrInvalidValue) {
		t.Fatal("later Fail replaced the first error")
	}
	r = NewReader(nil)
	if r.Raw(-1); !errors.Is(r.Err(), ErrTruncated) {
		t.Fatal("negative Raw length accepted")
	}
}

// TestNestedVectors: a vector body must be consumed exactly by its reader,
// and an inner length may not reach past the outer body.
func TestNestedVectors(t *testing.T) {
	readPair := func(r *Reader) (a, b uint8) {
		r.Vector(func(r *Reader) {
			a = r.Uint8()
			r.Vector(func(r *Reader) { b = r.Uint8() })
		})
		return
	}
	tests := []struct {
		in      string
		wantErr error
	}{
		{"03010107", nil},
		{"0401010700", ErrTrailingData},   // outer body has a byte nobody reads
		{"040102070800", ErrTrailingData}, // inner body has a byte nobody reads
		{"03010207", ErrTruncated},        // inner length reaches past the outer body
		{"0301010708", ErrTrailingData},   // bytes after the outer vector
		{"020100", ErrTruncated},          // inner body empty, Uint8 needs a byte
		{"020101", ErrTruncated},          // inner length 1 with no byte left
		{"0501", ErrTruncated},            // outer body truncated
		{"4003010107", ErrNonMinimalVarint},
	}
	for _, tc := range tests {
		r := NewReader(unhex(t, tc.in))
		a, b := readPair(r)
		err := r.Finish()
		if tc.wantErr == nil {
			if err != nil || a != 1 || b != 7 {
				t.Errorf("%s: %d %d %v", tc.in, a, b, err)
			}
		} else if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err %v, want %v", tc.in, err, tc.wantErr)
		}
	}

	// VectorEach stops on an element error and reports it.
	r := NewReader(unhex(t, "03010240"))
	var got []uint64
	r.VectorEach(func(r *Reader) { got = append(got, r.Varint()) })
	if !errors.Is(r.Err(), ErrTruncated) {
		t.Fatalf("VectorEach: %v %v", got, r.Err())
	}
	r = NewReader(unhex(t, "0401024040"))
	got = nil
	r.VectorEach(func(r *Reader) { got = append(got, r.Varint()) })
	if r.Finish() != nil || !slices.Equal(got, []uint64{1, 2, 64}) {
		t.Fatalf("VectorEach: %v %v", got, r.Err())
	}
}

// TestAddVectorBoundaries: AddVector writes the body first and shifts it to
// make room for the length; check every header size change, with data
// before the vector and vectors nested inside vectors.
func TestAddVectorBoundaries(t *testing.T) {
	sizes := []int{0, 1, 63, 64, 65, 16382, 16383, 16384, 16385, 70000}
	hdr := func(n int) int {
		switch {
		case n <= 63:
			return 1
		case n <= 16383:
			return 2
		}
		return 4
	}
	for _, n := range sizes {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i*7 + 3)
		}
		var b Builder
		b.AddUint16(0xbeef)
		b.AddVector(func(b *Builder) { b.AddRaw(body) })
		b.AddUint8(0x5a)
		enc, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) != 2+hdr(n)+n+1 {
			t.Fatalf("n=%d: %d bytes, want %d", n, len(enc), 2+hdr(n)+n+1)
		}
		var ob Builder
		ob.AddUint16(0xbeef)
		ob.AddOpaque(body)
		ob.AddUint8(0x5a)
		if oenc, _ := ob.Bytes(); !bytes.Equal(enc, oenc) {
			t.Fatalf("n=%d: AddVector and AddOpaque differ", n)
		}
		r := NewReader(enc)
		if r.Uint16() != 0xbeef || !bytes.Equal(r.Opaque(), body) || r.Uint8() != 0x5a || r.Finish() != nil {
			t.Fatalf("n=%d: round trip failed: %v", n, r.Err())
		}

		// The same body two levels deep: both lengths cross boundaries.
		var nb Builder
		nb.AddUint8(1)
		nb.AddVector(func(b *Builder) {
			b.AddUint8(2)
			b.AddVector(func(b *Builder) { b.AddRaw(body) })
			b.AddUint8(3)
		})
		enc, err = nb.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		inner := 1 + hdr(n) + n + 1
		if len(enc) != 1+hdr(inner)+inner {
			t.Fatalf("n=%d nested: %d bytes, want %d", n, len(enc), 1+hdr(inner)+inner)
		}
		r = NewReader(enc)
		var got []byte
		var x, y uint8
		if r.Uint8() != 1 {
			t.Fatal("nested: prefix")
		}
		r.Vector(func(r *Reader) {
			x = r.Uint8()
			got = r.Opaque()
			y = r.Uint8()
		})
		if r.Finish() != nil || x != 2 || y != 3 || !bytes.Equal(got, body) {
			t.Fatalf("n=%d nested: round trip failed: %v", n, r.Err())
		}
	}
}

func TestBuilderErrorSticky(t *testing.T) {
	b := NewBuilder(8)
	b.AddVarint(1 << 40)
	b.AddVarint(5)
	if _, err := b.Bytes(); !errors.Is(err, ErrVarintTooLarge) || !errors.Is(b.Err(), ErrVarintTooLarge) {
		t.Fatalf("err %v", err)
	}
	b.SetError(ErrInvalidValue)
	if errors.Is(b.Err(), ErrInvalidValue) {
		t.Fatal("SetError replaced the first error")
	}
}

// vectorHeaders returns the varint headers of the official
// deserialization.json vectors, or nil if the vectors are not available.
func vectorHeaders(tb testing.TB) [][]byte {
	dir, ok := testvec.Dir()
	if !ok {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "deserialization.json"))
	if err != nil {
		return nil
	}
	var cases []struct {
		Header testvec.Hex `json:"vlbytes_header"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, c := range cases {
		out = append(out, c.Header)
	}
	return out
}

// FuzzVarint: whenever a varint decodes, re-encoding it gives back exactly
// the bytes consumed (MLS varints are canonical), and those decode again to
// the same value.
func FuzzVarint(f *testing.F) {
	for _, s := range []string{"00", "3f", "4040", "7fff", "80004000", "bfffffff", "4000", "c0", "8000", "0000"} {
		f.Add(unhex(f, s))
	}
	for _, h := range vectorHeaders(f) {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(data)
		v := r.Varint()
		if r.Err() != nil {
			if v != 0 {
				t.Fatalf("%x: error %v with value %d", data, r.Err(), v)
			}
			return
		}
		if v > MaxVarint {
			t.Fatalf("%x: decoded %d > MaxVarint", data, v)
		}
		used := len(data) - r.Remaining()
		var b Builder
		b.AddVarint(v)
		enc, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, data[:used]) {
			t.Fatalf("%x decoded to %d, re-encodes to %x", data[:used], v, enc)
		}
		var v2 varintValue
		if err := Unmarshal(enc, &v2); err != nil || uint64(v2) != v {
			t.Fatalf("%x: second decode %d, %v", enc, v2, err)
		}
		// Strict Unmarshal accepts the whole input iff nothing trails.
		var v3 varintValue
		err = Unmarshal(data, &v3)
		if (used == len(data)) != (err == nil) {
			t.Fatalf("%x: Unmarshal err %v with %d trailing bytes", data, err, len(data)-used)
		}
	})
}

// FuzzOpaque: a decoded opaque<V> re-encodes to exactly the input.
func FuzzOpaque(f *testing.F) {
	for _, s := range []string{"00", "03616263", "4003616263", "04616263", "0361626364", "c0", "bfffffff00"} {
		f.Add(unhex(f, s))
	}
	for _, h := range vectorHeaders(f) {
		if len(h) == 1 { // small lengths: give them their body
			f.Add(append(slices.Clone(h), make([]byte, h[0])...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v opaqueValue
		if err := Unmarshal(data, &v); err != nil {
			return
		}
		enc, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("%x decoded to %x, re-encodes to %x", data, []byte(v), enc)
		}
		var v2 opaqueValue
		if err := Unmarshal(enc, &v2); err != nil || !bytes.Equal(v, v2) {
			t.Fatalf("%x: second decode %x, %v", enc, []byte(v2), err)
		}
	})
}

// fuzzMsg exercises every Reader shape in one structure:
//
//	struct {
//	  uint8 tag;
//	  bool flag;
//	  Item items<V>;
//	  optional<opaque<V>> note;
//	  opaque groups<V><V>;   /* vector of vectors */
//	  uint32 tail;
//	}
//	struct { uint16 id; varint n; opaque data<V>; } Item;
type fuzzMsg struct {
	Tag    uint8
	Flag   bool
	Items  []fuzzItem
	Note   []byte // nil: absent
	Groups [][][]byte
	Tail   uint32
}

type fuzzItem struct {
	ID   uint16
	N    uint64
	Data []byte
}

func (m *fuzzMsg) MarshalMLS(b *Builder) {
	b.AddUint8(m.Tag)
	b.AddBool(m.Flag)
	b.AddVector(func(b *Builder) {
		for _, it := range m.Items {
			b.AddUint16(it.ID)
			b.AddVarint(it.N)
			b.AddOpaque(it.Data)
		}
	})
	b.AddOptional(m.Note != nil, func(b *Builder) { b.AddOpaque(m.Note) })
	b.AddVector(func(b *Builder) {
		for _, g := range m.Groups {
			b.AddVector(func(b *Builder) {
				for _, o := range g {
					b.AddOpaque(o)
				}
			})
		}
	})
	b.AddUint32(m.Tail)
}

func (m *fuzzMsg) UnmarshalMLS(r *Reader) {
	m.Tag = r.Uint8()
	m.Flag = r.Bool()
	r.VectorEach(func(r *Reader) {
		var it fuzzItem
		it.ID = r.Uint16()
		it.N = r.Varint()
		it.Data = r.OpaqueCopy()
		m.Items = append(m.Items, it)
	})
	r.Optional(func(r *Reader) { m.Note = r.OpaqueCopy() })
	r.VectorEach(func(r *Reader) {
		var g [][]byte
		r.VectorEach(func(r *Reader) { g = append(g, r.OpaqueCopy()) })
		m.Groups = append(m.Groups, g)
	})
	m.Tail = r.Uint32()
}

func (m *fuzzMsg) equal(o *fuzzMsg) bool {
	if m.Tag != o.Tag || m.Flag != o.Flag || m.Tail != o.Tail || (m.Note == nil) != (o.Note == nil) ||
		!bytes.Equal(m.Note, o.Note) || len(m.Items) != len(o.Items) || len(m.Groups) != len(o.Groups) {
		return false
	}
	for i := range m.Items {
		a, b := m.Items[i], o.Items[i]
		if a.ID != b.ID || a.N != b.N || !bytes.Equal(a.Data, b.Data) {
			return false
		}
	}
	for i := range m.Groups {
		if !slices.EqualFunc(m.Groups[i], o.Groups[i], bytes.Equal) {
			return false
		}
	}
	return true
}

// FuzzVector: a structure of nested vectors, optionals and varints decodes
// strictly, so a successful decode must re-encode to exactly the input and
// decode again to the same value.
func FuzzVector(f *testing.F) {
	seeds := []*fuzzMsg{
		{},
		{Tag: 1, Flag: true, Items: []fuzzItem{{ID: 2, N: 64, Data: []byte("x")}}, Note: []byte{}, Tail: 9},
		{Items: []fuzzItem{{N: 16384, Data: make([]byte, 70)}, {ID: 0xffff, N: MaxVarint}},
			Note: []byte("note"), Groups: [][][]byte{{}, {[]byte("a"), {}}, {make([]byte, 64)}}},
	}
	for _, m := range seeds {
		f.Add(MustMarshal(m))
	}
	f.Add(unhex(f, "000200000000000000")) // bool octet 2
	f.Add(unhex(f, "000000020000000000")) // presence octet 2
	f.Fuzz(func(t *testing.T, data []byte) {
		var m fuzzMsg
		if err := Unmarshal(data, &m); err != nil {
			return
		}
		enc, err := Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("%x re-encodes to %x", data, enc)
		}
		if one, err := onePass(&m); err != nil || !bytes.Equal(one, enc) {
			t.Fatalf("%x: one-pass Builder gives %x (%v)", data, one, err)
		}
		var m2 fuzzMsg
		if err := Unmarshal(enc, &m2); err != nil || !m.equal(&m2) {
			t.Fatalf("%x: second decode differs (%v)", enc, err)
		}
	})
}

// onePass encodes v with a plain Builder (vector bodies shifted in place).
func onePass(v Marshaler) ([]byte, error) {
	var b Builder
	v.MarshalMLS(&b)
	return b.Bytes()
}

// TestBuildMatchesOnePass: Build (measure, then write with known lengths)
// gives exactly the bytes of the one-pass Builder, for every varint header
// size at two nesting levels.
func TestBuildMatchesOnePass(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 16383, 16384, 70000} {
		m := &fuzzMsg{Tag: 7, Items: []fuzzItem{{ID: 1, N: uint64(n), Data: make([]byte, n)}},
			Note: make([]byte, n/2), Groups: [][][]byte{{make([]byte, n), {}}, {}}, Tail: 42}
		want, err := onePass(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Build(m.MarshalMLS)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("n=%d: Build gives %d bytes, one pass %d", n, len(got), len(want))
		}
	}
}

// TestBuildRefusesAChangingValue: an encoder that writes something else on
// the second pass gets an error, never a buffer with wrong lengths in it.
func TestBuildRefusesAChangingValue(t *testing.T) {
	for name, f := range map[string]func(pass int, b *Builder){
		"longer body": func(pass int, b *Builder) { b.AddVector(func(b *Builder) { b.AddRaw(make([]byte, 10+pass)) }) },
		"extra vector": func(pass int, b *Builder) {
			b.AddOpaque(nil)
			for range pass {
				b.AddVector(func(*Builder) {})
			}
		},
		"longer tail": func(pass int, b *Builder) { b.AddVector(func(*Builder) {}); b.AddRaw(make([]byte, pass)) },
	} {
		pass := 0
		_, err := Build(func(b *Builder) { f(pass, b); pass++ })
		if !errors.Is(err, errChanged) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	big := func(b *Builder) { b.AddVector(func(b *Builder) { b.n += MaxVarint + 1 }) }
	if _, err := Build(big); !errors.Is(err, ErrVarintTooLarge) {
		t.Errorf("oversized vector: %v", err)
	}
}

// BenchmarkMarshalLargeVector: a vector of 10,000 small opaque vectors in
// a vector (the shape of a commit's UpdatePath in a sparse tree).
func BenchmarkMarshalLargeVector(b *testing.B) {
	m := &fuzzMsg{Groups: make([][][]byte, 14)}
	for i := range m.Groups {
		for range 10000 >> i {
			m.Groups[i] = append(m.Groups[i], make([]byte, 80))
		}
	}
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			Build(m.MarshalMLS)
		}
	})
	b.Run("onepass", func(b *testing.B) {
		for b.Loop() {
			onePass(m)
		}
	})
}

// TestAppendBuild: AppendBuild keeps what dst holds, writes into its spare
// capacity when there is enough (no new array), and grows it otherwise.
func TestAppendBuild(t *testing.T) {
	m := &fuzzMsg{Tag: 3, Items: []fuzzItem{{ID: 9, N: 300, Data: make([]byte, 100)}}, Tail: 1}
	want, _ := onePass(m)
	for _, spare := range []int{0, len(want) - 1, len(want), len(want) + 50} {
		dst := append(make([]byte, 0, 3+spare), 0xaa, 0xbb, 0xcc)
		got, err := AppendBuild(dst, m.MarshalMLS)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:3], []byte{0xaa, 0xbb, 0xcc}) || !bytes.Equal(got[3:], want) {
			t.Fatalf("spare %d: %x", spare, got)
		}
		if inPlace := &got[0] == &dst[0]; inPlace != (spare >= len(want)) {
			t.Fatalf("spare %d: in place %v", spare, inPlace)
		}
	}
}
