// Package identity says who is who in SpacePanda: self-certifying user ids,
// device certificates, the MLS credential validator built on them, safety
// numbers, and the primitives to link a new device to a user.
//
// A user is an Ed25519 identity key (PrivateIdentity). The user id is
// derived from it (UserIDFromKey) and cannot be chosen; display names are
// shown, never trusted. Each device (an MLS client) has its own MLS
// signature key in whatever cipher suite it uses; the identity key
// certifies it with a Certificate carried in the device's LeafNode as the
// private-use extension ExtensionTypeDeviceCertificate (RFC 9420 §7.2,
// §13). The leaf's BasicCredential identity is the user id's text, so
// plain RFC 9420 peers still see one stable identity per user.
//
// Validator is the Authentication Service of RFC 9420 §5.3.1 and RFC 9750
// §4 for the engine (an mls.CredentialValidator and mls.SuccessorValidator):
// it accepts a leaf only when its certificate verifies, binds the leaf's
// signature_key, comes from the identity key the user id is the hash of,
// is within its lifetime and is not revoked, and it refuses updates that
// change the user or the device. Leaves without a certificate are
// unverified: refused by default, admitted in plain channels
// (Validator.AllowUnverified) and reported as such by Validator.Verify.
//
// Safety numbers (SafetyNumber, Fingerprint) let two people compare their
// identity keys out of band. Device linking (NewLinkOffer, NewLinkJoin) lets
// an existing device certify a new one over an untrusted relay, the
// exchange authenticated by a short code and the CPace PAKE.
package identity
