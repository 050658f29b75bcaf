package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
)

func TestAuth(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	var mu sync.Mutex
	_, base := newTestServer(t, openSQLiteT(t), Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock() }})
	alice := newIdent(t, "alice")
	anon := &client{t: t, base: base}

	// Bad challenge requests.
	anon.must(400, "POST", "/v1/auth/challenge", `{"user_id":`)
	r := anon.must(400, "POST", "/v1/auth/challenge", map[string]any{"user_id": "", "signature_key": alice.pub(), "ciphersuite": 1})
	if r.code() != "bad_request" {
		t.Fatal(r.code())
	}
	anon.must(400, "POST", "/v1/auth/challenge", map[string]any{"user_id": "a", "signature_key": alice.pub(), "ciphersuite": 99})
	anon.must(400, "POST", "/v1/auth/challenge", map[string]any{"user_id": "a\x00b", "signature_key": alice.pub(), "ciphersuite": 1})
	anon.must(400, "POST", "/v1/auth/challenge", []byte(`{"user_id":"a","signature_key":"AAAA","ciphersuite":1} {}`))

	challenge := func(id *ident) []byte {
		r := anon.must(200, "POST", "/v1/auth/challenge", map[string]any{"user_id": id.name, "signature_key": id.pub(), "ciphersuite": 1})
		ch, _ := base64.StdEncoding.DecodeString(r.body["challenge"].(string))
		if len(ch) != 32 {
			t.Fatalf("challenge of %d bytes", len(ch))
		}
		return ch
	}
	loginWith := func(id *ident, ch []byte, url string) resp {
		sig, _ := id.signer.SignWithLabel(LoginLabel, LoginContent(url, id.name, ch))
		return anon.do("POST", "/v1/auth/login", map[string]any{"user_id": id.name, "signature_key": id.pub(), "ciphersuite": 1, "challenge": ch, "signature": sig})
	}

	// Signed for another relay URL: refused, and the challenge is spent.
	ch := challenge(alice)
	if r := loginWith(alice, ch, "http://elsewhere.example"); r.status != 401 || r.code() != "bad_signature" {
		t.Fatalf("wrong relay url: %d %s", r.status, r.raw)
	}
	if r := loginWith(alice, ch, base); r.status != 401 || r.code() != "bad_challenge" {
		t.Fatalf("reused challenge: %d %s", r.status, r.raw)
	}
	// A challenge issued to someone else.
	mallory := newIdent(t, "mallory")
	ch = challenge(mallory)
	if r := loginWith(alice, ch, base); r.status != 401 || r.code() != "bad_challenge" {
		t.Fatalf("another's challenge: %d %s", r.status, r.raw)
	}
	// Unknown challenge.
	if r := loginWith(alice, []byte("0123456789abcdef0123456789abcdef"), base); r.status != 401 || r.code() != "bad_challenge" {
		t.Fatalf("unknown challenge: %d", r.status)
	}
	// Expired challenge.
	ch = challenge(alice)
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if r := loginWith(alice, ch, base); r.status != 401 || r.code() != "bad_challenge" {
		t.Fatalf("expired challenge: %d", r.status)
	}

	// First login binds alice to her key (trust on first use).
	if r := loginWith(alice, challenge(alice), base+"/"); r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	tok := loginWith(alice, challenge(alice), base).body["token"].(string)
	// An impostor with another key: refused at the challenge.
	impostor := newIdent(t, "alice")
	r = anon.do("POST", "/v1/auth/challenge", map[string]any{"user_id": "alice", "signature_key": impostor.pub(), "ciphersuite": 1})
	if r.status != 403 || r.code() != "key_mismatch" {
		t.Fatalf("impostor: %d %s", r.status, r.raw)
	}

	// Tokens.
	c := &client{t: t, base: base, token: tok}
	c.must(200, "GET", "/v1/key-packages/count", nil)
	if r := (&client{t: t, base: base}).do("GET", "/v1/key-packages/count", nil); r.status != 401 || r.code() != "unauthorized" {
		t.Fatalf("no token: %d", r.status)
	}
	if r := (&client{t: t, base: base, token: "nonsense"}).do("GET", "/v1/key-packages/count", nil); r.status != 401 {
		t.Fatalf("bad token: %d", r.status)
	}
	mu.Lock()
	now = now.Add(25 * time.Hour)
	mu.Unlock()
	if r := c.do("GET", "/v1/key-packages/count", nil); r.status != 401 {
		t.Fatalf("expired token: %d", r.status)
	}
	if r := anon.do("GET", "/v1/nothing", nil); r.status != 404 || r.code() != "not_found" {
		t.Fatalf("unknown endpoint: %d %s", r.status, r.raw)
	}
}

func TestKeyPackageDirectory(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{MaxKeyPackages: 5})
	alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
	ca, cb := login(t, base, alice), login(t, base, bob)

	kp1, kp2 := alice.keyPackage(t, "alice", false), alice.keyPackage(t, "alice", false)
	lr := alice.keyPackage(t, "alice", true)
	r := ca.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{kp1, kp2}, "last_resort": lr})
	if r.num("stored") != 3 {
		t.Fatal(r.raw)
	}
	r = ca.must(200, "GET", "/v1/key-packages/count", nil)
	if r.num("available") != 2 || r.body["last_resort"] != true {
		t.Fatal(r.raw)
	}

	// Refused publishes.
	for name, c := range map[string]struct {
		kp     []byte
		status int
		code   string
	}{
		"another's identity":      {alice.keyPackage(t, "bob", false), 403, "foreign_key_package"},
		"another's signature key": {bob.keyPackage(t, "alice", false), 403, "foreign_key_package"},
		"not a key package":       {privMsg(t, []byte("g"), 0, mls.ContentTypeApplication), 400, "invalid_key_package"},
		"garbage":                 {[]byte{0, 1, 0, 5, 1}, 400, "invalid_key_package"},
		"already published":       {kp1, 409, "key_package_exists"},
		"bad signature": {func() []byte {
			b := alice.keyPackage(t, "alice", false)
			b[len(b)-1] ^= 1
			return b
		}(), 400, "invalid_key_package"},
	} {
		r := ca.do("POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{c.kp}})
		if r.status != c.status || r.code() != c.code {
			t.Errorf("%s: %d %s, want %d %s", name, r.status, r.raw, c.status, c.code)
		}
	}
	ca.must(400, "POST", "/v1/key-packages", map[string]any{})
	// Quota (5): 2 stored, 4 more is too many.
	var four [][]byte
	for range 4 {
		four = append(four, alice.keyPackage(t, "alice", false))
	}
	if r := ca.do("POST", "/v1/key-packages", map[string]any{"key_packages": four}); r.status != 409 || r.code() != "key_package_limit" {
		t.Fatalf("quota: %d %s", r.status, r.raw)
	}

	// Claims: each one-time package once, oldest first, then the last resort.
	got := map[string]bool{}
	for i, want := range [][]byte{kp1, kp2, lr, lr} {
		r := cb.must(200, "POST", "/v1/key-packages/claim", map[string]any{"user_id": "alice"})
		d, _ := base64.StdEncoding.DecodeString(r.body["key_package"].(string))
		if !bytes.Equal(d, want) || r.body["last_resort"] != (i >= 2) {
			t.Fatalf("claim %d: last_resort=%v", i, r.body["last_resort"])
		}
		got[string(d)] = true
	}
	if r := cb.do("POST", "/v1/key-packages/claim", map[string]any{"user_id": "carol"}); r.status != 404 || r.code() != "no_key_package" {
		t.Fatalf("nobody's: %d %s", r.status, r.raw)
	}
	cb.must(400, "POST", "/v1/key-packages/claim", map[string]any{})
	// A new last resort replaces the old one.
	lr2 := alice.keyPackage(t, "alice", true)
	ca.must(200, "POST", "/v1/key-packages", map[string]any{"last_resort": lr2})
	r = cb.must(200, "POST", "/v1/key-packages/claim", map[string]any{"user_id": "alice"})
	if d, _ := base64.StdEncoding.DecodeString(r.body["key_package"].(string)); !bytes.Equal(d, lr2) {
		t.Fatal("old last resort handed out")
	}
}

// TestGroups walks the group endpoints on both backends.
func TestGroups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice, bob, carol := newIdent(t, "alice"), newIdent(t, "bob"), newIdent(t, "carol")
		ca, cb, cc := login(t, base, alice), login(t, base, bob), login(t, base, carol)
		gid := []byte{0xfb, 0xff, 0x01, '/', '+'} // base64 with '+' and '/' in the standard alphabet
		gp := "/v1/groups/" + gidPath(gid)

		ca.must(200, "POST", "/v1/groups", map[string]any{"group_id": gid})
		if r := cb.do("POST", "/v1/groups", map[string]any{"group_id": gid}); r.status != 409 || r.code() != "group_exists" {
			t.Fatalf("exists: %d", r.status)
		}
		ca.must(400, "POST", "/v1/groups", map[string]any{"group_id": ""})
		ca.must(400, "POST", "/v1/groups", map[string]any{"group_id": make([]byte, 256)})
		ca.must(404, "GET", "/v1/groups/"+gidPath([]byte("unknown")), nil)
		ca.must(400, "GET", "/v1/groups/!!!", nil)
		// The standard alphabet, '/' percent-encoded, names the same group.
		std := strings.ReplaceAll(base64.StdEncoding.EncodeToString(gid), "/", "%2F")
		ca.must(200, "GET", "/v1/groups/"+std, nil)
		if r := cb.do("GET", gp, nil); r.status != 403 {
			t.Fatalf("non-member reads the group: %d", r.status)
		}

		post := func(c *client, kind string, ct mls.ContentType, epoch uint64, added, removed []string) resp {
			return c.do("POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, epoch, ct), "kind": kind, "epoch": epoch, "added": added, "removed": removed})
		}
		if r := post(ca, "application", mls.ContentTypeApplication, 0, nil, nil); r.status != 200 || r.num("seq") != 1 {
			t.Fatalf("post: %d %s", r.status, r.raw)
		}
		// Framing mismatches.
		for name, body := range map[string]map[string]any{
			"kind vs content type": {"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "kind": "commit", "epoch": 0},
			"epoch vs framing":     {"message": privMsg(t, gid, 1, mls.ContentTypeApplication), "kind": "application", "epoch": 0},
			"another group":        {"message": privMsg(t, []byte("other"), 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0},
			"unknown kind":         {"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "kind": "chat", "epoch": 0},
			"not a message":        {"message": welcomeMsg(t), "kind": "application", "epoch": 0},
			"garbage":              {"message": []byte{1, 2, 3}, "kind": "application", "epoch": 0},
			"added on application": {"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0, "added": []string{"x"}},
			"added and removed":    {"message": privMsg(t, gid, 0, mls.ContentTypeCommit), "kind": "commit", "epoch": 0, "added": []string{"x"}, "removed": []string{"x"}},
			"bad user id":          {"message": privMsg(t, gid, 0, mls.ContentTypeCommit), "kind": "commit", "epoch": 0, "added": []string{""}},
		} {
			if r := ca.do("POST", gp+"/messages", body); r.status != 400 {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		if r := post(cb, "application", mls.ContentTypeApplication, 0, nil, nil); r.status != 403 {
			t.Fatalf("non-member posts: %d", r.status)
		}
		cb.must(403, "GET", gp+"/messages", nil)

		// Commit ordering.
		if r := post(ca, "commit", mls.ContentTypeCommit, 0, []string{"bob"}, nil); r.status != 200 || r.num("seq") != 2 {
			t.Fatalf("commit: %d %s", r.status, r.raw)
		}
		r := post(cb, "commit", mls.ContentTypeCommit, 0, nil, nil)
		if r.status != 409 || r.code() != "commit_conflict" || r.num("current_epoch") != 1 {
			t.Fatalf("losing commit: %d %s", r.status, r.raw)
		}
		post(cb, "proposal", mls.ContentTypeProposal, 1, nil, nil)                         // 3
		post(cb, "commit", mls.ContentTypeCommit, 1, []string{"carol"}, []string{"alice"}) // 4
		r = cb.must(200, "GET", gp, nil)
		if fmt.Sprint(r.body["members"]) != "[bob carol]" || r.num("epoch") != 2 || r.num("last_seq") != 4 {
			t.Fatalf("group: %s", r.raw)
		}

		// Reading windows.
		r = cb.must(200, "GET", gp+"/messages?after=0", nil)
		ms := r.body["messages"].([]any)
		if len(ms) != 3 || r.num("next") != 4 {
			t.Fatalf("bob reads: %s", r.raw)
		}
		m0 := ms[0].(map[string]any)
		if m0["kind"] != "commit" || m0["sender"] != "alice" || m0["seq"].(float64) != 2 || m0["epoch"].(float64) != 0 || m0["received_at"] == "" {
			t.Fatalf("entry: %v", m0)
		}
		r = cb.must(200, "GET", gp+"/messages?after=2&limit=1", nil)
		if len(r.body["messages"].([]any)) != 1 || r.num("next") != 3 {
			t.Fatalf("limit: %s", r.raw)
		}
		if r := cc.must(200, "GET", gp+"/messages", nil); len(r.body["messages"].([]any)) != 1 {
			t.Fatalf("carol reads from her commit: %s", r.raw)
		}
		// Alice is removed: she sees up to the removing commit, then no more.
		if r := ca.must(200, "GET", gp+"/messages?after=3", nil); len(r.body["messages"].([]any)) != 1 {
			t.Fatalf("alice reads her removal: %s", r.raw)
		}
		ca.must(403, "GET", gp+"/messages?after=4", nil)
		if r := post(ca, "application", mls.ContentTypeApplication, 2, nil, nil); r.status != 403 {
			t.Fatalf("removed member posts: %d", r.status)
		}
		ca.must(403, "GET", gp, nil)
		cb.must(400, "GET", gp+"/messages?after=-1", nil)
		cb.must(400, "GET", gp+"/messages?wait=x", nil)

		// Cursors.
		if r := cb.must(200, "GET", gp+"/cursor", nil); r.num("after") != 0 {
			t.Fatal(r.raw)
		}
		cb.must(200, "PUT", gp+"/cursor", map[string]any{"after": 3})
		if r := cb.must(200, "GET", gp+"/cursor", nil); r.num("after") != 3 {
			t.Fatal(r.raw)
		}
		cb.must(400, "PUT", gp+"/cursor", map[string]any{})
		cb.must(400, "PUT", gp+"/cursor", map[string]any{"after": -2})
		(&client{t: t, base: base, token: login(t, base, newIdent(t, "dave")).token}).must(403, "GET", gp+"/cursor", nil)

		// GroupInfo.
		if r := cb.do("GET", gp+"/group-info", nil); r.status != 404 || r.code() != "no_group_info" {
			t.Fatalf("no group info: %d", r.status)
		}
		gi := groupInfoMsg(t, gid, 2)
		cb.must(200, "PUT", gp+"/group-info", map[string]any{"group_info": gi, "epoch": 2})
		r = cc.must(200, "GET", gp+"/group-info", nil)
		if d, _ := base64.StdEncoding.DecodeString(r.body["group_info"].(string)); !bytes.Equal(d, gi) || r.num("epoch") != 2 {
			t.Fatalf("group info: %s", r.raw)
		}
		cb.must(400, "PUT", gp+"/group-info", map[string]any{"group_info": gi, "epoch": 1})
		cb.must(400, "PUT", gp+"/group-info", map[string]any{"group_info": groupInfoMsg(t, []byte("x"), 2), "epoch": 2})
		cb.must(400, "PUT", gp+"/group-info", map[string]any{"group_info": welcomeMsg(t), "epoch": 2})
		if r := cb.do("PUT", gp+"/group-info", map[string]any{"group_info": groupInfoMsg(t, gid, 1), "epoch": 1}); r.status != 409 || r.code() != "stale_group_info" {
			t.Fatalf("stale group info: %d %s", r.status, r.raw)
		}
		cb.must(409, "PUT", gp+"/group-info", map[string]any{"group_info": groupInfoMsg(t, gid, 7), "epoch": 7})
		ca.must(403, "GET", gp+"/group-info", nil)
		ca.must(403, "PUT", gp+"/group-info", map[string]any{"group_info": gi, "epoch": 2})

		// Welcomes.
		w := welcomeMsg(t)
		r = cb.must(200, "POST", "/v1/welcomes", map[string]any{"recipients": []string{"carol"}, "welcome": w, "group_id": gid, "invite": []byte("inv")})
		ids := r.body["ids"].([]any)
		if len(ids) != 1 {
			t.Fatal(r.raw)
		}
		ca.must(403, "POST", "/v1/welcomes", map[string]any{"recipients": []string{"carol"}, "welcome": w, "group_id": gid})
		cb.must(400, "POST", "/v1/welcomes", map[string]any{"recipients": []string{}, "welcome": w, "group_id": gid})
		cb.must(400, "POST", "/v1/welcomes", map[string]any{"recipients": []string{"carol"}, "welcome": gi, "group_id": gid})
		cb.must(404, "POST", "/v1/welcomes", map[string]any{"recipients": []string{"carol"}, "welcome": w, "group_id": []byte("nope")})
		r = cc.must(200, "GET", "/v1/welcomes", nil)
		wl := r.body["welcomes"].([]any)
		if len(wl) != 1 {
			t.Fatal(r.raw)
		}
		w0 := wl[0].(map[string]any)
		if w0["from"] != "bob" || w0["group_id"] != base64.StdEncoding.EncodeToString(gid) || w0["ratchet_tree"] != nil || w0["invite"] != base64.StdEncoding.EncodeToString([]byte("inv")) {
			t.Fatalf("welcome: %v", w0)
		}
		id := int64(w0["id"].(float64))
		cb.must(404, "DELETE", fmt.Sprintf("/v1/welcomes/%d", id), nil)
		cc.must(400, "DELETE", "/v1/welcomes/abc", nil)
		cc.must(204, "DELETE", fmt.Sprintf("/v1/welcomes/%d", id), nil)
		if r := cc.must(200, "GET", "/v1/welcomes", nil); len(r.body["welcomes"].([]any)) != 0 {
			t.Fatal(r.raw)
		}
	})
}

func TestLongPoll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
		ca, cb := login(t, base, alice), login(t, base, bob)
		gid := []byte("poll")
		gp := "/v1/groups/" + gidPath(gid)
		ca.must(200, "POST", "/v1/groups", map[string]any{"group_id": gid})

		// Times out empty.
		start := time.Now()
		r := ca.must(200, "GET", gp+"/messages?wait=0.3", nil)
		if d := time.Since(start); len(r.body["messages"].([]any)) != 0 || r.num("next") != 0 || d < 250*time.Millisecond {
			t.Fatalf("empty wait: %s after %v", r.raw, d)
		}
		// Wakes at once on a post.
		got := make(chan resp, 1)
		go func() { got <- ca.do("GET", gp+"/messages?wait=30", nil) }()
		time.Sleep(100 * time.Millisecond)
		start = time.Now()
		ca.must(200, "POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0})
		select {
		case r := <-got:
			if len(r.body["messages"].([]any)) != 1 {
				t.Fatalf("woken with %s", r.raw)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("woke after %v", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("long-poll not woken by a post")
		}
		// Welcome long-poll.
		go func() { got <- cb.do("GET", "/v1/welcomes?wait=30", nil) }()
		time.Sleep(100 * time.Millisecond)
		ca.must(200, "POST", "/v1/welcomes", map[string]any{"recipients": []string{"bob"}, "welcome": welcomeMsg(t), "group_id": gid})
		select {
		case r := <-got:
			if len(r.body["welcomes"].([]any)) != 1 {
				t.Fatalf("woken with %s", r.raw)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("welcome long-poll not woken")
		}
	})
}

func TestEvents(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{})
	alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
	ca, cb := login(t, base, alice), login(t, base, bob)
	gid := []byte("sse")
	ca.must(200, "POST", "/v1/groups", map[string]any{"group_id": gid})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+ca.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatal(ct)
	}
	// Bob's group is not alice's business: only her own events arrive.
	cb.must(200, "POST", "/v1/groups", map[string]any{"group_id": []byte("bobs")})
	cb.must(200, "POST", "/v1/groups/"+gidPath([]byte("bobs"))+"/messages", map[string]any{"message": privMsg(t, []byte("bobs"), 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0})
	ca.must(200, "POST", "/v1/groups/"+gidPath(gid)+"/messages", map[string]any{"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0})
	ca.must(200, "POST", "/v1/welcomes", map[string]any{"recipients": []string{"alice"}, "welcome": welcomeMsg(t), "group_id": gid})
	sc := bufio.NewScanner(res.Body)
	var lines []string
	for sc.Scan() && len(lines) < 4 {
		if l := sc.Text(); strings.HasPrefix(l, "event:") || strings.HasPrefix(l, "data:") {
			lines = append(lines, l)
		}
	}
	want := []string{"event: message", `data: {"group_id":"c3Nl","seq":1}`, "event: welcome", `data: {"id":1}`}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", lines, want)
	}
}

func TestLimits(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{MaxBody: 4096, Rate: 1, Burst: 5})
	alice := newIdent(t, "alice")
	ca := login(t, base, alice) // 2 requests from this IP's bucket
	big := map[string]any{"key_packages": [][]byte{make([]byte, 8192)}}
	if r := ca.do("POST", "/v1/key-packages", big); r.status != 413 || r.code() != "too_large" {
		t.Fatalf("oversized: %d %s", r.status, r.raw)
	}
	// A chunked body (no Content-Length) is cut off too.
	req, _ := http.NewRequest("POST", base+"/v1/key-packages", struct{ *bytes.Reader }{bytes.NewReader(bytes.Repeat([]byte(" "), 8192))})
	req.Header.Set("Authorization", "Bearer "+ca.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("chunked oversized: %d", res.StatusCode)
	}
	var last resp
	for range 10 {
		if last = ca.do("GET", "/v1/key-packages/count", nil); last.status == 429 {
			break
		}
	}
	if last.status != 429 || last.code() != "rate_limited" || last.header.Get("Retry-After") != "1" {
		t.Fatalf("rate limit: %d %v %s", last.status, last.header, last.raw)
	}
	// Unauthenticated requests are limited per IP (3 left of 5 after login).
	anon := &client{t: t, base: base}
	for range 10 {
		if last = anon.do("POST", "/v1/auth/challenge", map[string]any{}); last.status == 429 {
			break
		}
	}
	if last.status != 429 {
		t.Fatalf("per-IP limit: %d", last.status)
	}
}
