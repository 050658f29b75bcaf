package identity_test

import (
	"crypto/ed25519"
	"testing"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
)

// BenchmarkEd25519Verify is the floor: one bare signature check, the
// dominant cost of validating a certified leaf.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 200)
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
}

// BenchmarkValidateCredential is the engine's check of one certified leaf
// (decode, id and key binding, signature, revocation, lifetime).
func BenchmarkValidateCredential(b *testing.B) {
	p := newIdentity(b)
	d := newTestDevice(b, 1)
	ln := leaf(string(p.UserID()), d, certExt(b, certify(b, p, d.device)))
	v := &identity.Validator{Now: clock, Revocations: identity.NewRevocationSet()}
	c := check(ln, mls.LeafUseKeyPackage)
	for b.Loop() {
		if err := v.ValidateCredential(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSafetyNumber(b *testing.B) {
	x, y := newIdentity(b).IdentityKey(), newIdentity(b).IdentityKey()
	for b.Loop() {
		identity.SafetyNumber(x, y)
	}
}

// BenchmarkLink is one whole device link, both sides.
func BenchmarkLink(b *testing.B) {
	alice := newIdentity(b)
	nd := newTestDevice(b, 1)
	for b.Loop() {
		o, err := identity.NewLinkOffer(nil)
		if err != nil {
			b.Fatal(err)
		}
		j, _ := identity.NewLinkJoin(o.Code(), nd.device, nd.signer, "phone", nil)
		req, err := j.Respond(o.Hello())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := o.ReadRequest(req); err != nil {
			b.Fatal(err)
		}
		m3, _, err := o.Accept(alice, testNow, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := j.Finish(m3); err != nil {
			b.Fatal(err)
		}
	}
}
