// Package storetest is the conformance suite every store.Store backend
// passes: one set of table-driven tests and benchmarks, run by each backend's
// own _test.go with a constructor.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/store"
)

// Open returns a new, empty Store and arranges for it to be closed when tb
// ends.
type Open func(tb testing.TB) store.Store

// Run runs the suite against the backend open makes.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Identity", testIdentity},
		{"Revocations", testRevocations},
		{"KeyPackages", testKeyPackages},
		{"KeyPackageBatchAtomic", testKeyPackageBatchAtomic},
		{"KeyPackageTrim", testKeyPackageTrim},
		{"JoinTransaction", testJoinTransaction},
		{"Groups", testGroups},
		{"GroupBlobs", testGroupBlobs},
		{"EpochSecrets", testEpochSecrets},
		{"PSKs", testPSKs},
		{"Channels", testChannels},
		{"Messages", testMessages},
		{"NotFound", testNotFound},
		{"Invalid", testInvalid},
		{"TxIsolation", testTxIsolation},
		{"TxDone", testTxDone},
		{"TxPanic", testTxPanic},
		{"Context", testContext},
		{"Copies", testCopies},
		{"Concurrent", testConcurrent},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// update runs fn in s.Update and fails the test on error.
func update(t testing.TB, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var (
	ctx = context.Background()
	t0  = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
)

// B returns a recognisable byte string.
func B(s string) []byte { return []byte(s) }

// NewKeyPackage returns a key package with distinct contents derived from
// name, expiring at notAfter.
func NewKeyPackage(name string, notAfter time.Time, lastResort bool) store.KeyPackage {
	return store.KeyPackage{
		Ref:            B("ref-" + name),
		KeyPackage:     B("kp-" + name),
		InitPrivateKey: B("init-secret-" + name),
		LeafPrivateKey: B("leaf-secret-" + name),
		NotAfter:       notAfter,
		LastResort:     lastResort,
		CreatedAt:      t0,
	}
}

// NewIdentity is a complete identity with made-up bytes, for tests.
func NewIdentity(userID string) store.Identity {
	return store.Identity{
		SignaturePrivateKey: B("sig-private"),
		SignaturePublicKey:  B("sig-public"),
		CipherSuite:         1,
		DeviceID:            B("device-id-16byte"),
		UserID:              userID,
		Credential:          B("credential " + userID),
		Certificate:         B("certificate " + userID),
		PrivateIdentity:     B("private identity"),
		DisplayName:         "Alice",
		CreatedAt:           t0,
	}
}

func eqIdentity(t testing.TB, got, want store.Identity) {
	t.Helper()
	if !bytes.Equal(got.SignaturePrivateKey, want.SignaturePrivateKey) || !bytes.Equal(got.SignaturePublicKey, want.SignaturePublicKey) ||
		got.CipherSuite != want.CipherSuite || !bytes.Equal(got.DeviceID, want.DeviceID) || got.UserID != want.UserID ||
		!bytes.Equal(got.Credential, want.Credential) || !bytes.Equal(got.Certificate, want.Certificate) ||
		!bytes.Equal(got.PrivateIdentity, want.PrivateIdentity) || got.DisplayName != want.DisplayName || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("Identity = %+v\nwant %+v", got, want)
	}
}

func testIdentity(t *testing.T, s store.Store) {
	_, err := s.Identity(ctx)
	mustIs(t, err, store.ErrIdentityNotFound)
	err = s.Update(ctx, func(tx store.Tx) error { return tx.UpdateIdentity(ctx, NewIdentity("alice")) })
	mustIs(t, err, store.ErrIdentityNotFound)

	// A device waiting for its certificate: no user yet.
	waiting := NewIdentity("")
	waiting.Credential, waiting.Certificate, waiting.PrivateIdentity = nil, nil, nil
	update(t, s, func(tx store.Tx) error { return tx.PutIdentity(ctx, waiting) })
	got, err := s.Identity(ctx)
	noErr(t, err)
	eqIdentity(t, got, waiting)
	if got.PrivateIdentity != nil || len(got.Certificate) != 0 {
		t.Fatalf("a device without a user got %+v", got)
	}

	// Its certificate arrives: the same device now has a user.
	linked := NewIdentity("alice")
	linked.PrivateIdentity = nil
	update(t, s, func(tx store.Tx) error { return tx.UpdateIdentity(ctx, linked) })
	got, err = s.Identity(ctx)
	noErr(t, err)
	eqIdentity(t, got, linked)

	// Display name and the private identity change; the keys never.
	full := NewIdentity("alice")
	full.DisplayName = "Alice B."
	update(t, s, func(tx store.Tx) error { return tx.UpdateIdentity(ctx, full) })
	got, _ = s.Identity(ctx)
	eqIdentity(t, got, full)
	for name, f := range map[string]func(*store.Identity){
		"signature key": func(id *store.Identity) { id.SignaturePublicKey = B("other public") },
		"suite":         func(id *store.Identity) { id.CipherSuite = 2 },
		"device id":     func(id *store.Identity) { id.DeviceID = B("other-device-id!") },
	} {
		bad := NewIdentity("mallory")
		f(&bad)
		err = s.Update(ctx, func(tx store.Tx) error { return tx.UpdateIdentity(ctx, bad) })
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("UpdateIdentity changing the %s: %v, want ErrInvalid", name, err)
		}
	}
	id2 := NewIdentity("mallory")
	err = s.Update(ctx, func(tx store.Tx) error { return tx.PutIdentity(ctx, id2) })
	mustIs(t, err, store.ErrExists)
	got, _ = s.Identity(ctx)
	eqIdentity(t, got, full)
}

func testRevocations(t *testing.T, s store.Store) {
	rs, err := s.Revocations(ctx)
	noErr(t, err)
	if len(rs) != 0 {
		t.Fatalf("revocations of an empty store: %v", rs)
	}
	ik := func(c byte) []byte { return bytes.Repeat([]byte{c}, 32) }
	dev := func(c byte) []byte { return bytes.Repeat([]byte{c}, 16) }
	a2 := store.Revocation{IdentityKey: ik('a'), DeviceID: dev(2), Revocation: B("a2"), CreatedAt: t0}
	a1 := store.Revocation{IdentityKey: ik('a'), DeviceID: dev(1), Revocation: B("a1"), CreatedAt: t0}
	b1 := store.Revocation{IdentityKey: ik('b'), DeviceID: dev(1), Revocation: B("b1"), CreatedAt: t0}
	update(t, s, func(tx store.Tx) error {
		for _, r := range []store.Revocation{b1, a2, a1} {
			if err := tx.PutRevocation(ctx, r); err != nil {
				return err
			}
		}
		again := a1
		again.Revocation = B("a1 again")
		return tx.PutRevocation(ctx, again) // ignored: the first stays
	})
	rs, err = s.Revocations(ctx)
	noErr(t, err)
	if len(rs) != 3 {
		t.Fatalf("%d revocations, want 3", len(rs))
	}
	for i, want := range []store.Revocation{a1, a2, b1} {
		got := rs[i]
		if !bytes.Equal(got.IdentityKey, want.IdentityKey) || !bytes.Equal(got.DeviceID, want.DeviceID) ||
			!bytes.Equal(got.Revocation, want.Revocation) || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("revocation %d = %+v, want %+v", i, got, want)
		}
	}
	// A failed Update keeps none of its revocations.
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutRevocation(ctx, store.Revocation{IdentityKey: ik('c'), DeviceID: dev(1), Revocation: B("c1")}); err != nil {
			return err
		}
		return errors.New("abort")
	})
	if err == nil {
		t.Fatal("aborted Update succeeded")
	}
	if rs, _ = s.Revocations(ctx); len(rs) != 3 {
		t.Fatalf("an aborted Update left %d revocations", len(rs))
	}
}

func eqKP(t testing.TB, got, want store.KeyPackage) {
	t.Helper()
	if !bytes.Equal(got.Ref, want.Ref) || !bytes.Equal(got.KeyPackage, want.KeyPackage) ||
		!bytes.Equal(got.InitPrivateKey, want.InitPrivateKey) || !bytes.Equal(got.LeafPrivateKey, want.LeafPrivateKey) ||
		!got.NotAfter.Equal(want.NotAfter) || got.LastResort != want.LastResort || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("key package = %+v, want %+v", got, want)
	}
}

func testKeyPackages(t *testing.T, s store.Store) {
	now := t0
	kps := []store.KeyPackage{
		NewKeyPackage("a", now.Add(time.Hour), false),
		NewKeyPackage("b", now.Add(time.Hour), false),
		NewKeyPackage("expired", now.Add(-time.Nanosecond), false),
		NewKeyPackage("edge", now, false), // valid until and including NotAfter
		NewKeyPackage("lr", now.Add(time.Hour), true),
		NewKeyPackage("lr-expired", now.Add(-time.Hour), true),
	}
	update(t, s, func(tx store.Tx) error { return tx.PutKeyPackages(ctx, kps...) })
	for _, kp := range kps {
		got, err := s.KeyPackage(ctx, kp.Ref)
		noErr(t, err)
		eqKP(t, got, kp)
	}

	counts := []struct {
		at   time.Time
		want store.KeyPackageCount
	}{
		{now.Add(-2 * time.Hour), store.KeyPackageCount{OneTime: 4, LastResort: 2}},
		{now, store.KeyPackageCount{OneTime: 3, LastResort: 1}},
		{now.Add(time.Nanosecond), store.KeyPackageCount{OneTime: 2, LastResort: 1}},
		{now.Add(2 * time.Hour), store.KeyPackageCount{}},
	}
	for _, c := range counts {
		got, err := s.CountKeyPackages(ctx, c.at)
		noErr(t, err)
		if got != c.want {
			t.Errorf("CountKeyPackages(%v) = %+v, want %+v", c.at, got, c.want)
		}
	}

	// Consume: one-time ones go, last-resort ones stay.
	update(t, s, func(tx store.Tx) error { return tx.ConsumeKeyPackage(ctx, B("ref-a")) })
	_, err := s.KeyPackage(ctx, B("ref-a"))
	mustIs(t, err, store.ErrKeyPackageNotFound)
	mustIs(t, err, store.ErrNotFound)
	update(t, s, func(tx store.Tx) error { return tx.ConsumeKeyPackage(ctx, B("ref-lr")) })
	if _, err := s.KeyPackage(ctx, B("ref-lr")); err != nil {
		t.Fatalf("last-resort key package consumed: %v", err)
	}
	err = s.Update(ctx, func(tx store.Tx) error { return tx.ConsumeKeyPackage(ctx, B("ref-a")) })
	mustIs(t, err, store.ErrKeyPackageNotFound)

	var n int
	update(t, s, func(tx store.Tx) (err error) { n, err = tx.PruneKeyPackages(ctx, now); return err })
	if n != 2 {
		t.Fatalf("PruneKeyPackages = %d, want 2", n)
	}
	for ref, want := range map[string]bool{"ref-b": true, "ref-edge": true, "ref-lr": true, "ref-expired": false, "ref-lr-expired": false} {
		_, err := s.KeyPackage(ctx, B(ref))
		if (err == nil) != want {
			t.Errorf("after prune, KeyPackage(%s) err = %v", ref, err)
		}
	}
}

func testKeyPackageTrim(t *testing.T, s store.Store) {
	exp := t0.Add(time.Hour)
	var kps []store.KeyPackage
	for i, name := range []string{"a", "b", "c", "d"} {
		kp := NewKeyPackage(name, exp, false)
		kp.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
		kps = append(kps, kp)
	}
	for i, name := range []string{"lr1", "lr2"} {
		kp := NewKeyPackage(name, exp, true)
		kp.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
		kps = append(kps, kp)
	}
	update(t, s, func(tx store.Tx) error { return tx.PutKeyPackages(ctx, kps...) })
	var n int
	update(t, s, func(tx store.Tx) (err error) { n, err = tx.TrimKeyPackages(ctx, 2, 1); return err })
	if n != 3 {
		t.Fatalf("TrimKeyPackages = %d, want 3", n)
	}
	for ref, want := range map[string]bool{"ref-a": false, "ref-b": false, "ref-c": true, "ref-d": true, "ref-lr1": false, "ref-lr2": true} {
		if _, err := s.KeyPackage(ctx, B(ref)); (err == nil) != want {
			t.Errorf("after trim, KeyPackage(%s) err = %v", ref, err)
		}
	}
}

func testKeyPackageBatchAtomic(t *testing.T, s store.Store) {
	exp := t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.PutKeyPackages(ctx, NewKeyPackage("old", exp, false)) })
	// A batch with a duplicate fails as a whole, even inside an Update that
	// ignores the error and commits.
	var putErr error
	update(t, s, func(tx store.Tx) error {
		putErr = tx.PutKeyPackages(ctx, NewKeyPackage("new", exp, false), NewKeyPackage("old", exp, false))
		return nil
	})
	mustIs(t, putErr, store.ErrExists)
	_, err := s.KeyPackage(ctx, B("ref-new"))
	mustIs(t, err, store.ErrKeyPackageNotFound)
	// A duplicate inside one batch too.
	err = s.Update(ctx, func(tx store.Tx) error {
		return tx.PutKeyPackages(ctx, NewKeyPackage("x", exp, false), NewKeyPackage("x", exp, false))
	})
	mustIs(t, err, store.ErrExists)
	// The stored private keys were not replaced.
	got, err := s.KeyPackage(ctx, B("ref-old"))
	noErr(t, err)
	eqKP(t, got, NewKeyPackage("old", exp, false))
}

// testJoinTransaction is the seed's bug turned into a rule: the new group
// and the consumed key package change together, or not at all.
func testJoinTransaction(t *testing.T, s store.Store) {
	kp := NewKeyPackage("bob", t0.Add(time.Hour), false)
	update(t, s, func(tx store.Tx) error { return tx.PutKeyPackages(ctx, kp) })
	g := store.Group{ID: B("group-1"), Epoch: 1, State: B("epoch-state-1"), UpdatedAt: t0}

	join := func(fail error) error {
		return s.Update(ctx, func(tx store.Tx) error {
			got, err := tx.KeyPackage(ctx, kp.Ref)
			if err != nil {
				return err
			}
			_ = got // the engine would decrypt the Welcome with got.InitPrivateKey
			if err := tx.PutGroup(ctx, g); err != nil {
				return err
			}
			if err := tx.ConsumeKeyPackage(ctx, kp.Ref); err != nil {
				return err
			}
			return fail
		})
	}
	errJoin := errors.New("welcome rejected")
	mustIs(t, join(errJoin), errJoin)
	if _, err := s.KeyPackage(ctx, kp.Ref); err != nil {
		t.Fatalf("failed join consumed the key package: %v", err)
	}
	_, err := s.Group(ctx, g.ID)
	mustIs(t, err, store.ErrGroupNotFound)

	noErr(t, join(nil))
	_, err = s.KeyPackage(ctx, kp.Ref)
	mustIs(t, err, store.ErrKeyPackageNotFound)
	got, err := s.Group(ctx, g.ID)
	noErr(t, err)
	if !bytes.Equal(got.State, g.State) || got.Epoch != 1 {
		t.Fatalf("Group = %+v", got)
	}
	// A second join with the same Welcome finds no key package.
	mustIs(t, join(nil), store.ErrKeyPackageNotFound)
}

func testGroups(t *testing.T, s store.Store) {
	gs, err := s.Groups(ctx)
	noErr(t, err)
	if len(gs) != 0 {
		t.Fatalf("Groups = %v", gs)
	}
	steps := []struct {
		g       store.Group
		wantErr error
	}{
		{store.Group{ID: B("g2"), Epoch: 0, State: B("s0"), UpdatedAt: t0}, nil},
		{store.Group{ID: B("g2"), Epoch: 3, State: B("s3"), UpdatedAt: t0.Add(time.Second)}, nil},
		{store.Group{ID: B("g2"), Epoch: 3, State: B("s3b"), UpdatedAt: t0.Add(2 * time.Second)}, nil}, // same epoch: allowed
		{store.Group{ID: B("g2"), Epoch: 2, State: B("s2"), UpdatedAt: t0.Add(3 * time.Second)}, store.ErrEpochRegression},
		{store.Group{ID: B("g1"), Epoch: 7, State: B("t7"), UpdatedAt: t0}, nil},
	}
	for i, st := range steps {
		err := s.Update(ctx, func(tx store.Tx) error { return tx.PutGroup(ctx, st.g) })
		if st.wantErr == nil {
			noErr(t, err)
		} else if !errors.Is(err, st.wantErr) {
			t.Fatalf("step %d: err = %v, want %v", i, err, st.wantErr)
		}
	}
	g, err := s.Group(ctx, B("g2"))
	noErr(t, err)
	if g.Epoch != 3 || string(g.State) != "s3b" || !g.UpdatedAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("Group(g2) = %+v", g)
	}
	gs, err = s.Groups(ctx)
	noErr(t, err)
	if len(gs) != 2 || string(gs[0].ID) != "g1" || gs[0].Epoch != 7 || string(gs[1].ID) != "g2" || gs[1].Epoch != 3 {
		t.Fatalf("Groups = %+v", gs)
	}
	// A zero UpdatedAt is stamped with the time of the write.
	before := time.Now().Add(-time.Second)
	update(t, s, func(tx store.Tx) error { return tx.PutGroup(ctx, store.Group{ID: B("g3"), Epoch: 1, State: B("x")}) })
	g, err = s.Group(ctx, B("g3"))
	noErr(t, err)
	if g.UpdatedAt.Before(before) || g.UpdatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("UpdatedAt = %v", g.UpdatedAt)
	}
	update(t, s, func(tx store.Tx) error { return tx.DeleteGroup(ctx, B("g3")) })
	_, err = s.Group(ctx, B("g3"))
	mustIs(t, err, store.ErrGroupNotFound)
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeleteGroup(ctx, B("g3")) })
	mustIs(t, err, store.ErrGroupNotFound)
}

func testGroupBlobs(t *testing.T, s store.Store) {
	gid := B("group")
	err := s.Update(ctx, func(tx store.Tx) error { return tx.PutGroupBlob(ctx, gid, B("k"), B("v")) })
	mustIs(t, err, store.ErrGroupNotFound)

	update(t, s, func(tx store.Tx) error {
		if err := tx.PutGroup(ctx, store.Group{ID: gid, Epoch: 1, State: B("state")}); err != nil {
			return err
		}
		for _, kv := range [][2]string{{"ratchet/2", "r2"}, {"ratchet/1", "r1"}, {"tree", "t"}, {"empty", ""}} {
			if err := tx.PutGroupBlob(ctx, gid, B(kv[0]), B(kv[1])); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.PutGroupBlob(ctx, gid, B("ratchet/1"), B("r1-next")) })
	v, err := s.GroupBlob(ctx, gid, B("ratchet/1"))
	noErr(t, err)
	if string(v) != "r1-next" {
		t.Fatalf("GroupBlob = %q", v)
	}
	v, err = s.GroupBlob(ctx, gid, B("empty"))
	noErr(t, err)
	if v == nil || len(v) != 0 {
		t.Fatalf("empty blob = %#v, want non-nil empty", v)
	}
	bl, err := s.GroupBlobs(ctx, gid)
	noErr(t, err)
	want := []string{"empty=", "ratchet/1=r1-next", "ratchet/2=r2", "tree=t"}
	if len(bl) != len(want) {
		t.Fatalf("GroupBlobs = %v", bl)
	}
	for i, b := range bl {
		if got := string(b.Key) + "=" + string(b.Value); got != want[i] {
			t.Errorf("GroupBlobs[%d] = %s, want %s", i, got, want[i])
		}
	}
	update(t, s, func(tx store.Tx) error { return tx.DeleteGroupBlob(ctx, gid, B("tree")) })
	_, err = s.GroupBlob(ctx, gid, B("tree"))
	mustIs(t, err, store.ErrGroupBlobNotFound)
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeleteGroupBlob(ctx, gid, B("tree")) })
	mustIs(t, err, store.ErrGroupBlobNotFound)

	// Deleting the group deletes its blobs; a new group of the same id
	// starts empty.
	update(t, s, func(tx store.Tx) error { return tx.DeleteGroup(ctx, gid) })
	update(t, s, func(tx store.Tx) error { return tx.PutGroup(ctx, store.Group{ID: gid, Epoch: 0, State: B("s")}) })
	bl, err = s.GroupBlobs(ctx, gid)
	noErr(t, err)
	if len(bl) != 0 {
		t.Fatalf("blobs survived DeleteGroup: %v", bl)
	}
}

func testEpochSecrets(t *testing.T, s store.Store) {
	gid := B("g")
	err := s.Update(ctx, func(tx store.Tx) error { return tx.PutEpochSecret(ctx, gid, 1, B("x")) })
	mustIs(t, err, store.ErrGroupNotFound)
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutGroup(ctx, store.Group{ID: gid, Epoch: 10, State: B("s")}); err != nil {
			return err
		}
		if err := tx.PutGroup(ctx, store.Group{ID: B("other"), Epoch: 10, State: B("s")}); err != nil {
			return err
		}
		for e := uint64(0); e < 10; e++ {
			if err := tx.PutEpochSecret(ctx, gid, e, B(fmt.Sprint("secret-", e))); err != nil {
				return err
			}
		}
		return tx.PutEpochSecret(ctx, B("other"), 1, B("other-1"))
	})
	v, err := s.EpochSecret(ctx, gid, 4)
	noErr(t, err)
	if string(v) != "secret-4" {
		t.Fatalf("EpochSecret = %q", v)
	}
	var n int
	update(t, s, func(tx store.Tx) (err error) { n, err = tx.PruneEpochSecrets(ctx, gid, 7); return err })
	if n != 7 {
		t.Fatalf("PruneEpochSecrets = %d, want 7", n)
	}
	for e := uint64(0); e < 10; e++ {
		_, err := s.EpochSecret(ctx, gid, e)
		if (err == nil) != (e >= 7) {
			t.Errorf("epoch %d after prune: %v", e, err)
		}
	}
	if _, err := s.EpochSecret(ctx, B("other"), 1); err != nil {
		t.Fatalf("prune touched another group: %v", err)
	}
	update(t, s, func(tx store.Tx) error { return tx.DeleteGroup(ctx, gid) })
	_, err = s.EpochSecret(ctx, gid, 8)
	mustIs(t, err, store.ErrEpochSecretNotFound)
}

func testPSKs(t *testing.T, s store.Store) {
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutExternalPSK(ctx, B("ext-1"), B("psk-one")); err != nil {
			return err
		}
		if err := tx.PutExternalPSK(ctx, B("ext-1"), B("psk-one-b")); err != nil {
			return err
		}
		for e := uint64(1); e <= 5; e++ {
			if err := tx.PutResumptionPSK(ctx, B("gone-group"), e, B(fmt.Sprint("res-", e))); err != nil {
				return err
			}
		}
		return nil
	})
	v, err := s.ExternalPSK(ctx, B("ext-1"))
	noErr(t, err)
	if string(v) != "psk-one-b" {
		t.Fatalf("ExternalPSK = %q", v)
	}
	v, err = s.ResumptionPSK(ctx, B("gone-group"), 3)
	noErr(t, err)
	if string(v) != "res-3" {
		t.Fatalf("ResumptionPSK = %q", v)
	}
	var n int
	update(t, s, func(tx store.Tx) (err error) { n, err = tx.PruneResumptionPSKs(ctx, B("gone-group"), 4); return err })
	if n != 3 {
		t.Fatalf("PruneResumptionPSKs = %d, want 3", n)
	}
	_, err = s.ResumptionPSK(ctx, B("gone-group"), 3)
	mustIs(t, err, store.ErrPSKNotFound)
	update(t, s, func(tx store.Tx) error { return tx.DeleteExternalPSK(ctx, B("ext-1")) })
	_, err = s.ExternalPSK(ctx, B("ext-1"))
	mustIs(t, err, store.ErrPSKNotFound)
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeleteExternalPSK(ctx, B("ext-1")) })
	mustIs(t, err, store.ErrPSKNotFound)
}

func eqChannel(t testing.TB, got, want store.Channel) {
	t.Helper()
	if got.ID != want.ID || !bytes.Equal(got.GroupID, want.GroupID) || got.Name != want.Name || got.Public != want.Public ||
		!got.CreatedAt.Equal(want.CreatedAt) || !bytes.Equal(got.Extra, want.Extra) {
		t.Fatalf("channel = %+v, want %+v", got, want)
	}
}

func testChannels(t *testing.T, s store.Store) {
	cs := []store.Channel{
		{ID: "general", GroupID: B("g1"), Name: "General", Public: true, CreatedAt: t0, Extra: json.RawMessage(`{"topic":"hi"}`)},
		{ID: "dm", GroupID: B("g2"), Name: "", Public: false, CreatedAt: t0.Add(time.Minute)},
	}
	update(t, s, func(tx store.Tx) error {
		for _, c := range cs {
			if err := tx.PutChannel(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.Channels(ctx)
	noErr(t, err)
	if len(got) != 2 {
		t.Fatalf("Channels = %+v", got)
	}
	eqChannel(t, got[0], cs[1]) // ordered by id
	eqChannel(t, got[1], cs[0])
	c := cs[0]
	c.Name, c.Public, c.Extra = "Renamed", false, nil
	update(t, s, func(tx store.Tx) error { return tx.PutChannel(ctx, c) })
	one, err := s.Channel(ctx, "general")
	noErr(t, err)
	eqChannel(t, one, c)
	update(t, s, func(tx store.Tx) error { return tx.DeleteChannel(ctx, "general") })
	_, err = s.Channel(ctx, "general")
	mustIs(t, err, store.ErrChannelNotFound)
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeleteChannel(ctx, "general") })
	mustIs(t, err, store.ErrChannelNotFound)
}

func testMessages(t *testing.T, s store.Store) {
	_, err := appendMsg(s, store.Message{ChannelID: "c", ID: "m0"})
	mustIs(t, err, store.ErrChannelNotFound)
	update(t, s, func(tx store.Tx) error { return tx.PutChannel(ctx, store.Channel{ID: "c", GroupID: B("g")}) })
	update(t, s, func(tx store.Tx) error { return tx.PutChannel(ctx, store.Channel{ID: "other", GroupID: B("g")}) })
	var all []store.Message
	for i := 1; i <= 10; i++ {
		m := store.Message{
			ChannelID: "c", ID: fmt.Sprint("m", i), Sender: "bob", Timestamp: t0.Add(time.Duration(i) * time.Second),
			Body: B(fmt.Sprint("hello ", i)), ReceivedAt: t0.Add(time.Duration(i)*time.Second + 1),
		}
		if i > 1 {
			m.ReplyTo = fmt.Sprint("m", i-1)
		}
		seq, err := appendMsg(s, m)
		noErr(t, err)
		if seq != uint64(i) {
			t.Fatalf("seq = %d, want %d", seq, i)
		}
		m.Seq = seq
		all = append(all, m)
	}
	if seq, err := appendMsg(s, store.Message{ChannelID: "other", ID: "m1"}); err != nil || seq != 1 {
		t.Fatalf("other channel: seq %d, err %v", seq, err)
	}
	_, err = appendMsg(s, store.Message{ChannelID: "c", ID: "m3"})
	mustIs(t, err, store.ErrExists)

	pages := []struct {
		name        string
		before      bool
		bound       uint64
		limit       int
		first, last int // 1-based seqs expected; 0,0 = empty
	}{
		{"after 0", false, 0, 3, 1, 3},
		{"after 3", false, 3, 3, 4, 6},
		{"after 9", false, 9, 3, 10, 10},
		{"after 10", false, 10, 3, 0, 0},
		{"after 100", false, 100, 3, 0, 0},
		{"all", false, 0, 100, 1, 10},
		{"latest", true, 0, 3, 8, 10},
		{"before 8", true, 8, 3, 5, 7},
		{"before 3", true, 3, 5, 1, 2},
		{"before 1", true, 1, 5, 0, 0},
		{"before 100", true, 100, 2, 9, 10},
	}
	for _, p := range pages {
		var got []store.Message
		var err error
		if p.before {
			got, err = s.MessagesBefore(ctx, "c", p.bound, p.limit)
		} else {
			got, err = s.Messages(ctx, "c", p.bound, p.limit)
		}
		noErr(t, err)
		var want []store.Message
		if p.first != 0 {
			want = all[p.first-1 : p.last]
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d messages, want %d", p.name, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.ChannelID != w.ChannelID || g.Seq != w.Seq || g.ID != w.ID || g.Sender != w.Sender || !g.Timestamp.Equal(w.Timestamp) ||
				!bytes.Equal(g.Body, w.Body) || g.ReplyTo != w.ReplyTo || !g.ReceivedAt.Equal(w.ReceivedAt) {
				t.Fatalf("%s: [%d] = %+v, want %+v", p.name, i, g, w)
			}
		}
	}
	update(t, s, func(tx store.Tx) error { return tx.DeleteChannel(ctx, "c") })
	got, err := s.Messages(ctx, "c", 0, 100)
	noErr(t, err)
	if len(got) != 0 {
		t.Fatalf("history survived DeleteChannel: %d", len(got))
	}
	// A channel re-created with the same id starts at 1.
	update(t, s, func(tx store.Tx) error { return tx.PutChannel(ctx, store.Channel{ID: "c", GroupID: B("g")}) })
	if seq, err := appendMsg(s, store.Message{ChannelID: "c", ID: "m1"}); err != nil || seq != 1 {
		t.Fatalf("re-created channel: seq %d, err %v", seq, err)
	}
}

func appendMsg(s store.Store, m store.Message) (seq uint64, err error) {
	err = s.Update(ctx, func(tx store.Tx) (err error) { seq, err = tx.AppendMessage(ctx, m); return err })
	return seq, err
}

func testNotFound(t *testing.T, s store.Store) {
	reads := []struct {
		name string
		fn   func() error
		want error
	}{
		{"Identity", func() error { _, err := s.Identity(ctx); return err }, store.ErrIdentityNotFound},
		{"KeyPackage", func() error { _, err := s.KeyPackage(ctx, B("r")); return err }, store.ErrKeyPackageNotFound},
		{"Group", func() error { _, err := s.Group(ctx, B("g")); return err }, store.ErrGroupNotFound},
		{"GroupBlob", func() error { _, err := s.GroupBlob(ctx, B("g"), B("k")); return err }, store.ErrGroupBlobNotFound},
		{"EpochSecret", func() error { _, err := s.EpochSecret(ctx, B("g"), 0); return err }, store.ErrEpochSecretNotFound},
		{"ExternalPSK", func() error { _, err := s.ExternalPSK(ctx, B("p")); return err }, store.ErrPSKNotFound},
		{"ResumptionPSK", func() error { _, err := s.ResumptionPSK(ctx, B("g"), 0); return err }, store.ErrPSKNotFound},
		{"Channel", func() error { _, err := s.Channel(ctx, "c"); return err }, store.ErrChannelNotFound},
	}
	for _, r := range reads {
		err := r.fn()
		if !errors.Is(err, r.want) || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: err = %v, want %v wrapping ErrNotFound", r.name, err, r.want)
		}
	}
	// Empty lists are not errors.
	if bl, err := s.GroupBlobs(ctx, B("g")); err != nil || len(bl) != 0 {
		t.Errorf("GroupBlobs = %v, %v", bl, err)
	}
	if m, err := s.Messages(ctx, "c", 0, 10); err != nil || len(m) != 0 {
		t.Errorf("Messages = %v, %v", m, err)
	}
	if n, err := s.CountKeyPackages(ctx, t0); err != nil || n != (store.KeyPackageCount{}) {
		t.Errorf("CountKeyPackages = %v, %v", n, err)
	}
}

func testInvalid(t *testing.T, s store.Store) {
	good := NewKeyPackage("k", t0, false)
	noRef, noInit, noExp := good, good, good
	noRef.Ref, noInit.InitPrivateKey, noExp.NotAfter = nil, nil, time.Time{}
	cases := []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"identity without private key", func(tx store.Tx) error {
			return tx.PutIdentity(ctx, store.Identity{SignaturePublicKey: B("p"), CipherSuite: 1})
		}},
		{"identity suite 0", func(tx store.Tx) error {
			return tx.PutIdentity(ctx, store.Identity{SignaturePrivateKey: B("k"), SignaturePublicKey: B("p")})
		}},
		{"identity without device id", func(tx store.Tx) error {
			id := NewIdentity("alice")
			id.DeviceID = nil
			return tx.PutIdentity(ctx, id)
		}},
		{"identity with a user id but no certificate", func(tx store.Tx) error {
			id := NewIdentity("alice")
			id.Certificate = nil
			return tx.PutIdentity(ctx, id)
		}},
		{"identity with a private identity but no user", func(tx store.Tx) error {
			id := NewIdentity("")
			id.Credential, id.Certificate = nil, nil
			return tx.PutIdentity(ctx, id)
		}},
		{"revocation with a short identity key", func(tx store.Tx) error {
			return tx.PutRevocation(ctx, store.Revocation{IdentityKey: B("k"), DeviceID: B("device-id-16byte"), Revocation: B("r")})
		}},
		{"empty revocation", func(tx store.Tx) error {
			return tx.PutRevocation(ctx, store.Revocation{IdentityKey: bytes.Repeat(B("k"), 32), DeviceID: B("device-id-16byte")})
		}},
		{"key package without ref", func(tx store.Tx) error { return tx.PutKeyPackages(ctx, noRef) }},
		{"key package without init key", func(tx store.Tx) error { return tx.PutKeyPackages(ctx, noInit) }},
		{"key package without expiry", func(tx store.Tx) error { return tx.PutKeyPackages(ctx, noExp) }},
		{"consume empty ref", func(tx store.Tx) error { return tx.ConsumeKeyPackage(ctx, nil) }},
		{"group without id", func(tx store.Tx) error { return tx.PutGroup(ctx, store.Group{State: B("s")}) }},
		{"group without state", func(tx store.Tx) error { return tx.PutGroup(ctx, store.Group{ID: B("g")}) }},
		{"blob without key", func(tx store.Tx) error { return tx.PutGroupBlob(ctx, B("g"), nil, B("v")) }},
		{"external psk without id", func(tx store.Tx) error { return tx.PutExternalPSK(ctx, nil, B("v")) }},
		{"channel without id", func(tx store.Tx) error { return tx.PutChannel(ctx, store.Channel{GroupID: B("g")}) }},
		{"channel without group", func(tx store.Tx) error { return tx.PutChannel(ctx, store.Channel{ID: "c"}) }},
		{"channel bad json", func(tx store.Tx) error {
			return tx.PutChannel(ctx, store.Channel{ID: "c", GroupID: B("g"), Extra: json.RawMessage(`{nope`)})
		}},
		{"message without id", func(tx store.Tx) error {
			_, err := tx.AppendMessage(ctx, store.Message{ChannelID: "c"})
			return err
		}},
		{"messages limit 0", func(tx store.Tx) error { _, err := tx.Messages(ctx, "c", 0, 0); return err }},
		{"messages before limit -1", func(tx store.Tx) error { _, err := tx.MessagesBefore(ctx, "c", 0, -1); return err }},
		{"read empty group id", func(tx store.Tx) error { _, err := tx.Group(ctx, nil); return err }},
	}
	for _, c := range cases {
		err := s.Update(ctx, c.fn)
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", c.name, err)
		}
	}
}

func testTxIsolation(t *testing.T, s store.Store) {
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutGroup(ctx, store.Group{ID: B("g"), Epoch: 1, State: B("s")}); err != nil {
			return err
		}
		// The tx sees its own write…
		if _, err := tx.Group(ctx, B("g")); err != nil {
			return fmt.Errorf("tx does not see its own write: %w", err)
		}
		// …the Store does not, and reading it here does not deadlock.
		if _, err := s.Group(ctx, B("g")); !errors.Is(err, store.ErrGroupNotFound) {
			return fmt.Errorf("store sees an uncommitted write: %v", err)
		}
		return nil
	})
	if _, err := s.Group(ctx, B("g")); err != nil {
		t.Fatalf("committed write not visible: %v", err)
	}
}

func testTxDone(t *testing.T, s store.Store) {
	var leaked store.Tx
	update(t, s, func(tx store.Tx) error { leaked = tx; return nil })
	err := leaked.PutExternalPSK(ctx, B("p"), B("v"))
	mustIs(t, err, store.ErrTxDone)
	_, err = leaked.ExternalPSK(ctx, B("p"))
	mustIs(t, err, store.ErrTxDone)
	_, err = s.ExternalPSK(ctx, B("p"))
	mustIs(t, err, store.ErrPSKNotFound)
}

func testTxPanic(t *testing.T, s store.Store) {
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic not propagated")
			}
		}()
		s.Update(ctx, func(tx store.Tx) error {
			if err := tx.PutExternalPSK(ctx, B("p"), B("v")); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	_, err := s.ExternalPSK(ctx, B("p"))
	mustIs(t, err, store.ErrPSKNotFound)
	// The store is still usable (the writer was released).
	update(t, s, func(tx store.Tx) error { return tx.PutExternalPSK(ctx, B("p"), B("v")) })
}

func testContext(t *testing.T, s store.Store) {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.Group(cctx, B("g"))
	mustIs(t, err, context.Canceled)
	err = s.Update(cctx, func(tx store.Tx) error { return tx.PutExternalPSK(cctx, B("p"), B("v")) })
	mustIs(t, err, context.Canceled)
	// Cancelled in the middle of an Update: nothing is kept.
	cctx, cancel = context.WithCancel(ctx)
	err = s.Update(cctx, func(tx store.Tx) error {
		if err := tx.PutExternalPSK(cctx, B("p"), B("v")); err != nil {
			return err
		}
		cancel()
		return nil
	})
	mustIs(t, err, context.Canceled)
	_, err = s.ExternalPSK(ctx, B("p"))
	mustIs(t, err, store.ErrPSKNotFound)
}

func testCopies(t *testing.T, s store.Store) {
	in := B("secret")
	update(t, s, func(tx store.Tx) error { return tx.PutExternalPSK(ctx, B("p"), in) })
	in[0] = 'X'
	out, err := s.ExternalPSK(ctx, B("p"))
	noErr(t, err)
	if string(out) != "secret" {
		t.Fatalf("store kept the caller's slice: %q", out)
	}
	out[0] = 'Y'
	out2, _ := s.ExternalPSK(ctx, B("p"))
	if string(out2) != "secret" {
		t.Fatalf("store returned its own slice: %q", out2)
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	const writers, perWriter = 4, 25
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutChannel(ctx, store.Channel{ID: "c", GroupID: B("g")}); err != nil {
			return err
		}
		return tx.PutGroup(ctx, store.Group{ID: B("g"), Epoch: 0, State: B("s")})
	})
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter+writers)
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				err := s.Update(ctx, func(tx store.Tx) error {
					if _, err := tx.AppendMessage(ctx, store.Message{ChannelID: "c", ID: fmt.Sprint(w, "/", i), Body: B("b")}); err != nil {
						return err
					}
					// Read-modify-write of the epoch: serialised Updates
					// make the final epoch exact.
					g, err := tx.Group(ctx, B("g"))
					if err != nil {
						return err
					}
					g.Epoch++
					if err := tx.PutGroup(ctx, g); err != nil {
						return err
					}
					return tx.PutGroupBlob(ctx, B("g"), B(fmt.Sprint("ratchet/", w)), B(fmt.Sprint(i)))
				})
				if err != nil {
					errs <- err
				}
			}
		}()
		go func() { // a reader alongside each writer
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if _, err := s.MessagesBefore(ctx, "c", 0, 5); err != nil {
					errs <- err
				}
				if _, err := s.Group(ctx, B("g")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	msgs, err := s.Messages(ctx, "c", 0, 1000)
	noErr(t, err)
	if len(msgs) != writers*perWriter {
		t.Fatalf("%d messages, want %d", len(msgs), writers*perWriter)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d", m.Seq, i)
		}
	}
	g, err := s.Group(ctx, B("g"))
	noErr(t, err)
	if g.Epoch != writers*perWriter {
		t.Fatalf("epoch = %d, want %d (lost update)", g.Epoch, writers*perWriter)
	}
}

func testClosed(t *testing.T, s store.Store) {
	noErr(t, s.Close())
	_, err := s.Identity(ctx)
	mustIs(t, err, store.ErrClosed)
	err = s.Update(ctx, func(tx store.Tx) error { return nil })
	mustIs(t, err, store.ErrClosed)
	noErr(t, s.Close()) // idempotent
}

// BenchmarkRatchetWrite measures the per-send durable write: one small
// ratchet blob replaced in one transaction.
func BenchmarkRatchetWrite(b *testing.B, open Open) {
	s := open(b)
	gid := B("group")
	update(b, s, func(tx store.Tx) error {
		return tx.PutGroup(ctx, store.Group{ID: gid, Epoch: 1, State: bytes.Repeat(B("s"), 4096)})
	})
	key, val := B("ratchet/sender/7"), bytes.Repeat(B("r"), 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		val[0] = byte(i)
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutGroupBlob(ctx, gid, key, val) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut100KeyPackages measures 100 key packages stored in one
// transaction (a typical top-up of the relay's directory), into a table kept
// at a steady size.
func BenchmarkPut100KeyPackages(b *testing.B, open Open) {
	s := open(b)
	kps := make([]store.KeyPackage, 100)
	for i := range kps {
		kps[i] = store.KeyPackage{
			KeyPackage: bytes.Repeat(B("k"), 300), InitPrivateKey: bytes.Repeat(B("i"), 32),
			LeafPrivateKey: bytes.Repeat(B("l"), 32), NotAfter: t0.Add(90 * 24 * time.Hour),
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		for i := range kps {
			kps[i].Ref = B(fmt.Sprintf("ref-%d-%d", n, i))
		}
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutKeyPackages(ctx, kps...) }); err != nil {
			b.Fatal(err)
		}
		// Keep the table at a steady size: consume them, untimed.
		b.StopTimer()
		update(b, s, func(tx store.Tx) error {
			for _, kp := range kps {
				if err := tx.ConsumeKeyPackage(ctx, kp.Ref); err != nil {
					return err
				}
			}
			return nil
		})
		b.StartTimer()
	}
}
