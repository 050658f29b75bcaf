package identity

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Validator is the Authentication Service (RFC 9420 §5.3.1, RFC 9750 §4)
// that binds MLS leaves to users. Give it to the engine as
// mls.Config.Credentials. The zero value admits certified leaves only.
//
// A certified leaf is accepted when, in this order: its credential is
// basic; it carries exactly one device certificate; the certificate's
// identity key hashes to the credential's identity (the user id); it binds
// exactly the leaf's signature_key; the identity key's signature verifies;
// the device is not revoked; its lifetime is at most MaxLifetime and, for a
// leaf entering the group now (a KeyPackage, an Update, a commit's path),
// contains the current time give or take ClockSkew.
//
// Time: the validator's own clock (Now). A leaf of a ratchet tree received
// when joining (mls.LeafUseTree) is not checked against the clock: a member
// added while its certificate was valid stays a member until someone
// removes it (RFC 9420 §5.3.2: credentials expire in place and members
// SHOULD accept updates from members whose old credential expired). An
// expired device cannot update or commit until it has a new certificate:
// its new leaf must be valid now.
//
// Unverified leaves (no certificate) are refused unless AllowUnverified;
// when allowed they authenticate nothing beyond MLS itself (the leaf's
// signature key signs its messages) and may present any identity outside
// the user id namespace: an uncertified leaf whose identity starts with
// UserIDPrefix is always refused (ErrUnverifiedUserID), so a user id seen
// in a group is always one its identity key vouched for.
//
// External senders (RFC 9420 §12.1.8.1) have no leaf and so no device
// certificate; they are refused (ErrExternalSender) unless ExternalSenders
// validates them.
//
// A Validator is safe for concurrent use once configured.
type Validator struct {
	// AllowUnverified admits leaves without a device certificate, for plain
	// channels and plain RFC 9420 peers.
	AllowUnverified bool
	// Revocations is consulted for every certified leaf (nil: none).
	Revocations *RevocationSet
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// ClockSkew is tolerated on both sides of a certificate's lifetime
	// (0: DefaultClockSkew; negative: none).
	ClockSkew time.Duration
	// MaxLifetime is the longest not_after - not_before accepted
	// (0: DefaultMaxCertificateLifetime; negative: no bound).
	MaxLifetime time.Duration
	// ExternalSenders validates the credentials of external senders (nil:
	// refused).
	ExternalSenders mls.CredentialValidator
}

// Member is what Validator.Verify learned about a leaf.
type Member struct {
	// Identity is the credential's identity as text: the user id when
	// Verified, otherwise the name an unverified leaf claims (to be shown
	// as unverified, never trusted).
	Identity string
	// Verified: the leaf carries a valid certificate; the fields below are
	// set only then.
	Verified    bool
	UserID      UserID
	DeviceID    DeviceID
	IdentityKey IdentityKey
	Certificate *Certificate
}

var (
	_ mls.CredentialValidator = (*Validator)(nil)
	_ mls.SuccessorValidator  = (*Validator)(nil)
)

// ValidateCredential implements mls.CredentialValidator. Refusals wrap
// mls.ErrInvalidCredential and one of this package's errors.
func (v *Validator) ValidateCredential(c *mls.CredentialCheck) error {
	var err error
	if c.Leaf == nil {
		err = v.externalSender(c)
	} else {
		_, err = v.check(c.Credential, c.SignatureKey, c.Leaf, c.Use != mls.LeafUseTree)
	}
	return wrapInvalid(err)
}

// Verify says who a leaf belongs to, checking it as ValidateCredential does
// for a leaf entering a group now. With ErrExpired or ErrNotYetValid the
// Member is still filled in (the certificate is valid otherwise), so that a
// caller can show an existing member as expired. An unverified leaf allowed
// by AllowUnverified gives Verified false and no error.
func (v *Validator) Verify(ln *tree.LeafNode) (Member, error) {
	return v.check(&ln.Credential, ln.SignatureKey, ln, true)
}

// ValidateSuccessor implements mls.SuccessorValidator (RFC 9420 §5.3.1
// "acceptable successor"): next, an Update's or a commit path's leaf,
// replaces prev. The credential may not change at all (mls.SameIdentity:
// the user id stays), and a certified member keeps its certificate's
// identity key and device id; its signature key may rotate under a new
// certificate for the same device.
func (v *Validator) ValidateSuccessor(prev, next *tree.LeafNode) error {
	if mls.SameIdentity(&prev.Credential, &next.Credential) != nil {
		return wrapInvalid(ErrIdentityChanged)
	}
	pc, perr := LeafCertificate(prev)
	nc, nerr := LeafCertificate(next)
	switch {
	case errors.Is(perr, ErrNoCertificate) && errors.Is(nerr, ErrNoCertificate):
		return nil
	case perr != nil && !errors.Is(perr, ErrNoCertificate):
		return wrapInvalid(fmt.Errorf("%w: the replaced leaf: %w", ErrDeviceChanged, perr))
	case perr != nil:
		return wrapInvalid(fmt.Errorf("%w: an uncertified member may not gain a certificate", ErrDeviceChanged))
	case nerr != nil:
		return wrapInvalid(fmt.Errorf("%w: the new leaf: %w", ErrDeviceChanged, nerr))
	case pc.IdentityKey != nc.IdentityKey:
		return wrapInvalid(fmt.Errorf("%w: identity key changes", ErrDeviceChanged))
	case pc.Device.ID != nc.Device.ID:
		return wrapInvalid(fmt.Errorf("%w: device id changes from %s to %s", ErrDeviceChanged, pc.Device.ID, nc.Device.ID))
	}
	return nil
}

// check is the one path for a leaf's credential: see Validator. checkTime
// says whether the certificate must be valid now.
func (v *Validator) check(cred *tree.Credential, sigKey []byte, ln *tree.LeafNode, checkTime bool) (Member, error) {
	if cred.CredentialType != tree.CredentialTypeBasic {
		return Member{}, fmt.Errorf("%w: 0x%04x", ErrUnsupportedCredential, uint16(cred.CredentialType))
	}
	if len(cred.Identity) == 0 || len(sigKey) == 0 {
		return Member{}, fmt.Errorf("%w: empty identity or signature key", ErrUnsupportedCredential)
	}
	m := Member{Identity: string(cred.Identity)}
	cert, err := LeafCertificate(ln)
	switch {
	case errors.Is(err, ErrNoCertificate) && strings.HasPrefix(m.Identity, UserIDPrefix):
		return Member{}, fmt.Errorf("%w: %q", ErrUnverifiedUserID, UserID(m.Identity).Short())
	case errors.Is(err, ErrNoCertificate) && v.AllowUnverified:
		return m, nil
	case err != nil:
		return Member{}, err
	}
	if !bytes.Equal(ln.SignatureKey, sigKey) {
		return Member{}, fmt.Errorf("%w: the check's key is not the leaf's", ErrKeyMismatch)
	}
	return v.verifyCertificate(m.Identity, sigKey, cert, checkTime)
}

// VerifyCertificate checks an encoded device certificate presented outside
// a leaf — to a relay at login, or with a KeyPackage it is asked to store —
// for the user id and signature key the presenter claims, as the Validator
// checks a leaf entering a group now. The Member is filled in as by Verify.
func (v *Validator) VerifyCertificate(userID string, signatureKey, certificate []byte) (Member, error) {
	cert, err := ParseCertificate(certificate)
	if err != nil {
		return Member{}, err
	}
	return v.verifyCertificate(userID, signatureKey, cert, true)
}

// verifyCertificate is the one path deciding whether cert vouches for
// identity and sigKey: see Validator.
func (v *Validator) verifyCertificate(identity string, sigKey []byte, cert *Certificate, checkTime bool) (Member, error) {
	uid := cert.UserID()
	switch {
	case identity != string(uid):
		return Member{}, fmt.Errorf("%w: the certificate is %s's", ErrUserIDMismatch, uid.Short())
	case !bytes.Equal(cert.Device.SignatureKey, sigKey):
		return Member{}, fmt.Errorf("%w: device %s of %s", ErrKeyMismatch, cert.Device.ID, uid.Short())
	}
	if err := cert.VerifySignature(); err != nil {
		return Member{}, err
	}
	if v.Revocations.Revoked(cert.IdentityKey, cert.Device.ID) {
		return Member{}, fmt.Errorf("%w: device %s of %s", ErrRevoked, cert.Device.ID, uid.Short())
	}
	skew, maxLife := v.limits()
	if maxLife > 0 && cert.Lifetime() > maxLife {
		return Member{}, fmt.Errorf("%w: %v (at most %v)", ErrLifetimeTooLong, cert.Lifetime(), maxLife)
	}
	m := Member{Identity: identity, Verified: true, UserID: uid, DeviceID: cert.Device.ID,
		IdentityKey: cert.IdentityKey, Certificate: cert}
	if checkTime {
		if err := cert.CheckLifetime(v.now(), skew); err != nil {
			return m, err
		}
	}
	return m, nil
}

func (v *Validator) externalSender(c *mls.CredentialCheck) error {
	if v.ExternalSenders == nil {
		return ErrExternalSender
	}
	return v.ExternalSenders.ValidateCredential(c)
}

func (v *Validator) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// limits returns the clock skew and maximum lifetime in force (0: none).
func (v *Validator) limits() (skew, maxLife time.Duration) {
	skew, maxLife = v.ClockSkew, v.MaxLifetime
	if skew == 0 {
		skew = DefaultClockSkew
	}
	if maxLife == 0 {
		maxLife = DefaultMaxCertificateLifetime
	}
	return max(skew, 0), max(maxLife, 0)
}

// wrapInvalid adds mls.ErrInvalidCredential to a refusal.
func wrapInvalid(err error) error {
	if err == nil || errors.Is(err, mls.ErrInvalidCredential) {
		return err
	}
	return fmt.Errorf("%w: %w", mls.ErrInvalidCredential, err)
}
