package suite

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"hash"
	"io"

	"github.com/cloudflare/circl/sign/ed448"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// RFC 9420 §5.1.2: SignWithLabel / VerifyWithLabel.

// sigAlg is one signature scheme. Private keys are in the test-vector format:
// the RFC 8032 seed for EdDSA, the big-endian scalar for ECDSA.
type sigAlg interface {
	generate(r io.Reader) (priv, pub []byte, err error)
	signer(priv []byte) (crypto.Signer, []byte, error) // signer and its public key
	sign(s crypto.Signer, msg []byte) ([]byte, error)
	verify(pub, msg, sig []byte) bool
	checkPublic(pub []byte) error
}

// Signer is a parsed signature private key, ready to sign repeatedly without
// re-deriving its public key. Safe for concurrent use.
type Signer struct {
	suite  *Suite
	signer crypto.Signer
	pub    []byte
}

// GenerateSignatureKeyPair returns a fresh signature key pair for the suite.
// rand is the provider's randomness source (nil means crypto/rand).
func (s *Suite) GenerateSignatureKeyPair(r io.Reader) (priv, pub []byte, err error) {
	if r == nil {
		r = rand.Reader
	}
	return s.sig.generate(r)
}

// NewSigner parses a signature private key.
func (s *Suite) NewSigner(priv []byte) (*Signer, error) {
	sg, pub, err := s.sig.signer(priv)
	if err != nil {
		return nil, err
	}
	return &Signer{suite: s, signer: sg, pub: pub}, nil
}

// PublicKey returns the signature public key (SignaturePublicKey format).
func (sg *Signer) PublicKey() []byte { return sg.pub }

// SignWithLabel signs SignContent{"MLS 1.0 "+label, content}.
func (sg *Signer) SignWithLabel(label string, content []byte) ([]byte, error) {
	return sg.suite.sig.sign(sg.signer, labelled(label, content))
}

// SignWithLabel parses priv and signs; prefer a Signer for repeated use.
func (s *Suite) SignWithLabel(priv []byte, label string, content []byte) ([]byte, error) {
	sg, err := s.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	return sg.SignWithLabel(label, content)
}

// VerifyWithLabel checks a signature over SignContent{"MLS 1.0 "+label, content}.
// It returns nil or an error wrapping ErrInvalidSignature.
func (s *Suite) VerifyWithLabel(pub []byte, label string, content, signature []byte) error {
	if !s.sig.verify(pub, labelled(label, content), signature) {
		return fmt.Errorf("%w (%s)", ErrInvalidSignature, label)
	}
	return nil
}

// LabelHeadroom is the room VerifyWithLabelAt needs in front of the content
// for label: the encoded SignContent label and the longest content length.
func LabelHeadroom(label string) int {
	return len(labelledHeader(label, wire.MaxVarint))
}

// VerifyWithLabelAt is VerifyWithLabel for content = buf[at:] that verifies
// without copying the content: the rest of SignContent is written just in
// front of it, into buf[:at], which must hold at least LabelHeadroom(label)
// bytes the caller does not need. Nothing in buf[at:] is written, so other
// goroutines may read the content meanwhile.
func (s *Suite) VerifyWithLabelAt(pub []byte, label string, buf []byte, at int, signature []byte) error {
	if at < 0 || at > len(buf) {
		return fmt.Errorf("%w (%s): content offset %d outside %d bytes", ErrInvalidSignature, label, at, len(buf))
	}
	h := labelledHeader(label, len(buf)-at)
	if h == nil || len(h) > at {
		return fmt.Errorf("%w (%s): %d bytes of headroom, need %d", ErrInvalidSignature, label, at, len(h))
	}
	start := at - len(h)
	copy(buf[start:at], h)
	if !s.sig.verify(pub, buf[start:], signature) {
		return fmt.Errorf("%w (%s)", ErrInvalidSignature, label)
	}
	return nil
}

// --- Ed25519 ---

// ed25519Alg is Ed25519; curve decodes public keys for validation.
type ed25519Alg struct{ curve *edwardsCurve }

func (ed25519Alg) generate(r io.Reader) ([]byte, []byte, error) {
	pub, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, nil, err
	}
	return priv.Seed(), pub, nil
}

func (ed25519Alg) signer(priv []byte) (crypto.Signer, []byte, error) {
	if len(priv) != ed25519.SeedSize {
		return nil, nil, fmt.Errorf("%w: Ed25519 private key of %d bytes", ErrInvalidKey, len(priv))
	}
	k := ed25519.NewKeyFromSeed(priv)
	return k, k.Public().(ed25519.PublicKey), nil
}

func (ed25519Alg) sign(s crypto.Signer, msg []byte) ([]byte, error) {
	return ed25519.Sign(s.(ed25519.PrivateKey), msg), nil
}

func (ed25519Alg) verify(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(pub), msg, sig)
}

// --- Ed448 (circl; the standard library lacks it) ---

// ed448Alg is Ed448; curve decodes public keys for validation.
type ed448Alg struct{ curve *edwardsCurve }

func (ed448Alg) generate(r io.Reader) ([]byte, []byte, error) {
	pub, priv, err := ed448.GenerateKey(r)
	if err != nil {
		return nil, nil, err
	}
	return priv.Seed(), []byte(pub), nil
}

func (ed448Alg) signer(priv []byte) (crypto.Signer, []byte, error) {
	if len(priv) != ed448.SeedSize {
		return nil, nil, fmt.Errorf("%w: Ed448 private key of %d bytes", ErrInvalidKey, len(priv))
	}
	k := ed448.NewKeyFromSeed(priv)
	return k, []byte(k.Public().(ed448.PublicKey)), nil
}

func (ed448Alg) sign(s crypto.Signer, msg []byte) ([]byte, error) {
	return ed448.Sign(s.(ed448.PrivateKey), msg, ""), nil
}

func (ed448Alg) verify(pub, msg, sig []byte) bool {
	if len(pub) != ed448.PublicKeySize {
		return false
	}
	return ed448.Verify(ed448.PublicKey(pub), msg, sig, "")
}

// --- ECDSA over the NIST curves, DER signatures (RFC 9420 §5.1.2) ---

type ecCurve int

const (
	p256 ecCurve = iota
	p384
	p521
)

type ecdsaAlg struct {
	curve   elliptic.Curve
	newHash func() hash.Hash
}

func newECDSA(c ecCurve, h func() hash.Hash) ecdsaAlg {
	var curve elliptic.Curve
	switch c {
	case p256:
		curve = elliptic.P256()
	case p384:
		curve = elliptic.P384()
	case p521:
		curve = elliptic.P521()
	}
	return ecdsaAlg{curve: curve, newHash: h}
}

func (a ecdsaAlg) generate(r io.Reader) ([]byte, []byte, error) {
	k, err := ecdsa.GenerateKey(a.curve, r)
	if err != nil {
		return nil, nil, err
	}
	priv, err := k.Bytes()
	if err != nil {
		return nil, nil, err
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, nil, err
	}
	return priv, pub, nil
}

func (a ecdsaAlg) signer(priv []byte) (crypto.Signer, []byte, error) {
	// Some implementations strip leading zero bytes from the scalar (seen in
	// the P-521 message-protection vectors); it is still the same integer.
	if size := (a.curve.Params().BitSize + 7) / 8; len(priv) < size && len(priv) > 0 {
		padded := make([]byte, size)
		copy(padded[size-len(priv):], priv)
		priv = padded
	}
	k, err := ecdsa.ParseRawPrivateKey(a.curve, priv)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ECDSA private key", ErrInvalidKey)
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ECDSA public key", ErrInvalidKey)
	}
	return k, pub, nil
}

func (a ecdsaAlg) digest(msg []byte) []byte {
	h := a.newHash()
	h.Write(msg)
	return h.Sum(nil)
}

func (a ecdsaAlg) sign(s crypto.Signer, msg []byte) ([]byte, error) {
	return ecdsa.SignASN1(rand.Reader, s.(*ecdsa.PrivateKey), a.digest(msg))
}

func (a ecdsaAlg) verify(pub, msg, sig []byte) bool {
	k, err := ecdsa.ParseUncompressedPublicKey(a.curve, pub)
	if err != nil {
		return false
	}
	return ecdsa.VerifyASN1(k, a.digest(msg), sig)
}
