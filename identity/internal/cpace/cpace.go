// Package cpace implements the CPace balanced PAKE (draft-irtf-cfrg-cpace-21)
// with the cipher suite CPACE-RISTR255-SHA512 (§8.3) in the
// initiator-responder setting (§6.3 transcript_ir).
//
// Two parties that share a low-entropy secret (PRS) each send one group
// element and derive the same 64-byte intermediate session key (ISK) only if
// they used the same PRS, channel identifier CI, session id sid and saw the
// same messages. An attacker in the middle gets one online guess of the PRS
// per session and learns nothing that lets it test guesses offline.
//
// The package exposes ISK only, never the Diffie-Hellman point K (§10.3).
// Key confirmation is the caller's job (§10.4): derive keys from ISK with a
// KDF and prove knowledge of them.
package cpace

import (
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/bwesterb/go-ristretto"
)

// DSI is the domain-separation identifier of the ristretto255 group (§8.3).
const DSI = "CPaceRistretto255"

// ShareSize is the size of a public share (an encoded ristretto255 element).
const ShareSize = 32

// sInBytes is the input block size of SHA-512 (H.s_in_bytes, §6.2).
const sInBytes = 128

// ErrInvalidShare: the peer's share does not decode to a ristretto255
// element, or the shared point is the neutral element (§7.2 "MUST abort",
// §8.3 scalar_mult_vfy).
var ErrInvalidShare = errors.New("cpace: invalid peer share")

// ErrUsed: the session already derived its key; a session's scalar is used
// once (§10.9).
var ErrUsed = errors.New("cpace: session already used")

// Role says which side of the initiator-responder transcript a party is.
type Role uint8

// Roles.
const (
	Initiator Role = iota + 1 // A: sends (Ya, ADa) first
	Responder                 // B: answers with (Yb, ADb)
)

// Session is one party's state of one CPace run.
type Session struct {
	role  Role
	sid   []byte
	ad    []byte
	y     ristretto.Scalar
	share [ShareSize]byte
	used  bool
}

// New starts a session: it derives the generator from prs, ci and sid
// (§8.1, §8.3) and samples this party's scalar (rnd nil: crypto/rand). ad is
// this party's associated data (ADa or ADb), sent in clear next to the share.
func New(role Role, rnd io.Reader, prs, ci, sid, ad []byte) (*Session, error) {
	if role != Initiator && role != Responder {
		return nil, fmt.Errorf("cpace: invalid role %d", role)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	s := &Session{role: role, sid: clone(sid), ad: clone(ad)}
	if err := sampleScalar(rnd, &s.y); err != nil {
		return nil, err
	}
	g := CalculateGenerator(prs, ci, sid)
	var Y ristretto.Point
	Y.ScalarMult(&g, &s.y)
	Y.BytesInto(&s.share)
	return s, nil
}

// Share is the public share Y = y·g this party sends.
func (s *Session) Share() []byte { return clone(s.share[:]) }

// ISK derives the intermediate session key from the peer's share and
// associated data (§7.2): K = scalar_mult_vfy(y, peer); abort if K is the
// neutral element; ISK = SHA-512(lv_cat(DSI||"_ISK", sid, K) ||
// transcript_ir(Ya, ADa, Yb, ADb)). A session derives its key once.
func (s *Session) ISK(peerShare, peerAD []byte) ([]byte, error) {
	if s.used {
		return nil, ErrUsed
	}
	s.used = true
	defer s.y.SetZero()
	k, ok := scalarMultVfy(&s.y, peerShare)
	if !ok {
		return nil, ErrInvalidShare
	}
	ya, ada, yb, adb := s.share[:], s.ad, peerShare, peerAD
	if s.role == Responder {
		ya, ada, yb, adb = peerShare, peerAD, s.share[:], s.ad
	}
	h := sha512.New()
	h.Write(lvCat([]byte(DSI+"_ISK"), s.sid, k[:]))
	h.Write(transcriptIR(ya, ada, yb, adb))
	return h.Sum(nil), nil
}

// CalculateGenerator is G.calculate_generator(H, PRS, CI, sid) for
// ristretto255 and SHA-512 (§8.3): element_derivation(SHA-512(gen_str)),
// where element_derivation is the one-way map of RFC 9496 §4.3.4.
func CalculateGenerator(prs, ci, sid []byte) ristretto.Point {
	h := sha512.Sum512(GeneratorString([]byte(DSI), prs, ci, sid, sInBytes))
	return elementDerivation(&h)
}

// elementDerivation is ristretto255's one-way map from 64 uniform bytes
// (RFC 9496 §4.3.4): MAP(b[0..32]) + MAP(b[32..64]), where SetElligator
// ignores the top bit of each half as the RFC requires.
func elementDerivation(b *[64]byte) ristretto.Point {
	var p0, p1 ristretto.Point
	var half [32]byte
	copy(half[:], b[:32])
	p0.SetElligator(&half)
	copy(half[:], b[32:])
	p1.SetElligator(&half)
	p0.Add(&p0, &p1)
	return p0
}

// sampleScalar is G.sample_scalar (§8.3, RECOMMENDED form): 32 random bytes
// with the bits above group_size_bits (252) cleared, read little-endian.
// The result is below 2^252 < group order, so it is a canonical scalar.
func sampleScalar(rnd io.Reader, y *ristretto.Scalar) error {
	var buf [32]byte
	if _, err := io.ReadFull(rnd, buf[:]); err != nil {
		return fmt.Errorf("cpace: randomness: %w", err)
	}
	buf[31] &= 0x0f
	y.SetBytes(&buf)
	clear(buf[:])
	return nil
}

// scalarMultVfy is G.scalar_mult_vfy(y, X) (§8.3): decode X (strictly:
// canonical encodings only) and return encode(y·X); ok is false when X does
// not decode or the result is the neutral element G.I (all zero bytes).
func scalarMultVfy(y *ristretto.Scalar, x []byte) (k [32]byte, ok bool) {
	if len(x) != ShareSize {
		return k, false
	}
	var buf [32]byte
	copy(buf[:], x)
	var X, K ristretto.Point
	if !X.SetBytes(&buf) {
		return k, false
	}
	K.ScalarMult(&X, y)
	K.BytesInto(&k)
	var identity [32]byte
	if subtle.ConstantTimeCompare(k[:], identity[:]) == 1 {
		return k, false
	}
	return k, true
}

// GeneratorString is generator_string(DSI, PRS, CI, sid, s_in_bytes)
// (§8.1, Appendix A.2): lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid).
func GeneratorString(dsi, prs, ci, sid []byte, sIn int) []byte {
	zpad := max(0, sIn-1-len(prependLen(prs))-len(prependLen(dsi)))
	return lvCat(dsi, prs, make([]byte, zpad), ci, sid)
}

// prependLen is prepend_len (Appendix A.1.1): the LEB128 length, then data.
func prependLen(data []byte) []byte {
	out := leb128(nil, uint64(len(data)))
	return append(out, data...)
}

func leb128(out []byte, n uint64) []byte {
	for {
		if n < 128 {
			return append(out, byte(n))
		}
		out = append(out, byte(n&0x7f)|0x80)
		n >>= 7
	}
}

// lvCat is lv_cat (Appendix A.1.3).
func lvCat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = leb128(out, uint64(len(p)))
		out = append(out, p...)
	}
	return out
}

// transcriptIR is transcript_ir (Appendix A.3.4).
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

func clone(b []byte) []byte { return append([]byte{}, b...) }
