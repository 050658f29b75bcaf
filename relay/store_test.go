package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestStore is the storage suite, run on every backend.
func TestStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		now := time.Now()

		t.Run("challenges", func(t *testing.T) {
			c := Challenge{Challenge: []byte("c1"), UserID: "alice", SignatureKey: []byte("k"), Suite: 1, Expires: now.Add(time.Minute)}
			if err := st.PutChallenge(ctx, c); err != nil {
				t.Fatal(err)
			}
			got, err := st.TakeChallenge(ctx, c.Challenge, now)
			if err != nil || got.UserID != "alice" || string(got.SignatureKey) != "k" || got.Suite != 1 {
				t.Fatalf("take: %+v %v", got, err)
			}
			if _, err := st.TakeChallenge(ctx, c.Challenge, now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second take: %v", err)
			}
			c.Challenge = []byte("c2")
			st.PutChallenge(ctx, c)
			if _, err := st.TakeChallenge(ctx, c.Challenge, now.Add(2*time.Minute)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("expired take: %v", err)
			}
		})

		t.Run("identity and tokens", func(t *testing.T) {
			if _, err := st.IdentityKey(ctx, "bob"); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			if err := st.BindIdentity(ctx, "bob", []byte("kb"), 1, now); err != nil {
				t.Fatal(err)
			}
			if err := st.BindIdentity(ctx, "bob", []byte("kb"), 1, now); err != nil {
				t.Fatal(err)
			}
			if err := st.BindIdentity(ctx, "bob", []byte("other"), 1, now); !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("rebind: %v", err)
			}
			if k, err := st.IdentityKey(ctx, "bob"); err != nil || string(k) != "kb" {
				t.Fatal(k, err)
			}
			st.PutToken(ctx, []byte("h"), "bob", now.Add(time.Hour))
			if u, _, err := st.TokenUser(ctx, []byte("h"), now); err != nil || u != "bob" {
				t.Fatal(u, err)
			}
			if _, _, err := st.TokenUser(ctx, []byte("h"), now.Add(2*time.Hour)); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			if err := st.Prune(ctx, now.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := st.TokenUser(ctx, []byte("h"), now); !errors.Is(err, ErrNotFound) {
				t.Fatal("pruned token still there", err)
			}
		})

		t.Run("key packages", func(t *testing.T) {
			kp := func(i int) KeyPackage {
				return KeyPackage{Ref: fmt.Appendf(nil, "ref%d", i), Data: fmt.Appendf(nil, "kp%d", i)}
			}
			if _, _, err := st.ClaimKeyPackage(ctx, "carol"); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			if err := st.AddKeyPackages(ctx, "carol", []KeyPackage{kp(1), kp(2)}, &KeyPackage{Ref: []byte("lr1"), Data: []byte("last1")}, 3, now); err != nil {
				t.Fatal(err)
			}
			if err := st.AddKeyPackages(ctx, "carol", []KeyPackage{kp(3), kp(4)}, nil, 3, now); !errors.Is(err, ErrLimit) {
				t.Fatalf("over quota: %v", err)
			}
			if err := st.AddKeyPackages(ctx, "carol", []KeyPackage{kp(3), kp(1)}, nil, 10, now); !errors.Is(err, ErrExists) {
				t.Fatalf("duplicate: %v", err)
			}
			if n, lr, err := st.CountKeyPackages(ctx, "carol"); err != nil || n != 2 || !lr {
				t.Fatalf("count after failed adds: %d %v %v (all or nothing)", n, lr, err)
			}
			st.AddKeyPackages(ctx, "carol", nil, &KeyPackage{Ref: []byte("lr2"), Data: []byte("last2")}, 3, now)
			for i, want := range []string{"kp1", "kp2", "last2", "last2"} {
				d, lr, err := st.ClaimKeyPackage(ctx, "carol")
				if err != nil || string(d) != want || lr != (i >= 2) {
					t.Fatalf("claim %d: %q %v %v, want %q", i, d, lr, err, want)
				}
			}
			if n, lr, _ := st.CountKeyPackages(ctx, "carol"); n != 0 || !lr {
				t.Fatal(n, lr)
			}
		})

		t.Run("concurrent claims", func(t *testing.T) {
			var kps []KeyPackage
			for i := range 20 {
				kps = append(kps, KeyPackage{Ref: fmt.Appendf(nil, "dref%d", i), Data: fmt.Appendf(nil, "d%d", i)})
			}
			if err := st.AddKeyPackages(ctx, "dave", kps, &KeyPackage{Ref: []byte("dlr"), Data: []byte("dlast")}, 100, now); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			for range 30 {
				wg.Go(func() {
					d, _, err := st.ClaimKeyPackage(ctx, "dave")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					seen[string(d)]++
					mu.Unlock()
				})
			}
			wg.Wait()
			for k, n := range seen {
				if k != "dlast" && n != 1 {
					t.Errorf("%s handed out %d times", k, n)
				}
			}
			if seen["dlast"] != 10 || len(seen) != 21 {
				t.Errorf("claims: %v", seen)
			}
		})

		t.Run("log, commits and access", func(t *testing.T) {
			gid := []byte("group-1")
			if err := st.CreateGroup(ctx, gid, "alice", 0, now); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateGroup(ctx, gid, "bob", 0, now); !errors.Is(err, ErrExists) {
				t.Fatal(err)
			}
			app := func(user string, epoch uint64) (int64, uint64, error) {
				return st.Append(ctx, Message{GroupID: gid, Kind: "application", Epoch: epoch, Sender: user, Data: []byte(user), ReceivedAt: now})
			}
			commit := func(user string, epoch uint64, added, removed []string) (int64, uint64, error) {
				return st.Append(ctx, Message{GroupID: gid, Kind: "commit", Epoch: epoch, Sender: user, Data: []byte("c"), ReceivedAt: now, Added: added, Removed: removed})
			}
			if seq, _, err := app("alice", 0); err != nil || seq != 1 {
				t.Fatal(seq, err)
			}
			if _, _, err := app("bob", 0); !errors.Is(err, ErrForbidden) {
				t.Fatalf("non-member post: %v", err)
			}
			if _, _, err := st.Append(ctx, Message{GroupID: []byte("nope"), Kind: "application", Sender: "alice", Data: []byte("x")}); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			seq, ep, err := commit("alice", 0, []string{"bob"}, nil)
			if err != nil || seq != 2 || ep != 1 {
				t.Fatalf("commit: %d %d %v", seq, ep, err)
			}
			if _, ep, err := commit("alice", 0, nil, nil); !errors.Is(err, ErrCommitConflict) || ep != 1 {
				t.Fatalf("second commit for epoch 0: %v (epoch %d)", err, ep)
			}
			if _, ep, err := commit("bob", 5, nil, nil); !errors.Is(err, ErrCommitConflict) || ep != 1 {
				t.Fatalf("commit for a future epoch: %v (epoch %d)", err, ep)
			}
			app("bob", 1)                                          // 3
			commit("bob", 1, []string{"carol"}, []string{"alice"}) // 4
			if _, _, err := app("alice", 2); !errors.Is(err, ErrForbidden) {
				t.Fatalf("removed member posts: %v", err)
			}
			app("carol", 2) // 5
			seqs := func(user string, after int64) []int64 {
				ms, err := st.Messages(ctx, gid, user, after, 100)
				if err != nil {
					t.Fatalf("%s reads: %v", user, err)
				}
				var out []int64
				for _, m := range ms {
					out = append(out, m.Seq)
				}
				return out
			}
			for _, c := range []struct {
				user  string
				after int64
				want  string
			}{{"alice", 0, "[1 2 3 4]"}, {"bob", 0, "[2 3 4 5]"}, {"carol", 0, "[4 5]"}, {"carol", 4, "[5]"}, {"bob", 5, "[]"}} {
				if got := fmt.Sprint(seqs(c.user, c.after)); got != c.want {
					t.Errorf("%s after %d sees %s, want %s", c.user, c.after, got, c.want)
				}
			}
			if _, err := st.Messages(ctx, gid, "mallory", 0, 10); !errors.Is(err, ErrForbidden) {
				t.Fatal(err)
			}
			ms, _ := st.Messages(ctx, gid, "bob", 0, 2)
			if len(ms) != 2 || ms[0].Kind != "commit" || ms[0].Sender != "alice" || ms[1].Kind != "application" || ms[1].Epoch != 1 {
				t.Fatalf("entries: %+v", ms)
			}
			g, err := st.Group(ctx, gid)
			if err != nil || g.Epoch != 2 || g.LastSeq != 5 || fmt.Sprint(g.Members) != "[bob carol]" {
				t.Fatalf("group: %+v %v", g, err)
			}
			a, _ := st.Access(ctx, gid, "alice")
			if !a.Removed || a.ToSeq != 4 {
				t.Fatalf("alice access %+v", a)
			}
			// Re-added: a fresh window from the adding commit.
			commit("bob", 2, []string{"alice"}, nil) // 6
			if got := fmt.Sprint(seqs("alice", 4)); got != "[6]" {
				t.Errorf("re-added alice sees %s", got)
			}

			// Cursors.
			if c, err := st.Cursor(ctx, gid, "bob"); err != nil || c != 0 {
				t.Fatal(c, err)
			}
			st.SetCursor(ctx, gid, "bob", 4)
			st.SetCursor(ctx, gid, "bob", 5)
			if c, _ := st.Cursor(ctx, gid, "bob"); c != 5 {
				t.Fatal(c)
			}

			// GroupInfo: latest only, never ahead of the relay's epoch.
			if _, _, err := st.GroupInfo(ctx, gid); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			if err := st.PutGroupInfo(ctx, gid, []byte("gi3"), 3); err != nil {
				t.Fatal(err)
			}
			if err := st.PutGroupInfo(ctx, gid, []byte("gi2"), 2); !errors.Is(err, ErrStale) {
				t.Fatal(err)
			}
			if err := st.PutGroupInfo(ctx, gid, []byte("gi4"), 4); !errors.Is(err, ErrStale) {
				t.Fatal(err)
			}
			if gi, e, err := st.GroupInfo(ctx, gid); err != nil || string(gi) != "gi3" || e != 3 {
				t.Fatal(gi, e, err)
			}
		})

		t.Run("welcomes", func(t *testing.T) {
			ids, err := st.AddWelcome(ctx, Welcome{Sender: "alice", GroupID: []byte("g"), Welcome: []byte("w"), Invite: []byte("i"), CreatedAt: now}, []string{"bob", "carol"})
			if err != nil || len(ids) != 2 {
				t.Fatal(ids, err)
			}
			ws, err := st.Welcomes(ctx, "bob", 10)
			if err != nil || len(ws) != 1 || ws[0].ID != ids[0] || ws[0].Sender != "alice" || string(ws[0].Invite) != "i" || ws[0].RatchetTree != nil {
				t.Fatalf("%+v %v", ws, err)
			}
			if err := st.DeleteWelcome(ctx, "bob", ids[1]); !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleting another's welcome: %v", err)
			}
			if err := st.DeleteWelcome(ctx, "bob", ids[0]); err != nil {
				t.Fatal(err)
			}
			if ws, _ := st.Welcomes(ctx, "bob", 10); len(ws) != 0 {
				t.Fatal(ws)
			}
		})

		t.Run("concurrent commits", func(t *testing.T) {
			gid := []byte("race")
			st.CreateGroup(ctx, gid, "alice", 0, now)
			const epochs, racers = 10, 6
			for e := range uint64(epochs) {
				var wg sync.WaitGroup
				var mu sync.Mutex
				won := 0
				for range racers {
					wg.Go(func() {
						_, _, err := st.Append(ctx, Message{GroupID: gid, Kind: "commit", Epoch: e, Sender: "alice", Data: []byte("c"), ReceivedAt: now})
						switch {
						case err == nil:
							mu.Lock()
							won++
							mu.Unlock()
						case !errors.Is(err, ErrCommitConflict):
							t.Error(err)
						}
					})
				}
				wg.Wait()
				if won != 1 {
					t.Fatalf("epoch %d: %d commits accepted", e, won)
				}
			}
		})
	})
}
