package identity_test

import (
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// testNow is the tests' clock.
var testNow = time.Unix(1_800_000_000, 0)

func clock() time.Time { return testNow }

// testDevice is one device: its suite, MLS signature key and description.
type testDevice struct {
	suite  *suite.Suite
	signer *suite.Signer
	device identity.Device
}

func newTestDevice(t testing.TB, id suite.ID) *testDevice {
	t.Helper()
	s := suite.MustNew(id)
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := s.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	did, err := identity.NewDeviceID(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := identity.NewDevice(did, id, sg.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return &testDevice{suite: s, signer: sg, device: d}
}

func newIdentity(t testing.TB) *identity.PrivateIdentity {
	t.Helper()
	p, err := identity.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func certify(t testing.TB, p *identity.PrivateIdentity, d identity.Device) *identity.Certificate {
	t.Helper()
	c, err := p.Certify(d, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func certExt(t testing.TB, c *identity.Certificate) tree.Extension {
	t.Helper()
	e, err := c.Extension()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// leaf is a leaf node presenting identity with the device's signature key
// and the given extensions (the validator does not check leaf signatures:
// the engine does).
func leaf(identityText string, d *testDevice, exts ...tree.Extension) *tree.LeafNode {
	return &tree.LeafNode{SignatureKey: d.signer.PublicKey(), Credential: tree.NewBasicCredential([]byte(identityText)),
		Capabilities: identity.Capabilities(mls.DefaultCapabilities()), LeafNodeSource: tree.LeafNodeSourceKeyPackage,
		Extensions: exts}
}

func check(ln *tree.LeafNode, use mls.LeafUse) *mls.CredentialCheck {
	return &mls.CredentialCheck{Credential: &ln.Credential, SignatureKey: ln.SignatureKey, Leaf: ln, Use: use}
}
