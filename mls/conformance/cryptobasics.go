package conformance

import (
	"bytes"
	"errors"
	"fmt"
)

type cryptoBasicsCase struct {
	CipherSuite uint16 `json:"cipher_suite"`
	RefHash     struct {
		Label string   `json:"label"`
		Value hexBytes `json:"value"`
		Out   hexBytes `json:"out"`
	} `json:"ref_hash"`
	ExpandWithLabel struct {
		Secret  hexBytes `json:"secret"`
		Label   string   `json:"label"`
		Context hexBytes `json:"context"`
		Length  int      `json:"length"`
		Out     hexBytes `json:"out"`
	} `json:"expand_with_label"`
	DeriveSecret struct {
		Secret hexBytes `json:"secret"`
		Label  string   `json:"label"`
		Out    hexBytes `json:"out"`
	} `json:"derive_secret"`
	DeriveTreeSecret struct {
		Secret     hexBytes `json:"secret"`
		Label      string   `json:"label"`
		Generation uint32   `json:"generation"`
		Length     int      `json:"length"`
		Out        hexBytes `json:"out"`
	} `json:"derive_tree_secret"`
	SignWithLabel struct {
		Priv      hexBytes `json:"priv"`
		Pub       hexBytes `json:"pub"`
		Content   hexBytes `json:"content"`
		Label     string   `json:"label"`
		Signature hexBytes `json:"signature"`
	} `json:"sign_with_label"`
	EncryptWithLabel struct {
		Priv       hexBytes `json:"priv"`
		Pub        hexBytes `json:"pub"`
		Label      string   `json:"label"`
		Context    hexBytes `json:"context"`
		Plaintext  hexBytes `json:"plaintext"`
		KEMOutput  hexBytes `json:"kem_output"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"encrypt_with_label"`
}

func (c *cryptoBasicsCase) suiteID() uint16 { return c.CipherSuite }

func (c *cryptoBasicsCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	if err := mismatch("ref_hash", s.RefHash(c.RefHash.Label, c.RefHash.Value), c.RefHash.Out); err != nil {
		return err
	}
	e := c.ExpandWithLabel
	got, err := s.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length)
	if err != nil {
		return fmt.Errorf("expand_with_label: %w", err)
	}
	if err := mismatch("expand_with_label", got, e.Out); err != nil {
		return err
	}
	d := c.DeriveSecret
	if got, err = s.DeriveSecret(d.Secret, d.Label); err != nil {
		return fmt.Errorf("derive_secret: %w", err)
	}
	if err := mismatch("derive_secret", got, d.Out); err != nil {
		return err
	}
	t := c.DeriveTreeSecret
	if got, err = s.DeriveTreeSecret(t.Secret, t.Label, t.Generation, t.Length); err != nil {
		return fmt.Errorf("derive_tree_secret: %w", err)
	}
	if err := mismatch("derive_tree_secret", got, t.Out); err != nil {
		return err
	}

	sg := c.SignWithLabel
	if err := s.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sg.Signature); err != nil {
		return fmt.Errorf("sign_with_label: vector signature: %w", err)
	}
	signer, err := s.NewSigner(sg.Priv)
	if err != nil {
		return fmt.Errorf("sign_with_label: %w", err)
	}
	if !bytes.Equal(signer.PublicKey(), sg.Pub) {
		return errors.New("sign_with_label: public key derived from priv differs from pub")
	}
	sig, err := signer.SignWithLabel(sg.Label, sg.Content)
	if err != nil {
		return fmt.Errorf("sign_with_label: %w", err)
	}
	if err := s.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sig); err != nil {
		return fmt.Errorf("sign_with_label: own signature: %w", err)
	}
	if err := s.VerifyWithLabel(sg.Pub, sg.Label+"x", sg.Content, sig); err == nil {
		return errors.New("sign_with_label: signature verified under another label")
	}

	en := c.EncryptWithLabel
	pt, err := s.DecryptWithLabel(en.Priv, en.Label, en.Context, en.KEMOutput, en.Ciphertext)
	if err != nil {
		return fmt.Errorf("encrypt_with_label: decrypt vector: %w", err)
	}
	if err := mismatch("encrypt_with_label plaintext", pt, en.Plaintext); err != nil {
		return err
	}
	kemOut, ct, err := s.EncryptWithLabel(en.Pub, en.Label, en.Context, en.Plaintext)
	if err != nil {
		return fmt.Errorf("encrypt_with_label: encrypt: %w", err)
	}
	if pt, err = s.DecryptWithLabel(en.Priv, en.Label, en.Context, kemOut, ct); err != nil {
		return fmt.Errorf("encrypt_with_label: decrypt own: %w", err)
	}
	return mismatch("encrypt_with_label round trip", pt, en.Plaintext)
}
