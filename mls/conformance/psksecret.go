package conformance

import (
	"github.com/spacepanda/spacepanda/mls/schedule"
)

type pskSecretCase struct {
	CipherSuite uint16 `json:"cipher_suite"`
	PSKs        []struct {
		PSKID    hexBytes `json:"psk_id"`
		PSK      hexBytes `json:"psk"`
		PSKNonce hexBytes `json:"psk_nonce"`
	} `json:"psks"`
	PSKSecret hexBytes `json:"psk_secret"`
}

func (c *pskSecretCase) suiteID() uint16 { return c.CipherSuite }

func (c *pskSecretCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	psks := make([]schedule.PSK, len(c.PSKs))
	for i, p := range c.PSKs {
		psks[i] = schedule.PSK{
			ID:     schedule.PreSharedKeyID{Type: schedule.PSKTypeExternal, PSKID: p.PSKID, Nonce: p.PSKNonce},
			Secret: p.PSK,
		}
		if err := psks[i].ID.CheckNonce(s); err != nil {
			return err
		}
	}
	got, err := schedule.PSKSecret(s, psks)
	if err != nil {
		return err
	}
	return mismatch("psk_secret", got, c.PSKSecret)
}
