package relay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
)

// TestVerifyConcurrentProposals: proposals verified against the same state
// at once are all ordered and all cached (the state is compared and
// swapped in the ordering transaction, and verified again on a change), so
// a commit including all of them by reference is accepted.
func TestVerifyConcurrentProposals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{Rate: 1e6, Burst: 1e6})
		alice := newIdent(t, "alice")
		ca := login(t, base, alice)
		var others []*ident
		for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
			others = append(others, newIdent(t, n))
		}
		gid := []byte("concurrent proposals")
		gp := "/v1/groups/" + gidPath(gid)
		mg := setupGroup(t, ca, gid, alice, others...)
		msgs := make([][]byte, len(others))
		for i, id := range others {
			m, _, err := mg.g[id].ProposeUpdate()
			if err != nil {
				t.Fatal(err)
			}
			msgs[i] = mlsWire(t, m)
		}
		var wg sync.WaitGroup
		for i, id := range others {
			c := login(t, base, id)
			wg.Go(func() {
				if r := c.do("POST", gp+"/messages", map[string]any{"message": msgs[i]}); r.status != 200 {
					t.Errorf("%s's proposal: %d %s", id, r.status, r.raw)
				}
			})
		}
		wg.Wait()
		g := mg.g[alice]
		for _, m := range msgs {
			p, err := g.ProcessBytes(m)
			if err != nil {
				t.Fatal(err)
			}
			g = p.State
		}
		mg.g[alice] = g
		c := mg.commit(alice, mls.CommitOptions{})
		if n := len(c.res.Commit.PublicMessage.Content.Commit.Proposals); n != len(others) {
			t.Fatalf("the commit holds %d proposals", n)
		}
		if r := ca.postCommit(gid, c); r.status != 200 {
			t.Fatalf("commit of the concurrent proposals: %d %s", r.status, r.raw)
		}
	})
}

// TestVerifyLegacyGroup: a group without public state (registered before
// migration 3) can no longer order handshakes, and has no tree hash.
func TestVerifyLegacyGroup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice := newIdent(t, "alice")
		ca := login(t, base, alice)
		gid := []byte("legacy")
		gp := "/v1/groups/" + gidPath(gid)
		if err := st.CreateGroup(context.Background(), gid, alice.uid(), 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		mg := newMGroup(t, alice, gid)
		if r := ca.postCommit(gid, mg.commit(alice, mls.CommitOptions{})); r.status != 400 || r.code() != "invalid_commit" {
			t.Fatalf("commit to a legacy group: %d %s", r.status, r.raw)
		}
		if r := ca.must(200, "GET", gp, nil); r.body["tree_hash"] != nil || r.num("epoch") != 0 {
			t.Fatalf("legacy group: %s", r.raw)
		}
		ca.must(404, "GET", gp+"/epochs/0", nil)
		ca.must(400, "GET", gp+"/epochs/01", nil)
		ca.must(400, "GET", gp+"/epochs/-1", nil)
		ca.must(200, "POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, 0, mls.ContentTypeApplication)})
	})
}

// TestAppendVerifiedStale: the store refuses a handshake verified against
// a state that changed meanwhile, and appends nothing.
func TestAppendVerifiedStale(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		ps := st.(PublicStateStore)
		gid := []byte("cas")
		state := PublicState{Epoch: 0, Data: []byte("state 0"), TreeHash: []byte("t0"), ConfirmedTranscriptHash: []byte("c0")}
		if err := ps.CreateVerifiedGroup(ctx, VerifiedGroup{GroupID: gid, Creator: "alice", Members: []string{"alice"}, State: state}, time.Now()); err != nil {
			t.Fatal(err)
		}
		next := PublicState{Epoch: 1, Data: []byte("state 1"), TreeHash: []byte("t1"), ConfirmedTranscriptHash: []byte("c1")}
		m := Message{GroupID: gid, Kind: "commit", Epoch: 0, Sender: "alice", Data: []byte("c"), ReceivedAt: time.Now()}
		if _, _, err := ps.AppendVerified(ctx, m, 5, next, []byte("gi")); !errors.Is(err, ErrStateChanged) {
			t.Fatalf("stale base: %v", err)
		}
		if g, _ := st.Group(ctx, gid); g.Epoch != 0 || g.LastSeq != 0 {
			t.Fatalf("a refused append changed the group: %+v", g)
		}
		if _, _, err := ps.AppendVerified(ctx, m, 0, next, []byte("gi")); err != nil {
			t.Fatal(err)
		}
		cur, err := ps.PublicState(ctx, gid)
		if err != nil || cur.Epoch != 1 || cur.Version != 1 || string(cur.Data) != "state 1" || string(cur.TreeHash) != "t1" {
			t.Fatalf("state after the commit: %+v %v", cur, err)
		}
		if h, err := ps.EpochHashes(ctx, gid, 0); err != nil || string(h.ConfirmedTranscriptHash) != "c0" {
			t.Fatalf("epoch 0: %+v %v", h, err)
		}
		if gi, epoch, err := st.GroupInfo(ctx, gid); err != nil || string(gi) != "gi" || epoch != 1 {
			t.Fatalf("group info: %q %d %v", gi, epoch, err)
		}
	})
}

// TestVerifyRevokedUpdate: an Update a device proposed before its
// revocation cannot be committed afterwards: the relay refuses leaves of
// devices it knows to be revoked wherever they enter the tree.
func TestVerifyRevokedUpdate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
		ca, cb := login(t, base, alice), login(t, base, bob)
		gid := []byte("revoked update")
		gp := "/v1/groups/" + gidPath(gid)
		mg := setupGroup(t, ca, gid, alice, bob)
		m, next, err := mg.g[bob].ProposeUpdate()
		if err != nil {
			t.Fatal(err)
		}
		mg.g[bob] = next
		msg := mlsWire(t, m)
		cb.must(200, "POST", gp+"/messages", map[string]any{"message": msg})
		p, err := mg.g[alice].ProcessBytes(msg)
		if err != nil {
			t.Fatal(err)
		}
		mg.g[alice] = p.State
		login(t, base, bob.another(t, "bob-2")).must(200, "POST", "/v1/devices/revocations", map[string]any{"revocation": bob.revocation(t)})
		c := mg.commit(alice, mls.CommitOptions{})
		if r := ca.postCommit(gid, c); r.status != 400 || r.code() != "invalid_commit" || !strings.Contains(string(r.raw), "revoked") {
			t.Fatalf("committing a revoked device's update: %d %s", r.status, r.raw)
		}
		if r := ca.postCommit(gid, mg.commit(alice, mls.CommitOptions{SkipPending: true})); r.status != 200 {
			t.Fatalf("a commit without it: %d %s", r.status, r.raw)
		}
	})
}
