package identity_test

import (
	"bytes"
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
