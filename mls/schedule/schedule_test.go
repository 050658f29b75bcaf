package schedule

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
)

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestKeyScheduleZeroDefaults(t *testing.T) {
	for _, id := range suite.All() {
		s := suite.MustNew(id)
		nh := s.HashSize()
		initSecret, gc := seq(nh, 1), []byte("group context")
		zero := make([]byte, nh)
		a, err := NewEpoch(s, initSecret, nil, nil, gc)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewEpoch(s, initSecret, zero, zero, gc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.InitSecret, b.InitSecret) || !bytes.Equal(a.WelcomeSecret, b.WelcomeSecret) {
			t.Errorf("%v: nil commit/psk secret differs from the all-zero vector", id)
		}
		// The Welcome path (joiner_secret + psk_secret + GroupContext) agrees.
		j, err := Derive(s, a.JoinerSecret, nil, gc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(j.EpochAuthenticator, a.EpochAuthenticator) || !bytes.Equal(j.EncryptionSecret, a.EncryptionSecret) {
			t.Errorf("%v: Derive from joiner_secret differs from NewEpoch", id)
		}
		w, err := WelcomeSecret(s, a.JoinerSecret, nil)
		if err != nil || !bytes.Equal(w, a.WelcomeSecret) {
			t.Errorf("%v: WelcomeSecret differs: %v", id, err)
		}
		key, nonce, err := a.WelcomeKeyNonce()
		if err != nil || len(key) != s.AEADKeySize() || len(nonce) != s.AEADNonceSize() {
			t.Errorf("%v: welcome key/nonce sizes %d/%d: %v", id, len(key), len(nonce), err)
		}
		// All nine epoch secrets are distinct and Nh long.
		seen := map[string]bool{}
		for _, v := range [][]byte{a.SenderDataSecret, a.EncryptionSecret, a.ExporterSecret, a.ExternalSecret,
			a.ConfirmationKey, a.MembershipKey, a.ResumptionPSK, a.EpochAuthenticator, a.InitSecret} {
			if len(v) != nh || seen[string(v)] {
				t.Errorf("%v: epoch secret of %d bytes or repeated", id, len(v))
			}
			seen[string(v)] = true
		}
		a.ForgetJoiner()
		if a.JoinerSecret != nil || a.WelcomeSecret != nil {
			t.Errorf("ForgetJoiner kept secrets")
		}
	}
}

func TestKeyScheduleBadLengths(t *testing.T) {
	s := suite.MustNew(1)
	good := seq(32, 0)
	for name, f := range map[string]func() error{
		"short init":    func() error { _, err := JoinerSecret(s, good[:31], nil, nil); return err },
		"long commit":   func() error { _, err := JoinerSecret(s, good, append(good, 0), nil); return err },
		"short joiner":  func() error { _, err := Derive(s, good[:1], nil, nil); return err },
		"short psk":     func() error { _, err := Derive(s, good, good[:5], nil); return err },
		"welcome":       func() error { _, _, err := WelcomeKeyNonce(s, nil); return err },
		"sender data":   func() error { _, _, err := SenderDataKeyNonce(s, good[:3], nil); return err },
		"exporter":      func() error { _, err := Export(s, nil, "x", nil, 16); return err },
		"secret tree":   func() error { _, err := NewSecretTree(s, good[:2], 4, Options{}); return err },
		"no leaves":     func() error { _, err := NewSecretTree(s, good, 0, Options{}); return err },
		"huge exporter": func() error { _, err := Export(s, good, "x", nil, 1<<20); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := JoinerSecret(s, nil, nil, nil); !errors.Is(err, ErrInvalidSecret) {
		t.Errorf("missing init_secret: %v", err)
	}
}

func TestSenderDataSample(t *testing.T) {
	s := suite.MustNew(1)
	sec := seq(32, 9)
	ct := seq(100, 0)
	k1, n1, err := SenderDataKeyNonce(s, sec, ct)
	if err != nil {
		t.Fatal(err)
	}
	// Only the first Nh bytes of the ciphertext count.
	k2, n2, _ := SenderDataKeyNonce(s, sec, ct[:32])
	if !bytes.Equal(k1, k2) || !bytes.Equal(n1, n2) {
		t.Error("sample is not the first Nh bytes")
	}
	// A short ciphertext is used whole.
	k3, _, err := SenderDataKeyNonce(s, sec, ct[:5])
	if err != nil || bytes.Equal(k3, k1) {
		t.Errorf("short ciphertext: %v", err)
	}
}

func TestExternalInit(t *testing.T) {
	for _, id := range suite.All() {
		s := suite.MustNew(id)
		e, err := NewEpoch(s, seq(s.HashSize(), 3), nil, nil, []byte("gc"))
		if err != nil {
			t.Fatal(err)
		}
		priv, pub, err := e.ExternalKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		kemOut, initJoiner, err := ExternalInit(s, pub)
		if err != nil {
			t.Fatal(err)
		}
		initMember, err := ExternalInitSecret(s, priv, kemOut)
		if err != nil {
			t.Fatal(err)
		}
		if len(initJoiner) != s.HashSize() || !bytes.Equal(initJoiner, initMember) {
			t.Errorf("%v: external init secrets differ", id)
		}
	}
}

func TestExport(t *testing.T) {
	s := suite.MustNew(2)
	e, _ := NewEpoch(s, seq(32, 1), nil, nil, nil)
	a, _ := e.Export("label", []byte("ctx"), 40)
	b, _ := e.Export("label", []byte("ctx2"), 40)
	c, _ := e.Export("label2", []byte("ctx"), 40)
	if len(a) != 40 || bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Error("exporter outputs not separated by label and context")
	}
}
