package identity

import "errors"

// Errors. They are wrapped with context; test with errors.Is. Messages never
// contain key material. The Validator's refusals also wrap
// mls.ErrInvalidCredential.
var (
	// ErrInvalidUserID: text that is not a canonical user id.
	ErrInvalidUserID = errors.New("identity: invalid user id")
	// ErrInvalidDeviceID: text that is not a canonical device id.
	ErrInvalidDeviceID = errors.New("identity: invalid device id")
	// ErrInvalidKey: an identity key or private identity that is malformed.
	ErrInvalidKey = errors.New("identity: invalid key")
	// ErrInvalidCertificate: a device certificate that does not decode
	// strictly (version, sizes, scheme, trailing bytes).
	ErrInvalidCertificate = errors.New("identity: invalid device certificate")
	// ErrInvalidRevocation: a revocation that does not decode strictly.
	ErrInvalidRevocation = errors.New("identity: invalid revocation")
	// ErrBadSignature: an identity key's signature (on a certificate or a
	// revocation) does not verify.
	ErrBadSignature = errors.New("identity: bad signature")
	// ErrUserIDMismatch: the certificate's identity key does not hash to the
	// user id the credential presents.
	ErrUserIDMismatch = errors.New("identity: identity key does not match the user id")
	// ErrKeyMismatch: the certificate binds another signature key than the
	// leaf's.
	ErrKeyMismatch = errors.New("identity: certificate is for another signature key")
	// ErrExpired: the certificate's not_after has passed.
	ErrExpired = errors.New("identity: certificate expired")
	// ErrNotYetValid: the certificate's not_before is in the future.
	ErrNotYetValid = errors.New("identity: certificate not yet valid")
	// ErrLifetimeTooLong: not_after - not_before exceeds the allowed maximum.
	ErrLifetimeTooLong = errors.New("identity: certificate lifetime too long")
	// ErrNoCertificate: a leaf without a device certificate where one is
	// required.
	ErrNoCertificate = errors.New("identity: no device certificate")
	// ErrDuplicateCertificate: a leaf with more than one device certificate
	// extension (RFC 9420 §13.4: one extension of each type).
	ErrDuplicateCertificate = errors.New("identity: more than one device certificate")
	// ErrUnverifiedUserID: a leaf without a certificate claims a user id
	// (or anything in the user id namespace).
	ErrUnverifiedUserID = errors.New("identity: uncertified leaf claims a user id")
	// ErrRevoked: the device is revoked by its identity key.
	ErrRevoked = errors.New("identity: device revoked")
	// ErrIdentityChanged: an update or commit changes the member's user id.
	ErrIdentityChanged = errors.New("identity: a member may not change its user id")
	// ErrDeviceChanged: an update or commit changes the member's device id
	// or identity key, or drops or adds its certificate.
	ErrDeviceChanged = errors.New("identity: a member may not change its device")
	// ErrExternalSender: an external sender's credential, which no device
	// certificate can vouch for, without a validator for external senders.
	ErrExternalSender = errors.New("identity: external sender not accepted")
	// ErrUnsupportedCredential: a credential other than basic.
	ErrUnsupportedCredential = errors.New("identity: unsupported credential type")

	// ErrLinkCode: text that is not a link code.
	ErrLinkCode = errors.New("identity: invalid link code")
	// ErrLinkMessage: a link message that does not decode strictly.
	ErrLinkMessage = errors.New("identity: invalid link message")
	// ErrLinkAuth: the link exchange did not authenticate: a wrong code, or
	// a message substituted or altered on the way.
	ErrLinkAuth = errors.New("identity: device link failed authentication")
	// ErrLinkClosed: the link offer or join was used already, failed, or is
	// asked for a step out of order.
	ErrLinkClosed = errors.New("identity: device link closed")
)
