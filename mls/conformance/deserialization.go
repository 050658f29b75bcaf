package conformance

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// deserializationCase is one deserialization.json case (test-vectors.md
// "Vector Deserialization"): a vector's varint length header.
type deserializationCase struct {
	Header hexBytes `json:"vlbytes_header"`
	Length uint64   `json:"length"`
}

func (c *deserializationCase) check() error {
	// The header must decode, strictly (RFC 9420 §2.1.2: minimal encoding),
	// to the stated length and consist of nothing but that varint.
	r := wire.NewReader(c.Header)
	got := r.Varint()
	if err := r.Finish(); err != nil {
		return fmt.Errorf("decode header %x: %w", []byte(c.Header), err)
	}
	if got != c.Length {
		return fmt.Errorf("header %x: decoded length %d, want %d", []byte(c.Header), got, c.Length)
	}
	// Re-encoding the length must give the header back.
	var b wire.Builder
	b.AddVarint(c.Length)
	enc, err := b.Bytes()
	if err != nil {
		return fmt.Errorf("encode length %d: %w", c.Length, err)
	}
	if err := mismatch("re-encoded header", enc, c.Header); err != nil {
		return err
	}
	// A vector with this header and too short a body must be rejected as
	// truncated; skip the 1 GiB case rather than allocating its body.
	if c.Length > 0 && c.Length <= 1<<16 {
		body := make([]byte, c.Length)
		full := append(append([]byte{}, c.Header...), body...)
		r := wire.NewReader(full)
		if v := r.Opaque(); r.Finish() != nil || len(v) != len(body) {
			return fmt.Errorf("header %x: vector of %d bytes did not decode", []byte(c.Header), c.Length)
		}
		r = wire.NewReader(full[:len(full)-1])
		if r.Opaque(); r.Err() == nil {
			return fmt.Errorf("header %x: truncated vector accepted", []byte(c.Header))
		}
	}
	return nil
}
