package conformance

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/wire"
)

type keyScheduleCase struct {
	CipherSuite       uint16   `json:"cipher_suite"`
	GroupID           hexBytes `json:"group_id"`
	InitialInitSecret hexBytes `json:"initial_init_secret"`
	Epochs            []struct {
		TreeHash                hexBytes `json:"tree_hash"`
		CommitSecret            hexBytes `json:"commit_secret"`
		PSKSecret               hexBytes `json:"psk_secret"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`

		GroupContext hexBytes `json:"group_context"`

		JoinerSecret  hexBytes `json:"joiner_secret"`
		WelcomeSecret hexBytes `json:"welcome_secret"`
		InitSecret    hexBytes `json:"init_secret"`

		SenderDataSecret   hexBytes `json:"sender_data_secret"`
		EncryptionSecret   hexBytes `json:"encryption_secret"`
		ExporterSecret     hexBytes `json:"exporter_secret"`
		EpochAuthenticator hexBytes `json:"epoch_authenticator"`
		ExternalSecret     hexBytes `json:"external_secret"`
		ConfirmationKey    hexBytes `json:"confirmation_key"`
		MembershipKey      hexBytes `json:"membership_key"`
		ResumptionPSK      hexBytes `json:"resumption_psk"`

		ExternalPub hexBytes `json:"external_pub"`
		Exporter    struct {
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  int      `json:"length"`
			Secret  hexBytes `json:"secret"`
		} `json:"exporter"`
	} `json:"epochs"`
}

func (c *keyScheduleCase) suiteID() uint16 { return c.CipherSuite }

// groupContext encodes the RFC 9420 §8.1 GroupContext with no extensions.
// Package mls owns the real type; the vector only needs these fields.
func groupContext(cs uint16, groupID []byte, epoch uint64, treeHash, cth []byte) ([]byte, error) {
	var b wire.Builder
	b.AddUint16(1) // mls10
	b.AddUint16(cs)
	b.AddOpaque(groupID)
	b.AddUint64(epoch)
	b.AddOpaque(treeHash)
	b.AddOpaque(cth)
	b.AddVector(func(*wire.Builder) {}) // extensions
	return b.Bytes()
}

func (c *keyScheduleCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	initSecret := []byte(c.InitialInitSecret)
	for n, ep := range c.Epochs {
		fail := func(err error) error { return fmt.Errorf("epoch %d: %w", n, err) }
		gc, err := groupContext(c.CipherSuite, c.GroupID, uint64(n), ep.TreeHash, ep.ConfirmedTranscriptHash)
		if err != nil {
			return fail(err)
		}
		if err := mismatch("group_context", gc, ep.GroupContext); err != nil {
			return fail(err)
		}
		joiner, err := schedule.JoinerSecret(s, initSecret, ep.CommitSecret, gc)
		if err != nil {
			return fail(err)
		}
		if err := mismatch("joiner_secret", joiner, ep.JoinerSecret); err != nil {
			return fail(err)
		}
		welcome, err := schedule.WelcomeSecret(s, joiner, ep.PSKSecret)
		if err != nil {
			return fail(err)
		}
		if err := mismatch("welcome_secret (WelcomeSecret)", welcome, ep.WelcomeSecret); err != nil {
			return fail(err)
		}
		e, err := schedule.NewEpoch(s, initSecret, ep.CommitSecret, ep.PSKSecret, gc)
		if err != nil {
			return fail(err)
		}
		for _, f := range []struct {
			name      string
			got, want []byte
		}{
			{"joiner_secret", e.JoinerSecret, ep.JoinerSecret},
			{"welcome_secret", e.WelcomeSecret, ep.WelcomeSecret},
			{"init_secret", e.InitSecret, ep.InitSecret},
			{"sender_data_secret", e.SenderDataSecret, ep.SenderDataSecret},
			{"encryption_secret", e.EncryptionSecret, ep.EncryptionSecret},
			{"exporter_secret", e.ExporterSecret, ep.ExporterSecret},
			{"epoch_authenticator", e.EpochAuthenticator, ep.EpochAuthenticator},
			{"external_secret", e.ExternalSecret, ep.ExternalSecret},
			{"confirmation_key", e.ConfirmationKey, ep.ConfirmationKey},
			{"membership_key", e.MembershipKey, ep.MembershipKey},
			{"resumption_psk", e.ResumptionPSK, ep.ResumptionPSK},
		} {
			if err := mismatch(f.name, f.got, f.want); err != nil {
				return fail(err)
			}
		}
		// A joiner starting from joiner_secret (Welcome path) gets the same epoch.
		j, err := schedule.Derive(s, ep.JoinerSecret, ep.PSKSecret, gc)
		if err != nil {
			return fail(err)
		}
		if err := mismatch("init_secret via Derive", j.InitSecret, ep.InitSecret); err != nil {
			return fail(err)
		}
		_, pub, err := e.ExternalKeyPair()
		if err != nil {
			return fail(fmt.Errorf("external key pair: %w", err))
		}
		if err := mismatch("external_pub", pub, ep.ExternalPub); err != nil {
			return fail(err)
		}
		x := ep.Exporter
		got, err := e.Export(x.Label, x.Context, x.Length)
		if err != nil {
			return fail(fmt.Errorf("exporter: %w", err))
		}
		if err := mismatch("exporter.secret", got, x.Secret); err != nil {
			return fail(err)
		}
		initSecret = e.InitSecret
	}
	return nil
}
