package relay

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"
	"time"
)

// quotaRig is a relay with tight quotas, a victim with key packages and a
// group of alice's that the victim and bob are members of.
type quotaRig struct {
	base              string
	victim, alice     *ident
	cv, ca, cb        *client
	gid               []byte
	gp                string
	published, wanted int
	mg                *mgroup
}

func newQuotaRig(t *testing.T, st Store, o Options) *quotaRig {
	o.Rate, o.Burst = 1e9, 1<<30
	_, base := newTestServer(t, st, o)
	q := &quotaRig{base: base, victim: newIdent(t, "victim"), alice: newIdent(t, "alice")}
	bob := newIdent(t, "bob")
	q.cv, q.ca, q.cb = login(t, base, q.victim), login(t, base, q.alice), login(t, base, bob)
	kps := make([][]byte, 10)
	for i := range kps {
		kps[i] = q.victim.keyPackage(t, false)
	}
	q.cv.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": kps, "last_resort": q.victim.keyPackage(t, true)})
	q.published = len(kps)
	q.gid = []byte("quota-group")
	q.gp = "/v1/groups/" + gidPath(q.gid)
	q.mg = setupGroup(t, q.ca, q.gid, q.alice, q.victim, bob)
	return q
}

func (q *quotaRig) available(t *testing.T) int64 {
	return q.cv.must(200, "GET", "/v1/key-packages/count", nil).num("available")
}

func refusedWith(t *testing.T, what string, r resp, status int, code string) {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Fatalf("%s: %d %s, want %d %s", what, r.status, r.raw, status, code)
	}
	if status == http.StatusTooManyRequests && r.header.Get("Retry-After") == "" {
		t.Fatalf("%s: 429 without Retry-After", what)
	}
}

// TestClaimQuotas: claims of one user's key packages are bounded per
// claimer, per claimer and target, and per target; the refused claim takes
// nothing, and other claims go on.
func TestClaimQuotas(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		// claims by the named claimers before the refused one, by mallory
		before []string
		// a claim that still works afterwards: by whom, of whom
		afterBy string
	}{
		{"per claimer", Options{ClaimsPerClaimer: 3, ClaimsPerPair: 100, ClaimsPerTarget: 100}, []string{"mallory", "mallory", "mallory"}, "alice"},
		{"per pair", Options{ClaimsPerClaimer: 100, ClaimsPerPair: 2, ClaimsPerTarget: 100}, []string{"mallory", "mallory"}, "alice"},
		{"per target", Options{ClaimsPerClaimer: 100, ClaimsPerPair: 100, ClaimsPerTarget: 3}, []string{"alice", "bob", "mallory"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, st Store) {
				q := newQuotaRig(t, st, c.o)
				claimers := map[string]*client{"alice": q.ca, "bob": q.cb, "mallory": login(t, q.base, newIdent(t, "mallory"))}
				claim := func(by string, of *ident) resp {
					return claimers[by].do("POST", "/v1/key-packages/claim", map[string]any{"user_id": of.uid()})
				}
				for _, by := range c.before {
					if r := claim(by, q.victim); r.status != 200 {
						t.Fatalf("claim by %s: %d %s", by, r.status, r.raw)
					}
				}
				refusedWith(t, "the claim over the quota", claim("mallory", q.victim), 429, "claim_quota")
				if got, want := q.available(t), int64(q.published-len(c.before)); got != want {
					t.Fatalf("%d key packages left, want %d: the refused claim took one", got, want)
				}
				// Others' packages are not affected: alice's own are claimable.
				q.ca.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{q.alice.keyPackage(t, false)}})
				if r := claim("bob", q.alice); r.status != 200 {
					t.Fatalf("an unrelated claim: %d %s", r.status, r.raw)
				}
				if c.afterBy != "" {
					if r := claim(c.afterBy, q.victim); r.status != 200 {
						t.Fatalf("claim by %s after the refusal: %d %s", c.afterBy, r.status, r.raw)
					}
				}
			})
		})
	}
}

// TestClaimQuotaAcrossInstances: two relays on one PostgreSQL database
// count claims together.
func TestClaimQuotaAcrossInstances(t *testing.T) {
	url := freshPG(t)
	var bases []string
	for range 2 {
		_, base := newTestServer(t, openPostgresAt(t, url), Options{ClaimsPerClaimer: 2})
		bases = append(bases, base)
	}
	victim, mallory := newIdent(t, "victim"), newIdent(t, "mallory")
	cv := login(t, bases[0], victim)
	cv.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{victim.keyPackage(t, false), victim.keyPackage(t, false), victim.keyPackage(t, false)}})
	ma, mb := login(t, bases[0], mallory), login(t, bases[1], mallory)
	body := map[string]any{"user_id": victim.uid()}
	ma.must(200, "POST", "/v1/key-packages/claim", body)
	mb.must(200, "POST", "/v1/key-packages/claim", body)
	refusedWith(t, "third claim, on the first relay", ma.do("POST", "/v1/key-packages/claim", body), 429, "claim_quota")
	refusedWith(t, "third claim, on the second relay", mb.do("POST", "/v1/key-packages/claim", body), 429, "claim_quota")
	if n := cv.must(200, "GET", "/v1/key-packages/count", nil).num("available"); n != 1 {
		t.Fatalf("%d left, want 1", n)
	}
}

// TestWelcomeQuotas: a recipient's queue is bounded in count (429) and
// bytes (413); Welcomes for a member the directory does not know are
// refused; other recipients' queues are not disturbed.
func TestWelcomeQuotas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		q := newQuotaRig(t, st, Options{WelcomeQueue: 2, WelcomeQueueBytes: 4096})
		carol := newIdent(t, "carol")
		cc := login(t, q.base, carol)
		ghost := newIdent(t, "ghost") // never logs in
		q.mg.addAt(q.ca, q.alice, carol, ghost)
		w := welcomeMsg(t)
		send := func(to *ident, tree []byte) resp {
			return q.ca.do("POST", "/v1/welcomes", map[string]any{"recipients": []string{to.uid()}, "welcome": w, "group_id": q.gid, "ratchet_tree": tree})
		}
		for range 2 {
			if r := send(q.victim, nil); r.status != 200 {
				t.Fatal(r.raw)
			}
		}
		refusedWith(t, "third Welcome", send(q.victim, nil), 429, "welcome_queue_full")
		refusedWith(t, "Welcome over the bytes", send(carol, make([]byte, 5000)), 413, "welcome_queue_too_large")
		refusedWith(t, "Welcome for an unknown user", send(ghost, nil), 404, "unknown_recipient")
		if r := send(carol, nil); r.status != 200 {
			t.Fatalf("carol's queue: %s", r.raw)
		}
		for c, want := range map[*client]int{q.cv: 2, cc: 1} {
			if n := len(c.must(200, "GET", "/v1/welcomes", nil).body["welcomes"].([]any)); n != want {
				t.Fatalf("%d Welcomes queued, want %d", n, want)
			}
		}
	})
}

// TestStreamQuota: one token holds at most StreamsPerToken event streams;
// another token of the same device is not affected; a closed stream frees
// its place.
func TestStreamQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		q := newQuotaRig(t, st, Options{StreamsPerToken: 2})
		open := func(c *client) (*http.Response, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", q.base+"/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel(); res.Body.Close() })
			return res, cancel
		}
		_, cancel1 := open(q.ca)
		open(q.ca)
		res, _ := open(q.ca)
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
			t.Fatalf("third stream: %d", res.StatusCode)
		}
		if res, _ := open(login(t, q.base, q.alice)); res.StatusCode != 200 {
			t.Fatalf("a second token's stream: %d", res.StatusCode)
		}
		q.ca.must(200, "GET", "/v1/welcomes", nil) // the token still works
		cancel1()
		deadline := time.Now().Add(30 * time.Second)
		for {
			res, cancel := open(q.ca)
			if res.StatusCode == 200 {
				break
			}
			cancel()
			if time.Now().After(deadline) {
				t.Fatal("a closed stream's place was not freed")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestIdentityQuota: new identities per source address are bounded; a
// known identity logs in whatever the count.
func TestIdentityQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{NewIdentitiesPerIP: 2, QuotaLoopback: true})
		first := newIdent(t, "first")
		login(t, base, first)
		login(t, base, newIdent(t, "second"))
		third := newIdent(t, "third")
		c := &client{t: t, base: base, id: third}
		r := c.must(200, "POST", "/v1/auth/challenge", map[string]any{"certificate": third.cert})
		ch, _ := base64.StdEncoding.DecodeString(r.body["challenge"].(string))
		refusedWith(t, "third new identity", c.do("POST", "/v1/auth/login", map[string]any{"certificate": third.cert, "challenge": ch,
			"signature": third.loginSignature(t, base, ch)}), 429, "identity_quota")
		login(t, base, first)                   // known: fine
		login(t, base, first.another(t, "2nd")) // a new device of a known user: fine
		if known, _ := st.KnownUser(context.Background(), third.uid()); known {
			t.Fatal("the refused identity is in the directory")
		}
	})
}

// TestRetention: entries older than MaxAge go; beyond the newest
// MaxEntries, entries go once every cursor is past them.
func TestRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		now := time.Now()
		st.CreateGroup(ctx, []byte("old"), "alice", 0, now)
		st.CreateGroup(ctx, []byte("big"), "alice", 0, now)
		app := func(g string, at time.Time) {
			if _, _, err := st.Append(ctx, Message{GroupID: []byte(g), Kind: "application", Sender: "alice", Data: []byte("x"), ReceivedAt: at}); err != nil {
				t.Fatal(err)
			}
		}
		app("old", now.Add(-48*time.Hour))
		app("old", now)
		for range 10 {
			app("big", now)
		}
		seqs := func(g string) []int64 {
			ms, err := st.Messages(ctx, []byte(g), "alice", 0, 100, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, m := range ms {
				out = append(out, m.Seq)
			}
			return out
		}
		p := RetentionPolicy{MaxAge: 24 * time.Hour, MaxEntries: 4}
		if n, err := st.Retain(ctx, p, now); err != nil || n != 1 {
			t.Fatalf("first pass: %d %v (no cursors: only the old entry goes)", n, err)
		}
		if got := seqs("old"); len(got) != 1 || got[0] != 2 {
			t.Fatalf("old: %v", got)
		}
		st.SetCursor(ctx, []byte("big"), "alice", "d1", 8)
		st.SetCursor(ctx, []byte("big"), "alice", "d2", 3)
		if n, _ := st.Retain(ctx, p, now); n != 3 {
			t.Fatalf("the lowest cursor (3) bounds the deletion: %d", n)
		}
		st.SetCursor(ctx, []byte("big"), "alice", "d2", 10)
		st.Retain(ctx, p, now)
		if got := seqs("big"); len(got) != 4 || got[0] != 7 {
			t.Fatalf("big keeps its newest 4: %v", got)
		}
		// The log goes on after retention.
		app("big", now)
		if got := seqs("big"); got[len(got)-1] != 11 {
			t.Fatalf("after retention: %v", got)
		}
	})
}
