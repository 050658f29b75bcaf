package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/node"
)

// MLSMessage wire formats (RFC 9420 §6).
const (
	wfPublic     = 1
	wfPrivate    = 2
	wfWelcome    = 3
	wfKeyPackage = 5
)

func b64d(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		t.Fatalf("not non-empty base64: %q (%v)", s, err)
	}
	return b
}

// wireFormat checks s is a base64 MLSMessage of version mls10 and returns
// its wire format (RFC 9420 §6: version uint16, wire_format uint16).
func wireFormat(t testing.TB, s string) uint16 {
	t.Helper()
	b := b64d(t, s)
	if len(b) < 4 || binary.BigEndian.Uint16(b) != 1 {
		t.Fatalf("not an mls10 MLSMessage: % x", b[:min(len(b), 8)])
	}
	return binary.BigEndian.Uint16(b[2:])
}

// must returns v or fails the test by panicking with err (Go cannot pass
// a two-value call after t); cleanups still run.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// wantErr asserts err is a node answer with this status and code.
func wantErr(t testing.TB, err error, status int, code string) {
	t.Helper()
	var ne *node.Error
	if !errors.As(err, &ne) {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	if ne.Status != status || (code != "" && ne.Code != code) {
		t.Fatalf("want %d %s, got %d %s: %s", status, code, ne.Status, ne.Code, ne.Message)
	}
}

// rawDo sends a request with body as is and returns the status and the
// decoded error body (when the answer is not 2xx, the JSON error shape is
// asserted).
func rawDo(t testing.TB, c *node.Client, method, path string, body []byte) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.BaseURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, errorCode(t, resp, data)
}

// errorCode asserts the body is exactly {"error":{"code","message"}} with
// both non-empty, served as JSON, and returns the code.
func errorCode(t testing.TB, resp *http.Response, data []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%d answer has Content-Type %q: %s", resp.StatusCode, ct, data)
	}
	var eb struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil || eb.Error == nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("%d answer is not the JSON error shape: %s (%v)", resp.StatusCode, data, err)
	}
	for _, r := range eb.Error.Code {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			t.Fatalf("error code %q is not snake_case", eb.Error.Code)
		}
	}
	return eb.Error.Code
}

// channelOf is a channel with its members' nodes.
type channelOf struct {
	id    string
	nodes map[string]*node.Client
}

// deliver sends text from one node and asserts every other node's inbox
// decrypts it with the right sender, text and id.
func (ch *channelOf) deliver(t testing.TB, from, text string, to ...string) *node.SendResponse {
	t.Helper()
	ctx := context.Background()
	uidOf(t, ch.nodes[from])
	sent := must(ch.nodes[from].Send(ctx, ch.id, text, ""))
	if wireFormat(t, sent.Ciphertext) != wfPrivate || len(sent.MessageID) != 32 {
		t.Fatalf("%s's send answer %+v", from, sent)
	}
	for _, name := range to {
		r, err := ch.nodes[name].Inbox(ctx, ch.id, sent.Ciphertext)
		if err != nil {
			t.Fatalf("%s receives %q from %s: %v", name, text, from, err)
		}
		if r.Kind != "application" || r.Message == nil || r.Message.Text != text || named(r.Message.Sender.UserID) != from ||
			r.Message.MessageID != sent.MessageID || r.Message.SentAt == "" || r.Removed {
			t.Fatalf("%s's inbox answer %+v / %+v, want %q from %s id %s", name, r, r.Message, text, from, sent.MessageID)
		}
	}
	return sent
}

func historyIDs(t testing.TB, c *node.Client, id string) []string {
	t.Helper()
	var ids []string
	for _, m := range must(c.Messages(context.Background(), id)) {
		ids = append(ids, m.MessageID)
	}
	return ids
}

func memberIDs(t testing.TB, c *node.Client, id string) []string {
	t.Helper()
	var out []string
	for _, m := range must(c.Members(context.Background(), id)) {
		out = append(out, named(m.UserID))
	}
	slices.Sort(out)
	return out
}

// pair makes alice's channel "general" with bob joined (invite token path).
func pair(t testing.TB, alice, bob *node.Client) *channelOf {
	t.Helper()
	ctx := context.Background()
	kp := must(bob.KeyPackages(ctx, 1))[0]
	ch := must(alice.CreateChannel(ctx, "general", false))
	inv := must(alice.Invite(ctx, ch.ChannelID, kp))
	must(bob.Join(ctx, node.JoinRequest{Invite: inv.Invite}))
	return &channelOf{id: ch.ChannelID, nodes: map[string]*node.Client{"alice": alice, "bob": bob}}
}

func TestThreePartyFlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, c := startProc(t, "alice"), startProc(t, "bob"), startProc(t, "carol")
	alice, bob, carol := a.c, b.c, c.c
	for name, cl := range map[string]*node.Client{"alice": alice, "bob": bob, "carol": carol} {
		id := must(cl.Identity(ctx))
		if uidOf(t, cl) != id.UserID || len(id.UserID) != 55 || id.Name != name || id.Ciphersuite != 1 || len(b64d(t, id.SignatureKey)) != 32 {
			t.Fatalf("%s's identity %+v", name, id)
		}
		if n := must(cl.KeyPackageCount(ctx)); n != 0 {
			t.Fatalf("%s starts with %d key packages", name, n)
		}
	}

	kps := map[string]string{}
	for name, cl := range map[string]*node.Client{"bob": bob, "carol": carol} {
		k := must(cl.KeyPackages(ctx, 2))
		if len(k) != 2 || k[0] == k[1] {
			t.Fatalf("%s: key packages %v", name, k)
		}
		for _, kp := range k {
			if wireFormat(t, kp) != wfKeyPackage {
				t.Fatalf("%s's key package is not framed as an mls_key_package MLSMessage", name)
			}
		}
		if n := must(cl.KeyPackageCount(ctx)); n != 2 {
			t.Fatalf("%s has %d valid key packages, want 2", name, n)
		}
		kps[name] = k[0]
	}

	ch := must(alice.CreateChannel(ctx, "general", false))
	gid := b64d(t, ch.GroupID)
	if ch.ChannelID != hex.EncodeToString(gid) || ch.Name != "general" || ch.Epoch != 0 || ch.MemberCount != 1 || ch.IsPublic {
		t.Fatalf("created channel %+v", ch)
	}
	if got := must(alice.Channel(ctx, ch.ChannelID)); *got != *ch {
		t.Fatalf("GET channel %+v, created %+v", got, ch)
	}

	inv := must(alice.Invite(ctx, ch.ChannelID, kps["bob"]))
	if inv.Epoch != 1 || wireFormat(t, inv.Welcome) != wfWelcome || len(b64d(t, inv.RatchetTree)) == 0 || inv.Invite == "" {
		t.Fatalf("invite for bob %+v", inv)
	}
	if wf := wireFormat(t, inv.Commit); wf != wfPublic && wf != wfPrivate {
		t.Fatalf("commit wire format %d", wf)
	}
	bj := must(bob.Join(ctx, node.JoinRequest{Invite: inv.Invite}))
	if bj.ChannelID != ch.ChannelID || bj.GroupID != ch.GroupID || bj.Name != "general" || bj.Epoch != 1 || bj.MemberCount != 2 {
		t.Fatalf("bob joined %+v", bj)
	}
	if n := must(bob.KeyPackageCount(ctx)); n != 1 {
		t.Fatalf("bob has %d valid key packages after joining, want 1", n)
	}

	inv = must(alice.Invite(ctx, ch.ChannelID, kps["carol"]))
	if inv.Epoch != 2 {
		t.Fatalf("invite for carol at epoch %d", inv.Epoch)
	}
	r := must(bob.Inbox(ctx, ch.ChannelID, inv.Commit))
	if r.Kind != "commit" || r.Epoch != 2 || r.Message != nil || r.Removed {
		t.Fatalf("bob processes the add of carol: %+v", r)
	}
	// The plain RFC 9420 path: Welcome and ratchet tree, no invite token.
	cj := must(carol.Join(ctx, node.JoinRequest{Welcome: inv.Welcome, RatchetTree: inv.RatchetTree}))
	if cj.ChannelID != ch.ChannelID || cj.Name != "general" || cj.Epoch != 2 || cj.MemberCount != 3 {
		t.Fatalf("carol joined %+v", cj)
	}
	// Joining again: with the invite token (which names the channel) it is
	// a conflict; a bare Welcome cannot even be opened, its key package is
	// spent.
	_, err := carol.Join(ctx, node.JoinRequest{Invite: inv.Invite})
	wantErr(t, err, http.StatusConflict, "already_member")
	_, err = carol.Join(ctx, node.JoinRequest{Welcome: inv.Welcome, RatchetTree: inv.RatchetTree})
	wantErr(t, err, http.StatusBadRequest, "no_matching_key_package")

	chn := &channelOf{id: ch.ChannelID, nodes: map[string]*node.Client{"alice": alice, "bob": bob, "carol": carol}}
	want := []string{"alice", "bob", "carol"}
	for name, cl := range chn.nodes {
		if got := memberIDs(t, cl, ch.ChannelID); !slices.Equal(got, want) {
			t.Fatalf("%s sees members %v", name, got)
		}
		ms := must(cl.Members(ctx, ch.ChannelID))
		for i, m := range ms {
			if m.LeafIndex != uint32(i) {
				t.Fatalf("%s: members %+v not in leaf order", name, ms)
			}
		}
	}

	var ids []string
	ids = append(ids, chn.deliver(t, "alice", "hello from alice", "bob", "carol").MessageID)
	ids = append(ids, chn.deliver(t, "bob", "hello from bob", "alice", "carol").MessageID)
	ids = append(ids, chn.deliver(t, "carol", "hello from carol ✓", "alice", "bob").MessageID)

	// A reply keeps its reply_to end to end.
	rep := must(bob.Send(ctx, ch.ChannelID, "re: alice", ids[0]))
	for _, cl := range []*node.Client{alice, carol} {
		r := must(cl.Inbox(ctx, ch.ChannelID, rep.Ciphertext))
		if r.Message == nil || r.Message.ReplyTo != ids[0] {
			t.Fatalf("reply arrived as %+v", r.Message)
		}
	}
	ids = append(ids, rep.MessageID)

	// Bob updates his leaf: everyone moves to epoch 3.
	up := must(bob.Update(ctx, ch.ChannelID))
	if up.Epoch != 3 {
		t.Fatalf("update answer %+v", up)
	}
	for _, cl := range []*node.Client{alice, carol} {
		if r := must(cl.Inbox(ctx, ch.ChannelID, up.Commit)); r.Kind != "commit" || r.Epoch != 3 {
			t.Fatalf("update processed as %+v", r)
		}
	}
	ids = append(ids, chn.deliver(t, "carol", "after the update", "alice", "bob").MessageID)

	// Alice removes carol: epoch 4; carol learns it; she cannot read on.
	_, err = alice.RemoveMember(ctx, ch.ChannelID, "nobody")
	wantErr(t, err, http.StatusNotFound, "not_found")
	rm := must(alice.RemoveMember(ctx, ch.ChannelID, uidOf(t, carol)))
	if rm.Epoch != 4 {
		t.Fatalf("remove answer %+v", rm)
	}
	if r := must(bob.Inbox(ctx, ch.ChannelID, rm.Commit)); r.Kind != "commit" || r.Epoch != 4 || r.Removed {
		t.Fatalf("bob processes the removal as %+v", r)
	}
	if r := must(carol.Inbox(ctx, ch.ChannelID, rm.Commit)); r.Kind != "commit" || !r.Removed {
		t.Fatalf("carol processes her removal as %+v", r)
	}
	for _, cl := range []*node.Client{alice, bob} {
		if got := memberIDs(t, cl, ch.ChannelID); !slices.Equal(got, []string{"alice", "bob"}) {
			t.Fatalf("members after removal %v", got)
		}
	}
	secret := chn.deliver(t, "alice", "carol must not read this", "bob")
	ids = append(ids, secret.MessageID)
	_, err = carol.Inbox(ctx, ch.ChannelID, secret.Ciphertext)
	wantErr(t, err, http.StatusConflict, "channel_not_active")
	_, err = carol.Send(ctx, ch.ChannelID, "still here?", "")
	wantErr(t, err, http.StatusConflict, "channel_not_active")

	// Histories: alice and bob hold every message, in the same order;
	// carol keeps what she saw before her removal.
	if got := historyIDs(t, alice, ch.ChannelID); !slices.Equal(got, ids) {
		t.Fatalf("alice's history %v, want %v", got, ids)
	}
	if got := historyIDs(t, bob, ch.ChannelID); !slices.Equal(got, ids) {
		t.Fatalf("bob's history %v, want %v", got, ids)
	}
	if got := historyIDs(t, carol, ch.ChannelID); !slices.Equal(got, ids[:5]) {
		t.Fatalf("carol's history %v, want %v", got, ids[:5])
	}
	hist := must(bob.Messages(ctx, ch.ChannelID))
	if named(hist[2].Sender.UserID) != "carol" || hist[2].Text != "hello from carol ✓" || hist[3].ReplyTo != ids[0] {
		t.Fatalf("bob's history %+v", hist)
	}

	var list node.ChannelsResponse
	if err := alice.Do(ctx, "GET", "/v1/channels", nil, &list); err != nil || len(list.Channels) != 1 ||
		list.Channels[0].ChannelID != ch.ChannelID || list.Channels[0].Epoch != 4 {
		t.Fatalf("alice's channels %+v %v", list, err)
	}
	// Metrics count the requests.
	resp := must(http.Get(alice.BaseURL + "/metrics"))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `spacepanda_http_requests_total{code="202",route="messages_send"}`) {
		t.Fatalf("metrics %d:\n%.2000s", resp.StatusCode, body)
	}
}

func TestTokenRequired(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A non-loopback address without a token file is refused at start.
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		code, stderr := runServe(t, "--data", filepath.Join(dir, "x"), "--listen", addr)
		if code == 0 || !strings.Contains(stderr, "--token-file") {
			t.Fatalf("--listen %s without a token: exit %d, stderr %q", addr, code, stderr)
		}
	}
	// A too-short token is refused too.
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	if code, _ := runServe(t, "--data", filepath.Join(dir, "x"), "--listen", "127.0.0.1:0", "--token-file", short); code == 0 {
		t.Fatal("a 3-character token was accepted")
	}

	const token = "s3cret-token-for-tests-0123456789"
	tf := filepath.Join(dir, "token")
	if err := os.WriteFile(tf, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "alice", "--token-file", tf)
	ctx := context.Background()
	for _, tok := range []string{"", "wrong-token-wrong-token-wrong", token + "x", strings.ToUpper(token)} {
		c := &node.Client{BaseURL: p.c.BaseURL, Token: tok}
		for _, path := range []string{"/v1/identity", "/metrics", "/v1/channels", "/nope"} {
			if status, code := rawDo(t, c, "GET", path, nil); status != http.StatusUnauthorized || code != "unauthorized" {
				t.Fatalf("GET %s with token %q: %d %s", path, tok, status, code)
			}
		}
		_, err := c.CreateChannel(ctx, "x", false)
		wantErr(t, err, http.StatusUnauthorized, "unauthorized")
	}
	// Basic auth or a bare token are not the bearer scheme.
	req, _ := http.NewRequest("GET", p.c.BaseURL+"/v1/identity", nil)
	req.Header.Set("Authorization", token)
	if resp := must(http.DefaultClient.Do(req)); resp.StatusCode != 401 {
		t.Fatalf("bare token: %d", resp.StatusCode)
	}
	c := &node.Client{BaseURL: p.c.BaseURL, Token: token}
	if id := must(c.Identity(ctx)); id.Name != "alice" || len(id.UserID) != 55 {
		t.Fatalf("identity %+v", id)
	}
	ch := must(c.CreateChannel(ctx, "x", false))
	must(c.Send(ctx, ch.ChannelID, "hi", ""))
	if status, _ := rawDo(t, c, "GET", "/metrics", nil); status != 200 {
		t.Fatalf("metrics with the token: %d", status)
	}
}
