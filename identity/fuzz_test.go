package identity_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// The decoders are strict, so whatever they accept is the canonical
// encoding of what they return: re-encoding gives the input back.

func FuzzParseCertificate(f *testing.F) {
	p := newIdentity(f)
	for _, id := range []suite.ID{1, 2, 4, 5, 7} {
		enc, err := certify(f, p, newTestDevice(f, id).device).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := identity.ParseCertificate(data)
		if err != nil {
			return
		}
		again, err := c.Marshal()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical encoding: %x", data)
		}
		_ = c.VerifySignature()
	})
}

func FuzzParseRevocation(f *testing.F) {
	p := newIdentity(f)
	d, _ := identity.NewDeviceID(nil)
	r, err := p.Revoke(d, testNow)
	if err != nil {
		f.Fatal(err)
	}
	enc, _ := r.Marshal()
	f.Add(enc)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := identity.ParseRevocation(data)
		if err != nil {
			return
		}
		again, err := r.Marshal()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical encoding: %x", data)
		}
		_ = r.Verify()
	})
}

func FuzzParsePrivateIdentity(f *testing.F) {
	p := newIdentity(f)
	enc, _ := p.MarshalBinary()
	f.Add(enc)
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := identity.ParsePrivateIdentity(data)
		if err != nil {
			return
		}
		again, err := q.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical encoding")
		}
	})
}

func FuzzParseUserID(f *testing.F) {
	f.Add(string(newIdentity(f).UserID()))
	f.Add("sp1")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := identity.ParseUserID(s)
		if err != nil {
			return
		}
		if string(u) != s || len(s) != identity.UserIDLen {
			t.Fatalf("accepted %q", s)
		}
	})
}

// FuzzValidateLeaf feeds arbitrary certificate extension data to the
// validator next to a real device key: it must not panic, and it may only
// accept what a real identity key signed for that key.
func FuzzValidateLeaf(f *testing.F) {
	p := newIdentity(f)
	d := newTestDevice(f, 1)
	good, _ := certify(f, p, d.device).Marshal()
	f.Add(good)
	f.Add([]byte{})
	v := &identity.Validator{Now: clock}
	f.Fuzz(func(t *testing.T, data []byte) {
		ln := leaf(string(p.UserID()), d, tree.Extension{ExtensionType: identity.ExtensionTypeDeviceCertificate, ExtensionData: data})
		if err := v.ValidateCredential(check(ln, mls.LeafUseKeyPackage)); err == nil && !bytes.Equal(data, good) {
			// Ed25519 signatures are not malleable (crypto/ed25519 rejects
			// non-canonical S), so only the issued encoding verifies.
			t.Fatalf("accepted forged certificate data %x", data)
		}
	})
}

// FuzzLinkMessages feeds arbitrary bytes to each step of both sides of a
// link: no panic, and nothing but ErrLinkMessage, ErrLinkAuth or the
// genuine message's success.
func FuzzLinkMessages(f *testing.F) {
	alice := newIdentity(f)
	nd := newTestDevice(f, 1)
	offer, _ := identity.NewLinkOffer(nil)
	join, _ := identity.NewLinkJoin(offer.Code(), nd.device, nd.signer, "phone", nil)
	req, err := join.Respond(offer.Hello())
	if err != nil {
		f.Fatal(err)
	}
	if _, err := offer.ReadRequest(req); err != nil {
		f.Fatal(err)
	}
	cert, _, err := offer.Accept(alice, testNow, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), offer.Hello())
	f.Add(uint8(1), req)
	f.Add(uint8(2), cert)
	f.Fuzz(func(t *testing.T, step uint8, data []byte) {
		o, err := identity.NewLinkOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := identity.NewLinkJoin(o.Code(), nd.device, nd.signer, "phone", nil)
		switch step % 3 {
		case 0:
			_, err = j.Respond(data)
		case 1:
			_, err = o.ReadRequest(data)
		case 2:
			if _, err := j.Respond(o.Hello()); err != nil {
				t.Fatal(err)
			}
			_, err = j.Finish(data)
		}
		if err == nil && step%3 != 0 {
			t.Fatalf("step %d accepted %x", step%3, data)
		}
		if err != nil && !errors.Is(err, identity.ErrLinkMessage) && !errors.Is(err, identity.ErrLinkAuth) {
			t.Fatalf("step %d: unexpected error %v", step%3, err)
		}
	})
}
