package suite

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"

	"github.com/cloudflare/circl/dh/x448"
)

// kemCurve says which curve a suite's KEM uses, for the tests.
func kemCurve(id ID) string {
	switch id {
	case 1, 3:
		return "X25519"
	case 4, 6:
		return "X448"
	case 2:
		return "P-256"
	case 5:
		return "P-521"
	}
	return "P-384"
}

func flip(b []byte, i int, bit byte) []byte {
	out := bytes.Clone(b)
	out[i] ^= bit
	return out
}

// TestValidateHPKEPublicKey: generated and derived keys pass; keys of the
// wrong length, off the curve, compressed, the point at infinity and points
// of small order are refused with ErrInvalidKey, for every suite.
func TestValidateHPKEPublicKey(t *testing.T) {
	for _, id := range All() {
		s := MustNew(id)
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			_, pub, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			_, derived, err := s.DeriveKeyPair(bytes.Repeat([]byte{7}, 64))
			if err != nil {
				t.Fatal(err)
			}
			for _, good := range [][]byte{pub, derived} {
				if err := s.ValidateHPKEPublicKey(good); err != nil {
					t.Fatalf("valid key refused: %v", err)
				}
			}
			bad := map[string][]byte{
				"empty":     {},
				"3 bytes":   {1, 2, 3},
				"truncated": pub[:len(pub)-1],
				"extended":  append(bytes.Clone(pub), 0),
			}
			switch kemCurve(id) {
			case "X25519":
				for i, e := range x25519SmallOrder {
					bad[fmt.Sprintf("small order %d", i)] = e
					bad[fmt.Sprintf("small order %d, bit 255 set", i)] = flip(e, 31, 0x80)
				}
			case "X448":
				for i, e := range x448SmallOrder {
					bad[fmt.Sprintf("small order %d", i)] = e
				}
			default:
				bad["off the curve"] = flip(pub, len(pub)-1, 1)
				bad["infinity"] = []byte{0}
				bad["compressed"] = append([]byte{2 + pub[len(pub)-1]&1}, pub[1:1+(len(pub)-1)/2]...)
				bad["hybrid prefix"] = append([]byte{6}, pub[1:]...)
				bad["all zero"] = make([]byte, len(pub))
			}
			for name, k := range bad {
				if err := s.ValidateHPKEPublicKey(k); !errors.Is(err, ErrInvalidKey) {
					t.Errorf("%s: got %v, want ErrInvalidKey", name, err)
				}
			}
		})
	}
}

// TestX25519SmallOrderList: every listed encoding makes X25519 fail (an
// all-zero shared secret), and the list holds the two u-coordinates of
// order 8, derived here independently from the Edwards form (the order-8
// points double to y = 0; u = (1+y)/(1-y)).
func TestX25519SmallOrderList(t *testing.T) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range x25519SmallOrder {
		for _, enc := range [][]byte{e, flip(e, 31, 0x80)} {
			pub, err := ecdh.X25519().NewPublicKey(enc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := priv.ECDH(pub); err == nil {
				t.Errorf("entry %d (%x): X25519 succeeds, so it is not of small order", i, enc)
			}
		}
	}
	p := p25519()
	d := ed25519Curve().d
	// y² = (-1 ± sqrt(1+d)) / d: the roots of d·y⁴ + 2·y² - 1.
	r := new(big.Int).ModSqrt(new(big.Int).Add(d, big.NewInt(1)), p)
	if r == nil {
		t.Fatal("1+d is not a square")
	}
	var found int
	for _, sign := range []int64{1, -1} {
		y2 := new(big.Int).Mul(r, big.NewInt(sign))
		y2.Sub(y2, big.NewInt(1))
		y2.Mul(y2, new(big.Int).ModInverse(d, p))
		y2.Mod(y2, p)
		y := new(big.Int).ModSqrt(y2, p)
		if y == nil {
			continue
		}
		for _, yy := range []*big.Int{y, new(big.Int).Sub(p, y)} {
			num := new(big.Int).Add(big.NewInt(1), yy)
			den := new(big.Int).Sub(big.NewInt(1), yy)
			u := num.Mul(num, den.ModInverse(den.Mod(den, p), p))
			u.Mod(u, p)
			if !slices.ContainsFunc(x25519SmallOrder, func(e []byte) bool { return bytes.Equal(e, littleEndian(u, 32)) }) {
				t.Errorf("order-8 u-coordinate %x missing", littleEndian(u, 32))
			}
			found++
		}
	}
	if found != 2 {
		t.Fatalf("found %d order-8 coordinates, want 2", found)
	}
}

// TestX448SmallOrderList: every listed encoding makes X448 fail.
func TestX448SmallOrderList(t *testing.T) {
	var sk, ss x448.Key
	if _, err := rand.Read(sk[:]); err != nil {
		t.Fatal(err)
	}
	for i, e := range x448SmallOrder {
		var pk x448.Key
		copy(pk[:], e)
		if x448.Shared(&ss, &sk, &pk) {
			t.Errorf("entry %d: X448 succeeds, so it is not of small order", i)
		}
	}
}

// edPoint decodes an RFC 8032 encoding on c the textbook way (a square
// root), for the tests; ok is false when it is not a point.
func edPoint(c *edwardsCurve, enc []byte) (x, y *big.Int, ok bool) {
	le := bytes.Clone(enc)
	x0 := le[len(le)-1] >> 7
	le[len(le)-1] &= 0x7f
	slices.Reverse(le)
	y = new(big.Int).SetBytes(le)
	y2 := new(big.Int).Mul(y, y)
	num := new(big.Int).Sub(big.NewInt(1), y2)
	den := new(big.Int).Sub(c.a, new(big.Int).Mul(c.d, y2))
	den.Mod(den, c.p)
	x2 := num.Mul(num, den.ModInverse(den, c.p))
	x2.Mod(x2, c.p)
	x = new(big.Int).ModSqrt(x2, c.p)
	if x == nil {
		return nil, nil, false
	}
	if x.Bit(0) != uint(x0) {
		x.Sub(c.p, x).Mod(x, c.p)
	}
	return x, y, true
}

// edDouble doubles (x, y) on c with the affine twisted Edwards formulas.
func edDouble(c *edwardsCurve, x, y *big.Int) (*big.Int, *big.Int) {
	p := c.p
	ax2 := new(big.Int).Mul(c.a, new(big.Int).Mul(x, x))
	y2 := new(big.Int).Mul(y, y)
	nx := new(big.Int).Mul(big.NewInt(2), new(big.Int).Mul(x, y))
	dx := new(big.Int).Add(ax2, y2)
	ny := new(big.Int).Sub(y2, ax2)
	dy := new(big.Int).Sub(big.NewInt(2), dx)
	nx.Mul(nx, dx.ModInverse(dx.Mod(dx, p), p)).Mod(nx, p)
	ny.Mul(ny, dy.ModInverse(dy.Mod(dy, p), p)).Mod(ny, p)
	return nx, ny
}

// TestValidateSignaturePublicKey: generated keys pass; for EdDSA, the
// encodings of every point of small order (found by doubling), non-canonical
// encodings and non-points are refused; for ECDSA, off-curve and compressed
// points.
func TestValidateSignaturePublicKey(t *testing.T) {
	for _, id := range All() {
		s := MustNew(id)
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			for range 20 {
				_, pub, err := s.GenerateSignatureKeyPair(nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.ValidateSignaturePublicKey(pub); err != nil {
					t.Fatalf("valid key refused: %v", err)
				}
			}
			_, pub, _ := s.GenerateSignatureKeyPair(nil)
			bad := map[string][]byte{"empty": {}, "truncated": pub[:len(pub)-1], "extended": append(bytes.Clone(pub), 0)}
			var c *edwardsCurve
			switch a := s.sig.(type) {
			case ed25519Alg:
				c = a.curve
			case ed448Alg:
				c = a.curve
			default:
				bad["off the curve"] = flip(pub, len(pub)-1, 1)
				bad["compressed"] = append([]byte{2 + pub[len(pub)-1]&1}, pub[1:1+(len(pub)-1)/2]...)
				bad["infinity"] = []byte{0}
			}
			if c != nil {
				p := c.p
				cofactor := 4
				if c.order8 {
					cofactor = 8
				}
				// Every y whose point has small order: scan the candidates
				// 0, 1, p-1 and (Ed25519) the y of order-8 points, keeping
				// those the doublings send to the identity.
				cands := []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(p, big.NewInt(1))}
				if c.order8 {
					r := new(big.Int).ModSqrt(new(big.Int).Add(c.d, big.NewInt(1)), p)
					for _, sign := range []int64{1, -1} {
						y2 := new(big.Int).Mul(r, big.NewInt(sign))
						y2.Sub(y2, big.NewInt(1)).Mul(y2, new(big.Int).ModInverse(c.d, p)).Mod(y2, p)
						if y := new(big.Int).ModSqrt(y2, p); y != nil {
							cands = append(cands, y, new(big.Int).Sub(p, y))
						}
					}
				}
				small := 0
				for _, y := range cands {
					for _, x0 := range []byte{0, 0x80} {
						enc := littleEndian(y, c.size)
						enc[c.size-1] |= x0
						px, py, ok := edPoint(c, enc)
						if !ok {
							t.Fatalf("candidate %x is not a point", enc)
						}
						if px.Sign() == 0 && x0 != 0 {
							bad[fmt.Sprintf("x = 0 with the sign bit %x", enc)] = enc
							continue
						}
						qx, qy := px, py
						for n := 1; n < cofactor; n *= 2 {
							qx, qy = edDouble(c, qx, qy)
						}
						if qx.Sign() != 0 || qy.Cmp(big.NewInt(1)) != 0 {
							t.Fatalf("candidate %x: [%d]P is not the identity", enc, cofactor)
						}
						bad[fmt.Sprintf("small order %x", enc)] = enc
						small++
					}
				}
				if small != cofactor {
					t.Fatalf("%d points of small order, want %d", small, cofactor)
				}
				// y = p + 1 encodes the identity non-canonically.
				bad["non-canonical y"] = littleEndian(new(big.Int).Add(p, big.NewInt(1)), c.size)
				// A y with no x: scan from 2 for one.
				for y := int64(2); ; y++ {
					enc := littleEndian(big.NewInt(y), c.size)
					if _, _, ok := edPoint(c, enc); !ok {
						bad["not a point"] = enc
						break
					}
				}
			}
			for name, k := range bad {
				if err := s.ValidateSignaturePublicKey(k); !errors.Is(err, ErrInvalidKey) {
					t.Errorf("%s: got %v, want ErrInvalidKey", name, err)
				}
			}
		})
	}
}

// FuzzValidateHPKEPublicKey: validation never panics, and a key it accepts
// works: X25519/X448 give a non-zero shared secret, the NIST curves decode.
func FuzzValidateHPKEPublicKey(f *testing.F) {
	for _, id := range All() {
		_, pub, _ := MustNew(id).GenerateHPKEKeyPair()
		f.Add(uint8(id), pub)
	}
	for _, e := range x25519SmallOrder {
		f.Add(uint8(1), e)
	}
	for _, e := range x448SmallOrder {
		f.Add(uint8(4), e)
	}
	priv25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	var priv448 x448.Key
	rand.Read(priv448[:])
	f.Fuzz(func(t *testing.T, sel uint8, pub []byte) {
		id := ID(sel%7 + 1)
		s := MustNew(id)
		err := s.ValidateHPKEPublicKey(pub)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v does not wrap ErrInvalidKey", err)
			}
			return
		}
		switch kemCurve(id) {
		case "X25519":
			pk, err := ecdh.X25519().NewPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := priv25519.ECDH(pk); err != nil {
				t.Fatalf("accepted %x, but X25519 fails: %v", pub, err)
			}
		case "X448":
			var pk, ss x448.Key
			copy(pk[:], pub)
			if len(pub) != x448.Size || !x448.Shared(&ss, &priv448, &pk) {
				t.Fatalf("accepted %x, but X448 fails", pub)
			}
		default:
			if _, _, err := s.EncryptWithLabel(pub, "fuzz", nil, []byte("x")); err != nil {
				t.Fatalf("accepted %x, but encryption fails: %v", pub, err)
			}
		}
	})
}

// FuzzValidateSignaturePublicKey: validation never panics, and refusals
// wrap ErrInvalidKey.
func FuzzValidateSignaturePublicKey(f *testing.F) {
	for _, id := range All() {
		_, pub, _ := MustNew(id).GenerateSignatureKeyPair(nil)
		f.Add(uint8(id), pub)
	}
	f.Fuzz(func(t *testing.T, sel uint8, pub []byte) {
		s := MustNew(ID(sel%7 + 1))
		if err := s.ValidateSignaturePublicKey(pub); err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("error %v does not wrap ErrInvalidKey", err)
		}
	})
}

func BenchmarkValidateHPKEPublicKey(b *testing.B) {
	for _, id := range All() {
		s := MustNew(id)
		_, pub, _ := s.GenerateHPKEKeyPair()
		b.Run(fmt.Sprintf("suite=%d", id), func(b *testing.B) {
			for b.Loop() {
				if err := s.ValidateHPKEPublicKey(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidateSignaturePublicKey(b *testing.B) {
	for _, id := range All() {
		s := MustNew(id)
		_, pub, _ := s.GenerateSignatureKeyPair(nil)
		b.Run(fmt.Sprintf("suite=%d", id), func(b *testing.B) {
			for b.Loop() {
				if err := s.ValidateSignaturePublicKey(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
