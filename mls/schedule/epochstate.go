package schedule

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Persisting EpochSecrets. The encoding leaves out the secrets that must not
// outlive their use (RFC 9420 §9.2): joiner_secret and welcome_secret (only
// the committer needs them, once), and encryption_secret (the root of the
// secret tree, which is persisted as its own, ratcheted state — keeping the
// root would let consumed keys be derived again).

const epochStateVersion = 1

// MarshalMLS encodes the persistent epoch secrets.
func (e *EpochSecrets) MarshalMLS(b *wire.Builder) {
	b.AddUint8(epochStateVersion)
	b.AddUint16(uint16(e.suite.ID()))
	for _, v := range e.persistent() {
		b.AddOpaque(*v)
	}
}

func (e *EpochSecrets) persistent() []*[]byte {
	return []*[]byte{&e.SenderDataSecret, &e.ExporterSecret, &e.ExternalSecret, &e.ConfirmationKey,
		&e.MembershipKey, &e.ResumptionPSK, &e.EpochAuthenticator, &e.InitSecret}
}

// UnmarshalEpochSecrets decodes what MarshalMLS wrote.
func UnmarshalEpochSecrets(data []byte) (*EpochSecrets, error) {
	r := wire.NewReader(data)
	if v := r.Uint8(); r.Err() == nil && v != epochStateVersion {
		return nil, fmt.Errorf("%w: epoch secrets version %d", ErrInvalidState, v)
	}
	s, err := suite.New(suite.ID(r.Uint16()))
	if r.Err() == nil && err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	e := &EpochSecrets{suite: s}
	for _, v := range e.persistent() {
		*v = r.OpaqueCopy()
		if r.Err() == nil && len(*v) != s.HashSize() {
			r.Fail("epoch secret of %d bytes", len(*v))
		}
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	return e, nil
}

// ForgetEncryptionSecret erases the secret tree root once the tree exists.
func (e *EpochSecrets) ForgetEncryptionSecret() {
	clear(e.EncryptionSecret)
	e.EncryptionSecret = nil
}
