package mls

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// ErrInvalidCredential: a credential the Authentication Service (the
// CredentialValidator) rejects (RFC 9420 §5.3.1).
var ErrInvalidCredential = errors.New("mls: invalid credential")

// CredentialValidator is the Authentication Service of RFC 9420 §5.3.1: it
// checks that a credential legitimately presents identities associated with
// a signature key (a LeafNode's signature_key, or an external sender's key),
// and that those match what the application expects for the member.
//
// It is called for every credential that enters a group: KeyPackages used
// in Adds, leaves in Update proposals and commit paths (also of external
// commits), every leaf of a ratchet tree received when joining, and external
// senders. Errors should wrap ErrInvalidCredential; other errors are wrapped
// with it by the caller. It must not keep references to its argument.
type CredentialValidator interface {
	ValidateCredential(c *CredentialCheck) error
}

// CredentialCheck is one question to the Authentication Service.
type CredentialCheck struct {
	Credential   *tree.Credential
	SignatureKey []byte
	// Leaf is the leaf node that presents the credential (its extensions may
	// carry application evidence such as a device certificate); nil for an
	// external sender.
	Leaf *tree.LeafNode
	// Use is where the leaf appears; zero for an external sender.
	Use LeafUse
	// GroupContext is the group the leaf joins or lives in, with the
	// extensions it will have when the leaf is accepted (for a commit, the
	// ones the commit installs), so that a validator may apply a group's
	// own rules; nil outside a group (a KeyPackage validated on its own).
	// The validator must not modify it.
	GroupContext *GroupContext
	// Previous is the leaf this one replaces, when there is one: the
	// member's current leaf for an Update proposal or a commit path, the
	// removed leaf of an external commit that resynchronizes a member. Nil
	// when the credential is new to the group.
	Previous *tree.LeafNode
}

// CredentialValidatorFunc adapts a function to a CredentialValidator.
type CredentialValidatorFunc func(c *CredentialCheck) error

// ValidateCredential implements CredentialValidator.
func (f CredentialValidatorFunc) ValidateCredential(c *CredentialCheck) error { return f(c) }

// SuccessorValidator is implemented by a CredentialValidator that decides
// itself which credential may replace another (RFC 9420 §5.3.1: "the new
// credential is an acceptable successor"). Without it the engine allows
// no change of identity on Update, commit path or resync (SameIdentity).
type SuccessorValidator interface {
	ValidateSuccessor(prev, next *tree.LeafNode) error
}

// BasicCredentialValidator is the default CredentialValidator: it accepts a
// basic credential with a non-empty identity and rejects every other
// credential type. A basic credential is a bare assertion (RFC 9420 §5.3),
// so this authenticates nothing by itself; applications that bind identities
// to keys (key transparency, X.509 chains, ...) supply their own validator.
//
// X.509 credentials are rejected here: checking them needs trust anchors
// and the §5.3 rule that the end-entity certificate's subjectPublicKeyInfo
// equals signature_key, which belong in an application validator.
type BasicCredentialValidator struct{}

// ValidateCredential implements CredentialValidator.
func (BasicCredentialValidator) ValidateCredential(c *CredentialCheck) error {
	cred := c.Credential
	switch cred.CredentialType {
	case tree.CredentialTypeBasic:
		if len(cred.Identity) == 0 {
			return fmt.Errorf("%w: basic credential with an empty identity", ErrInvalidCredential)
		}
		if len(c.SignatureKey) == 0 {
			return fmt.Errorf("%w: empty signature key", ErrInvalidCredential)
		}
		return nil
	case tree.CredentialTypeX509:
		return fmt.Errorf("%w: x509 credentials need an application CredentialValidator", ErrInvalidCredential)
	}
	return fmt.Errorf("%w: unsupported credential type 0x%04x", ErrInvalidCredential, uint16(cred.CredentialType))
}

// SameIdentity is the default successor rule: next presents the same
// identity as prev — the same credential type and, for a basic credential,
// the same identity bytes; for any other type, the same encoded credential.
func SameIdentity(prev, next *tree.Credential) error {
	if prev.CredentialType != next.CredentialType {
		return fmt.Errorf("%w: credential type changes from 0x%04x to 0x%04x", ErrInvalidCredential,
			uint16(prev.CredentialType), uint16(next.CredentialType))
	}
	if prev.CredentialType == tree.CredentialTypeBasic {
		if !bytes.Equal(prev.Identity, next.Identity) {
			return fmt.Errorf("%w: a member may not change its identity", ErrInvalidCredential)
		}
		return nil
	}
	a, err1 := wire.Marshal(prev)
	b, err2 := wire.Marshal(next)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		return fmt.Errorf("%w: a member may not change its credential", ErrInvalidCredential)
	}
	return nil
}

// validateCredential runs v (nil: BasicCredentialValidator) on c and, when
// c replaces a leaf, the successor rule; the error wraps ErrInvalidCredential.
func validateCredential(v CredentialValidator, c *CredentialCheck) error {
	if v == nil {
		v = BasicCredentialValidator{}
	}
	err := v.ValidateCredential(c)
	if err == nil && c.Previous != nil && c.Leaf != nil {
		if sv, ok := v.(SuccessorValidator); ok {
			err = sv.ValidateSuccessor(c.Previous, c.Leaf)
		} else {
			err = SameIdentity(&c.Previous.Credential, c.Credential)
		}
	}
	if err == nil || errors.Is(err, ErrInvalidCredential) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidCredential, err)
}
