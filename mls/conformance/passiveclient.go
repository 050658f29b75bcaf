package conformance

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

type passiveClientCase struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID hexBytes `json:"psk_id"`
		PSK   hexBytes `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                hexBytes  `json:"key_package"`
	SignaturePriv             hexBytes  `json:"signature_priv"`
	EncryptionPriv            hexBytes  `json:"encryption_priv"`
	InitPriv                  hexBytes  `json:"init_priv"`
	Welcome                   hexBytes  `json:"welcome"`
	RatchetTree               *hexBytes `json:"ratchet_tree"`
	InitialEpochAuthenticator hexBytes  `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []hexBytes `json:"proposals"`
		Commit             hexBytes   `json:"commit"`
		EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

func (c *passiveClientCase) suiteID() uint16 { return c.CipherSuite }

func (c *passiveClientCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	kpMsg, err := mls.UnmarshalMessage(c.KeyPackage)
	if err != nil {
		return fmt.Errorf("key_package: %w", err)
	}
	kp := kpMsg.KeyPackage
	if kp == nil {
		return errors.New("key_package is not a KeyPackage message")
	}
	signer, err := s.NewSigner(c.SignaturePriv)
	if err != nil {
		return err
	}
	if !bytes.Equal(signer.PublicKey(), kp.LeafNode.SignatureKey) {
		return errors.New("signature_priv does not match the key package")
	}
	for _, chk := range []struct {
		name      string
		priv, pub []byte
	}{{"encryption_priv", c.EncryptionPriv, kp.LeafNode.EncryptionKey}, {"init_priv", c.InitPriv, kp.InitKey}} {
		pub, err := s.HPKEPublicKey(chk.priv)
		if err != nil || !bytes.Equal(pub, chk.pub) {
			return fmt.Errorf("%s does not match the key package", chk.name)
		}
	}
	ref, err := kp.Ref(s)
	if err != nil {
		return err
	}
	psks := map[string][]byte{}
	for _, p := range c.ExternalPSKs {
		psks[string(p.PSKID)] = p.PSK
	}
	cfg := mls.Config{PSKs: func(id *schedule.PreSharedKeyID) ([]byte, error) {
		if id.Type == schedule.PSKTypeExternal {
			if v, ok := psks[string(id.PSKID)]; ok {
				return v, nil
			}
		}
		return nil, errors.New("unknown PSK")
	}}
	w, err := mls.UnmarshalMessage(c.Welcome)
	if err != nil || w.Welcome == nil {
		return fmt.Errorf("welcome: %v", err)
	}
	var rt tree.RatchetTreeNodes
	if c.RatchetTree != nil {
		if err := wire.Unmarshal(*c.RatchetTree, &rt); err != nil {
			return fmt.Errorf("ratchet_tree: %w", err)
		}
	}
	bundle := &mls.KeyPackageBundle{KeyPackage: kp, Signer: signer,
		Private: &mls.KeyPackagePrivate{InitKey: c.InitPriv, EncryptionKey: c.EncryptionPriv}}
	joined, err := mls.JoinFromWelcome(w.Welcome, rt, func(r mls.KeyPackageRef) (*mls.KeyPackageBundle, error) {
		if bytes.Equal(r, ref) {
			return bundle, nil
		}
		return nil, mls.ErrKeyPackageNotFound
	}, cfg)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	g := joined.Group
	if err := mismatch("initial_epoch_authenticator", g.EpochAuthenticator(), c.InitialEpochAuthenticator); err != nil {
		return err
	}
	for i, ep := range c.Epochs {
		for j, p := range ep.Proposals {
			res, err := g.ProcessBytes(p)
			if err != nil {
				return fmt.Errorf("epoch %d proposal %d: %w", i, j, err)
			}
			g = res.State
		}
		res, err := g.ProcessBytes(ep.Commit)
		if err != nil {
			return fmt.Errorf("epoch %d commit: %w", i, err)
		}
		g = res.State
		if err := mismatch(fmt.Sprintf("epoch %d epoch_authenticator", i), g.EpochAuthenticator(), ep.EpochAuthenticator); err != nil {
			return err
		}
	}
	return nil
}
