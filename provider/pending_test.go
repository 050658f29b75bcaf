package provider_test

import (
	"testing"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/provider"
)

// twoMembers makes a group of alice and bob, both on SQLite directories.
func twoMembers(t *testing.T) (alice, bob *provider.Provider, bobDir string, gid []byte) {
	t.Helper()
	bobDir = t.TempDir()
	alice, bob = open(t, t.TempDir(), "alice"), open(t, bobDir, "bob")
	kps, err := bob.GenerateKeyPackages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if gid, err = alice.CreateGroup(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	res, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{keyPackage(t, enc(kps[0]))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
		t.Fatal(err)
	}
	return alice, bob, bobDir, gid
}

// TestPendingCommitSurvivesRestart: a commit made before a restart is found
// again with PendingCommit, byte for byte, and merges.
func TestPendingCommitSurvivesRestart(t *testing.T) {
	alice, bob, bobDir, gid := twoMembers(t)
	pc, err := bob.Commit(ctx, gid, mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sent := marshal(t, pc.Result.Commit)
	bob.Close()

	bob = open(t, bobDir, "bob")
	got, err := bob.PendingCommit(ctx, gid)
	if err != nil || got == nil {
		t.Fatalf("pending commit after restart: %v, %v", got, err)
	}
	if marshal(t, got.Result.Commit) != sent {
		t.Fatal("stored pending commit differs from the one sent")
	}
	receive(t, alice, gid, sent)
	if err := bob.MergeCommit(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again, err := bob.PendingCommit(ctx, gid); err != nil || again != nil {
		t.Fatalf("pending commit after merge: %v, %v", again, err)
	}
	if epochOf(t, bob, gid) != epochOf(t, alice, gid) {
		t.Fatal("epochs differ after merge")
	}
	if got := receive(t, alice, gid, encrypt(t, bob, gid, "after merge")); got != "after merge" {
		t.Fatalf("alice got %q", got)
	}
}

// TestPendingCommitEchoAndDiscard: the DS handing back our own commit merges
// it; another member's commit winning discards ours.
func TestPendingCommitEchoAndDiscard(t *testing.T) {
	alice, bob, bobDir, gid := twoMembers(t)
	pc, err := bob.Commit(ctx, gid, mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sent := marshal(t, pc.Result.Commit)
	bob.Close()
	bob = open(t, bobDir, "bob")
	receive(t, alice, gid, sent)
	m, _ := mls.UnmarshalMessage(mustDec(t, sent))
	res, err := bob.Process(ctx, gid, m)
	if err != nil {
		t.Fatalf("own commit echoed after restart: %v", err)
	}
	if res.ContentType != mls.ContentTypeCommit || res.State.Epoch() != epochOf(t, alice, gid) {
		t.Fatalf("echo: %v at epoch %d", res.ContentType, res.State.Epoch())
	}

	// Both commit; alice's is accepted first.
	if _, err := bob.Commit(ctx, gid, mls.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	ares, err := alice.CommitNow(ctx, gid, mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, bob, gid, marshal(t, ares.Commit))
	if p, err := bob.PendingCommit(ctx, gid); err != nil || p != nil {
		t.Fatalf("losing pending commit not discarded: %v, %v", p, err)
	}
	if epochOf(t, bob, gid) != epochOf(t, alice, gid) {
		t.Fatal("epochs differ")
	}
}

// TestPendingCommitSeenAfterReceiving: a received message lets the
// provider remember that no commit is pending; a commit made after it is
// still found when the delivery service echoes it (the remembered "none"
// must not outlive the commit).
func TestPendingCommitSeenAfterReceiving(t *testing.T) {
	alice, bob, _, gid := twoMembers(t)
	if got := receive(t, bob, gid, encrypt(t, alice, gid, "before")); got != "before" {
		t.Fatalf("bob got %q", got)
	}
	pc, err := bob.Commit(ctx, gid, mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := receive(t, bob, gid, encrypt(t, alice, gid, "meanwhile")); got != "meanwhile" {
		t.Fatalf("bob got %q", got)
	}
	sent := marshal(t, pc.Result.Commit)
	receive(t, alice, gid, sent)
	m, _ := mls.UnmarshalMessage(mustDec(t, sent))
	res, err := bob.Process(ctx, gid, m)
	if err != nil {
		t.Fatalf("own commit echoed after receiving: %v", err)
	}
	if res.ContentType != mls.ContentTypeCommit || res.State.Epoch() != epochOf(t, alice, gid) {
		t.Fatalf("echo: %v at epoch %d", res.ContentType, res.State.Epoch())
	}
	if got := receive(t, alice, gid, encrypt(t, bob, gid, "after")); got != "after" {
		t.Fatalf("alice got %q", got)
	}
}
