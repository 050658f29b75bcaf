package suite

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"slices"
)

// Public key validation (RFC 9420 §5.1.1, §7.3, §10, §10.1; RFC 9180 §7.1.1;
// RFC 7748 §6; RFC 8032 §5.1.3, §5.2.3). A public key received from the
// network is checked when it arrives, so that a bad one is refused there
// rather than failing later, at encryption or verification time, for every
// member that uses it.

// ValidateHPKEPublicKey reports whether pub is an HPKE public key of the
// suite's KEM that encryption to it can use (SerializePublicKey format,
// RFC 9180 §7.1.1):
//   - DHKEM(X25519) and DHKEM(X448): the length of the curve, and not one of
//     the encodings of a point of small order (whose shared secret is all
//     zeros, which RFC 7748 §6 and RFC 9180 §7.1.4 make a failure);
//   - DHKEM(P-256/384/521): an uncompressed point on the curve, not the
//     point at infinity.
//
// It does no scalar multiplication. The error wraps ErrInvalidKey.
func (s *Suite) ValidateHPKEPublicKey(pub []byte) error {
	if err := s.kem.checkPublic(pub); err != nil {
		return fmt.Errorf("%w: HPKE public key for %v: %v", ErrInvalidKey, s.id, err)
	}
	return nil
}

// ValidateSignaturePublicKey reports whether pub is a signature public key
// of the suite's scheme (RFC 9420 §5.1.1): for Ed25519 and Ed448 a canonical
// RFC 8032 encoding of a curve point that is not of small order, for ECDSA
// an uncompressed point on the curve (SEC 1 §2.3.4). A key that fails this
// can verify no honest signature. The error wraps ErrInvalidKey.
func (s *Suite) ValidateSignaturePublicKey(pub []byte) error {
	if err := s.sig.checkPublic(pub); err != nil {
		return fmt.Errorf("%w: signature public key for %v: %v", ErrInvalidKey, s.id, err)
	}
	return nil
}

// --- X25519 and X448 (RFC 7748) ---

// x25519SmallOrder are the encodings, bit 255 cleared, whose value mod
// p = 2^255-19 is the u-coordinate of a point of order 1, 2, 4 or 8 on
// Curve25519 or its twist: 0, 1, the two order-8 coordinates, p-1, and the
// non-canonical p and p+1 (= 0 and 1). X25519 masks bit 255 (RFC 7748 §5),
// so an input is compared with it cleared. Every other input gives a
// non-zero shared secret for every clamped scalar.
var x25519SmallOrder = [][]byte{
	make([]byte, 32),
	littleEndian(big.NewInt(1), 32),
	{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	{0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
		0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
	littleEndian(plus(p25519(), -1), 32),
	littleEndian(p25519(), 32),
	littleEndian(plus(p25519(), 1), 32),
}

// x448SmallOrder are the X448 inputs whose value mod p = 2^448-2^224-1 is
// the u-coordinate of a point of order 1, 2 or 4 on Curve448 or its twist:
// 0, 1, p-1, and the non-canonical p and p+1 (X448 uses all 448 bits).
var x448SmallOrder = [][]byte{
	make([]byte, 56),
	littleEndian(big.NewInt(1), 56),
	littleEndian(plus(p448(), -1), 56),
	littleEndian(p448(), 56),
	littleEndian(plus(p448(), 1), 56),
}

func p25519() *big.Int {
	p := new(big.Int).Lsh(big.NewInt(1), 255)
	return p.Sub(p, big.NewInt(19))
}

func p448() *big.Int {
	p := new(big.Int).Lsh(big.NewInt(1), 448)
	p.Sub(p, new(big.Int).Lsh(big.NewInt(1), 224))
	return p.Sub(p, big.NewInt(1))
}

func plus(v *big.Int, k int64) *big.Int { return v.Add(v, big.NewInt(k)) }

// littleEndian encodes v in n bytes, least significant first.
func littleEndian(v *big.Int, n int) []byte {
	b := v.FillBytes(make([]byte, n))
	slices.Reverse(b)
	return b
}

// checkMontgomery checks an X25519 (size 32) or X448 (size 56) public key.
func checkMontgomery(pub []byte, size int) error {
	if len(pub) != size {
		return fmt.Errorf("%d bytes, want %d", len(pub), size)
	}
	list := x448SmallOrder
	if size == 32 {
		var u [32]byte
		copy(u[:], pub)
		u[31] &= 0x7f
		pub, list = u[:], x25519SmallOrder
	}
	for _, bad := range list {
		if bytes.Equal(pub, bad) {
			return fmt.Errorf("point of small order")
		}
	}
	return nil
}

func (k *stdKEM) checkPublic(pub []byte) error {
	if k.curve == nil { // X25519: crypto/ecdh checks only the length
		return checkMontgomery(pub, 32)
	}
	// The NIST curves: crypto/ecdh decodes an uncompressed point and checks
	// that it is on the curve (SEC 1 §2.3.4); compressed points and the
	// point at infinity are refused.
	if _, err := k.curve.NewPublicKey(pub); err != nil {
		return fmt.Errorf("not an uncompressed point on the curve")
	}
	return nil
}

func (k *x448KEM) checkPublic(pub []byte) error { return checkMontgomery(pub, 56) }

// --- Ed25519 and Ed448 (RFC 8032) ---

// edwardsCurve is a twisted Edwards curve a·x² + y² = 1 + d·x²·y² over F_p
// with RFC 8032's point encoding: size bytes, little-endian y, the top bit
// of the last byte the parity of x.
type edwardsCurve struct {
	p, a, d *big.Int
	size    int
	// order8 marks a cofactor of 8 (Ed25519); Ed448's is 4.
	order8 bool
}

func newEdwards(p, a, d *big.Int, size int, order8 bool) *edwardsCurve {
	return &edwardsCurve{p: p, a: a.Mod(a, p), d: d.Mod(d, p), size: size, order8: order8}
}

func ed25519Curve() *edwardsCurve {
	p := p25519()
	// d = -121665/121666
	d := new(big.Int).ModInverse(big.NewInt(121666), p)
	d.Mul(d, big.NewInt(-121665))
	return newEdwards(p, big.NewInt(-1), d, 32, true)
}

func ed448Curve() *edwardsCurve {
	return newEdwards(p448(), big.NewInt(1), big.NewInt(-39081), 57, false)
}

// check decodes pub as RFC 8032 §5.1.3 / §5.2.3 do and refuses points of
// small order (those in the torsion subgroup, of order dividing the
// cofactor): a signature "verifies" under such a key for many messages
// without any private key.
func (c *edwardsCurve) check(pub []byte) error {
	if len(pub) != c.size {
		return fmt.Errorf("%d bytes, want %d", len(pub), c.size)
	}
	le := bytes.Clone(pub)
	x0 := le[c.size-1] >> 7
	le[c.size-1] &= 0x7f
	for i, j := 0, len(le)-1; i < j; i, j = i+1, j-1 {
		le[i], le[j] = le[j], le[i]
	}
	p := c.p
	y := new(big.Int).SetBytes(le)
	if y.Cmp(p) >= 0 {
		return fmt.Errorf("non-canonical y")
	}
	// x² = (1 - y²) / (a - d·y²); the denominator is never 0 on these
	// curves (d is not a square, a is).
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, p)
	num := new(big.Int).Sub(big.NewInt(1), y2)
	den := new(big.Int).Mul(c.d, y2)
	den.Sub(c.a, den)
	den.Mod(den, p)
	if den.ModInverse(den, p) == nil {
		return fmt.Errorf("not a curve point")
	}
	x2 := num.Mul(num, den)
	x2.Mod(x2, p)
	switch {
	case x2.Sign() == 0 && x0 == 1:
		return fmt.Errorf("non-canonical x")
	case x2.Sign() != 0 && big.Jacobi(x2, p) != 1:
		return fmt.Errorf("not a curve point")
	}
	// Small order: y = 1 (order 1), y = -1 (order 2), y = 0 (order 4), and
	// for Ed25519 the order-8 points, whose double has y = 0, that is
	// x² = -a·y², which on the curve is d·y⁴ + 2·y² - 1 = 0 (a = -1).
	if y.Sign() == 0 || y.Cmp(big.NewInt(1)) == 0 || new(big.Int).Add(y, big.NewInt(1)).Cmp(p) == 0 {
		return fmt.Errorf("point of small order")
	}
	if c.order8 {
		t := new(big.Int).Mul(y2, y2)
		t.Mul(t, c.d)
		t.Add(t, new(big.Int).Lsh(y2, 1))
		t.Sub(t, big.NewInt(1))
		if t.Mod(t, p).Sign() == 0 {
			return fmt.Errorf("point of small order")
		}
	}
	return nil
}

func (a ed25519Alg) checkPublic(pub []byte) error { return a.curve.check(pub) }

func (a ed448Alg) checkPublic(pub []byte) error { return a.curve.check(pub) }

func (a ecdsaAlg) checkPublic(pub []byte) error {
	if _, err := ecdsa.ParseUncompressedPublicKey(a.curve, pub); err != nil {
		return fmt.Errorf("not an uncompressed point on the curve")
	}
	return nil
}
