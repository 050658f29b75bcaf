// Package schedule implements the MLS key schedule (RFC 9420 §8), pre-shared
// key injection (§8.4), the exporter (§8.5), the secret tree with its sender
// ratchets and deletion schedule (§9), and the derivations of the Welcome
// key/nonce (§12.4.3.1) and the sender-data key/nonce (§6.3.2).
//
// The GroupContext (§8.1) is defined and encoded by package mls; this package
// takes it as its serialized bytes.
//
// "No value" for commit_secret or psk_secret (nil or empty) means the
// all-zero vector of length KDF.Nh, as RFC 9420 §8 and §8.4 say.
package schedule

import (
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// Errors of this package. Messages never contain secret bytes.
var (
	// ErrInvalidSecret: an input secret has the wrong length for the suite.
	ErrInvalidSecret = errors.New("schedule: invalid secret")
	// ErrInvalidPSK: a PreSharedKeyID or PSK list the RFC forbids.
	ErrInvalidPSK = errors.New("schedule: invalid pre-shared key")
)

// Labels of the epoch-derived secrets, RFC 9420 §8 Table 4.
const (
	labelSenderData     = "sender data"
	labelEncryption     = "encryption"
	labelExporter       = "exporter"
	labelExternal       = "external"
	labelConfirm        = "confirm"
	labelMembership     = "membership"
	labelResumption     = "resumption"
	labelAuthentication = "authentication"
	labelInit           = "init"
	labelJoiner         = "joiner"
	labelWelcome        = "welcome"
	labelEpoch          = "epoch"
)

// ExternalInitLabel is the HPKE exporter context of RFC 9420 §8.3.
const ExternalInitLabel = "MLS 1.0 external init secret"

// orZero returns v, or the all-zero vector of length Nh when v is empty; a
// non-empty v must be Nh bytes long.
func orZero(s *suite.Suite, v []byte, what string) ([]byte, error) {
	if len(v) == 0 {
		return make([]byte, s.HashSize()), nil
	}
	if len(v) != s.HashSize() {
		return nil, fmt.Errorf("%w: %s of %d bytes, want %d", ErrInvalidSecret, what, len(v), s.HashSize())
	}
	return v, nil
}

// JoinerSecret derives the joiner_secret of a new epoch (RFC 9420 §8):
//
//	joiner_secret = ExpandWithLabel(KDF.Extract(init_secret, commit_secret),
//	                                "joiner", GroupContext_[n], KDF.Nh)
//
// initSecret is the previous epoch's init_secret (or a fresh random value for
// a new group, or the external init secret, §8.3). A nil commitSecret means
// the all-zero vector (a Commit without a path, §12.4). groupContext is the
// encoded GroupContext of the new epoch.
func JoinerSecret(s *suite.Suite, initSecret, commitSecret, groupContext []byte) ([]byte, error) {
	if len(initSecret) != s.HashSize() {
		return nil, fmt.Errorf("%w: init_secret of %d bytes, want %d", ErrInvalidSecret, len(initSecret), s.HashSize())
	}
	cs, err := orZero(s, commitSecret, "commit_secret")
	if err != nil {
		return nil, err
	}
	prk := s.Extract(initSecret, cs)
	defer clear(prk)
	return s.ExpandWithLabel(prk, labelJoiner, groupContext, s.HashSize())
}

// memberSecret = KDF.Extract(joiner_secret, psk_secret) (RFC 9420 §8), the
// intermediate value from which welcome_secret and epoch_secret are taken.
func memberSecret(s *suite.Suite, joinerSecret, pskSecret []byte) ([]byte, error) {
	if len(joinerSecret) != s.HashSize() {
		return nil, fmt.Errorf("%w: joiner_secret of %d bytes, want %d", ErrInvalidSecret, len(joinerSecret), s.HashSize())
	}
	ps, err := orZero(s, pskSecret, "psk_secret")
	if err != nil {
		return nil, err
	}
	return s.Extract(joinerSecret, ps), nil
}

// WelcomeSecret derives welcome_secret = DeriveSecret(KDF.Extract(joiner_secret,
// psk_secret), "welcome") (RFC 9420 §8). A nil pskSecret means no PSKs.
func WelcomeSecret(s *suite.Suite, joinerSecret, pskSecret []byte) ([]byte, error) {
	m, err := memberSecret(s, joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	defer clear(m)
	return s.DeriveSecret(m, labelWelcome)
}

// WelcomeKeyNonce derives the AEAD key and nonce that protect a Welcome's
// encrypted_group_info (RFC 9420 §12.4.3.1):
//
//	welcome_nonce = ExpandWithLabel(welcome_secret, "nonce", "", AEAD.Nn)
//	welcome_key   = ExpandWithLabel(welcome_secret, "key", "", AEAD.Nk)
func WelcomeKeyNonce(s *suite.Suite, welcomeSecret []byte) (key, nonce []byte, err error) {
	if len(welcomeSecret) != s.HashSize() {
		return nil, nil, fmt.Errorf("%w: welcome_secret of %d bytes, want %d", ErrInvalidSecret, len(welcomeSecret), s.HashSize())
	}
	if key, err = s.ExpandWithLabel(welcomeSecret, "key", nil, s.AEADKeySize()); err != nil {
		return nil, nil, err
	}
	if nonce, err = s.ExpandWithLabel(welcomeSecret, "nonce", nil, s.AEADNonceSize()); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// SenderDataKeyNonce derives the key and nonce protecting a PrivateMessage's
// sender data (RFC 9420 §6.3.2) from the epoch's sender_data_secret and the
// message's content ciphertext; only its first KDF.Nh bytes are used.
func SenderDataKeyNonce(s *suite.Suite, senderDataSecret, ciphertext []byte) (key, nonce []byte, err error) {
	if len(senderDataSecret) != s.HashSize() {
		return nil, nil, fmt.Errorf("%w: sender_data_secret of %d bytes, want %d", ErrInvalidSecret, len(senderDataSecret), s.HashSize())
	}
	sample := ciphertext
	if len(sample) > s.HashSize() {
		sample = sample[:s.HashSize()]
	}
	if key, err = s.ExpandWithLabel(senderDataSecret, "key", sample, s.AEADKeySize()); err != nil {
		return nil, nil, err
	}
	if nonce, err = s.ExpandWithLabel(senderDataSecret, "nonce", sample, s.AEADNonceSize()); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// EpochSecrets holds the secrets of one epoch (RFC 9420 §8). The epoch_secret
// itself is consumed by the derivation and not kept (§9.2).
//
// JoinerSecret and WelcomeSecret are kept because the committer needs them to
// build the Welcome (§12.4.3); callers should drop them (ForgetJoiner) once
// the Welcome is built or when joining.
type EpochSecrets struct {
	suite *suite.Suite

	JoinerSecret  []byte
	WelcomeSecret []byte

	SenderDataSecret   []byte // "sender data"
	EncryptionSecret   []byte // "encryption": root of the secret tree (§9)
	ExporterSecret     []byte // "exporter" (§8.5)
	ExternalSecret     []byte // "external" (§8.3)
	ConfirmationKey    []byte // "confirm" (§6.1)
	MembershipKey      []byte // "membership" (§6.2)
	ResumptionPSK      []byte // "resumption" (§8.6)
	EpochAuthenticator []byte // "authentication" (§8.7)
	InitSecret         []byte // "init": init_secret_[n] for the next epoch
}

// NewEpoch runs the whole key schedule of RFC 9420 §8 for a member that
// processes a Commit (or creates a group): from the previous init_secret, the
// commit_secret (nil: zero vector), the psk_secret (nil: zero vector) and the
// encoded GroupContext of the new epoch.
func NewEpoch(s *suite.Suite, initSecret, commitSecret, pskSecret, groupContext []byte) (*EpochSecrets, error) {
	joiner, err := JoinerSecret(s, initSecret, commitSecret, groupContext)
	if err != nil {
		return nil, err
	}
	defer clear(joiner) // Derive keeps its own copy
	return Derive(s, joiner, pskSecret, groupContext)
}

// Derive runs the key schedule of RFC 9420 §8 from the joiner_secret: the
// path a member joining via Welcome takes (§12.4.3.1), and the second half of
// NewEpoch. pskSecret nil means the all-zero vector. joinerSecret is copied.
func Derive(s *suite.Suite, joinerSecret, pskSecret, groupContext []byte) (*EpochSecrets, error) {
	m, err := memberSecret(s, joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	defer clear(m)
	e := &EpochSecrets{suite: s, JoinerSecret: append([]byte(nil), joinerSecret...)}
	if e.WelcomeSecret, err = s.DeriveSecret(m, labelWelcome); err != nil {
		return nil, err
	}
	epoch, err := s.ExpandWithLabel(m, labelEpoch, groupContext, s.HashSize())
	if err != nil {
		return nil, err
	}
	defer clear(epoch)
	for _, d := range []struct {
		label string
		dst   *[]byte
	}{
		{labelSenderData, &e.SenderDataSecret},
		{labelEncryption, &e.EncryptionSecret},
		{labelExporter, &e.ExporterSecret},
		{labelExternal, &e.ExternalSecret},
		{labelConfirm, &e.ConfirmationKey},
		{labelMembership, &e.MembershipKey},
		{labelResumption, &e.ResumptionPSK},
		{labelAuthentication, &e.EpochAuthenticator},
		{labelInit, &e.InitSecret},
	} {
		if *d.dst, err = s.DeriveSecret(epoch, d.label); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Suite returns the cipher suite the secrets were derived with.
func (e *EpochSecrets) Suite() *suite.Suite { return e.suite }

// WelcomeKeyNonce returns the Welcome AEAD key and nonce of this epoch
// (RFC 9420 §12.4.3.1).
func (e *EpochSecrets) WelcomeKeyNonce() (key, nonce []byte, err error) {
	return WelcomeKeyNonce(e.suite, e.WelcomeSecret)
}

// ForgetJoiner erases the joiner and welcome secrets (RFC 9420 §9.2: they are
// consumed once the epoch is set up and the Welcome is built).
func (e *EpochSecrets) ForgetJoiner() {
	clear(e.JoinerSecret)
	clear(e.WelcomeSecret)
	e.JoinerSecret, e.WelcomeSecret = nil, nil
}

// Export is MLS-Exporter(Label, Context, Length) (RFC 9420 §8.5):
//
//	ExpandWithLabel(DeriveSecret(exporter_secret, Label), "exported", Hash(Context), Length)
func (e *EpochSecrets) Export(label string, context []byte, length int) ([]byte, error) {
	return Export(e.suite, e.ExporterSecret, label, context, length)
}

// Export is MLS-Exporter (RFC 9420 §8.5) over an explicit exporter_secret.
func Export(s *suite.Suite, exporterSecret []byte, label string, context []byte, length int) ([]byte, error) {
	if len(exporterSecret) != s.HashSize() {
		return nil, fmt.Errorf("%w: exporter_secret of %d bytes, want %d", ErrInvalidSecret, len(exporterSecret), s.HashSize())
	}
	sec, err := s.DeriveSecret(exporterSecret, label)
	if err != nil {
		return nil, err
	}
	defer clear(sec)
	return s.ExpandWithLabel(sec, "exported", s.Hash(context), length)
}

// ExternalKeyPair returns (external_priv, external_pub) =
// KEM.DeriveKeyPair(external_secret) (RFC 9420 §8). external_pub goes into the
// GroupInfo's external_pub extension.
func (e *EpochSecrets) ExternalKeyPair() (priv, pub []byte, err error) {
	return e.suite.DeriveKeyPair(e.ExternalSecret)
}

// ExternalInit is the joiner's side of external initialization (RFC 9420
// §8.3): it returns the kem_output for the ExternalInit proposal and the
// init_secret to feed into JoinerSecret.
func ExternalInit(s *suite.Suite, externalPub []byte) (kemOutput, initSecret []byte, err error) {
	return s.HPKEExportSender(externalPub, nil, []byte(ExternalInitLabel), s.HashSize())
}

// ExternalInitSecret is the members' side of external initialization (RFC
// 9420 §8.3): the init_secret from the ExternalInit proposal's kem_output and
// the previous epoch's external_priv.
func ExternalInitSecret(s *suite.Suite, externalPriv, kemOutput []byte) ([]byte, error) {
	return s.HPKEExportReceiver(externalPriv, kemOutput, nil, []byte(ExternalInitLabel), s.HashSize())
}
