package conformance

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
)

type secretTreeCase struct {
	CipherSuite uint16 `json:"cipher_suite"`
	SenderData  struct {
		SenderDataSecret hexBytes `json:"sender_data_secret"`
		Ciphertext       hexBytes `json:"ciphertext"`
		Key              hexBytes `json:"key"`
		Nonce            hexBytes `json:"nonce"`
	} `json:"sender_data"`
	EncryptionSecret hexBytes `json:"encryption_secret"`
	Leaves           [][]struct {
		Generation       uint32   `json:"generation"`
		HandshakeKey     hexBytes `json:"handshake_key"`
		HandshakeNonce   hexBytes `json:"handshake_nonce"`
		ApplicationKey   hexBytes `json:"application_key"`
		ApplicationNonce hexBytes `json:"application_nonce"`
	} `json:"leaves"`
}

func (c *secretTreeCase) suiteID() uint16 { return c.CipherSuite }

func (c *secretTreeCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	sd := c.SenderData
	key, nonce, err := schedule.SenderDataKeyNonce(s, sd.SenderDataSecret, sd.Ciphertext)
	if err != nil {
		return fmt.Errorf("sender_data: %w", err)
	}
	if err := mismatch("sender_data.key", key, sd.Key); err != nil {
		return err
	}
	if err := mismatch("sender_data.nonce", nonce, sd.Nonce); err != nil {
		return err
	}

	n := uint32(len(c.Leaves))
	// Receiver side, leaves in order, through one lazily derived tree.
	recv, err := schedule.NewSecretTree(s, c.EncryptionSecret, n, schedule.Options{})
	if err != nil {
		return err
	}
	// Receiver side again, leaves in reverse order (other derivation frontier).
	rev, err := schedule.NewSecretTree(s, c.EncryptionSecret, n, schedule.Options{})
	if err != nil {
		return err
	}
	// Sender side: every leaf ratchets forward one generation at a time.
	send, err := schedule.NewSecretTree(s, c.EncryptionSecret, n, schedule.Options{})
	if err != nil {
		return err
	}
	for pass, st := range []*schedule.SecretTree{recv, rev, send} {
		for k := range c.Leaves {
			i := k
			if pass == 1 {
				i = len(c.Leaves) - 1 - k
			}
			for _, g := range c.Leaves[i] {
				for _, rc := range []struct {
					rt         schedule.RatchetType
					key, nonce []byte
				}{
					{schedule.HandshakeRatchet, g.HandshakeKey, g.HandshakeNonce},
					{schedule.ApplicationRatchet, g.ApplicationKey, g.ApplicationNonce},
				} {
					var kn schedule.KeyNonce
					if pass == 2 {
						for {
							if kn, err = st.NextSenderKey(tree.LeafIndex(i), rc.rt); err != nil || kn.Generation >= g.Generation {
								break
							}
						}
					} else {
						kn, err = st.ReceiverKey(tree.LeafIndex(i), rc.rt, g.Generation)
					}
					what := fmt.Sprintf("leaf %d %v generation %d", i, rc.rt, g.Generation)
					if err != nil {
						return fmt.Errorf("%s: %w", what, err)
					}
					if kn.Generation != g.Generation {
						return fmt.Errorf("%s: got generation %d", what, kn.Generation)
					}
					if err := mismatch(what+" key", kn.Key, rc.key); err != nil {
						return err
					}
					if err := mismatch(what+" nonce", kn.Nonce, rc.nonce); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}
