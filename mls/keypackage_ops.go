package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// KeyPackage creation and validation (RFC 9420 §10, §10.1).

// ErrInvalidKeyPackage: a KeyPackage that fails RFC 9420 §10.1. It wraps
// the reason (ErrInvalidLeafNode, ErrInvalidSignature, ErrExpired, ...).
var ErrInvalidKeyPackage = errors.New("mls: invalid key package")

// DefaultKeyPackageLifetime is the lifetime of a KeyPackage made by
// NewKeyPackage unless KeyPackageOptions.Lifetime says otherwise.
const DefaultKeyPackageLifetime = 90 * 24 * time.Hour

// keyPackageClockSkew is how far not_before is set in the past, so that
// members whose clocks run a little behind accept a fresh KeyPackage.
const keyPackageClockSkew = time.Hour

// keyPackageTBSLabel is the SignWithLabel label of KeyPackages (RFC 9420 §10).
const keyPackageTBSLabel = "KeyPackageTBS"

// KeyPackageOptions tunes NewKeyPackage. The zero value gives a KeyPackage
// valid from an hour ago for DefaultKeyPackageLifetime with
// DefaultCapabilities.
type KeyPackageOptions struct {
	// Now is the creation time (zero: time.Now()).
	Now time.Time
	// Lifetime is how long the KeyPackage stays valid after Now
	// (0: DefaultKeyPackageLifetime). not_before is set an hour before Now
	// for clock skew.
	Lifetime time.Duration
	// Capabilities of the leaf (nil: DefaultCapabilities). The credential's
	// type and the types of LeafExtensions and Extensions are added when
	// missing, so the result is always self-consistent (§7.2, §10). Listing
	// a default extension or proposal type is an error (§7.2).
	Capabilities *tree.Capabilities
	// LeafExtensions go into leaf_node.extensions, Extensions into
	// KeyPackage.extensions; neither may hold a type twice (§13.4).
	LeafExtensions tree.Extensions
	Extensions     tree.Extensions
	// LastResort adds the last_resort extension (ExtensionTypeLastResort).
	LastResort bool
}

// KeyPackagePrivate holds the private keys of a KeyPackage: the HPKE
// private key of init_key (to open the Welcome) and of the leaf's
// encryption_key (the new member's leaf secret). The signature private key
// stays with the caller's Signer. Both are serialized HPKE private keys.
type KeyPackagePrivate struct {
	InitKey       []byte
	EncryptionKey []byte
}

// DefaultCapabilities returns what this implementation supports (RFC 9420
// §7.2): protocol mls10, every cipher suite of package suite, the basic
// credential, the non-default extension types we understand (last_resort),
// and no non-default proposal types. Default extension and proposal types
// are not listed, as §7.2 requires. No GREASE values are added.
func DefaultCapabilities() tree.Capabilities {
	return tree.Capabilities{
		Versions:     []tree.ProtocolVersion{tree.ProtocolVersionMLS10},
		CipherSuites: suite.All(),
		Extensions:   []tree.ExtensionType{tree.ExtensionTypeLastResort},
		Proposals:    []tree.ProposalType{},
		Credentials:  []tree.CredentialType{tree.CredentialTypeBasic},
	}
}

// NewKeyPackage creates a KeyPackage for suite s (RFC 9420 §10): a fresh
// init key pair and leaf encryption key pair, a key_package LeafNode for
// cred and signer's public key signed with "LeafNodeTBS", and the whole
// signed with "KeyPackageTBS". signer must be a key of suite s. rnd is the
// randomness source for the HPKE keys (nil: crypto/rand).
func NewKeyPackage(s *suite.Suite, rnd io.Reader, signer *suite.Signer, cred tree.Credential, opts KeyPackageOptions) (*KeyPackage, *KeyPackagePrivate, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	lifetime := opts.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultKeyPackageLifetime
	}
	caps := DefaultCapabilities()
	if opts.Capabilities != nil {
		if err := checkOwnCapabilities(opts.Capabilities); err != nil {
			return nil, nil, fmt.Errorf("mls: key package: %w", err)
		}
		caps = cloneCapabilities(opts.Capabilities)
	}
	for _, es := range []tree.Extensions{opts.LeafExtensions, opts.Extensions} {
		if err := checkExtensionList(es, true); err != nil {
			return nil, nil, fmt.Errorf("mls: key package: %w", err)
		}
	}
	if !slices.Contains(caps.Versions, tree.ProtocolVersionMLS10) {
		caps.Versions = append(caps.Versions, tree.ProtocolVersionMLS10)
	}
	if !slices.Contains(caps.CipherSuites, s.ID()) {
		caps.CipherSuites = append(caps.CipherSuites, s.ID())
	}
	if !slices.Contains(caps.Credentials, cred.CredentialType) {
		caps.Credentials = append(caps.Credentials, cred.CredentialType)
	}
	exts := slices.Clone(opts.Extensions)
	if opts.LastResort && !exts.Has(tree.ExtensionTypeLastResort) {
		exts = append(exts, tree.Extension{ExtensionType: tree.ExtensionTypeLastResort, ExtensionData: []byte{}})
	}
	for _, e := range slices.Concat(opts.LeafExtensions, exts) {
		if !e.ExtensionType.IsDefault() && !slices.Contains(caps.Extensions, e.ExtensionType) {
			caps.Extensions = append(caps.Extensions, e.ExtensionType)
		}
	}

	initPriv, initPub, err := newHPKEKeyPair(s, rnd)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: key package init key: %w", err)
	}
	encPriv, encPub, err := newHPKEKeyPair(s, rnd)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: key package encryption key: %w", err)
	}
	if bytes.Equal(initPub, encPub) {
		// Only a broken randomness source gets here (§10.1).
		return nil, nil, fmt.Errorf("mls: key package: init_key equals encryption_key (bad randomness)")
	}

	notBefore := now.Add(-keyPackageClockSkew).Unix()
	if notBefore < 0 {
		notBefore = 0
	}
	kp := &KeyPackage{
		Version:     tree.ProtocolVersionMLS10,
		CipherSuite: s.ID(),
		InitKey:     initPub,
		LeafNode: tree.LeafNode{
			EncryptionKey:  encPub,
			SignatureKey:   signer.PublicKey(),
			Credential:     cred,
			Capabilities:   caps,
			LeafNodeSource: tree.LeafNodeSourceKeyPackage,
			Lifetime:       tree.Lifetime{NotBefore: uint64(notBefore), NotAfter: uint64(now.Add(lifetime).Unix())},
			Extensions:     nonNilExtensions(opts.LeafExtensions),
		},
		Extensions: nonNilExtensions(exts),
	}
	if err := kp.LeafNode.Sign(s, signer, nil, 0); err != nil {
		return nil, nil, err
	}
	if err := SignKeyPackage(signer, kp); err != nil {
		return nil, nil, err
	}
	return kp, &KeyPackagePrivate{InitKey: initPriv, EncryptionKey: encPriv}, nil
}

// SignKeyPackage sets kp.Signature to SignWithLabel(., "KeyPackageTBS",
// KeyPackageTBS) (RFC 9420 §10). NewKeyPackage calls it; it is exported
// for callers that assemble a KeyPackage themselves.
func SignKeyPackage(signer *suite.Signer, kp *KeyPackage) error {
	tbs, err := kp.MarshalTBS()
	if err != nil {
		return fmt.Errorf("mls: sign key package: %w", err)
	}
	sig, err := signer.SignWithLabel(keyPackageTBSLabel, tbs)
	if err != nil {
		return fmt.Errorf("mls: sign key package: %w", err)
	}
	kp.Signature = sig
	return nil
}

// newHPKEKeyPair derives an HPKE key pair from 64 bytes of rnd (RFC 9180
// DeriveKeyPair), so that a caller-supplied randomness source is honoured.
func newHPKEKeyPair(s *suite.Suite, rnd io.Reader) (priv, pub []byte, err error) {
	ikm := make([]byte, 64)
	defer clear(ikm)
	if _, err := io.ReadFull(rnd, ikm); err != nil {
		return nil, nil, err
	}
	return s.DeriveKeyPair(ikm)
}

func cloneCapabilities(c *tree.Capabilities) tree.Capabilities {
	return tree.Capabilities{
		Versions:     slices.Clone(c.Versions),
		CipherSuites: slices.Clone(c.CipherSuites),
		Extensions:   slices.Clone(c.Extensions),
		Proposals:    slices.Clone(c.Proposals),
		Credentials:  slices.Clone(c.Credentials),
	}
}

// nonNilExtensions returns es, or an empty list for nil, so that a created
// value equals its decoding.
func nonNilExtensions(es tree.Extensions) tree.Extensions {
	if es == nil {
		return tree.Extensions{}
	}
	return slices.Clone(es)
}

// Ref returns the KeyPackageRef of kp: MakeKeyPackageRef over its encoding
// (RFC 9420 §5.2). s must be kp's cipher suite.
func (kp *KeyPackage) Ref(s *suite.Suite) (KeyPackageRef, error) {
	enc, err := wire.Marshal(kp)
	if err != nil {
		return nil, fmt.Errorf("mls: key package ref: %w", err)
	}
	return s.MakeKeyPackageRef(enc), nil
}

// IsLastResort reports whether kp carries the last_resort extension.
func (kp *KeyPackage) IsLastResort() bool { return kp.Extensions.Has(tree.ExtensionTypeLastResort) }

// ValidateKeyPackage checks kp as RFC 9420 §10.1 requires before it is used
// to add its owner to a group, s being the group's (or the expected) suite:
//   - version is mls10 (and the GroupContext's), cipher_suite is s (and the
//     GroupContext's);
//   - leaf_node is valid for a KeyPackage (ValidateLeafNode with
//     LeafUseKeyPackage: source, credential, signature, lifetime at now,
//     capabilities, and, with opts.GroupContext/Members, the group checks);
//   - the KeyPackage signature verifies with leaf_node.signature_key;
//   - init_key is an HPKE public key of s (suite.ValidateHPKEPublicKey)
//     and differs from leaf_node.encryption_key;
//   - every KeyPackage extension of a known non-default type is listed in
//     the leaf's capabilities (§10; unknown ones are ignored, §13.4).
//
// A KeyPackage that arrived in an MLSMessage must also have the version of
// that MLSMessage (the decoder accepts only mls10 there, so this holds).
// The error wraps ErrInvalidKeyPackage and the reason.
func ValidateKeyPackage(s *suite.Suite, kp *KeyPackage, now time.Time, opts ValidateOptions) error {
	if err := validateKeyPackage(s, kp, now, &opts); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	return nil
}

func validateKeyPackage(s *suite.Suite, kp *KeyPackage, now time.Time, opts *ValidateOptions) error {
	if kp.Version != tree.ProtocolVersionMLS10 {
		return fmt.Errorf("%w: version %d", ErrUnsupportedVersion, kp.Version)
	}
	if kp.CipherSuite != s.ID() {
		return fmt.Errorf("%w: key package for %v, want %v", suite.ErrUnsupportedSuite, kp.CipherSuite, s.ID())
	}
	if gc := opts.GroupContext; gc != nil && (gc.Version != kp.Version || gc.CipherSuite != kp.CipherSuite) {
		return fmt.Errorf("%w: key package for version %d %v, group uses version %d %v",
			suite.ErrUnsupportedSuite, kp.Version, kp.CipherSuite, gc.Version, gc.CipherSuite)
	}
	// §10: init_key "MUST be a public key for the asymmetric encryption
	// scheme defined by cipher_suite"; the Welcome is encrypted to it.
	if err := s.ValidateHPKEPublicKey(kp.InitKey); err != nil {
		return fmt.Errorf("init_key: %w", err)
	}
	if bytes.Equal(kp.InitKey, kp.LeafNode.EncryptionKey) {
		return errors.New("init_key equals leaf_node.encryption_key")
	}
	if err := checkExtensions(s, kp.Extensions, true); err != nil {
		return err
	}
	for _, e := range kp.Extensions {
		if knownExtension(e.ExtensionType) && !e.ExtensionType.IsDefault() &&
			!slices.Contains(kp.LeafNode.Capabilities.Extensions, e.ExtensionType) {
			return fmt.Errorf("%w: key package extension 0x%04x not in capabilities", ErrUnsupportedCapability, uint16(e.ExtensionType))
		}
	}
	if err := ValidateLeafNode(s, &kp.LeafNode, LeafUseKeyPackage, 0, now, *opts); err != nil {
		return err
	}
	tbs, err := kp.MarshalTBS()
	if err != nil {
		return err
	}
	if err := s.VerifyWithLabel(kp.LeafNode.SignatureKey, keyPackageTBSLabel, tbs, kp.Signature); err != nil {
		return fmt.Errorf("%w: key package: %w", ErrInvalidSignature, err)
	}
	return nil
}

// knownExtension reports whether this implementation understands extension
// type t (so that rules about it are enforced rather than ignored).
func knownExtension(t tree.ExtensionType) bool {
	return t.IsDefault() || t == tree.ExtensionTypeLastResort
}
