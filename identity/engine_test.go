package identity_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// user is one person with one device in the engine tests.
type user struct {
	id   *identity.PrivateIdentity
	dev  *testDevice
	cert *identity.Certificate
	kp   *mls.KeyPackage
	priv *mls.KeyPackagePrivate
}

func newUser(t *testing.T, s suite.ID) *user {
	t.Helper()
	u := &user{id: newIdentity(t), dev: newTestDevice(t, s)}
	u.cert = certify(t, u.id, u.dev.device)
	u.keyPackage(t, string(u.id.UserID()), u.dev, certExt(t, u.cert))
	return u
}

// keyPackage makes u's KeyPackage presenting identityText with dev's key
// and the given leaf extensions (an impostor's, in the forged cases).
func (u *user) keyPackage(t *testing.T, identityText string, dev *testDevice, exts ...tree.Extension) {
	t.Helper()
	kp, priv, err := mls.NewKeyPackage(dev.suite, nil, dev.signer, tree.NewBasicCredential([]byte(identityText)),
		mls.KeyPackageOptions{Now: testNow, LeafExtensions: exts})
	if err != nil {
		t.Fatal(err)
	}
	u.kp, u.priv = kp, priv
}

func (u *user) finder(t *testing.T) mls.KeyPackageFinder {
	ref, err := u.kp.Ref(u.dev.suite)
	if err != nil {
		t.Fatal(err)
	}
	return func(r mls.KeyPackageRef) (*mls.KeyPackageBundle, error) {
		if bytes.Equal(r, ref) {
			return &mls.KeyPackageBundle{KeyPackage: u.kp, Private: u.priv, Signer: u.dev.signer}, nil
		}
		return nil, mls.ErrKeyPackageNotFound
	}
}

func (u *user) createGroup(t *testing.T, cfg mls.Config) *mls.Group {
	t.Helper()
	caps := identity.Capabilities(mls.DefaultCapabilities())
	g, err := mls.CreateGroup(u.dev.suite, u.dev.signer, nil, mls.LeafOptions{
		Credential: tree.NewBasicCredential([]byte(u.id.UserID())), Capabilities: &caps,
		Extensions: tree.Extensions{certExt(t, u.cert)}}, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func roundTrip(t *testing.T, m *mls.Message) []byte {
	t.Helper()
	b, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// join has u join from a commit result's Welcome and tree.
func (u *user) join(t *testing.T, res *mls.CommitResult, cfg mls.Config) (*mls.Group, error) {
	t.Helper()
	b, err := wire.Marshal(res.Welcome)
	if err != nil {
		t.Fatal(err)
	}
	var w mls.Welcome
	if err := wire.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	j, err := mls.JoinFromWelcome(&w, res.RatchetTree, u.finder(t), cfg)
	if err != nil {
		return nil, err
	}
	return j.Group, nil
}

// TestEngineCertifiedMembers runs the validator inside the engine, in every
// suite: Alice creates a group with her certified device, adds Bob's
// certified KeyPackage, Bob joins (validating the whole tree) and commits
// (his path leaf keeps its certificate), and Alice accepts it. Then the
// impostors, who present Alice's user id, are refused by Bob — who uses
// the Validator — even though Alice's client, which uses none, commits
// them; Bob's group state is unchanged and goes on.
func TestEngineCertifiedMembers(t *testing.T) {
	for _, id := range suite.All() {
		t.Run(id.String(), func(t *testing.T) { engineScenario(t, id) })
	}
}

func engineScenario(t *testing.T, sid suite.ID) {
	v := &identity.Validator{Now: clock}
	strict := mls.Config{Credentials: v, Now: clock}
	lax := mls.Config{Now: clock} // mls.BasicCredentialValidator: any basic identity

	alice, bob := newUser(t, sid), newUser(t, sid)
	ga := alice.createGroup(t, lax)

	res, err := ga.Commit(mls.CommitOptions{Add: []*mls.KeyPackage{bob.kp}})
	if err != nil {
		t.Fatal(err)
	}
	ga = res.State
	gb, err := bob.join(t, res, strict)
	if err != nil {
		t.Fatalf("Bob joins: %v", err)
	}
	// Bob learns who is who from the tree.
	for i, n := range gb.RatchetTree() {
		if n == nil || n.Leaf == nil {
			continue
		}
		m, err := v.Verify(n.Leaf)
		want := map[int]identity.UserID{0: alice.id.UserID(), 2: bob.id.UserID()}[i]
		if err != nil || !m.Verified || m.UserID != want {
			t.Fatalf("leaf node %d: %+v %v", i, m, err)
		}
	}

	// Bob commits; his UpdatePath leaf copies his extensions, so the
	// certificate stays, and the successor rule holds.
	resB, err := gb.Commit(mls.CommitOptions{})
	if err != nil {
		t.Fatalf("Bob commits: %v", err)
	}
	gb = resB.State
	strictA, err := ga.ProcessBytes(roundTrip(t, resB.Commit))
	if err != nil {
		t.Fatalf("Alice processes Bob's commit: %v", err)
	}
	ga = strictA.State

	// The impostors claim Alice's user id.
	aliceID := string(alice.id.UserID())
	mallory := &user{id: newIdentity(t), dev: newTestDevice(t, sid)}
	impostors := []struct {
		name string
		ext  []tree.Extension
		want error
	}{
		{"own certificate", []tree.Extension{certExt(t, certify(t, mallory.id, mallory.dev.device))}, identity.ErrUserIDMismatch},
		{"Alice's certificate", []tree.Extension{certExt(t, alice.cert)}, identity.ErrKeyMismatch},
		{"no certificate", nil, identity.ErrUnverifiedUserID},
	}
	for _, imp := range impostors {
		mallory.keyPackage(t, aliceID, mallory.dev, imp.ext...)
		// A client with the validator would not even use the KeyPackage.
		if err := mls.ValidateKeyPackage(mallory.dev.suite, mallory.kp, testNow, mls.ValidateOptions{Credentials: v}); !errors.Is(err, imp.want) {
			t.Errorf("%s: KeyPackage validation: %v, want %v", imp.name, err, imp.want)
		}
		res, err := ga.Commit(mls.CommitOptions{Add: []*mls.KeyPackage{mallory.kp}})
		if err != nil {
			t.Fatalf("%s: lax committer: %v", imp.name, err)
		}
		epoch := gb.Epoch()
		_, err = gb.ProcessBytes(roundTrip(t, res.Commit))
		if !errors.Is(err, imp.want) || !errors.Is(err, mls.ErrInvalidCredential) {
			t.Errorf("%s: Bob processes the commit: %v, want %v", imp.name, err, imp.want)
		}
		if gb.Epoch() != epoch {
			t.Fatalf("%s: Bob's epoch moved", imp.name)
		}
		// Nor can the impostor join a group whose members use the validator.
		if _, err := mallory.join(t, res, strict); !errors.Is(err, imp.want) {
			t.Errorf("%s: the impostor's own join with the validator: %v", imp.name, err)
		}
	}

	// Bob's state still works: Alice's honest commit goes through.
	res, err = ga.Commit(mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gb.ProcessBytes(roundTrip(t, res.Commit)); err != nil {
		t.Fatalf("Bob processes Alice's honest commit after the refusals: %v", err)
	}
}
