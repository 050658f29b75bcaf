package identity

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// SignatureScheme is the TLS SignatureScheme (RFC 8446 §4.2.3) of a device's
// MLS signature key, as the MLS cipher suites name them (RFC 9420 §17.1).
type SignatureScheme uint16

// The signature schemes of the seven MLS cipher suites.
const (
	SchemeECDSAP256SHA256 SignatureScheme = 0x0403 // suite 2
	SchemeECDSAP384SHA384 SignatureScheme = 0x0503 // suite 7
	SchemeECDSAP521SHA512 SignatureScheme = 0x0603 // suite 5
	SchemeEd25519         SignatureScheme = 0x0807 // suites 1, 3
	SchemeEd448           SignatureScheme = 0x0808 // suites 4, 6
)

// SchemeOf returns the signature scheme of an MLS cipher suite.
func SchemeOf(id suite.ID) (SignatureScheme, error) {
	switch id {
	case suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, suite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519:
		return SchemeEd25519, nil
	case suite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256:
		return SchemeECDSAP256SHA256, nil
	case suite.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448, suite.MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448:
		return SchemeEd448, nil
	case suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521:
		return SchemeECDSAP521SHA512, nil
	case suite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384:
		return SchemeECDSAP384SHA384, nil
	}
	return 0, fmt.Errorf("%w: %v", suite.ErrUnsupportedSuite, id)
}

// verifySuite is a cipher suite whose signature algorithm is s, for
// verifying a device's proof of possession.
func (s SignatureScheme) verifySuite() (*suite.Suite, error) {
	id := map[SignatureScheme]suite.ID{
		SchemeEd25519: suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, SchemeECDSAP256SHA256: suite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
		SchemeEd448: suite.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448, SchemeECDSAP521SHA512: suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
		SchemeECDSAP384SHA384: suite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
	}[s]
	if id == 0 {
		return nil, fmt.Errorf("%w: signature scheme 0x%04x", ErrInvalidCertificate, uint16(s))
	}
	return suite.New(id)
}

// keySize is the size of a public key of the scheme in the MLS encoding
// (RFC 9420 §5.1.1: raw RFC 8032 keys, uncompressed SEC1 points); 0 for an
// unknown scheme.
func (s SignatureScheme) keySize() int {
	switch s {
	case SchemeEd25519:
		return 32
	case SchemeEd448:
		return 57
	case SchemeECDSAP256SHA256:
		return 65
	case SchemeECDSAP384SHA384:
		return 97
	case SchemeECDSAP521SHA512:
		return 133
	}
	return 0
}

// checkKey checks that key has the scheme's public key format.
func (s SignatureScheme) checkKey(key []byte) error {
	n := s.keySize()
	switch {
	case n == 0:
		return fmt.Errorf("%w: unknown signature scheme 0x%04x", ErrInvalidCertificate, uint16(s))
	case len(key) != n:
		return fmt.Errorf("%w: signature key of %d bytes for scheme 0x%04x (want %d)", ErrInvalidCertificate, len(key), uint16(s), n)
	case s != SchemeEd25519 && s != SchemeEd448 && key[0] != 0x04:
		return fmt.Errorf("%w: ECDSA signature key is not an uncompressed point", ErrInvalidCertificate)
	}
	return nil
}

func (s SignatureScheme) String() string {
	switch s {
	case SchemeEd25519:
		return "ed25519"
	case SchemeEd448:
		return "ed448"
	case SchemeECDSAP256SHA256:
		return "ecdsa_secp256r1_sha256"
	case SchemeECDSAP384SHA384:
		return "ecdsa_secp384r1_sha384"
	case SchemeECDSAP521SHA512:
		return "ecdsa_secp521r1_sha512"
	}
	return fmt.Sprintf("SignatureScheme(0x%04x)", uint16(s))
}

// Device is what an identity key certifies: one device's id and its MLS
// signature public key (the LeafNode signature_key of its leaves).
type Device struct {
	ID           DeviceID
	Scheme       SignatureScheme
	SignatureKey []byte
}

// NewDevice describes the device whose MLS signature public key is
// signatureKey in cipher suite id.
func NewDevice(deviceID DeviceID, id suite.ID, signatureKey []byte) (Device, error) {
	s, err := SchemeOf(id)
	if err != nil {
		return Device{}, err
	}
	d := Device{ID: deviceID, Scheme: s, SignatureKey: bytes.Clone(signatureKey)}
	return d, d.check()
}

func (d *Device) check() error {
	if d.ID.IsZero() {
		return fmt.Errorf("%w: zero device id", ErrInvalidCertificate)
	}
	return d.Scheme.checkKey(d.SignatureKey)
}
