package mls

import (
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/tree"
)

// ErrInvalidCredential: a credential the Authentication Service (the
// CredentialValidator) rejects (RFC 9420 §5.3.1).
var ErrInvalidCredential = errors.New("mls: invalid credential")

// CredentialValidator is the Authentication Service of RFC 9420 §5.3.1: it
// checks that cred legitimately presents identities associated with
// signatureKey (the LeafNode's signature_key, or an external sender's key),
// and that those match what the application expects for the member.
//
// It is called for every credential that enters a group: KeyPackages used
// in Adds, leaves in Update proposals and commit paths, every leaf of a
// ratchet tree received when joining, and external senders. Errors should
// wrap ErrInvalidCredential; other errors are wrapped with it by the caller.
//
// The successor rule of §5.3.1 (a replacing credential must be an acceptable
// successor of the old one) is application policy; a validator that needs
// it can keep its own view of the members.
type CredentialValidator interface {
	ValidateCredential(cred *tree.Credential, signatureKey []byte) error
}

// CredentialValidatorFunc adapts a function to a CredentialValidator.
type CredentialValidatorFunc func(cred *tree.Credential, signatureKey []byte) error

// ValidateCredential implements CredentialValidator.
func (f CredentialValidatorFunc) ValidateCredential(cred *tree.Credential, signatureKey []byte) error {
	return f(cred, signatureKey)
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
func (BasicCredentialValidator) ValidateCredential(cred *tree.Credential, signatureKey []byte) error {
	switch cred.CredentialType {
	case tree.CredentialTypeBasic:
		if len(cred.Identity) == 0 {
			return fmt.Errorf("%w: basic credential with an empty identity", ErrInvalidCredential)
		}
		if len(signatureKey) == 0 {
			return fmt.Errorf("%w: empty signature key", ErrInvalidCredential)
		}
		return nil
	case tree.CredentialTypeX509:
		return fmt.Errorf("%w: x509 credentials need an application CredentialValidator", ErrInvalidCredential)
	}
	return fmt.Errorf("%w: unsupported credential type 0x%04x", ErrInvalidCredential, uint16(cred.CredentialType))
}

// validateCredential runs v (nil: BasicCredentialValidator) and makes sure
// the error wraps ErrInvalidCredential.
func validateCredential(v CredentialValidator, cred *tree.Credential, signatureKey []byte) error {
	if v == nil {
		v = BasicCredentialValidator{}
	}
	err := v.ValidateCredential(cred, signatureKey)
	if err == nil || errors.Is(err, ErrInvalidCredential) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidCredential, err)
}
