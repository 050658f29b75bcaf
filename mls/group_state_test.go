package mls

import (
	"bytes"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// member is a test identity: a signer and its credential.
type stateTestMember struct {
	signer *suite.Signer
	cred   tree.Credential
}

func newStateTestMember(t *testing.T, s *suite.Suite, name string) stateTestMember {
	t.Helper()
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := s.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return stateTestMember{signer: sg, cred: tree.NewBasicCredential([]byte(name))}
}

// reload round-trips g through its two state blobs.
func reload(t *testing.T, g *Group, signer *suite.Signer) *Group {
	t.Helper()
	es, err := g.MarshalEpochState()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := g.MarshalRatchetState()
	if err != nil {
		t.Fatal(err)
	}
	g2, err := LoadGroup(es, rs, signer, g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	es2, _ := g2.MarshalEpochState()
	if !bytes.Equal(es, es2) {
		t.Fatal("epoch state does not round-trip")
	}
	return g2
}

// TestGroupStateRoundTrip: a group saved and loaded at every step keeps
// working, and a loaded state never reuses a ratchet generation.
func TestGroupStateRoundTrip(t *testing.T) {
	s := suite.MustNew(1)
	alice, bob := newStateTestMember(t, s, "alice"), newStateTestMember(t, s, "bob")
	a, err := CreateGroup(s, alice.signer, nil, LeafOptions{Credential: alice.cred}, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	a = reload(t, a, alice.signer)
	kp, kpPriv, err := NewKeyPackage(s, nil, bob.signer, bob.cred, KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Commit(CommitOptions{Add: []*KeyPackage{kp}})
	if err != nil {
		t.Fatal(err)
	}
	a = reload(t, res.State, alice.signer)
	ref, _ := kp.Ref(s)
	joined, err := JoinFromWelcome(res.Welcome, res.RatchetTree, func(r KeyPackageRef) (*KeyPackageBundle, error) {
		if bytes.Equal(r, ref) {
			return &KeyPackageBundle{KeyPackage: kp, Private: kpPriv, Signer: bob.signer}, nil
		}
		return nil, ErrKeyPackageNotFound
	}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	b := reload(t, joined.Group, bob.signer)

	// Send, save, reload, send again: the second message must use the next
	// generation, so bob can open both.
	m1, err := a.Encrypt([]byte("one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a = reload(t, a, alice.signer)
	m2, err := a.Encrypt([]byte("two"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range []*Message{m1, m2} {
		p, err := b.Process(m)
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		b = reload(t, p.State, bob.signer)
	}
	// A replay after reload still fails: the consumed key was not saved.
	if _, err := b.Process(m1); err == nil {
		t.Fatal("replayed message accepted after reload")
	}
	// A commit after reload: both sides agree.
	res, err = b.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b = reload(t, res.State, bob.signer)
	// alice sends in epoch 1 before she sees the commit: a late message.
	late, err := a.Encrypt([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a = reload(t, a, alice.signer)
	p, err := a.Process(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	a = reload(t, p.State, alice.signer)
	if !bytes.Equal(a.EpochAuthenticator(), b.EpochAuthenticator()) || a.Epoch() != 2 {
		t.Fatalf("after reloads: epochs %d/%d, authenticators differ", a.Epoch(), b.Epoch())
	}
	// The late message of epoch 1 still opens from the loaded past epoch.
	p, err = b.Process(late)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.ApplicationData) != "late" || p.Epoch != 1 {
		t.Fatalf("late message: %q in epoch %d", p.ApplicationData, p.Epoch)
	}
}

// TestSendReservation: with Config.SendReservation the sender saves once per
// block of generations, and a crash (reload from the last save) skips the
// unsaved rest of the block instead of reusing a generation.
func TestSendReservation(t *testing.T) {
	s := suite.MustNew(1)
	alice, bob := newStateTestMember(t, s, "alice"), newStateTestMember(t, s, "bob")
	cfg := Config{SendReservation: 8}
	a, err := CreateGroup(s, alice.signer, nil, LeafOptions{Credential: alice.cred}, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kp, kpPriv, err := NewKeyPackage(s, nil, bob.signer, bob.cred, KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Commit(CommitOptions{Add: []*KeyPackage{kp}})
	if err != nil {
		t.Fatal(err)
	}
	a = res.State
	ref, _ := kp.Ref(s)
	joined, err := JoinFromWelcome(res.Welcome, res.RatchetTree, func(r KeyPackageRef) (*KeyPackageBundle, error) {
		if bytes.Equal(r, ref) {
			return &KeyPackageBundle{KeyPackage: kp, Private: kpPriv, Signer: bob.signer}, nil
		}
		return nil, ErrKeyPackageNotFound
	}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	b := joined.Group

	var saved struct{ es, rs []byte }
	save := func() {
		var err error
		if saved.es, err = a.MarshalEpochState(); err != nil {
			t.Fatal(err)
		}
		if saved.rs, err = a.MarshalRatchetState(); err != nil {
			t.Fatal(err)
		}
	}
	save()
	saves := 0
	var sent []*Message
	for i := 0; i < 20; i++ {
		m, err := a.Encrypt([]byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.SendNeedsSave() {
			save()
			saves++
		}
		sent = append(sent, m)
	}
	if saves != 3 { // generations 0, 8 and 16 start a block
		t.Fatalf("%d saves for 20 sends with blocks of 8, want 3", saves)
	}
	for _, m := range sent {
		if _, err := b.Process(m); err != nil {
			t.Fatal(err)
		}
	}
	// Crash: alice restarts from the last save, made when generation 16
	// was handed out. Her next message must not reuse 16..19.
	a, err = LoadGroup(saved.es, saved.rs, alice.signer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Encrypt([]byte("after the crash"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Process(m)
	if err != nil {
		t.Fatalf("message after the crash: %v", err)
	}
	if string(p.ApplicationData) != "after the crash" {
		t.Fatalf("got %q", p.ApplicationData)
	}
	if !a.SendNeedsSave() {
		t.Fatal("the first send after a restart must save")
	}
}
