package conformance

import (
	"fmt"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/internal/access"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// welcome.json (test-vectors.md "Welcome"): open the Welcome with the key
// package's init key, verify the GroupInfo signature and its
// confirmation_tag from a key schedule started at joiner_secret with no PSKs.
type welcomeCase struct {
	CipherSuite uint16   `json:"cipher_suite"`
	InitPriv    hexBytes `json:"init_priv"`
	SignerPub   hexBytes `json:"signer_pub"`
	KeyPackage  hexBytes `json:"key_package"`
	Welcome     hexBytes `json:"welcome"`
}

func (c *welcomeCase) suiteID() uint16 { return c.CipherSuite }

func (c *welcomeCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	kpMsg, err := mls.UnmarshalMessage(c.KeyPackage)
	if err != nil {
		return fmt.Errorf("key_package: %w", err)
	}
	wMsg, err := mls.UnmarshalMessage(c.Welcome)
	if err != nil {
		return fmt.Errorf("welcome: %w", err)
	}
	kp, w := kpMsg.KeyPackage, wMsg.Welcome
	if kp == nil || w == nil {
		return fmt.Errorf("key_package/welcome have wire formats %v/%v", kpMsg.WireFormat, wMsg.WireFormat)
	}
	// The key package itself must be valid (§10.1); its lifetime is the
	// generator's, so it is checked at its not_before.
	if err := mls.ValidateKeyPackage(s, kp, time.Unix(int64(min(kp.LeafNode.Lifetime.NotBefore, 1<<62)), 0), mls.ValidateOptions{}); err != nil {
		return err
	}
	ref, err := kp.Ref(s)
	if err != nil {
		return err
	}
	gs, err := mls.Internals(access.Key{}).DecryptGroupSecrets(s, w, ref, c.InitPriv)
	if err != nil {
		return err
	}
	welcomeSecret, err := schedule.WelcomeSecret(s, gs.JoinerSecret, nil)
	if err != nil {
		return err
	}
	gi, err := mls.Internals(access.Key{}).DecryptGroupInfo(s, w, welcomeSecret)
	if err != nil {
		return err
	}
	if err := mls.VerifyGroupInfo(s, gi, c.SignerPub); err != nil {
		return err
	}
	gc, err := wire.Marshal(&gi.GroupContext)
	if err != nil {
		return err
	}
	epoch, err := schedule.Derive(s, gs.JoinerSecret, nil, gc)
	if err != nil {
		return err
	}
	return mls.Internals(access.Key{}).VerifyConfirmationTag(s, gi.ConfirmationTag, epoch.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash)
}
