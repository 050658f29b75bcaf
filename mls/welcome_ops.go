package mls

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Building and opening Welcome messages (RFC 9420 §12.4.3.1).

// welcomeLabel is the EncryptWithLabel label of GroupSecrets (RFC 9420 §12.4.3.1).
const welcomeLabel = "Welcome"

// ErrNoMatchingKeyPackage: a Welcome holds no EncryptedGroupSecrets for any
// KeyPackage the joiner looked for (RFC 9420 §12.4.3.1, first step). The
// error returned is a *NoMatchingKeyPackageError naming the refs.
var ErrNoMatchingKeyPackage = errors.New("mls: welcome has no entry for our key package")

// NoMatchingKeyPackageError details ErrNoMatchingKeyPackage: which
// KeyPackageRefs were looked for (as computed by the joiner) and which the
// Welcome holds. errors.Is(err, ErrNoMatchingKeyPackage) holds for it.
//
// When the Welcome was meant for us, the usual causes are a ref computed
// over the wrong bytes (it is the hash of the KeyPackage encoding alone,
// not of the MLSMessage around it, §5.2), with the wrong suite, or for a
// KeyPackage other than the one the committer used.
type NoMatchingKeyPackageError struct {
	Suite  suite.ID        // the Welcome's cipher suite
	Wanted []KeyPackageRef // the refs looked for
	Have   []KeyPackageRef // the new_member refs in the Welcome
}

func (e *NoMatchingKeyPackageError) Error() string {
	return fmt.Sprintf("%v: looked for key package ref %s in a %v welcome holding %s"+
		" (a ref hashes the KeyPackage encoding alone, with the KeyPackage's suite)",
		ErrNoMatchingKeyPackage, refList(e.Wanted), e.Suite, refList(e.Have))
}

// Unwrap makes errors.Is(err, ErrNoMatchingKeyPackage) true.
func (e *NoMatchingKeyPackageError) Unwrap() error { return ErrNoMatchingKeyPackage }

// refList formats refs in hex (refs are public hashes).
func refList(refs []KeyPackageRef) string {
	if len(refs) == 0 {
		return "[]"
	}
	parts := make([]string, len(refs))
	for i, r := range refs {
		parts[i] = hex.EncodeToString(r)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// welcomeRecipient is one new member of a Welcome: the KeyPackage it was
// added with and, when the Commit had a path, the path secret of the lowest
// common ancestor of the committer and this member (RFC 9420 §12.4.3.1;
// nil: none, as for a Commit without path).
type welcomeRecipient struct {
	KeyPackage *KeyPackage
	PathSecret []byte
}

// newWelcome is the committer's half of RFC 9420 §12.4.3.1. gi is the
// signed GroupInfo of the new epoch; welcomeSecret is the epoch's
// welcome_secret (schedule.EpochSecrets.WelcomeSecret, which already includes
// the PSKs); joinerSecret the epoch's joiner_secret; psks the PSK ids of the
// Commit, in order. The GroupInfo is encrypted with the welcome key and
// nonce, and for each recipient the GroupSecrets are sealed to its init_key
// with EncryptWithLabel(init_key, "Welcome", encrypted_group_info, .).
func newWelcome(s *suite.Suite, gi *GroupInfo, welcomeSecret, joinerSecret []byte, psks []schedule.PreSharedKeyID, recipients []welcomeRecipient) (*Welcome, error) {
	if gi.GroupContext.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%w: group info of %v in a %v welcome", suite.ErrUnsupportedSuite, gi.GroupContext.CipherSuite, s.ID())
	}
	if len(joinerSecret) != s.HashSize() {
		return nil, fmt.Errorf("%w: joiner_secret of %d bytes, want %d", schedule.ErrInvalidSecret, len(joinerSecret), s.HashSize())
	}
	if len(recipients) == 0 {
		return nil, fmt.Errorf("%w: welcome without recipients", ErrIncompleteValue)
	}
	key, nonce, err := schedule.WelcomeKeyNonce(s, welcomeSecret)
	if err != nil {
		return nil, fmt.Errorf("mls: build welcome: %w", err)
	}
	defer clear(key)
	giBytes, err := wire.Marshal(gi)
	if err != nil {
		return nil, fmt.Errorf("mls: build welcome: group info: %w", err)
	}
	encGI, err := s.Seal(key, nonce, nil, giBytes)
	if err != nil {
		return nil, fmt.Errorf("mls: build welcome: %w", err)
	}
	w := &Welcome{CipherSuite: s.ID(), Secrets: make([]EncryptedGroupSecrets, 0, len(recipients)), EncryptedGroupInfo: encGI}
	if psks == nil {
		psks = []schedule.PreSharedKeyID{}
	}
	for i, r := range recipients {
		if r.KeyPackage == nil {
			return nil, fmt.Errorf("%w: welcome recipient %d without key package", ErrIncompleteValue, i)
		}
		if r.KeyPackage.CipherSuite != s.ID() {
			return nil, fmt.Errorf("%w: recipient %d has a %v key package in a %v welcome", suite.ErrUnsupportedSuite, i, r.KeyPackage.CipherSuite, s.ID())
		}
		ref, err := r.KeyPackage.Ref(s)
		if err != nil {
			return nil, err
		}
		if w.FindSecrets(ref) != nil {
			return nil, fmt.Errorf("%w: key package %x listed twice", ErrIncompleteValue, []byte(ref))
		}
		gs := GroupSecrets{JoinerSecret: joinerSecret, PathSecret: r.PathSecret, PSKs: psks}
		pt, err := wire.Marshal(&gs)
		if err != nil {
			return nil, fmt.Errorf("mls: build welcome: group secrets: %w", err)
		}
		kemOutput, ct, err := s.EncryptWithLabel(r.KeyPackage.InitKey, welcomeLabel, encGI, pt)
		clear(pt)
		if err != nil {
			return nil, fmt.Errorf("mls: build welcome: recipient %d (%x): %w", i, []byte(ref), err)
		}
		w.Secrets = append(w.Secrets, EncryptedGroupSecrets{
			NewMember:             ref,
			EncryptedGroupSecrets: tree.HPKECiphertext{KEMOutput: kemOutput, Ciphertext: ct},
		})
	}
	return w, nil
}

// FindSecrets returns the entry of w for the KeyPackage with ref, nil when
// there is none.
func (w *Welcome) FindSecrets(ref KeyPackageRef) *EncryptedGroupSecrets {
	for i := range w.Secrets {
		if bytes.Equal(w.Secrets[i].NewMember, ref) {
			return &w.Secrets[i]
		}
	}
	return nil
}

// NewMembers returns the KeyPackageRefs w holds secrets for, in order.
func (w *Welcome) NewMembers() []KeyPackageRef {
	refs := make([]KeyPackageRef, len(w.Secrets))
	for i := range w.Secrets {
		refs[i] = w.Secrets[i].NewMember
	}
	return refs
}

// decryptGroupSecrets is the joiner's first steps of RFC 9420 §12.4.3.1:
// find the entry for the KeyPackage with ref (the joiner's KeyPackage, of
// suite s) and open it with initPriv, the private key of its init_key.
//
// Errors: a *NoMatchingKeyPackageError (errors.Is ErrNoMatchingKeyPackage)
// when w holds no entry for ref; suite.ErrUnsupportedSuite when w is not of
// suite s; ErrDecryption when the entry does not open; a wire error when the
// GroupSecrets are malformed; schedule.ErrInvalidSecret / ErrInvalidPSK
// when the joiner_secret has the wrong length, a psk_nonce is not KDF.Nh
// bytes, or more than one resumption PSK of usage reinit or branch is listed.
func decryptGroupSecrets(s *suite.Suite, w *Welcome, ref KeyPackageRef, initPriv []byte) (*GroupSecrets, error) {
	if w.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%w: welcome of %v, key package of %v", suite.ErrUnsupportedSuite, w.CipherSuite, s.ID())
	}
	e := w.FindSecrets(ref)
	if e == nil {
		return nil, &NoMatchingKeyPackageError{Suite: w.CipherSuite, Wanted: []KeyPackageRef{ref}, Have: w.NewMembers()}
	}
	pt, err := s.DecryptWithLabel(initPriv, welcomeLabel, w.EncryptedGroupInfo,
		e.EncryptedGroupSecrets.KEMOutput, e.EncryptedGroupSecrets.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: group secrets for key package %x: %w", ErrDecryption, []byte(ref), err)
	}
	defer clear(pt)
	gs := new(GroupSecrets)
	if err := wire.Unmarshal(pt, gs); err != nil {
		return nil, fmt.Errorf("mls: group secrets: %w", err)
	}
	if len(gs.JoinerSecret) != s.HashSize() {
		return nil, fmt.Errorf("%w: joiner_secret of %d bytes, want %d", schedule.ErrInvalidSecret, len(gs.JoinerSecret), s.HashSize())
	}
	special := 0
	for i := range gs.PSKs {
		p := &gs.PSKs[i]
		if err := p.CheckNonce(s); err != nil {
			return nil, fmt.Errorf("mls: group secrets psk %d: %w", i, err)
		}
		if p.Type == schedule.PSKTypeResumption && (p.Usage == schedule.UsageReinit || p.Usage == schedule.UsageBranch) {
			special++
		}
	}
	if special > 1 {
		return nil, fmt.Errorf("%w: %d resumption PSKs of usage reinit/branch, at most one allowed (§12.4.3.1)", schedule.ErrInvalidPSK, special)
	}
	return gs, nil
}

// decryptGroupInfo opens w's encrypted_group_info with the welcome key and
// nonce derived from welcomeSecret (RFC 9420 §12.4.3.1), which the joiner
// computes as schedule.WelcomeSecret(s, joiner_secret, psk_secret). It
// decodes the GroupInfo and checks its suite; verifying the signature
// (VerifyGroupInfo) needs the ratchet tree and is the caller's next step.
func decryptGroupInfo(s *suite.Suite, w *Welcome, welcomeSecret []byte) (*GroupInfo, error) {
	if w.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%w: welcome of %v opened as %v", suite.ErrUnsupportedSuite, w.CipherSuite, s.ID())
	}
	key, nonce, err := schedule.WelcomeKeyNonce(s, welcomeSecret)
	if err != nil {
		return nil, fmt.Errorf("mls: welcome: %w", err)
	}
	defer clear(key)
	pt, err := s.Open(key, nonce, nil, w.EncryptedGroupInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: encrypted_group_info: %w", ErrDecryption, err)
	}
	gi := new(GroupInfo)
	if err := wire.Unmarshal(pt, gi); err != nil {
		return nil, fmt.Errorf("mls: welcome group info: %w", err)
	}
	if gi.GroupContext.CipherSuite != w.CipherSuite {
		return nil, fmt.Errorf("%w: group info of %v in a %v welcome", suite.ErrUnsupportedSuite, gi.GroupContext.CipherSuite, w.CipherSuite)
	}
	return gi, nil
}
