package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/relay/api"
)

// TestStore is the storage suite, run on every backend. The store trusts
// its caller (the server verifies certificates), so plain strings stand
// for user ids, device ids and certificates here.
func TestStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		now := time.Now()
		dev := func(user, device string, notBefore uint64) Device {
			return Device{UserID: user, DeviceID: device, IdentityKey: []byte("ik-" + user), Certificate: fmt.Appendf(nil, "cert-%s-%d", device, notBefore),
				SignatureKey: []byte("sk-" + device), NotBefore: notBefore}
		}
		login := func(d Device, tok string) error {
			return st.Login(ctx, d, []byte(tok), Session{UserID: d.UserID, DeviceID: d.DeviceID, SignatureKey: d.SignatureKey, Expires: now.Add(time.Hour)}, 3, now)
		}

		t.Run("challenges", func(t *testing.T) {
			c := Challenge{Challenge: []byte("c1"), Certificate: []byte("cert"), Expires: now.Add(time.Minute)}
			if err := st.PutChallenge(ctx, c); err != nil {
				t.Fatal(err)
			}
			got, err := st.TakeChallenge(ctx, c.Challenge, now)
			if err != nil || string(got.Certificate) != "cert" {
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

		t.Run("devices, sessions and revocations", func(t *testing.T) {
			if err := login(dev("bob", "b1", 10), "tok-b1"); err != nil {
				t.Fatal(err)
			}
			s, err := st.Session(ctx, []byte("tok-b1"), now)
			if err != nil || s.UserID != "bob" || s.DeviceID != "b1" || string(s.SignatureKey) != "sk-b1" {
				t.Fatalf("session: %+v %v", s, err)
			}
			if _, err := st.Session(ctx, []byte("tok-b1"), now.Add(2*time.Hour)); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			// An older certificate of the same device logs in but does not
			// replace the newer one in the directory.
			login(dev("bob", "b1", 20), "tok-b1b")
			login(dev("bob", "b1", 5), "tok-b1c")
			login(dev("bob", "b2", 1), "tok-b2")
			login(dev("bob", "b3", 1), "tok-b3")
			if err := login(dev("bob", "b4", 1), "tok-b4"); !errors.Is(err, ErrLimit) {
				t.Fatalf("fourth device of three allowed: %v", err)
			}
			devs, revs, err := st.Devices(ctx, "bob")
			if err != nil || len(devs) != 3 || len(revs) != 0 || string(devs[0].Certificate) != "cert-b1-20" || string(devs[0].IdentityKey) != "ik-bob" {
				t.Fatalf("devices: %+v %v %v", devs, revs, err)
			}
			if devs, _, _ := st.Devices(ctx, "nobody"); len(devs) != 0 {
				t.Fatal(devs)
			}
			if err := st.AddKeyPackages(ctx, "bob", "b2", []KeyPackage{{Ref: []byte("b2-1"), Data: []byte("kp")}}, &KeyPackage{Ref: []byte("b2-lr"), Data: []byte("lr")}, 10, now); err != nil {
				t.Fatal(err)
			}
			// Revoking b2: its tokens, key packages go; it can never log in again.
			rv := Revocation{UserID: "bob", DeviceID: "b2", IdentityKey: []byte("ik-bob"), Data: []byte("rev-b2")}
			if err := st.Revoke(ctx, rv, 2, now); err != nil {
				t.Fatal(err)
			}
			if err := st.Revoke(ctx, Revocation{UserID: "bob", DeviceID: "b2", IdentityKey: []byte("ik-bob"), Data: []byte("again")}, 2, now); err != nil {
				t.Fatalf("second revocation: %v", err)
			}
			if _, err := st.Session(ctx, []byte("tok-b2"), now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("revoked device's token: %v", err)
			}
			if r, _ := st.Revoked(ctx, "bob", "b2"); !r {
				t.Fatal("not revoked")
			}
			if err := login(dev("bob", "b2", 99), "tok-b2x"); !errors.Is(err, ErrRevoked) {
				t.Fatalf("revoked device logs in: %v", err)
			}
			if n, lr, _ := st.CountKeyPackages(ctx, "bob", "b2"); n != 0 || lr {
				t.Fatalf("revoked device's key packages: %d %v", n, lr)
			}
			if err := st.AddKeyPackages(ctx, "bob", "b2", []KeyPackage{{Ref: []byte("b2-2"), Data: []byte("kp")}}, nil, 10, now); !errors.Is(err, ErrRevoked) {
				t.Fatalf("revoked device publishes: %v", err)
			}
			// A revocation of a device never seen is kept and listed too.
			if err := st.Revoke(ctx, Revocation{UserID: "bob", DeviceID: "b9", IdentityKey: []byte("ik-bob"), Data: []byte("rev-b9")}, 2, now); err != nil {
				t.Fatal(err)
			}
			if err := st.Revoke(ctx, Revocation{UserID: "bob", DeviceID: "b8", IdentityKey: []byte("ik-bob"), Data: []byte("rev-b8")}, 2, now); !errors.Is(err, ErrLimit) {
				t.Fatalf("third revocation of two allowed: %v", err)
			}
			devs, revs, _ = st.Devices(ctx, "bob")
			if len(devs) != 2 || fmt.Sprintf("%s", revs) != "[rev-b2 rev-b9]" {
				t.Fatalf("after revocation: %+v %s", devs, revs)
			}
			// A revoked device no longer counts against the quota.
			if err := login(dev("bob", "b4", 1), "tok-b4"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Session(ctx, []byte("tok-b1"), now); err != nil {
				t.Fatalf("another device's token: %v", err)
			}
			if err := st.Prune(ctx, now.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Session(ctx, []byte("tok-b1"), now); !errors.Is(err, ErrNotFound) {
				t.Fatal("pruned token still there", err)
			}
		})

		t.Run("key packages", func(t *testing.T) {
			kp := func(i int) KeyPackage {
				return KeyPackage{Ref: fmt.Appendf(nil, "ref%d", i), Data: fmt.Appendf(nil, "kp%d", i)}
			}
			if _, err := st.ClaimKeyPackages(ctx, "carol"); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			login(dev("carol", "c1", 1), "tok-c1")
			login(dev("carol", "c2", 1), "tok-c2")
			login(dev("carol", "c3", 1), "tok-c3")
			if err := st.AddKeyPackages(ctx, "carol", "c0", []KeyPackage{kp(0)}, nil, 3, now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown device: %v", err)
			}
			if err := st.AddKeyPackages(ctx, "carol", "c1", []KeyPackage{kp(1), kp(2)}, &KeyPackage{Ref: []byte("lr1"), Data: []byte("last1")}, 3, now); err != nil {
				t.Fatal(err)
			}
			if err := st.AddKeyPackages(ctx, "carol", "c1", []KeyPackage{kp(3), kp(4)}, nil, 3, now); !errors.Is(err, ErrLimit) {
				t.Fatalf("over quota: %v", err)
			}
			if err := st.AddKeyPackages(ctx, "carol", "c1", []KeyPackage{kp(3), kp(1)}, nil, 10, now); !errors.Is(err, ErrExists) {
				t.Fatalf("duplicate: %v", err)
			}
			if n, lr, err := st.CountKeyPackages(ctx, "carol", "c1"); err != nil || n != 2 || !lr {
				t.Fatalf("count after failed adds: %d %v %v (all or nothing)", n, lr, err)
			}
			// The quota is per device.
			if err := st.AddKeyPackages(ctx, "carol", "c2", []KeyPackage{kp(5), kp(6), kp(7)}, nil, 3, now); err != nil {
				t.Fatal(err)
			}
			st.AddKeyPackages(ctx, "carol", "c1", nil, &KeyPackage{Ref: []byte("lr2"), Data: []byte("last2")}, 3, now)
			// One per device that has one (c3 has none), oldest first, then
			// each device's last resort.
			for i, want := range []string{"[c1:kp1 c2:kp5]", "[c1:kp2 c2:kp6]", "[c1:last2* c2:kp7]", "[c1:last2*]", "[c1:last2*]"} {
				kps, err := st.ClaimKeyPackages(ctx, "carol")
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, k := range kps {
					s := k.DeviceID + ":" + string(k.Data)
					if k.LastResort {
						s += "*"
					}
					got = append(got, s)
				}
				if fmt.Sprint(got) != want {
					t.Fatalf("claim %d: %v, want %s", i, got, want)
				}
			}
			if n, lr, _ := st.CountKeyPackages(ctx, "carol", "c1"); n != 0 || !lr {
				t.Fatal(n, lr)
			}
		})

		t.Run("concurrent claims", func(t *testing.T) {
			login(dev("dave", "d1", 1), "tok-d1")
			var kps []KeyPackage
			for i := range 20 {
				kps = append(kps, KeyPackage{Ref: fmt.Appendf(nil, "dref%d", i), Data: fmt.Appendf(nil, "d%d", i)})
			}
			if err := st.AddKeyPackages(ctx, "dave", "d1", kps, &KeyPackage{Ref: []byte("dlr"), Data: []byte("dlast")}, 100, now); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			for range 30 {
				wg.Go(func() {
					got, err := st.ClaimKeyPackages(ctx, "dave")
					if err != nil || len(got) != 1 {
						t.Error(got, err)
						return
					}
					mu.Lock()
					seen[string(got[0].Data)]++
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

		t.Run("revocation against logins", func(t *testing.T) {
			// Logins of a device racing its revocation: once the revocation
			// has committed, no token of the device is left, whatever the
			// interleaving.
			login(dev("erin", "e0", 1), "tok-e0")
			var wg sync.WaitGroup
			for i := range 12 {
				wg.Go(func() {
					err := st.Login(ctx, dev("erin", "e1", 1), fmt.Appendf(nil, "tok-e1-%d", i),
						Session{UserID: "erin", DeviceID: "e1", SignatureKey: []byte("k"), Expires: now.Add(time.Hour)}, 64, now)
					if err != nil && !errors.Is(err, ErrRevoked) {
						t.Error(err)
					}
				})
			}
			wg.Go(func() {
				if err := st.Revoke(ctx, Revocation{UserID: "erin", DeviceID: "e1", IdentityKey: []byte("ik-erin"), Data: []byte("r")}, 10, now); err != nil {
					t.Error(err)
				}
			})
			wg.Wait()
			for i := range 12 {
				if _, err := st.Session(ctx, fmt.Appendf(nil, "tok-e1-%d", i), now); !errors.Is(err, ErrNotFound) {
					t.Fatalf("token %d of the revoked device survived: %v", i, err)
				}
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
				return st.Append(ctx, Message{GroupID: gid, Kind: "application", Epoch: epoch, Sender: user, SenderDevice: user + "-d", Data: []byte(user), ReceivedAt: now})
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
			if _, ep, err := app("alice", 1); !errors.Is(err, ErrFutureEpoch) || ep != 0 {
				t.Fatalf("application message for a future epoch: %v (epoch %d)", err, ep)
			}
			if _, _, err := st.Append(ctx, Message{GroupID: gid, Kind: "proposal", Epoch: 1 << 40, Sender: "alice", Data: []byte("p"), ReceivedAt: now}); !errors.Is(err, ErrFutureEpoch) {
				t.Fatalf("proposal for a future epoch: %v", err)
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
				ms, err := st.Messages(ctx, gid, user, after, 100, 1<<20)
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
			}{{"alice", 0, "[1 2 3 4]"}, {"bob", 0, "[2 3 4 5]"}, {"carol", 0, "[4 5]"}, {"carol", 4, "[5]"}, {"bob", 5, "[]"},
				// Reads from inside and beyond the window's ends.
				{"alice", 3, "[4]"}, {"alice", 4, "[]"}, {"alice", 9, "[]"}, {"carol", 2, "[4 5]"}, {"carol", 3, "[4 5]"}, {"bob", 1, "[2 3 4 5]"}, {"bob", 3, "[4 5]"}} {
				if got := fmt.Sprint(seqs(c.user, c.after)); got != c.want {
					t.Errorf("%s after %d sees %s, want %s", c.user, c.after, got, c.want)
				}
			}
			if _, err := st.Messages(ctx, gid, "mallory", 0, 10, 1<<20); !errors.Is(err, ErrForbidden) {
				t.Fatal(err)
			}
			ms, _ := st.Messages(ctx, gid, "bob", 0, 2, 1<<20)
			if len(ms) != 2 || ms[0].Kind != "commit" || ms[0].Sender != "alice" || ms[1].Kind != "application" || ms[1].Epoch != 1 || ms[1].SenderDevice != "bob-d" {
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

			// Cursors, per device.
			if c, err := st.Cursor(ctx, gid, "bob", "b1"); err != nil || c != 0 {
				t.Fatal(c, err)
			}
			st.SetCursor(ctx, gid, "bob", "b1", 4)
			st.SetCursor(ctx, gid, "bob", "b1", 5)
			st.SetCursor(ctx, gid, "bob", "b4", 2)
			if c, _ := st.Cursor(ctx, gid, "bob", "b1"); c != 5 {
				t.Fatal(c)
			}
			if c, _ := st.Cursor(ctx, gid, "bob", "b4"); c != 2 {
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

		t.Run("pages in bytes", func(t *testing.T) {
			gid := []byte("pages")
			st.CreateGroup(ctx, gid, "alice", 0, now)
			for _, n := range []int{100, 300, 250, 1000, 10} {
				if _, _, err := st.Append(ctx, Message{GroupID: gid, Kind: "application", Sender: "alice", Data: make([]byte, n), ReceivedAt: now}); err != nil {
					t.Fatal(err)
				}
			}
			// Pages of at most 400 bytes: [100 300] [250] [1000 alone] [10].
			var pages []string
			for after := int64(0); ; {
				ms, err := st.Messages(ctx, gid, "alice", after, 100, 400)
				if err != nil {
					t.Fatal(err)
				}
				if len(ms) == 0 {
					break
				}
				var sizes []int
				for _, m := range ms {
					sizes = append(sizes, len(m.Data))
					after = m.Seq
				}
				pages = append(pages, fmt.Sprint(sizes))
			}
			if got := fmt.Sprint(pages); got != "[[100 300] [250] [1000] [10]]" {
				t.Fatalf("pages %s", got)
			}
			if ms, _ := st.Messages(ctx, gid, "alice", 0, 1, 1<<20); len(ms) != 1 {
				t.Fatalf("limit: %d entries", len(ms))
			}
		})

		t.Run("welcomes", func(t *testing.T) {
			gid := []byte("wgroup")
			st.CreateGroup(ctx, gid, "wanda", 0, now)
			st.Append(ctx, Message{GroupID: gid, Kind: "commit", Sender: "wanda", Data: []byte("c"), ReceivedAt: now, Added: []string{"xena", "yuri"}})
			st.Append(ctx, Message{GroupID: gid, Kind: "commit", Epoch: 1, Sender: "wanda", Data: []byte("c"), ReceivedAt: now, Removed: []string{"yuri"}})
			w := Welcome{Sender: "wanda", SenderDevice: "w1", GroupID: gid, Welcome: []byte("w"), CreatedAt: now}
			for name, c := range map[string]struct {
				w          Welcome
				recipients []string
				err        error
			}{
				"a recipient never added":   {w, []string{"xena", "zoe"}, ErrNotMember},
				"a recipient removed":       {w, []string{"yuri"}, ErrNotMember},
				"from a non-member":         {Welcome{Sender: "zoe", GroupID: gid, Welcome: []byte("w")}, []string{"xena"}, ErrForbidden},
				"from a removed member":     {Welcome{Sender: "yuri", GroupID: gid, Welcome: []byte("w")}, []string{"xena"}, ErrForbidden},
				"for an unknown group":      {Welcome{Sender: "wanda", GroupID: []byte("none"), Welcome: []byte("w")}, []string{"xena"}, ErrNotFound},
				"for a group of another id": {Welcome{Sender: "wanda", GroupID: []byte("group-1"), Welcome: []byte("w")}, []string{"xena"}, ErrForbidden},
			} {
				if _, err := st.AddWelcome(ctx, c.w, c.recipients); !errors.Is(err, c.err) {
					t.Errorf("%s: %v, want %v", name, err, c.err)
				}
			}
			if ws, _ := st.Welcomes(ctx, "xena", "x1", 10, 1<<20); len(ws) != 0 {
				t.Fatalf("a refused Welcome was queued: %+v", ws)
			}
			if _, err := st.AddWelcome(ctx, w, []string{"xena"}); !errors.Is(err, ErrUnknownUser) {
				t.Fatalf("a Welcome for a member who is no user: %v", err)
			}
			// xena has two devices: each reads the Welcome until it acks it;
			// it is deleted when both have.
			login(dev("xena", "x1", 1), "tok-x1")
			login(dev("xena", "x2", 1), "tok-x2")
			login(dev("wanda", "w1", 1), "tok-w1")
			ids, err := st.AddWelcome(ctx, w, []string{"xena", "wanda"})
			if err != nil || len(ids) != 2 {
				t.Fatal(ids, err)
			}
			ws, err := st.Welcomes(ctx, "xena", "x1", 10, 1<<20)
			if err != nil || len(ws) != 1 || ws[0].ID != ids[0] || ws[0].Sender != "wanda" || ws[0].SenderDevice != "w1" || ws[0].RatchetTree != nil {
				t.Fatalf("%+v %v", ws, err)
			}
			if err := st.AckWelcome(ctx, "xena", "x1", ids[1]); !errors.Is(err, ErrNotFound) {
				t.Fatalf("acking another's welcome: %v", err)
			}
			if err := st.AckWelcome(ctx, "xena", "x1", ids[0]); err != nil {
				t.Fatal(err)
			}
			if err := st.AckWelcome(ctx, "xena", "x1", ids[0]); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second ack: %v", err)
			}
			if ws, _ := st.Welcomes(ctx, "xena", "x1", 10, 1<<20); len(ws) != 0 {
				t.Fatal(ws)
			}
			if ws, _ := st.Welcomes(ctx, "xena", "x2", 10, 1<<20); len(ws) != 1 {
				t.Fatalf("the other device lost the Welcome: %+v", ws)
			}
			if err := st.AckWelcome(ctx, "xena", "x2", ids[0]); err != nil {
				t.Fatal(err)
			}
			if err := st.AckWelcome(ctx, "xena", "x3", ids[0]); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a Welcome acknowledged by every device is not deleted: %v", err)
			}
			// Welcome pages in bytes.
			for _, n := range []int{600, 600, 10} {
				if _, err := st.AddWelcome(ctx, Welcome{Sender: "wanda", GroupID: gid, Welcome: make([]byte, n), RatchetTree: make([]byte, 100), CreatedAt: now}, []string{"xena"}); err != nil {
					t.Fatal(err)
				}
			}
			if ws, _ := st.Welcomes(ctx, "xena", "x1", 10, 1000); len(ws) != 1 {
				t.Fatalf("page of 1000 bytes: %d welcomes", len(ws))
			}
			if ws, _ := st.Welcomes(ctx, "xena", "x1", 10, 500); len(ws) != 1 {
				t.Fatalf("an entry larger than the page comes alone: %d welcomes", len(ws))
			}
			if ws, _ := st.Welcomes(ctx, "xena", "x1", 10, 1600); len(ws) != 3 {
				t.Fatalf("page of 1600 bytes: %d welcomes", len(ws))
			}
		})

		t.Run("link mailboxes", func(t *testing.T) {
			login(dev("lena", "l1", 1), "tok-l1")
			login(dev("lena", "l2", 1), "tok-l2")
			mb := Mailbox{Name: "AB12", UserID: "lena", DeviceID: "l1", Expires: now.Add(10 * time.Minute)}
			if err := st.OpenMailbox(ctx, mb, 2, now); err != nil {
				t.Fatal(err)
			}
			if err := st.OpenMailbox(ctx, mb, 2, now); err != nil {
				t.Fatalf("reopening one's own mailbox: %v", err)
			}
			if err := st.OpenMailbox(ctx, Mailbox{Name: "AB12", UserID: "lena", DeviceID: "l2", Expires: now.Add(time.Minute)}, 2, now); !errors.Is(err, ErrExists) {
				t.Fatalf("another device takes the mailbox: %v", err)
			}
			st.OpenMailbox(ctx, Mailbox{Name: "AB13", UserID: "lena", DeviceID: "l2", Expires: now.Add(time.Minute)}, 2, now)
			if err := st.OpenMailbox(ctx, Mailbox{Name: "AB14", UserID: "lena", DeviceID: "l2", Expires: now.Add(time.Minute)}, 2, now); !errors.Is(err, ErrLimit) {
				t.Fatalf("third mailbox of two: %v", err)
			}
			owner := &DeviceRef{UserID: "lena", DeviceID: "l1"}
			if _, err := st.PostLink(ctx, "AB12", "offer", []byte("hello"), &DeviceRef{UserID: "lena", DeviceID: "l2"}, 2, now); !errors.Is(err, ErrForbidden) {
				t.Fatalf("offer from another device: %v", err)
			}
			if seq, err := st.PostLink(ctx, "AB12", "offer", []byte("hello"), owner, 2, now); err != nil || seq != 1 {
				t.Fatal(seq, err)
			}
			st.PostLink(ctx, "AB12", "join", []byte("req1"), nil, 2, now)
			st.PostLink(ctx, "AB12", "join", []byte("req2"), nil, 2, now)
			if _, err := st.PostLink(ctx, "AB12", "join", []byte("req3"), nil, 2, now); !errors.Is(err, ErrLimit) {
				t.Fatalf("third join message of two: %v", err)
			}
			if _, err := st.PostLink(ctx, "ZZZZ", "join", []byte("x"), nil, 2, now); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			ms, err := st.LinkMessages(ctx, "AB12", "join", 0, now)
			if err != nil || len(ms) != 2 || ms[0].Seq != 2 || string(ms[1].Data) != "req2" {
				t.Fatalf("join side: %+v %v", ms, err)
			}
			if ms, _ := st.LinkMessages(ctx, "AB12", "offer", 1, now); len(ms) != 0 {
				t.Fatal(ms)
			}
			// Expired: gone for reading and posting, and free for others.
			later := now.Add(11 * time.Minute)
			if _, err := st.LinkMessages(ctx, "AB12", "offer", 0, later); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			if err := st.OpenMailbox(ctx, Mailbox{Name: "AB12", UserID: "lena", DeviceID: "l2", Expires: later.Add(time.Minute)}, 2, later); err != nil {
				t.Fatal(err)
			}
			if ms, _ := st.LinkMessages(ctx, "AB12", "join", 0, later); len(ms) != 0 {
				t.Fatalf("a reopened mailbox shows the old messages: %+v", ms)
			}
			if err := st.CloseMailbox(ctx, "AB12", "lena", "l1"); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			if err := st.CloseMailbox(ctx, "AB12", "lena", "l2"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Mailbox(ctx, "AB12", later); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
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

// TestStaleApplicationEpoch: an application message of an epoch more than
// api.MaxStaleEpochs behind the group's is refused (its members no longer
// keep that epoch's keys), one within them is ordered; proposals and the
// future keep their own rules.
func TestStaleApplicationEpoch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		now := time.Now()
		gid := []byte("stale")
		if err := st.CreateGroup(ctx, gid, "alice", 0, now); err != nil {
			t.Fatal(err)
		}
		for e := range uint64(5) {
			if _, _, err := st.Append(ctx, Message{GroupID: gid, Kind: "commit", Epoch: e, Sender: "alice", Data: []byte("c"), ReceivedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		app := func(epoch uint64) error {
			_, _, err := st.Append(ctx, Message{GroupID: gid, Kind: "application", Epoch: epoch, Sender: "alice", Data: []byte("m"), ReceivedAt: now})
			return err
		}
		if _, ep, err := st.Append(ctx, Message{GroupID: gid, Kind: "application", Epoch: 5 - api.MaxStaleEpochs - 1, Sender: "alice", Data: []byte("m"), ReceivedAt: now}); !errors.Is(err, ErrStaleEpoch) || ep != 5 {
			t.Fatalf("an application message %d epochs behind: %v (epoch %d)", api.MaxStaleEpochs+1, err, ep)
		}
		for _, e := range []uint64{5 - api.MaxStaleEpochs, 5} {
			if err := app(e); err != nil {
				t.Fatalf("an application message of epoch %d at epoch 5: %v", e, err)
			}
		}
		if err := app(6); !errors.Is(err, ErrFutureEpoch) {
			t.Fatalf("future: %v", err)
		}
	})
}
