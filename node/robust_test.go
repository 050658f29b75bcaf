package node_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/node"
)

func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestBadInput gives every endpoint of a real node bad input and checks
// each answer is a 4xx with the JSON error shape and the right status;
// afterwards the channel still works both ways and the histories hold only
// the real messages.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := startProc(t, "alice"), startProc(t, "bob")
	chn := pair(t, a.c, b.c)
	id := chn.id
	ids := []string{chn.deliver(t, "alice", "before", "bob").MessageID}
	delivered := must(a.c.Send(ctx, id, "delivered", ""))
	must(b.c.Inbox(ctx, id, delivered.Ciphertext))
	ids = append(ids, delivered.MessageID)
	epoch := must(a.c.Channel(ctx, id)).Epoch
	bobKP := must(b.c.KeyPackages(ctx, 1))[0]
	kpCount := must(b.c.KeyPackageCount(ctx))

	ch := "/v1/channels/" + id
	bodyEndpoints := []string{"/v1/key-packages", "/v1/channels", ch + "/invites", "/v1/join", ch + "/messages", ch + "/inbox"}
	randB64 := base64.StdEncoding.EncodeToString(randomBytes(300))
	type tc struct {
		method, path string
		body         []byte
		status       int
		code         string // "" any
	}
	var cases []tc
	for _, p := range bodyEndpoints {
		for _, body := range []string{``, `{`, `{"`, `not json`, `[]`, `null x`, `"str"`, `{"unknown_field":1}`,
			`{}{}`, `{"count":"3","name":1,"text":2,"message":3,"key_package":4,"welcome":5}`} {
			cases = append(cases, tc{"POST", p, []byte(body), 400, "bad_request"})
		}
		// Over the node's 8 MiB limit.
		big := []byte(`{"text":"` + strings.Repeat("a", node.DefaultMaxBody) + `"}`)
		cases = append(cases, tc{"POST", p, big, 413, "too_large"})
	}
	badB64 := []string{"!!!!", "YWJj-_", "YWJjZA", "YW Jj\x00", "é"}
	for _, s := range badB64 {
		cases = append(cases,
			tc{"POST", ch + "/invites", jsonBody(node.InviteRequest{KeyPackage: s}), 400, "bad_request"},
			tc{"POST", "/v1/join", jsonBody(node.JoinRequest{Welcome: s}), 400, "bad_request"},
			tc{"POST", "/v1/join", jsonBody(node.JoinRequest{Invite: s}), 400, "bad_request"},
			tc{"POST", "/v1/join", jsonBody(node.JoinRequest{Welcome: randB64, RatchetTree: s}), 400, "bad_request"},
			tc{"POST", ch + "/inbox", jsonBody(node.InboxRequest{Message: s}), 400, "bad_request"},
		)
	}
	for i := range 8 {
		// Random bytes where an MLS object is expected; the first ones
		// start like an MLSMessage of each wire format.
		rb := randomBytes(20 + i*97)
		if i < 6 {
			rb[0], rb[1], rb[2], rb[3] = 0, 1, 0, byte(i)
		}
		r := base64.StdEncoding.EncodeToString(rb)
		cases = append(cases,
			tc{"POST", ch + "/invites", jsonBody(node.InviteRequest{KeyPackage: r}), 400, ""},
			tc{"POST", "/v1/join", jsonBody(node.JoinRequest{Welcome: r}), 400, ""},
			tc{"POST", "/v1/join", jsonBody(node.JoinRequest{Invite: r}), 400, "bad_request"},
			tc{"POST", ch + "/inbox", jsonBody(node.InboxRequest{Message: r}), 400, ""},
		)
	}
	cases = append(cases,
		// Missing or out-of-range fields.
		tc{"POST", "/v1/key-packages", []byte(`{}`), 400, "bad_request"},
		tc{"POST", "/v1/key-packages", []byte(`{"count":-1}`), 400, "bad_request"},
		tc{"POST", "/v1/key-packages", []byte(`{"count":501}`), 400, "bad_request"},
		tc{"POST", "/v1/key-packages", []byte(`{"count":1e30}`), 400, "bad_request"},
		tc{"POST", "/v1/channels", []byte(`{"name":""}`), 400, "bad_request"},
		tc{"POST", "/v1/channels", jsonBody(node.CreateChannelRequest{Name: strings.Repeat("x", 201)}), 400, "bad_request"},
		tc{"POST", ch + "/invites", []byte(`{}`), 400, "bad_request"},
		tc{"POST", "/v1/join", []byte(`{}`), 400, "bad_request"},
		tc{"POST", ch + "/messages", []byte(`{}`), 400, "bad_request"},
		tc{"POST", ch + "/messages", jsonBody(node.SendRequest{Text: strings.Repeat("x", node.MaxTextBytes+1)}), 413, "too_large"},
		tc{"POST", ch + "/inbox", []byte(`{}`), 400, "bad_request"},
		tc{"GET", ch + "/messages?limit=0", nil, 400, "bad_request"},
		tc{"GET", ch + "/messages?limit=x", nil, 400, "bad_request"},
		tc{"GET", ch + "/messages?after=-1", nil, 400, "bad_request"},
		// A Welcome where a key package belongs, and the other way round.
		tc{"POST", ch + "/invites", jsonBody(node.InviteRequest{KeyPackage: delivered.Ciphertext}), 400, ""},
		tc{"POST", "/v1/join", jsonBody(node.JoinRequest{Welcome: bobKP}), 400, ""},
		// Replays of a delivered message.
		tc{"POST", ch + "/inbox", jsonBody(node.InboxRequest{Message: delivered.Ciphertext}), 409, "replayed_message"},
		// Unknown channel and member ids.
		tc{"GET", "/v1/channels/00ff", nil, 404, "not_found"},
		tc{"GET", "/v1/channels/no%20such", nil, 404, "not_found"},
		tc{"POST", "/v1/channels/00ff/invites", jsonBody(node.InviteRequest{KeyPackage: bobKP}), 404, "not_found"},
		tc{"POST", "/v1/channels/00ff/messages", jsonBody(node.SendRequest{Text: "x"}), 404, "not_found"},
		tc{"GET", "/v1/channels/00ff/messages", nil, 404, "not_found"},
		tc{"POST", "/v1/channels/00ff/inbox", jsonBody(node.InboxRequest{Message: delivered.Ciphertext}), 404, "not_found"},
		tc{"POST", "/v1/channels/00ff/inbox", jsonBody(node.InboxRequest{Message: randB64}), 404, "not_found"},
		tc{"GET", "/v1/channels/00ff/members", nil, 404, "not_found"},
		tc{"DELETE", "/v1/channels/00ff/members/bob", nil, 404, "not_found"},
		tc{"POST", "/v1/channels/00ff/update", nil, 404, "not_found"},
		// Bob is not an admin of alice's channel.
		tc{"DELETE", ch + "/members/mallory", nil, 403, "forbidden"},
		tc{"DELETE", ch + "/members/alice", nil, 403, "forbidden"},
		tc{"DELETE", ch + "/members/", nil, 404, "not_found"},
		// Wrong methods and paths.
		tc{"PUT", "/v1/identity", nil, 405, "method_not_allowed"},
		tc{"POST", "/v1/identity", nil, 405, "method_not_allowed"},
		tc{"DELETE", "/v1/channels", nil, 405, "method_not_allowed"},
		tc{"GET", "/v1/join", nil, 405, "method_not_allowed"},
		tc{"GET", ch + "/inbox", nil, 405, "method_not_allowed"},
		tc{"PATCH", ch + "/messages", nil, 405, "method_not_allowed"},
		tc{"GET", ch + "/update", nil, 405, "method_not_allowed"},
		tc{"POST", "/healthz", nil, 405, "method_not_allowed"},
		tc{"GET", "/v2/identity", nil, 404, "not_found"},
		tc{"GET", "/nope", nil, 404, "not_found"}, // GET / is the web client (node/webui)
		tc{"POST", "/", nil, 405, "method_not_allowed"},
	)
	for _, c := range cases {
		status, code := rawDo(t, b.c, c.method, c.path, c.body)
		if status != c.status || (c.code != "" && code != c.code) {
			t.Errorf("%s %s %.60q: %d %s, want %d %s", c.method, c.path, c.body, status, code, c.status, c.code)
		}
	}

	// Bit flips anywhere in a ciphertext: refused (400, or 409 for a flip
	// that lands in the epoch), and they burn no key: the original is
	// accepted afterwards.
	next := must(a.c.Send(ctx, id, "after the flips", ""))
	ct := b64d(t, next.Ciphertext)
	for i := 0; i < len(ct); i += max(1, len(ct)/40) {
		for _, bit := range []byte{0x01, 0x80} {
			f := slices.Clone(ct)
			f[i] ^= bit
			status, code := rawDo(t, b.c, "POST", ch+"/inbox", jsonBody(node.InboxRequest{Message: base64.StdEncoding.EncodeToString(f)}))
			if status != 400 && status != 409 && status != 404 {
				t.Errorf("flip %#x at byte %d of %d: %d %s", bit, i, len(ct), status, code)
			}
		}
	}
	// Truncated and extended ciphertexts.
	for _, f := range [][]byte{ct[:len(ct)-1], ct[:len(ct)/2], append(slices.Clone(ct), 0)} {
		if status, _ := rawDo(t, b.c, "POST", ch+"/inbox", jsonBody(node.InboxRequest{Message: base64.StdEncoding.EncodeToString(f)})); status != 400 {
			t.Errorf("truncated/extended ciphertext (%d bytes): %d", len(f), status)
		}
	}
	// Alice's own message echoed to her.
	if status, _ := rawDo(t, a.c, "POST", ch+"/inbox", jsonBody(node.InboxRequest{Message: next.Ciphertext})); status/100 != 4 {
		t.Errorf("own message echoed: %d", status)
	}
	if t.Failed() {
		t.FailNow()
	}
	r := must(b.c.Inbox(ctx, id, next.Ciphertext))
	if r.Message == nil || r.Message.Text != "after the flips" {
		t.Fatalf("the original after the flips: %+v", r)
	}
	ids = append(ids, next.MessageID)

	// A Welcome with a garbage ratchet tree is refused and keeps the key
	// package: the same Welcome with the right tree joins.
	ch2 := must(a.c.CreateChannel(ctx, "second", false))
	inv := must(a.c.Invite(ctx, ch2.ChannelID, bobKP))
	for _, tree := range []string{randB64, base64.StdEncoding.EncodeToString(b64d(t, inv.RatchetTree)[1:])} {
		status, _ := rawDo(t, b.c, "POST", "/v1/join", jsonBody(node.JoinRequest{Welcome: inv.Welcome, RatchetTree: tree}))
		if status != 400 {
			t.Fatalf("join with a garbage tree: %d", status)
		}
	}
	if n := must(b.c.KeyPackageCount(ctx)); n != kpCount {
		t.Fatalf("bob has %d key packages after refused joins, want %d", n, kpCount)
	}
	must(b.c.Join(ctx, node.JoinRequest{Welcome: inv.Welcome, RatchetTree: inv.RatchetTree}))

	// The channel still works both ways, nothing moved the epoch, and only
	// real messages are in the histories.
	ids = append(ids, chn.deliver(t, "alice", "still works", "bob").MessageID)
	ids = append(ids, chn.deliver(t, "bob", "yes", "alice").MessageID)
	for name, cl := range chn.nodes {
		if e := must(cl.Channel(ctx, id)).Epoch; e != epoch {
			t.Fatalf("%s's epoch moved to %d from %d", name, e, epoch)
		}
		if got := historyIDs(t, cl, id); !slices.Equal(got, ids) {
			t.Fatalf("%s's history %v, want %v", name, got, ids)
		}
	}
}

// TestErrorMessagesOneLine: a refusal's message names its parts once,
// without the package prefixes of the wrapped error chain.
func TestErrorMessagesOneLine(t *testing.T) {
	ctx := context.Background()
	a := newInProc(t, "alice")
	ch := must(a.c.CreateChannel(ctx, "c", false))
	req, _ := http.NewRequest("POST", a.c.BaseURL+"/v1/channels/"+ch.ChannelID+"/invites", strings.NewReader(`{"key_package":"AAAA"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 400 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	for _, bad := range []string{"\n", "channel: ", "mls: ", "wire: "} {
		if strings.Contains(body.Error.Message, bad) {
			t.Errorf("message %q contains %q", body.Error.Message, bad)
		}
	}
	t.Log(body.Error.Code, body.Error.Message)
}

// TestReplayedCommitAlreadyProcessed: a commit handed to the node a second
// time is 409 already_processed (not wrong_epoch), state unchanged.
func TestReplayedCommitAlreadyProcessed(t *testing.T) {
	ctx := context.Background()
	a, b, chn := inProcPair(t)
	up := must(a.c.Update(ctx, chn.id))
	must(b.c.Inbox(ctx, chn.id, up.Commit))
	before := must(b.c.Channel(ctx, chn.id)).Epoch
	_, err := b.c.Inbox(ctx, chn.id, up.Commit)
	wantErr(t, err, http.StatusConflict, "already_processed")
	if after := must(b.c.Channel(ctx, chn.id)).Epoch; after != before {
		t.Fatalf("epoch %d after the replay, was %d", after, before)
	}
}
