package mls

import (
	"io"

	"github.com/spacepanda/spacepanda/mls/internal/access"
	"github.com/spacepanda/spacepanda/mls/internal/fromtree"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// Internals gives the engine's own tools the primitives below the Group
// API: the vector runner (mls/conformance) checks each RFC 9420 step on its
// own, the benchmark (mls/bench) makes members straight from a generated
// tree. Its argument's type lives in mls/internal, so code outside mls/
// cannot call it; the primitives are not part of the API.
func Internals(access.Key) internals { return internals{} }

// internals is the set of primitives Internals returns.
type internals struct{}

// ProtectPrivate is protectPrivate (RFC 9420 §6.3).
func (internals) ProtectPrivate(s *suite.Suite, ac *AuthenticatedContent, keys PrivateKeys, padding int, rnd io.Reader) (*PrivateMessage, error) {
	return protectPrivate(s, ac, keys, padding, rnd)
}

// UnprotectPrivate is unprotectPrivate (RFC 9420 §6.3).
func (internals) UnprotectPrivate(s *suite.Suite, pm *PrivateMessage, keys PrivateKeys, verify func(*AuthenticatedContent) error) (*AuthenticatedContent, error) {
	return unprotectPrivate(s, pm, keys, verify)
}

// SetConfirmationTag is setConfirmationTag (RFC 9420 §8.1).
func (internals) SetConfirmationTag(s *suite.Suite, ac *AuthenticatedContent, confirmationKey, confirmedTranscriptHash []byte) {
	setConfirmationTag(s, ac, confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag is verifyConfirmationTag (RFC 9420 §8.1).
func (internals) VerifyConfirmationTag(s *suite.Suite, tag, confirmationKey, confirmedTranscriptHash []byte) error {
	return verifyConfirmationTag(s, tag, confirmationKey, confirmedTranscriptHash)
}

// DecryptGroupSecrets is decryptGroupSecrets (RFC 9420 §12.4.3.1).
func (internals) DecryptGroupSecrets(s *suite.Suite, w *Welcome, ref KeyPackageRef, initPriv []byte) (*GroupSecrets, error) {
	return decryptGroupSecrets(s, w, ref, initPriv)
}

// DecryptGroupInfo is decryptGroupInfo (RFC 9420 §12.4.3.1).
func (internals) DecryptGroupInfo(s *suite.Suite, w *Welcome, welcomeSecret []byte) (*GroupInfo, error) {
	return decryptGroupInfo(s, w, welcomeSecret)
}

// GroupFromTree is m's state in epoch e of a generated group, as if m had
// joined that epoch (groupFromTree).
func (internals) GroupFromTree(e *fromtree.Epoch, m fromtree.Member, cfg Config) (*Group, error) {
	return groupFromTree(e, m, cfg)
}
